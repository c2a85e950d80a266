"""A small ASGI request/response pair and a router that matches the raw (still encoded) path.

Lambda's paths carry ARNs with percent-encoded `:` and `$`; routes are matched on the raw path and
each segment is decoded after matching, as botocore's encoding requires.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from lamina.errors import InvalidRequestContentException

JSON = "application/json"


def new_request_id() -> str:
    """A random (version 4) UUID in its text form, as str(uuid.uuid4()) gives, made without the
    UUID object or a system call (this runs on every request; request ids need to be unique,
    not secret)."""
    h = f"{_IDS.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


_VARIANT = "89ab"
_IDS = random.Random()  # its own generator (seeded from the OS): nobody else's seed() reaches it


@dataclass(slots=True)
class Request:
    method: str
    raw_path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client: str
    request_id: str = field(default_factory=new_request_id)
    params: dict[str, str] = field(default_factory=dict)
    region: str = ""
    host: str = ""

    def query_one(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except (ValueError, RecursionError) as exc:
            # RecursionError: nesting deeper than the decoder goes (AWS's parser has a depth
            # limit too, and answers this same 400).
            raise InvalidRequestContentException(
                f"Could not parse request body into json: {json_error_reason(exc)}"
            ) from exc
        if not isinstance(data, dict):
            raise InvalidRequestContentException(
                "Could not parse request body into json: expected an object"
            )
        return data


def json_error_reason(exc: Exception) -> str:
    """The parser's message, or one for nesting deeper than the decoder goes."""
    if isinstance(exc, RecursionError):
        return "the JSON nesting is too deep"
    return str(exc)


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = JSON


def json_response(
    data: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()
) -> Response:
    return Response(status, json.dumps(data, separators=(",", ":")).encode(), list(headers))


def empty(status: int = 204) -> Response:
    return Response(status, b"", [], None)


Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    query: tuple[tuple[str, str | None], ...] = ()  # (name, value or None = must be present)


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []
        # (method, raw path, query) -> match: the regex list is walked once per distinct path
        # (an invoke of one function repeats the same path; walking ~30 patterns cost as much
        # as the rest of the request's routing, profiled).
        self._cache: dict[tuple[object, ...], tuple[Handler, dict[str, str]] | bool | None] = {}

    def add(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        query: dict[str, str | None] | None = None,
    ) -> None:
        """`path` uses `{name}` for one path segment."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
        self.routes.append(
            Route(method, re.compile(f"^{regex}$"), handler, tuple((query or {}).items()))
        )
        self._cache.clear()
        # Routes that need a query parameter are tried before the ones that do not.
        self.routes.sort(key=lambda r: -len(r.query))

    def match(
        self, method: str, raw_path: str, query: dict[str, list[str]]
    ) -> tuple[Handler, dict[str, str]] | bool | None:
        """The handler and decoded params; False when the path exists under another method."""
        key = (method, raw_path, *((k, *v) for k, v in query.items()))
        found = self._cache.get(key)
        if found is None and key not in self._cache:
            found = self._match(method, raw_path, query)
            if len(self._cache) >= 4096:
                self._cache.clear()
            self._cache[key] = found
        if isinstance(found, tuple):
            return found[0], dict(found[1])  # the caller's own copy
        return found

    def _match(
        self, method: str, raw_path: str, query: dict[str, list[str]]
    ) -> tuple[Handler, dict[str, str]] | bool | None:
        path_matched = False
        for route in self.routes:
            m = route.pattern.match(raw_path)
            if m is None:
                continue
            if not all(
                name in query and (value is None or value in query[name])
                for name, value in route.query
            ):
                continue
            if route.method != method:
                path_matched = True
                continue
            return route.handler, {k: unquote(v) for k, v in m.groupdict().items()}
        return False if path_matched else None


def parse_query(raw: bytes) -> dict[str, list[str]]:
    return parse_qs(raw.decode("latin-1"), keep_blank_values=True) if raw else {}
