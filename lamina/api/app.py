"""The ASGI application: read the request, route it, turn LambdaErrors into Lambda's wire errors.

Lambda's REST routes are matched by method and raw path; the JSON protocols of the other services
(CloudWatch Logs, SQS, EventBridge) are posted to `/` and told apart by X-Amz-Target; requests
signed for S3 go to the S3 gateway (api/s3.py) before any of these.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from lamina.api.http import Request, Response, Router, parse_query
from lamina.api.s3 import is_s3_request
from lamina.errors import LambdaError, RequestTooLargeException, ServiceException

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
TargetHandler = Callable[[Request, str], Awaitable[Response]]
# Serves a request addressed to a function URL: (scope, receive, send, lower-cased headers).
UrlGateway = Callable[[Scope, Receive, Send, dict[str, str]], Awaitable[None]]

# CreateFunction's own limit on AWS; larger bodies are refused before they are read.
MAX_REQUEST_BYTES = 70_167_211

_CREDENTIAL_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/")


def region_of(headers: dict[str, str], default: str) -> str:
    """The region of a SigV4-signed request is the one in its credential scope."""
    auth = headers.get("authorization")
    if auth:
        m = _CREDENTIAL_RE.search(auth)
        if m:
            return m.group(1)
    return default


def error_response(error: LambdaError, request_id: str) -> Response:
    headers = [("x-amzn-ErrorType", error.code), *error.headers().items()]
    return Response(
        error.status,
        json.dumps(error.body()).encode(),
        headers,
    )


class LaminaApp:
    def __init__(self, router: Router, *, default_region: str) -> None:
        self.router = router
        self.default_region = default_region
        self.targets: dict[str, TargetHandler] = {}  # X-Amz-Target prefix -> handler
        self.url_gateway: UrlGateway | None = None
        self.s3_gateway: UrlGateway | None = None  # requests signed for S3 (api/s3.py)
        self.startup: list[Callable[[], Awaitable[None]]] = []
        self.shutdown: list[Callable[[], Awaitable[None]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for hook in self.startup:
                        await hook()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for hook in self.shutdown:
                    try:
                        await hook()
                    except Exception:
                        log.exception("shutdown step failed")
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        raw_path = scope.get("raw_path") or scope["path"].encode()
        host = headers.get("host", "")
        # Function URLs: `<url-id>.lambda-url.<region>.localhost` or `/lambda-url/<url-id>/`.
        # Two substring tests, so that API requests pay (next to) nothing for them.
        if (
            ".lambda-url." in host or raw_path.startswith(b"/lambda-url/")
        ) and self.url_gateway is not None:
            await self.url_gateway(scope, receive, send, headers)
            return
        if self.s3_gateway is not None and is_s3_request(headers, scope.get("query_string", b"")):
            await self.s3_gateway(scope, receive, send, headers)
            return
        client = scope.get("client") or ("", 0)
        request = Request(
            method=scope["method"],
            raw_path=raw_path.decode("latin-1"),
            query=parse_query(scope.get("query_string", b"")),
            headers=headers,
            body=b"",
            client=client[0],
        )
        request.region = region_of(headers, self.default_region)
        request.host = host
        try:
            request.body = await _read_body(receive, headers)
            response = await self._dispatch(request)
        except LambdaError as error:
            response = error_response(error, request.request_id)
        except Exception:
            log.exception("request %s %s failed", request.method, request.raw_path)
            response = error_response(
                ServiceException("Internal server error."), request.request_id
            )
        await _send(send, response, request.request_id)

    async def _dispatch(self, request: Request) -> Response:
        target = request.headers.get("x-amz-target")
        if target and request.method == "POST" and request.raw_path == "/":
            prefix, _, operation = target.partition(".")
            handler = self.targets.get(prefix)
            if handler is not None:
                return await handler(request, operation)
        found = self.router.match(request.method, request.raw_path, request.query)
        if not isinstance(found, tuple):
            return _unknown_operation(request, method_mismatch=found is False)
        handler_fn, params = found
        request.params = params
        return await handler_fn(request)


def _unknown_operation(request: Request, *, method_mismatch: bool) -> Response:
    status = 405 if method_mismatch else 404
    body = {"Type": "User", "message": f"No operation matches {request.method} {request.raw_path}"}
    return Response(
        status, json.dumps(body).encode(), [("x-amzn-ErrorType", "UnknownOperationException")]
    )


async def _read_body(receive: Receive, headers: dict[str, str]) -> bytes:
    declared = headers.get("content-length")
    if declared is not None and declared.isdecimal() and int(declared) > MAX_REQUEST_BYTES:
        raise RequestTooLargeException(
            f"Request must be smaller than {MAX_REQUEST_BYTES} bytes for the operation"
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > MAX_REQUEST_BYTES:
                raise RequestTooLargeException(
                    f"Request must be smaller than {MAX_REQUEST_BYTES} bytes for the operation"
                )
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _send(send: Send, response: Response, request_id: str) -> None:
    raw_headers = [(b"x-amzn-requestid", request_id.encode())]
    if response.content_type is not None:
        raw_headers.append((b"content-type", response.content_type.encode("latin-1")))
    raw_headers.append((b"content-length", str(len(response.body)).encode()))
    raw_headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers)
    await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": response.body})
