"""Raw HTTP to the server (stdlib only), for what boto3 cannot send: malformed bodies, odd routes."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit


def raw(
    endpoint: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout_s: float = 60.0,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: (status, lower-cased headers, body)."""
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def raw_json(
    endpoint: str, method: str, path: str, data: Any = None
) -> tuple[int, dict[str, str], Any]:
    body = None if data is None else json.dumps(data).encode()
    headers = {"Content-Type": "application/json"} if body is not None else {}
    status, out_headers, out = raw(endpoint, method, path, body, headers)
    return status, out_headers, json.loads(out) if out else None
