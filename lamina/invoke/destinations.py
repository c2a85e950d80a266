"""What an asynchronous invocation leaves behind: destination records and dead-letter messages,
in the shapes Lambda sends, addressed to the targets Lamina has (its own queues, its functions).

Destination record (the body of a queue message, or the event of a destination function):
    {"version": "1.0", "timestamp": "...Z",
     "requestContext": {"requestId", "functionArn" (qualified), "condition", "approximateInvokeCount"},
     "requestPayload": <the event>, "responseContext": {"statusCode", "executedVersion",
     "functionError" (failures only)}, "responsePayload": <the function's result or error>}
Dead-letter message: the event itself as the body, with message attributes RequestID (String),
ErrorCode (Number) and ErrorMessage (String, at most 1 KB).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import uuid
from typing import Any

from lamina.control.names import parse_function_ref
from lamina.control.registry import Registry
from lamina.errors import InvalidParameterValueException, ResourceNotFoundException
from lamina.invoke.async_queue import Delivery, NewEvent, QueueMessage
from lamina.invoke.event_config import destination_kind

log = logging.getLogger(__name__)

SUCCESS = "Success"
RETRIES_EXHAUSTED = "RetriesExhausted"
EVENT_AGE_EXCEEDED = "EventAgeExceeded"
ERROR_MESSAGE_MAX = 1024
LEASE_MARGIN_S = 60.0


def lease_for(timeout_s: float) -> float:
    """How long an attempt may hold an event: it may wait for a slot about as long as a run
    takes, then run for at most the timeout; plus a margin for the outcome to commit."""
    return 2 * timeout_s + LEASE_MARGIN_S


def timestamp_now() -> str:
    t = _dt.datetime.now(_dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def embed(payload: bytes) -> Any:
    """A payload inside a record: as JSON when it is JSON, else as text."""
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        return payload.decode("utf-8", "replace")


def invocation_record(
    *,
    request_id: str,
    function_arn: str,
    condition: str,
    invoke_count: int,
    request_payload: bytes,
    executed_version: str | None,
    function_error: str | None,
    response_payload: bytes | None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": timestamp_now(),
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": embed(request_payload),
    }
    if executed_version is not None:
        context: dict[str, Any] = {"statusCode": 200, "executedVersion": executed_version}
        if function_error:
            context["functionError"] = function_error
        record["responseContext"] = context
    if response_payload is not None:
        record["responsePayload"] = embed(response_payload)
    return record


def error_message(response_payload: bytes | None, default: str) -> str:
    """The message a dead-letter message carries: the function's errorMessage when it has one."""
    found = embed(response_payload) if response_payload else None
    if isinstance(found, dict) and isinstance(found.get("errorMessage"), str):
        text = str(found["errorMessage"])
    elif isinstance(found, str) and found:
        text = found
    else:
        text = default
    return text.encode()[:ERROR_MESSAGE_MAX].decode("utf-8", "ignore")


class Destinations:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def record_to(self, arn: str, region: str, record: dict[str, Any]) -> Delivery | None:
        body = json.dumps(record, separators=(",", ":"))
        kind = destination_kind(arn)
        if kind == "sqs":
            return QueueMessage(arn, body)
        if kind == "lambda":
            try:
                ref = parse_function_ref(arn)
                cfg = self.registry.resolve(ref.region or region, ref, None)
            except (ResourceNotFoundException, InvalidParameterValueException):
                log.warning("destination %s does not exist; record dropped", arn)
                return None
            return NewEvent(
                request_id=str(uuid.uuid4()),
                region=cfg.region,
                function_name=cfg.name,
                qualifier=ref.qualifier,
                payload=body.encode(),
                lease_s=lease_for(cfg.timeout_s),
            )
        log.warning("Lamina cannot deliver to %s (%s); record dropped", arn, kind)
        return None

    def dead_letter(
        self, arn: str, request_id: str, payload: bytes, message: str, error_code: int = 200
    ) -> Delivery | None:
        if destination_kind(arn) != "sqs":
            log.warning("Lamina cannot deliver dead letters to %s; event dropped", arn)
            return None
        return QueueMessage(
            arn,
            payload.decode("utf-8", "replace") or "{}",
            {
                "RequestID": {"DataType": "String", "StringValue": request_id},
                "ErrorCode": {"DataType": "Number", "StringValue": str(error_code)},
                "ErrorMessage": {"DataType": "String", "StringValue": message or "Unknown"},
            },
        )
