"""InvokeWithResponseStream: the result as an AWS event stream (PayloadChunk..., InvokeComplete).

Lamina runs the invocation through the same path as Invoke and sends the result once it is
complete, cut into PayloadChunk events; the closing InvokeComplete event carries the function's
error, if any, and the log tail. botocore reads it as it reads AWS's stream.
"""

from __future__ import annotations

import binascii
import json
import struct

from lamina.api.http import Request, Response, Router, empty
from lamina.api.invoke import SYNC_PAYLOAD_MAX, check_payload
from lamina.control.names import merge_qualifier, parse_function_ref
from lamina.errors import InvalidParameterValueException
from lamina.invoke.dispatcher import Dispatcher, decode_client_context

EVENT_STREAM = "application/vnd.amazon.eventstream"
CHUNK_BYTES = 64 * 1024


def event_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message of the AWS event stream encoding (string headers only)."""
    encoded = b"".join(
        struct.pack("!B", len(name)) + name.encode() + struct.pack("!BH", 7, len(value)) + value
        for name, value in ((n, v.encode()) for n, v in headers.items())
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", binascii.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack("!I", binascii.crc32(message))


def payload_chunk(data: bytes) -> bytes:
    return event_message(
        {
            ":event-type": "PayloadChunk",
            ":content-type": "application/octet-stream",
            ":message-type": "event",
        },
        data,
    )


def invoke_complete(
    error_code: str | None, error_details: str | None, log_result: str | None
) -> bytes:
    body: dict[str, str] = {}
    if error_code is not None:
        body["ErrorCode"] = error_code
    if error_details is not None:
        body["ErrorDetails"] = error_details
    if log_result is not None:
        body["LogResult"] = log_result
    return event_message(
        {
            ":event-type": "InvokeComplete",
            ":content-type": "application/json",
            ":message-type": "event",
        },
        json.dumps(body).encode(),
    )


class InvokeStreamAPI:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def mount(self, router: Router) -> None:
        router.add(
            "POST", "/2021-11-15/functions/{name}/response-streaming-invocations", self.invoke
        )

    async def invoke(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"])
        qualifier = merge_qualifier(ref, req.query_one("Qualifier"))
        target = self.dispatcher.target(req.region, ref, qualifier)
        headers = req.headers
        invocation_type = headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type not in ("RequestResponse", "DryRun"):
            raise InvalidParameterValueException(
                f"1 validation error detected: Value '{invocation_type}' at 'invocationType' "
                "failed to satisfy constraint: Member must satisfy enum value set: "
                "[RequestResponse, DryRun]"
            )
        log_type = headers.get("x-amz-log-type", "None")
        if log_type not in ("None", "Tail"):
            raise InvalidParameterValueException(
                f"1 validation error detected: Value '{log_type}' at 'logType' failed to satisfy "
                "constraint: Member must satisfy enum value set: [None, Tail]"
            )
        payload = check_payload(req.body, SYNC_PAYLOAD_MAX)
        client_context = decode_client_context(headers.get("x-amz-client-context"))
        if invocation_type == "DryRun":
            return empty(204)
        result = await self.dispatcher.invoke(
            target.config,
            payload,
            invoked_arn=target.invoked_arn,
            log_tail=log_type == "Tail",
            client_context=client_context,
            trace_id=headers.get("x-amzn-trace-id"),
            request_id=req.request_id,
        )
        if result.function_error:
            events = [
                invoke_complete(
                    result.function_error,
                    result.payload.decode("utf-8", "replace"),
                    result.log_tail,
                )
            ]
        else:
            data = result.payload
            events = [
                payload_chunk(data[i : i + CHUNK_BYTES]) for i in range(0, len(data), CHUNK_BYTES)
            ]
            events.append(invoke_complete(None, None, result.log_tail))
        return Response(
            200,
            b"".join(events),
            [("X-Amz-Executed-Version", result.executed_version)],
            EVENT_STREAM,
        )
