"""The Runtime API (2018-06-01) server an environment's runtime talks to.

One small listener per environment on 127.0.0.1 (AWS_LAMBDA_RUNTIME_API carries only host:port,
so the port is what tells environments apart). HTTP parsing is httptools, as in uvicorn; the
protocol keeps the connection alive and answers `/next` only when an invocation is assigned.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import httptools

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100  # what the runtime may post (AWS: 6,291,556 bytes)
MAX_STREAM_BYTES = 200 * 1024 * 1024  # a response in the streaming mode (AWS: 200 MB)

_INVOCATION_RE = re.compile(rb"^/2018-06-01/runtime/invocation/([^/]+)/(response|error)$")


@dataclass(frozen=True, slots=True)
class NextEvent:
    """What `/next` returns: the Lambda-Runtime-* headers and the payload."""

    headers: list[tuple[str, str]]
    payload: bytes


class RuntimeAPIHandler(Protocol):
    def next_invocation(self, deliver: Callable[[NextEvent], bool]) -> None:
        """The runtime waits for its next event: `deliver` answers it (now, or later); it
        returns False when the connection that asked is gone (the event was not sent)."""
        ...

    def event_delivered(self) -> None: ...
    def invocation_response(self, request_id: str, body: bytes, headers: dict[str, str]) -> int: ...
    def invocation_error(self, request_id: str, body: bytes, headers: dict[str, str]) -> int: ...
    def init_error(self, body: bytes, headers: dict[str, str]) -> int: ...
    def response_too_large(self, request_id: str) -> None: ...
    def stream_started(
        self, request_id: str, headers: dict[str, str]
    ) -> Callable[[bytes], None] | None: ...


class RuntimeAPIServer:
    def __init__(self, handler: RuntimeAPIHandler) -> None:
        self.handler = handler
        self._server: asyncio.Server | None = None
        self._protocols: set[_RuntimeProtocol] = set()
        self.port = 0

    async def start(self, host: str = "127.0.0.1") -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _RuntimeProtocol(self), host, 0, backlog=8, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for proto in list(self._protocols):
            proto.close()


_STATUS_TEXT = {
    200: b"OK",
    202: b"Accepted",
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    413: b"Request Entity Too Large",
    500: b"Internal Server Error",
}


_ACCEPTED = (
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n"
    b'{"status":"OK"}'
)


def _error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


class _RuntimeProtocol(asyncio.Protocol):
    def __init__(self, server: RuntimeAPIServer) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.body_size = 0
        self.waiting = False  # a `GET /next` is not answered yet
        # The `202` for a response post, held back while a pipelined `GET /next` follows it:
        # it goes out in one write with the next event (or at the end of this read otherwise).
        self.held = b""
        # A response posted in the streaming mode goes to `sink` chunk by chunk, unbuffered.
        self.sink: Callable[[bytes], None] | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.server._protocols.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._protocols.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._send(400, _error_body("InvalidRequest", "Malformed HTTP request"))
            self.close()
            return
        if self.held and not self.waiting:
            # No `GET /next` came with the post (a runtime that does not pipeline): answer now.
            self._write(b"")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.raw_headers = []
        self.headers = {}
        self.body = []
        self.body_size = 0
        self.sink = None

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.parser.get_method() == b"GET":  # `/next` and `/ping` read no header
            return
        self.headers = {
            n.decode("latin-1").lower(): v.decode("latin-1") for n, v in self.raw_headers
        }
        # curl (a shell bootstrap's usual client) asks before posting a large body, and waits
        # a second for an answer if none comes.
        if self.headers.get("expect", "").lower() == "100-continue":
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if self.headers.get("lambda-runtime-function-response-mode", "").lower() == "streaming":
            m = _INVOCATION_RE.match(self.url.split(b"?", 1)[0])
            if m is not None and m.group(2) == b"response" and self.parser.get_method() == b"POST":
                self.sink = self.server.handler.stream_started(
                    m.group(1).decode("latin-1"), self.headers
                )

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.sink is not None:
            if self.body_size <= MAX_STREAM_BYTES:
                self.sink(body)
        elif self.body_size <= MAX_RESPONSE_BYTES:
            self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        path = self.url.split(b"?", 1)[0]
        handler = self.server.handler
        if method == b"GET" and path == b"/2018-06-01/runtime/invocation/next":
            self.waiting = True
            handler.next_invocation(self._deliver)
            return
        if method == b"POST":
            m = _INVOCATION_RE.match(path)
            if m is not None:
                request_id = m.group(1).decode("latin-1")
                limit = MAX_STREAM_BYTES if self.sink is not None else MAX_RESPONSE_BYTES
                if self.body_size > limit:
                    handler.response_too_large(request_id)
                    self._send(
                        413,
                        _error_body(
                            "RequestEntityTooLarge",
                            f"Exceeded maximum allowed payload size ({limit} bytes).",
                        ),
                    )
                    return
                body = b"".join(self.body)
                if m.group(2) == b"response":
                    status = handler.invocation_response(request_id, body, self.headers)
                else:
                    status = handler.invocation_error(request_id, body, self.headers)
                self._answer(status, hold=True)
                return
            if path == b"/2018-06-01/runtime/init/error":
                self._answer(handler.init_error(b"".join(self.body), self.headers))
                return
        if method == b"GET" and path == b"/ping":
            self._send(200, b"pong")
            return
        self._send(
            404, _error_body("NotFound", f"Unknown Runtime API path: {path.decode('latin-1')}")
        )

    def _answer(self, status: int, *, hold: bool = False) -> None:
        if status == 202:
            if hold:
                # The runtime waits for this answer and then for its next event: one write of
                # both wakes it once, not twice, and the invocation's caller is answered first.
                self.held += _ACCEPTED
                return
            self._send(202, b'{"status":"OK"}')
        elif status == 400:
            self._send(400, _error_body("InvalidRequestID", "Invalid request ID"))
        else:
            self._send(
                403, _error_body("InvalidStateTransition", "State transition is not allowed")
            )

    def _deliver(self, event: NextEvent) -> bool:
        """Answer the pending `/next` with an event, at once (no loop turn in between)."""
        self.waiting = False
        if self.transport is None or self.transport.is_closing():
            return False
        head = [b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"]
        for name, value in event.headers:
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        head.append(f"Content-Length: {len(event.payload)}\r\n\r\n".encode("latin-1"))
        head.append(event.payload)
        self._write(b"".join(head))
        self.server.handler.event_delivered()
        return True

    def _send(self, status: int, body: bytes) -> None:
        reason = _STATUS_TEXT.get(status, b"")
        self._write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (status, reason, len(body), body)
        )

    def _write(self, data: bytes) -> None:
        """Every answer goes through here: a held `202` goes first (answers keep request order)."""
        if self.held:
            data, self.held = self.held + data, b""
        if self.transport is not None and data:
            self.transport.write(data)
