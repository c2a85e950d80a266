"""The baseline for bench/invoke.py: a plain ASGI app that calls a Lambda-style handler in-process.

This is what a user could write instead of deploying to Lamina: read the body, `json.loads` it,
call `handler(event, None)`, `json.dumps` the result. It is served by uvicorn with the same
choices Lamina makes (uvloop, httptools, no access log, no Server/Date headers), in one process.

    python bench/baseline_app.py --handler-dir DIR [--handler app.handler]

binds 127.0.0.1 on a free port and prints "baseline listening on http://127.0.0.1:PORT".
"""

from __future__ import annotations

import argparse
import importlib
import json
import socket
import sys
from collections.abc import Callable
from typing import Any


def make_app(handler: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        event = json.loads(body) if body else {}
        payload = json.dumps(handler(event, None)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handler-dir", required=True)
    parser.add_argument("--handler", default="app.handler")
    args = parser.parse_args()
    sys.path.insert(0, args.handler_dir)
    module_name, _, function_name = args.handler.rpartition(".")
    handler = getattr(importlib.import_module(module_name), function_name)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    print(f"baseline listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(
        make_app(handler),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
