"""A real web framework behind a function URL: FastAPI wrapped by Mangum, browsed over HTTP.

The function's dependencies (fastapi, starlette, pydantic with its compiled core, mangum, ...)
are vendored into its zip from this test environment's site-packages, as `pip install -t` would.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from packaging.requirements import Requirement

from tests.integration.conftest import FUNCTIONS, CreateFunction

pytest.importorskip("fastapi")
pytest.importorskip("mangum")


def _closure(*roots: str) -> list[metadata.Distribution]:
    """The installed distributions `roots` need (their requirements without extras, recursively)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        dist = metadata.distribution(name)
        seen[key] = dist
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(seen.values())


def webapp_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(FUNCTIONS / "webapp" / "app.py", "app.py")
        for dist in _closure("fastapi", "mangum"):
            for file in dist.files or []:
                if file.parts[0] == ".." or "__pycache__" in file.parts:
                    continue  # scripts in bin/, caches
                zf.write(Path(str(dist.locate_file(file))), str(file))
    return buf.getvalue()


class Browser:
    """An httpx client on the URL's host-based address: it connects to 127.0.0.1 and sends the
    URL's Host (glibc does not resolve *.localhost here; browsers and curl do)."""

    def __init__(self, function_url: str) -> None:
        parts = urlsplit(function_url)
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{parts.port}",
            headers={"host": parts.netloc},
            timeout=120,
        )

    def __enter__(self) -> httpx.Client:
        return self.client

    def __exit__(self, *_: object) -> None:
        self.client.close()


@pytest.fixture(scope="module")
def webapp_code() -> bytes:
    return webapp_zip()


@pytest.fixture
def webapp_url(
    lambda_client: Any, create_function: CreateFunction, webapp_code: bytes
) -> Iterator[str]:
    name = create_function(
        zip_bytes=webapp_code, handler="app.handler", MemorySize=512, Timeout=30
    )["FunctionName"]
    yield lambda_client.create_function_url_config(
        FunctionName=name,
        AuthType="NONE",
        Cors={"AllowOrigins": ["https://ui.example"], "AllowMethods": ["GET", "POST"]},
    )["FunctionUrl"]


def test_fastapi_app_over_its_url(webapp_url: str, endpoint: str) -> None:
    with Browser(webapp_url) as web:
        resp = web.get("/")
        assert resp.status_code == 200 and resp.json() == {"app": "lamina-webapp"}

        resp = web.post("/items/7", json={"name": "lamp", "price": 12.5})
        assert resp.status_code == 201
        assert resp.json() == {"id": 7, "name": "lamp", "price": 12.5}
        # The same warm environment keeps the app's state.
        resp = web.get("/items/7", params={"fields": "name,price"})
        assert resp.json() == {"name": "lamp", "price": 12.5}

        # Query strings with repeated keys, percent-encoding and spaces.
        resp = web.get("/search?tag=a&tag=b%2Fc&q=hello%20world")
        assert resp.json() == {"q": "hello world", "tags": ["a", "b/c"]}

        # Errors the framework answers itself.
        resp = web.get("/items/99")
        assert resp.status_code == 404 and resp.json() == {"detail": "no such item"}
        resp = web.post("/items/8", json={"name": "no price"})
        assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "price"]
        resp = web.get("/items/not-a-number")
        assert resp.status_code == 422

        # An exception in a route: Starlette's error middleware answers 500 and Mangum returns
        # that as the function's result (an exception escaping the handler would be a 502).
        resp = web.get("/boom")
        assert resp.status_code == 500 and resp.text == "Internal Server Error"

        # Binary bodies both ways.
        data = os.urandom(100_000)
        resp = web.post(
            "/upload", content=data, headers={"content-type": "application/octet-stream"}
        )
        assert resp.status_code == 200
        assert resp.headers["x-sha256"] == hashlib.sha256(data).hexdigest()
        assert resp.content == data[::-1]

        # CORS from the URL's configuration.
        resp = web.options(
            "/items/7",
            headers={"origin": "https://ui.example", "access-control-request-method": "POST"},
        )
        assert resp.status_code == 200
        assert resp.headers["access-control-allow-origin"] == "https://ui.example"
        assert resp.headers["access-control-allow-methods"] == "GET,POST"
        resp = web.get("/", headers={"origin": "https://ui.example"})
        assert resp.headers["access-control-allow-origin"] == "https://ui.example"

    # Cookies: set by the app, kept by the client's cookie jar, sent back (path-based address).
    url_id = urlsplit(webapp_url).hostname.split(".")[0]  # type: ignore[union-attr]
    with httpx.Client(base_url=f"{endpoint}/lambda-url/{url_id}", timeout=120) as web:
        resp = web.post("/login")
        assert resp.status_code == 200
        assert sorted(c.split(";")[0] for c in resp.headers.get_list("set-cookie")) == [
            "session=s3cr3t",
            "theme=dark",
        ]
        assert web.get("/me").json() == {"session": "s3cr3t", "theme": "dark"}


def test_fastapi_app_with_urllib_and_curl(webapp_url: str) -> None:
    parts = urlsplit(webapp_url)
    conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=120)
    try:
        conn.request("GET", "/items/1", headers={"Host": parts.netloc})
        resp = conn.getresponse()
        assert resp.status == 404 and json.loads(resp.read()) == {"detail": "no such item"}
    finally:
        conn.close()
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            '{"name": "mug", "price": 4}',
            "-w",
            "\n%{http_code}",
            webapp_url + "items/3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    body, _, code = out.rpartition("\n")
    assert code == "201" and json.loads(body) == {"id": 3, "name": "mug", "price": 4.0}
