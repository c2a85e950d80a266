"""SQS's errors: the shape name boto3 raises, the legacy query code, the status and who is at fault.

SQS moved from the query protocol to JSON; clients still tell errors apart by the old code, sent
in the `x-amzn-query-error` header (`<code>;Sender`), while `__type` carries the shape name.
"""

from __future__ import annotations


class QueueError(Exception):
    shape = "InvalidParameterValue"
    query_code = "InvalidParameterValue"
    status = 400
    sender_fault = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameterValue(QueueError):
    pass


class MissingParameter(QueueError):
    shape = query_code = "MissingParameter"


class InvalidAddress(QueueError):
    shape = query_code = "InvalidAddress"
    status = 404


class QueueDoesNotExist(QueueError):
    shape = "QueueDoesNotExist"
    query_code = "AWS.SimpleQueueService.NonExistentQueue"


class QueueNameExists(QueueError):
    shape = "QueueNameExists"
    query_code = "QueueAlreadyExists"


class InvalidAttributeName(QueueError):
    shape = query_code = "InvalidAttributeName"


class InvalidAttributeValue(QueueError):
    shape = query_code = "InvalidAttributeValue"


class ReceiptHandleIsInvalid(QueueError):
    shape = query_code = "ReceiptHandleIsInvalid"
    status = 404


class MessageNotInflight(QueueError):
    shape = "MessageNotInflight"
    query_code = "AWS.SimpleQueueService.MessageNotInflight"


class EmptyBatchRequest(QueueError):
    shape = "EmptyBatchRequest"
    query_code = "AWS.SimpleQueueService.EmptyBatchRequest"


class TooManyEntriesInBatchRequest(QueueError):
    shape = "TooManyEntriesInBatchRequest"
    query_code = "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"


class BatchEntryIdsNotDistinct(QueueError):
    shape = "BatchEntryIdsNotDistinct"
    query_code = "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"


class InvalidBatchEntryId(QueueError):
    shape = "InvalidBatchEntryId"
    query_code = "AWS.SimpleQueueService.InvalidBatchEntryId"


class BatchRequestTooLong(QueueError):
    shape = "BatchRequestTooLong"
    query_code = "AWS.SimpleQueueService.BatchRequestTooLong"


class InvalidMessageContents(QueueError):
    shape = query_code = "InvalidMessageContents"


class UnsupportedOperation(QueueError):
    shape = "UnsupportedOperation"
    query_code = "AWS.SimpleQueueService.UnsupportedOperation"
