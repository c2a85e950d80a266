"""An SQS-compatible API over Lamina's queues, on the same endpoint as Lambda.

Current botocore speaks SQS's JSON 1.0 protocol (X-Amz-Target `AmazonSQS.<Operation>`); the
model is `awsQueryCompatible`, so errors carry `__type` with the shape name and the legacy query
code in `x-amzn-query-error`, which boto3 and the AWS CLI turn into the modelled exceptions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from lamina.api.http import Request, Response
from lamina.queues import NewMessage, Queue, Queues, ReceivedMessage
from lamina.queues.errors import (
    BatchEntryIdsNotDistinct,
    BatchRequestTooLong,
    EmptyBatchRequest,
    InvalidAttributeName,
    InvalidBatchEntryId,
    InvalidParameterValue,
    MissingParameter,
    QueueError,
    TooManyEntriesInBatchRequest,
    UnsupportedOperation,
)
from lamina.queues.model import (
    ALL_ATTRIBUTES,
    MAX_MESSAGE_BYTES,
    MESSAGE_SYSTEM_ATTRIBUTES,
    QUEUE_NAME_RE,
    check_message_attributes,
    md5_of_attributes,
    validate_attributes,
)

TARGET = "AmazonSQS"
JSON_10 = "application/x-amz-json-1.0"
BATCH_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,80}")

Body = dict[str, Any]


def _ok(data: Mapping[str, Any] | None = None) -> Response:
    return Response(200, json.dumps(data or {}, separators=(",", ":")).encode(), [], JSON_10)


def error_response(error: QueueError) -> Response:
    fault = "Sender" if error.sender_fault else "Receiver"
    body = {"__type": f"com.amazonaws.sqs#{error.shape}", "message": error.message}
    return Response(
        error.status,
        json.dumps(body).encode(),
        [("x-amzn-query-error", f"{error.query_code};{fault}")],
        JSON_10,
    )


def _str(body: Body, key: str, *, required: bool = True) -> str:
    value = body.get(key)
    if value is None:
        if required:
            raise MissingParameter(f"The request must contain the parameter {key}.")
        return ""
    if not isinstance(value, str):
        raise InvalidParameterValue(f"Value for parameter {key} is invalid.")
    return value


def _int(body: Body, key: str, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParameterValue(
            f"Value {value} for parameter {key} is invalid. Reason: Must be between {low} and {high}."
        )
    return value


# The container members of SQS's requests and their JSON shapes (the model's): checked up front,
# so that the handlers can take them as typed (a list where a map belongs was a 500).
_STR_LISTS = ("AttributeNames", "MessageAttributeNames", "MessageSystemAttributeNames", "TagKeys")
_STR_MAPS = ("Attributes", "Tags", "tags")
_OBJECT_MAPS = ("MessageAttributes", "MessageSystemAttributes")


def _check_shapes(body: Any) -> None:
    if not isinstance(body, dict):
        raise InvalidParameterValue("A batch entry must be a JSON object.")
    for key in _STR_LISTS:
        value = body.get(key)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise InvalidParameterValue(f"Value for parameter {key} is invalid: a list of strings.")
    for key in _STR_MAPS:
        value = body.get(key)
        if value is not None and (
            not isinstance(value, dict)
            or not all(isinstance(v, str | int | float) for v in value.values())
        ):
            raise InvalidParameterValue(f"Value for parameter {key} is invalid: a map of strings.")
    for key in _OBJECT_MAPS:
        value = body.get(key)
        if value is not None and not isinstance(value, dict):
            raise InvalidParameterValue(f"Value for parameter {key} is invalid: a map.")
    entries = body.get("Entries")
    if entries is not None and not isinstance(entries, list):
        raise InvalidParameterValue("Value for parameter Entries is invalid: a list.")


class SqsAPI:
    def __init__(self, queues: Queues, account_id: str) -> None:
        self.queues = queues
        self.account_id = account_id
        self._ops: dict[str, Callable[[Request, Body], Awaitable[Response]]] = {
            "CreateQueue": self.create_queue,
            "GetQueueUrl": self.get_queue_url,
            "ListQueues": self.list_queues,
            "GetQueueAttributes": self.get_queue_attributes,
            "SetQueueAttributes": self.set_queue_attributes,
            "DeleteQueue": self.delete_queue,
            "PurgeQueue": self.purge_queue,
            "SendMessage": self.send_message,
            "SendMessageBatch": self.send_message_batch,
            "ReceiveMessage": self.receive_message,
            "DeleteMessage": self.delete_message,
            "DeleteMessageBatch": self.delete_message_batch,
            "ChangeMessageVisibility": self.change_message_visibility,
            "ChangeMessageVisibilityBatch": self.change_message_visibility_batch,
        }

    async def __call__(self, req: Request, operation: str) -> Response:
        handler = self._ops.get(operation)
        try:
            if handler is None:
                raise UnsupportedOperation(f"Lamina does not serve SQS {operation}.")
            try:
                body = json.loads(req.body or b"{}")
            except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
                raise InvalidParameterValue("The request body is not valid JSON.") from exc
            if not isinstance(body, dict):
                raise InvalidParameterValue("The request body must be a JSON object.")
            _check_shapes(body)
            for entry in body.get("Entries") or ():
                _check_shapes(entry)
            return await handler(req, body)
        except QueueError as error:
            return error_response(error)

    # -- helpers ---------------------------------------------------------------------------------

    def _url(self, req: Request, queue: Queue) -> str:
        return f"http://{req.host or 'localhost'}/{queue.account_id}/{queue.name}"

    def _queue(self, req: Request, body: Body) -> Queue:
        url = _str(body, "QueueUrl")
        path = urlsplit(url).path if "://" in url else url
        name = path.rstrip("/").rsplit("/", 1)[-1]
        return self.queues.get(req.region, name)

    # -- queues ----------------------------------------------------------------------------------

    async def create_queue(self, req: Request, body: Body) -> Response:
        name = _str(body, "QueueName")
        if not QUEUE_NAME_RE.fullmatch(name):
            raise InvalidParameterValue(
                "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
            )
        attributes = validate_attributes(body.get("Attributes") or {})
        queue = await self.queues.create(req.region, self.account_id, name, attributes)
        return _ok({"QueueUrl": self._url(req, queue)})

    async def get_queue_url(self, req: Request, body: Body) -> Response:
        queue = self.queues.get(req.region, _str(body, "QueueName"))
        return _ok({"QueueUrl": self._url(req, queue)})

    async def list_queues(self, req: Request, body: Body) -> Response:
        prefix = _str(body, "QueueNamePrefix", required=False)
        max_results = _int(body, "MaxResults", 1, 1000)
        after = _str(body, "NextToken", required=False)
        names = [n for n in self.queues.names(req.region) if n.startswith(prefix) and n > after]
        out: dict[str, Any] = {}
        if max_results is not None and len(names) > max_results:
            names = names[:max_results]
            out["NextToken"] = names[-1]
        else:
            names = names[:1000]
        if names:
            out["QueueUrls"] = [self._url(req, self.queues.get(req.region, n)) for n in names]
        return _ok(out)

    async def get_queue_attributes(self, req: Request, body: Body) -> Response:
        queue = self._queue(req, body)
        wanted = body.get("AttributeNames") or []
        for name in wanted:
            if name != "All" and name not in ALL_ATTRIBUTES:
                raise InvalidAttributeName(f"Unknown Attribute {name}.")
        if not wanted:
            return _ok({})
        values: dict[str, str] = {
            "QueueArn": queue.arn,
            "CreatedTimestamp": str(queue.created_s),
            "LastModifiedTimestamp": str(queue.modified_s),
            "SqsManagedSseEnabled": "true",
        }
        for key in (
            "DelaySeconds",
            "MaximumMessageSize",
            "MessageRetentionPeriod",
            "ReceiveMessageWaitTimeSeconds",
            "VisibilityTimeout",
        ):
            values[key] = str(queue.int_attr(key))
        values.update(queue.attributes)
        if "All" in wanted or any(n.startswith("ApproximateNumber") for n in wanted):
            values.update({k: str(v) for k, v in (await self.queues.counts(queue)).items()})
        if "All" not in wanted:
            values = {k: v for k, v in values.items() if k in wanted}
        return _ok({"Attributes": values} if values else {})

    async def set_queue_attributes(self, req: Request, body: Body) -> Response:
        queue = self._queue(req, body)
        attributes = body.get("Attributes")
        if not isinstance(attributes, dict):
            raise MissingParameter("The request must contain the parameter Attributes.")
        await self.queues.set_attributes(queue, validate_attributes(attributes))
        return _ok()

    async def delete_queue(self, req: Request, body: Body) -> Response:
        await self.queues.delete(self._queue(req, body))
        return _ok()

    async def purge_queue(self, req: Request, body: Body) -> Response:
        await self.queues.purge(self._queue(req, body))
        return _ok()

    # -- messages --------------------------------------------------------------------------------

    @staticmethod
    def _new_message(entry: Body) -> NewMessage:
        text = entry.get("MessageBody")
        if not isinstance(text, str):
            raise MissingParameter("The request must contain the parameter MessageBody.")
        delay = _int(entry, "DelaySeconds", 0, 900)
        attributes = check_message_attributes(entry.get("MessageAttributes") or {})
        return NewMessage(text, attributes, delay)

    async def send_message(self, req: Request, body: Body) -> Response:
        queue = self._queue(req, body)
        (sent,) = await self.queues.send(queue, [self._new_message(body)])
        out = {"MessageId": sent.message_id, "MD5OfMessageBody": sent.md5_body}
        if sent.md5_attributes:
            out["MD5OfMessageAttributes"] = sent.md5_attributes
        return _ok(out)

    @staticmethod
    def _entries(body: Body) -> list[Body]:
        entries = body.get("Entries")
        if not entries:
            raise EmptyBatchRequest(
                "There should be at least one SendMessageBatchRequestEntry in the request."
            )
        if len(entries) > 10:
            raise TooManyEntriesInBatchRequest(
                f"Maximum number of entries per request are 10. You have sent {len(entries)}."
            )
        ids = [e.get("Id") for e in entries]
        for ident in ids:
            if not isinstance(ident, str) or not BATCH_ID_RE.fullmatch(ident):
                raise InvalidBatchEntryId(
                    "A batch entry id can only contain alphanumeric characters, hyphens and "
                    "underscores. It can be at most 80 letters long."
                )
        if len(set(ids)) != len(ids):
            raise BatchEntryIdsNotDistinct(
                "Two or more batch entries in the request have the same Id."
            )
        return list(entries)

    async def send_message_batch(self, req: Request, body: Body) -> Response:
        queue = self._queue(req, body)
        entries = self._entries(body)
        total = sum(len(str(e.get("MessageBody", "")).encode()) for e in entries)
        if total > MAX_MESSAGE_BYTES:
            raise BatchRequestTooLong(
                f"Batch requests cannot be longer than {MAX_MESSAGE_BYTES} bytes. "
                f"You have sent {total} bytes."
            )
        good: list[tuple[str, NewMessage]] = []
        failed: list[Body] = []
        for entry in entries:
            try:
                good.append((entry["Id"], self._new_message(entry)))
            except QueueError as error:
                failed.append(_batch_failure(entry, error))
        successful: list[Body] = []
        if good:
            sent = await self.queues.send(queue, [m for _, m in good])
            for (ident, _), s in zip(good, sent, strict=True):
                item = {"Id": ident, "MessageId": s.message_id, "MD5OfMessageBody": s.md5_body}
                if s.md5_attributes:
                    item["MD5OfMessageAttributes"] = s.md5_attributes
                successful.append(item)
        return _ok({"Successful": successful, "Failed": failed})

    async def receive_message(self, req: Request, body: Body) -> Response:
        queue = self._queue(req, body)
        max_messages = _int(body, "MaxNumberOfMessages", 1, 10) or 1
        visibility = _int(body, "VisibilityTimeout", 0, 43_200)
        wait = _int(body, "WaitTimeSeconds", 0, 20)
        if wait is None:
            wait = queue.int_attr("ReceiveMessageWaitTimeSeconds")
        system = set(body.get("MessageSystemAttributeNames") or []) | set(
            body.get("AttributeNames") or []
        )
        if "All" in system:
            system = set(MESSAGE_SYSTEM_ATTRIBUTES)
        wanted_attrs = list(body.get("MessageAttributeNames") or [])
        got = await self.queues.receive(queue, max_messages, float(wait), visibility)
        if not got:
            return _ok({})
        return _ok({"Messages": [self._message(m, system, wanted_attrs) for m in got]})

    def _message(self, m: ReceivedMessage, system: set[str], wanted: list[str]) -> Body:
        out: Body = {
            "MessageId": m.message_id,
            "ReceiptHandle": m.receipt_handle,
            "MD5OfBody": m.md5_body,
            "Body": m.body,
        }
        values = {
            "SenderId": self.account_id,
            "SentTimestamp": str(m.sent_ms),
            "ApproximateReceiveCount": str(m.receive_count),
            "ApproximateFirstReceiveTimestamp": str(m.first_receive_ms),
        }
        attributes = {k: v for k, v in values.items() if k in system}
        if attributes:
            out["Attributes"] = attributes
        if wanted and m.attributes:
            if "All" in wanted or ".*" in wanted:
                chosen = m.attributes
            else:
                chosen = {
                    k: v
                    for k, v in m.attributes.items()
                    if k in wanted or any(w.endswith(".*") and k.startswith(w[:-1]) for w in wanted)
                }
            if chosen:
                out["MessageAttributes"] = chosen
                out["MD5OfMessageAttributes"] = (
                    m.md5_attributes if chosen is m.attributes else md5_of_attributes(chosen)
                )
        return out

    async def delete_message(self, req: Request, body: Body) -> Response:
        queue = self._queue(req, body)
        await self.queues.delete_message(queue, _str(body, "ReceiptHandle"))
        return _ok()

    async def delete_message_batch(self, req: Request, body: Body) -> Response:
        queue = self._queue(req, body)
        failed: list[Body] = []
        valid: list[tuple[Body, str]] = []
        for entry in self._entries(body):
            try:
                valid.append((entry, _str(entry, "ReceiptHandle")))
            except QueueError as error:
                failed.append(_batch_failure(entry, error))
        # one transaction for the whole batch
        outcome = await self.queues.delete_messages(queue, [handle for _, handle in valid])
        successful: list[Body] = []
        for (entry, _handle), refused in zip(valid, outcome, strict=True):
            if refused is None:
                successful.append({"Id": entry["Id"]})
            else:
                failed.append(_batch_failure(entry, refused))
        return _ok({"Successful": successful, "Failed": failed})

    async def change_message_visibility(self, req: Request, body: Body) -> Response:
        queue = self._queue(req, body)
        timeout = _int(body, "VisibilityTimeout", 0, 43_200)
        if timeout is None:
            raise MissingParameter("The request must contain the parameter VisibilityTimeout.")
        await self.queues.change_visibility(queue, _str(body, "ReceiptHandle"), timeout)
        return _ok()

    async def change_message_visibility_batch(self, req: Request, body: Body) -> Response:
        queue = self._queue(req, body)
        successful: list[Body] = []
        failed: list[Body] = []
        for entry in self._entries(body):
            try:
                timeout = _int(entry, "VisibilityTimeout", 0, 43_200) or 0
                await self.queues.change_visibility(queue, _str(entry, "ReceiptHandle"), timeout)
                successful.append({"Id": entry["Id"]})
            except QueueError as error:
                failed.append(_batch_failure(entry, error))
        return _ok({"Successful": successful, "Failed": failed})


def _batch_failure(entry: Body, error: QueueError) -> Body:
    """One `Failed` entry of a batch answer, as SQS words it."""
    return {
        "Id": entry["Id"],
        "SenderFault": True,
        "Code": error.query_code,
        "Message": error.message,
    }


__all__ = ["TARGET", "SqsAPI"]
