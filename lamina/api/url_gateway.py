"""Serves function URLs: an HTTP request becomes a payload format 2.0 event, the result an answer.

Two addresses reach the same URL:
  http://<url-id>.lambda-url.<region>.localhost:<port>/<path>   (host-based, as AWS)
  http://<lamina host>:<port>/lambda-url/<url-id>/<path>         (path-based, for clients
                                                                   that cannot pick a host name)
The app hands a request here only when one of those shapes matched (see api/app.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from lamina.api.function_urls import url_host
from lamina.control.function_urls import Cors, FunctionUrlConfig, FunctionUrls
from lamina.control.names import FunctionRef
from lamina.errors import LambdaError
from lamina.invoke.dispatcher import Dispatcher, InvokeResult, new_trace_id

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PATH_PREFIX = "/lambda-url/"
MAX_EVENT_BYTES = 6 * 1024 * 1024  # the synchronous invoke limit applies to the event
STREAM_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
PRELUDE_END = b"\0" * 8
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/javascript",
    "application/xml",
    "application/x-www-form-urlencoded",
    "application/graphql",
)


class _Refused(Exception):
    """An answer the gateway gives itself, without the function."""

    def __init__(self, status: int, error_type: str, message: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.body = json.dumps({"Message": message}, separators=(",", ":")).encode()


class UrlGateway:
    def __init__(self, urls: FunctionUrls, dispatcher: Dispatcher) -> None:
        self.urls = urls
        self.dispatcher = dispatcher

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        request_id = str(uuid.uuid4())
        try:
            cfg, raw_path = self._find(scope, headers.get("host", ""))
            if cfg.auth_type == "AWS_IAM":
                # Lamina does not verify SigV4 yet; AWS refuses what it cannot authenticate.
                raise _Refused(403, "AccessDeniedException", "Forbidden")
            origin = headers.get("origin")
            if (
                cfg.cors is not None
                and scope["method"] == "OPTIONS"
                and origin is not None
                and "access-control-request-method" in headers
            ):
                await _send(send, 200, preflight_headers(cfg.cors, origin), b"", request_id)
                return
            cors = None  # None: no CORS configured; [] configured, nothing for this origin
            if cfg.cors is not None:
                cors = response_cors_headers(cfg.cors, origin) if origin is not None else []
            body = await _read_body(receive, headers)
            trace_id = new_trace_id()
            event = build_event(cfg, scope, raw_path, body, request_id, trace_id)
            payload = json.dumps(event, separators=(",", ":")).encode()
            if len(payload) > MAX_EVENT_BYTES:
                raise _Refused(
                    413,
                    "RequestTooLargeException",
                    f"Request must be smaller than {MAX_EVENT_BYTES} bytes for the Invoke operation",
                )
            if cfg.streaming:
                writer = _StreamWriter(send, request_id, cors)
                status, out_headers, out_body = await self._stream(
                    cfg, payload, trace_id, request_id, writer
                )
                if writer.started:
                    await writer.end()
                    return
            else:
                result = await self._invoke(cfg, payload, trace_id, request_id, None)
                if result.function_error:
                    status, out_headers, out_body = _internal_error()
                else:
                    status, out_headers, out_body = buffered_response(result.payload)
            out_headers = with_cors(out_headers, cors)
        except _Refused as refused:
            status, out_body = refused.status, refused.body
            out_headers = [
                ("content-type", "application/json"),
                ("x-amzn-errortype", refused.error_type),
            ]
        await _send(send, status, out_headers, out_body, request_id)

    def _find(self, scope: Scope, host: str) -> tuple[FunctionUrlConfig, str]:
        """The URL configuration a request addresses and the function's view of its path."""
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if ".lambda-url." in name:
            url_id, _, rest = name.partition(".lambda-url.")
            region = rest.split(".", 1)[0]
        else:
            url_id, _, tail = raw_path[len(PATH_PREFIX) :].partition("/")
            raw_path = "/" + tail
            region = None
        cfg = self.urls.by_url_id(url_id.lower())
        if cfg is None or (region is not None and region != cfg.region):
            raise _Refused(403, "AccessDeniedException", None)
        return cfg, raw_path

    async def _invoke(
        self,
        cfg: FunctionUrlConfig,
        payload: bytes,
        trace_id: str,
        request_id: str,
        stream: _Chunks | None,
    ) -> InvokeResult:
        try:
            target = self.dispatcher.target(
                cfg.region, FunctionRef(cfg.function_name, None, None, None), cfg.qualifier
            )
            return await self.dispatcher.invoke(
                target.config,
                payload,
                invoked_arn=target.invoked_arn,
                trace_id=trace_id,
                request_id=request_id,
                stream=stream,
            )
        except LambdaError as error:
            raise _Refused(error.status, error.code, error.message) from error

    async def _stream(
        self,
        cfg: FunctionUrlConfig,
        payload: bytes,
        trace_id: str,
        request_id: str,
        writer: _StreamWriter,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """RESPONSE_STREAM: chunks are passed on as the runtime posts them. Returns the answer
        to send when nothing was streamed (a buffered response, an error before the stream)."""
        chunks = _Chunks()
        task = asyncio.ensure_future(self._invoke(cfg, payload, trace_id, request_id, chunks))
        while True:
            getter = asyncio.ensure_future(chunks.queue.get())
            done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            await writer.write(getter.result(), chunks.content_type or "")
        while not chunks.queue.empty():
            await writer.write(chunks.queue.get_nowait(), chunks.content_type or "")
        try:
            result = task.result()
        except _Refused:
            if writer.started:
                return 200, [], b""  # the answer is under way: it just ends
            raise
        if writer.started:
            return 200, [], b""
        if result.function_error:
            return _internal_error()
        if chunks.content_type is not None:  # streamed, but no complete prelude or no chunk
            return stream_response(writer.pending, chunks.content_type)
        return stream_response(result.payload, result.content_type)


class _Chunks:
    """The runtime's streamed response, as the environment hands it over (a ResponseStream)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.content_type: str | None = None

    def start(self, content_type: str) -> None:
        self.content_type = content_type

    def write(self, chunk: bytes) -> None:
        self.queue.put_nowait(chunk)


class _StreamWriter:
    """Sends a streamed response to the client: the head once known, then each chunk."""

    def __init__(self, send: Send, request_id: str, cors: list[tuple[str, str]] | None) -> None:
        self.send = send
        self.request_id = request_id
        self.cors = cors
        self.started = False
        self.ended = False
        self.pending = b""  # a prelude still waiting for its separator

    async def write(self, chunk: bytes, content_type: str) -> None:
        if self.ended:
            return
        if not self.started:
            if content_type.split(";", 1)[0].strip() == STREAM_CONTENT_TYPE:
                self.pending += chunk
                if PRELUDE_END not in self.pending:
                    return
                parsed = split_prelude(self.pending)
                self.pending = b""
                if parsed is None:
                    status, headers, body = _internal_error()
                    await self._start(status, headers)
                    await self.send({"type": "http.response.body", "body": body})
                    self.ended = True
                    return
                status, headers, chunk = parsed
            else:
                status, headers = (
                    200,
                    [("content-type", content_type or "application/octet-stream")],
                )
            await self._start(status, headers)
        if chunk:
            await self.send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def end(self) -> None:
        if not self.ended:
            self.ended = True
            await self.send({"type": "http.response.body", "body": b""})

    async def _start(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.started = True
        raw = [(b"x-amzn-requestid", self.request_id.encode())]
        raw.extend(
            (name.encode("latin-1"), value.encode("latin-1", "replace"))
            for name, value in with_cors(headers, self.cors)
            if name not in ("content-length", "transfer-encoding", "connection")
        )
        await self.send({"type": "http.response.start", "status": status, "headers": raw})


def with_cors(
    headers: list[tuple[str, str]], cors: list[tuple[str, str]] | None
) -> list[tuple[str, str]]:
    """The configuration's CORS headers replace the function's (None: no CORS configured)."""
    if cors is None:
        return headers
    return [h for h in headers if not h[0].startswith("access-control-")] + cors


# -- request -> event ----------------------------------------------------------------------------


def build_event(
    cfg: FunctionUrlConfig,
    scope: Scope,
    raw_path: str,
    body: bytes,
    request_id: str,
    trace_id: str,
) -> dict[str, Any]:
    """The payload format 2.0 event, as Lambda builds it for a function URL."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
        elif name in headers:
            headers[name] += "," + value
        else:
            headers[name] = value
    client = scope.get("client") or ("", 0)
    server = scope.get("server") or ("", 0)
    headers["x-amzn-trace-id"] = trace_id
    headers["x-forwarded-for"] = client[0]
    headers["x-forwarded-proto"] = scope.get("scheme", "http")
    headers["x-forwarded-port"] = str(server[1])
    raw_query = scope.get("query_string", b"").decode("latin-1")
    now = time.time()
    t = time.gmtime(now)
    domain = url_host(cfg.url_id, cfg.region)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if raw_query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    event["requestContext"] = {
        "accountId": "anonymous",  # what AWS reports for AuthType NONE
        "apiId": cfg.url_id,
        "domainName": domain,
        "domainPrefix": cfg.url_id,
        "http": {
            "method": scope["method"],
            "path": raw_path,
            "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
            "sourceIp": client[0],
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": (
            f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
        ),
        "timeEpoch": int(now * 1000),
    }
    if body:
        text = _as_text(body, headers.get("content-type", ""))
        event["body"] = text if text is not None else base64.b64encode(body).decode()
        event["isBase64Encoded"] = text is None
    else:
        event["isBase64Encoded"] = False
    return event


def _as_text(body: bytes, content_type: str) -> str | None:
    """The body as text when it is a textual type (or untyped) and valid UTF-8; else None."""
    kind = content_type.split(";", 1)[0].strip().lower()
    textual = (
        not kind
        or kind.startswith(_TEXT_TYPES)
        or kind.endswith(("+json", "+xml"))
        or kind == "application/x-ndjson"
    )
    if not textual:
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


# -- result -> response --------------------------------------------------------------------------


def _internal_error() -> tuple[int, list[tuple[str, str]], bytes]:
    return 502, [("content-type", "application/json")], b"Internal Server Error"


def buffered_response(payload: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """A BUFFERED function's result: an HTTP-shaped object, or any other value as JSON."""
    try:
        result = json.loads(payload) if payload else None
    except (ValueError, RecursionError):
        return _internal_error()
    if isinstance(result, dict) and "statusCode" in result:
        try:
            return http_shaped(result)
        except (ValueError, TypeError, binascii.Error):
            return _internal_error()
    if isinstance(result, str):
        body = result.encode()
    else:
        body = json.dumps(result, separators=(",", ":"), ensure_ascii=False).encode()
    return 200, [("content-type", "application/json")], body


def http_shaped(result: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int | str):
        raise TypeError("statusCode")
    status = int(status)
    if not 100 <= status <= 599:
        raise ValueError("statusCode")
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((str(name).lower(), _header_value(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values if isinstance(values, list) else [values]:
            headers.append((str(name).lower(), _header_value(value)))
    headers.extend(("set-cookie", str(c)) for c in result.get("cookies") or ())
    if not any(name == "content-type" for name, _ in headers):
        headers.append(("content-type", "application/json"))
    body = result.get("body")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        data = json.dumps(body, separators=(",", ":")).encode()
    elif result.get("isBase64Encoded"):
        data = base64.b64decode(body, validate=True)
    else:
        data = body.encode()
    return status, headers, data


def stream_response(payload: bytes, content_type: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """A RESPONSE_STREAM function's result: the raw stream, or a JSON prelude, 8 NULs and the body."""
    if content_type.split(";", 1)[0].strip() != STREAM_CONTENT_TYPE:
        return 200, [("content-type", content_type or "application/octet-stream")], payload
    return split_prelude(payload) or _internal_error()


def split_prelude(data: bytes) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """Status, headers and the rest of an http-integration-response; None when malformed."""
    prelude, sep, body = data.partition(PRELUDE_END)
    if not sep:
        return None
    try:
        meta = json.loads(prelude)
        if not isinstance(meta, dict):
            return None
        status, headers, _ = http_shaped(
            {**meta, "statusCode": meta.get("statusCode", 200), "body": None}
        )
    except (ValueError, TypeError, RecursionError):
        return None
    return status, headers, body


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- CORS ----------------------------------------------------------------------------------------


def _allowed_origin(cors: Cors, origin: str) -> str | None:
    origins = cors.allow_origins or ()
    if "*" in origins:
        return origin if cors.allow_credentials else "*"  # browsers refuse "*" with credentials
    lowered = origin.lower()
    return origin if any(o.lower() == lowered for o in origins) else None


def response_cors_headers(cors: Cors, origin: str) -> list[tuple[str, str]]:
    allowed = _allowed_origin(cors, origin)
    if allowed is None:
        return []
    out = [("access-control-allow-origin", allowed)]
    if allowed != "*":
        out.append(("vary", "Origin"))
    if cors.allow_credentials:
        out.append(("access-control-allow-credentials", "true"))
    if cors.expose_headers:
        out.append(("access-control-expose-headers", ",".join(cors.expose_headers)))
    return out


def preflight_headers(cors: Cors, origin: str) -> list[tuple[str, str]]:
    """The answer to a preflight OPTIONS, from the configuration alone (the function is not run)."""
    out = response_cors_headers(cors, origin)
    if not out:
        return out
    if cors.allow_methods:
        out.append(("access-control-allow-methods", ",".join(cors.allow_methods)))
    if cors.allow_headers:
        out.append(("access-control-allow-headers", ",".join(cors.allow_headers)))
    if cors.max_age_s is not None:
        out.append(("access-control-max-age", str(cors.max_age_s)))
    return out


# -- I/O -----------------------------------------------------------------------------------------


async def _read_body(receive: Receive, headers: dict[str, str]) -> bytes:
    too_large = _Refused(
        413,
        "RequestTooLargeException",
        f"Request must be smaller than {MAX_EVENT_BYTES} bytes for the Invoke operation",
    )
    declared = headers.get("content-length")
    if declared is not None and declared.isdecimal() and int(declared) > MAX_EVENT_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > MAX_EVENT_BYTES:
                raise too_large
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(
    send: Send, status: int, headers: list[tuple[str, str]], body: bytes, request_id: str
) -> None:
    raw = [(b"x-amzn-requestid", request_id.encode())]
    raw.extend(
        (name.encode("latin-1"), value.encode("latin-1", "replace"))
        for name, value in headers
        if name not in ("content-length", "transfer-encoding", "connection")
    )
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
