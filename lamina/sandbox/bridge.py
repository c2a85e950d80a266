"""Host side of an isolated environment's Runtime API path: a Unix socket -> 127.0.0.1:port.

The environment sits in an empty network namespace and cannot reach the host's loopback; its
relay (relay.py) reaches this Unix socket, bind-mounted into the environment, and each
connection is forwarded here to the Runtime API listener. One thread per bridge, select-driven.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

from lamina.sandbox.relay import forward


class Bridge:
    def __init__(self, path: Path, target: tuple[str, int]) -> None:
        self.path = path
        self.target = target
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        os.chmod(path, 0o666)  # the sandbox's uid connects; the directory keeps others out
        self._listener.listen(16)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name=f"bridge-{path.name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _serve(self) -> None:
        def connect() -> socket.socket:
            up = socket.create_connection(self.target, timeout=5)
            up.settimeout(None)
            return up

        try:
            forward(self._listener, connect, self._wake_r)
        finally:
            self._listener.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
            with contextlib.suppress(OSError):
                self.path.unlink()
