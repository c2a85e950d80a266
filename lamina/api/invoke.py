"""Invoke (and the deprecated InvokeAsync): the wire side of the invoke path."""

from __future__ import annotations

import json
from functools import lru_cache

from lamina.api.http import Request, Response, Router, empty, json_error_reason, json_response
from lamina.control.model import FunctionConfig
from lamina.control.names import FunctionRef, merge_qualifier, parse_function_ref
from lamina.errors import (
    InvalidParameterValueException,
    InvalidRequestContentException,
    RequestTooLargeException,
)
from lamina.invoke.async_worker import AsyncWorker
from lamina.invoke.dispatcher import Dispatcher, decode_client_context

SYNC_PAYLOAD_MAX = 6 * 1024 * 1024  # 6 MB request and response (AWS)
ASYNC_PAYLOAD_MAX = 1024 * 1024  # 1 MB for Event invocations (AWS, since 2025)
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")


def _non_numeric(name: str) -> None:
    """NaN and Infinity are not JSON: Lambda's parser refuses them, and so would a Node runtime."""
    raise ValueError(f"Non-standard token '{name}': NaN and Infinity are not JSON numbers")


# Integers are checked, not converted: a number of more than 4,300 digits is JSON (Lambda takes
# it), but Python's int() refuses it.
_DECODER = json.JSONDecoder(parse_int=len, parse_constant=_non_numeric)


@lru_cache(maxsize=4096)
def _ref(name: str) -> FunctionRef:
    return parse_function_ref(name)


def check_payload(payload: bytes, limit: int) -> bytes:
    """Lambda takes only JSON payloads, within the size limit of the invocation type."""
    if len(payload) > limit:
        raise RequestTooLargeException(
            f"Request must be smaller than {limit} bytes for the Invoke operation"
        )
    if not payload:
        return b"{}"
    try:
        # UTF-8 text straight to the decoder (json.loads would sniff the encoding first: it
        # cost as much as the rest of the checks); anything else as json.loads takes it.
        _DECODER.decode(payload.decode())
    except (ValueError, RecursionError):
        pass
    else:
        return payload
    try:
        json.loads(payload, parse_int=len, parse_constant=_non_numeric)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise InvalidRequestContentException(
            "Could not parse request body into json: Could not parse payload into json: "
            + json_error_reason(exc)
        ) from exc
    return payload


class InvokeAPI:
    def __init__(self, dispatcher: Dispatcher, async_worker: AsyncWorker) -> None:
        self.dispatcher = dispatcher
        self.async_worker = async_worker

    def mount(self, router: Router) -> None:
        router.add("POST", "/2015-03-31/functions/{name}/invocations", self.invoke)
        router.add("POST", "/2014-11-13/functions/{name}/invoke-async", self.invoke_async)
        router.add("POST", "/2014-11-13/functions/{name}/invoke-async/", self.invoke_async)

    async def invoke(self, req: Request) -> Response:
        ref = _ref(req.params["name"])
        qualifier = merge_qualifier(ref, req.query_one("Qualifier"))
        cfg = self.dispatcher.resolve(req.region, ref, qualifier)
        headers = req.headers
        invocation_type = headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type not in INVOCATION_TYPES:
            raise InvalidParameterValueException(
                f"1 validation error detected: Value '{invocation_type}' at 'invocationType' failed "
                "to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
            )
        log_type = headers.get("x-amz-log-type", "None")
        if log_type not in ("None", "Tail"):
            raise InvalidParameterValueException(
                f"1 validation error detected: Value '{log_type}' at 'logType' failed to satisfy "
                "constraint: Member must satisfy enum value set: [None, Tail]"
            )
        invoked_arn = cfg.arn if qualifier is None else f"{cfg.arn}:{qualifier}"
        if invocation_type == "Event":
            payload = check_payload(req.body, ASYNC_PAYLOAD_MAX)
            await self._accept(cfg, qualifier, payload, req.request_id)
            return empty(202)
        payload = check_payload(req.body, SYNC_PAYLOAD_MAX)
        client_context = decode_client_context(headers.get("x-amz-client-context"))
        if invocation_type == "DryRun":
            return empty(204)
        result = await self.dispatcher.invoke(
            cfg,
            payload,
            invoked_arn=invoked_arn,
            log_tail=log_type == "Tail",
            client_context=client_context,
            trace_id=headers.get("x-amzn-trace-id"),
            request_id=req.request_id,
        )
        out = [("X-Amz-Executed-Version", result.executed_version)]
        if result.function_error:
            out.append(("X-Amz-Function-Error", result.function_error))
        if result.log_tail is not None:
            out.append(("X-Amz-Log-Result", result.log_tail))
        return Response(200, result.payload, out, result.content_type)

    async def invoke_async(self, req: Request) -> Response:
        ref = _ref(req.params["name"])
        cfg = self.dispatcher.resolve(req.region, ref, ref.qualifier)
        payload = check_payload(req.body, ASYNC_PAYLOAD_MAX)
        await self._accept(cfg, ref.qualifier, payload, req.request_id)
        return json_response({"Status": 202}, 202)

    async def _accept(
        self,
        cfg: FunctionConfig,
        qualifier: str | None,
        payload: bytes,
        request_id: str,
    ) -> None:
        """An Event invocation is durable (committed) before its 202 is sent."""
        await self.async_worker.submit(cfg, qualifier, payload, request_id=request_id)
