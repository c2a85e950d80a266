"""Lamina's own SQS-compatible queues as an event source (EventSourceArn arn:aws:sqs:REGION:ACCOUNT:NAME).

As Lambda's SQS poller: messages are received with the queue's visibility timeout (raised to
window + function timeout + 30 s when that is longer), handed over in SQS-shaped records,
deleted once the function succeeded; a failed message stays in flight until its visibility
timeout ends, comes back with a higher receive count and, past the queue's maxReceiveCount, is
moved to the queue's dead-letter queue by the queue itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from lamina.errors import InvalidParameterValueException
from lamina.queues import Queue, Queues, ReceivedMessage
from lamina.queues.errors import QueueError
from lamina.sources.base import (
    CreateRequest,
    MappingConfig,
    Record,
    Source,
    SourceContext,
    SourceKind,
    SourceUnavailable,
    arn_service,
)
from lamina.sources.filters import json_view

LONG_POLL_S = 20.0  # SQS's longest wait; the poller checks for stop/disable between polls
RECEIVE_MAX = 10  # what one ReceiveMessage returns at most
FIFO_BATCH_MAX = 10


def _claims(request: CreateRequest) -> bool:
    return arn_service(request.event_source_arn) == "sqs"


def _no_queue(arn: str | None) -> InvalidParameterValueException:
    return InvalidParameterValueException(
        "Error occurred while ReceiveMessage. SQS Error Code: "
        "AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: The specified queue "
        f"does not exist for this wsdl version. ({arn})"
    )


async def _check(mapping: MappingConfig, ctx: SourceContext) -> MappingConfig:
    queues = ctx.queues
    queue = queues.by_arn(mapping.event_source_arn or "") if queues is not None else None
    if queue is None:
        raise _no_queue(mapping.event_source_arn)
    if mapping.batch_size > 10 and mapping.max_batching_window_s == 0:
        raise InvalidParameterValueException(
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is "
            "greater than 10"
        )
    visibility = queue.int_attr("VisibilityTimeout")
    timeout = ctx.function_timeout_s(mapping)
    if visibility < timeout:
        raise InvalidParameterValueException(
            f"Queue visibility timeout: {visibility} seconds is less than Function timeout: "
            f"{timeout} seconds"
        )
    return mapping


async def _open(mapping: MappingConfig, ctx: SourceContext) -> list[Source]:
    if ctx.queues is None:
        raise SourceUnavailable("Lamina's queues are not available", permanent=True)
    return [SqsSource(mapping, ctx.queues, ctx.function_timeout_s(mapping))]


def sqs_kind() -> SourceKind:
    return SourceKind(
        name="sqs",
        event_source="aws:sqs",
        ordered=False,
        default_batch_size=10,
        max_batch_size=10_000,
        claims=_claims,
        open=_open,
        check=_check,
        output_members=frozenset(
            {"FilterCriteria", "ScalingConfig", "FunctionResponseTypes", "MetricsConfig"}
        ),
        describe=lambda m: f'SQS arn (" {m.event_source_arn} ")',
        scales=True,
    )


class SqsSource:
    def __init__(self, mapping: MappingConfig, queues: Queues, function_timeout_s: int) -> None:
        self.mapping = mapping
        self.queues = queues
        self.arn = mapping.event_source_arn or ""
        self.region = mapping.region
        self.function_timeout_s = function_timeout_s

    def _queue(self) -> Queue:
        queue = self.queues.by_arn(self.arn)
        if queue is None:
            raise SourceUnavailable(
                f"The specified queue does not exist: {self.arn}", permanent=True
            )
        return queue

    def _visibility_s(self, queue: Queue) -> int:
        visibility = queue.int_attr("VisibilityTimeout")
        needed = self.mapping.max_batching_window_s + self.function_timeout_s
        return visibility if needed <= visibility else needed + 30

    async def connect(self) -> None:
        self._queue()

    async def fetch(self, max_records: int, window_s: float) -> list[Record]:
        out: list[Record] = []
        queue = self._queue()
        visibility = self._visibility_s(queue)
        got = await self._receive(queue, min(max_records, RECEIVE_MAX), LONG_POLL_S, visibility)
        out.extend(got)
        if not out or window_s <= 0:
            return out
        deadline = time.monotonic() + window_s
        while len(out) < max_records:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            queue = self._queue()
            want = min(max_records - len(out), RECEIVE_MAX)
            out.extend(await self._receive(queue, want, left, visibility))
        return out

    async def _receive(
        self, queue: Queue, count: int, wait_s: float, visibility_s: int
    ) -> list[Record]:
        try:
            messages = await self.queues.receive(queue, count, wait_s, visibility_s)
        except QueueError as exc:
            raise SourceUnavailable(exc.message) from exc
        return [self._record(queue, m) for m in messages]

    def _record(self, queue: Queue, message: ReceivedMessage) -> Record:
        payload: dict[str, Any] = {
            "messageId": message.message_id,
            "receiptHandle": message.receipt_handle,
            "body": message.body,
            "attributes": {
                "ApproximateReceiveCount": str(message.receive_count),
                "SentTimestamp": str(message.sent_ms),
                "SenderId": queue.account_id,
                "ApproximateFirstReceiveTimestamp": str(message.first_receive_ms),
            },
            "messageAttributes": {
                name: _message_attribute(value) for name, value in message.attributes.items()
            },
            "md5OfBody": message.md5_body,
            "eventSource": "aws:sqs",
            "eventSourceARN": queue.arn,
            "awsRegion": queue.region,
        }
        if message.md5_attributes:
            payload["md5OfMessageAttributes"] = message.md5_attributes
        size = len(message.body.encode()) + 1024 + 200 * len(message.attributes)
        return Record(
            id=message.message_id,
            payload=payload,
            handle=message.receipt_handle,
            size=size,
            arrived_s=message.sent_ms / 1000,
            filter_view={**payload, "body": json_view(message.body)},
        )

    async def acknowledge(self, records: Sequence[Record]) -> None:
        """Delete the batch with one DeleteMessageBatch-like transaction, as Lambda deletes a
        batch with DeleteMessageBatch (a commit per message was the drain rate's limit)."""
        queue = self.queues.by_arn(self.arn)
        if queue is None or not records:
            return  # the queue and its messages are gone
        # a stale handle (the message was received again elsewhere) deletes nothing
        with contextlib.suppress(QueueError):
            await self.queues.delete_messages(queue, [str(r.handle) for r in records])

    async def release(self, records: Sequence[Record]) -> None:
        """Nothing to do: failed messages come back when their visibility timeout ends."""
        await asyncio.sleep(0)

    def event(self, records: Sequence[Record]) -> dict[str, Any]:
        return {"Records": [r.payload for r in records]}

    def failure_info(self, records: Sequence[Record]) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        await asyncio.sleep(0)


def _message_attribute(value: dict[str, str]) -> dict[str, Any]:
    """SQS message attributes in the casing Lambda's records use."""
    out: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = value["BinaryValue"]
    return out
