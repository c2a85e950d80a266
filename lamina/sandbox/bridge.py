"""Host side of an isolated environment's Runtime API path: a Unix socket -> 127.0.0.1:port.

The environment sits in an empty network namespace and cannot reach the host's loopback; its
relay (relay.py) reaches this Unix socket, bind-mounted into the environment, and each
connection is forwarded here to the Runtime API listener. One thread per bridge, select-driven.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import threading
from pathlib import Path


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
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, "accept")
        sel.register(self._wake_r, selectors.EVENT_READ, "stop")
        peers: dict[socket.socket, socket.socket] = {}
        try:
            while True:
                for key, _ in sel.select():
                    if key.data == "stop":
                        return
                    if key.data == "accept":
                        conn, _ = self._listener.accept()
                        try:
                            up = socket.create_connection(self.target, timeout=5)
                            up.settimeout(None)
                        except OSError:
                            conn.close()
                            continue
                        peers[conn], peers[up] = up, conn
                        sel.register(conn, selectors.EVENT_READ, "pump")
                        sel.register(up, selectors.EVENT_READ, "pump")
                        continue
                    src = key.fileobj
                    assert isinstance(src, socket.socket)
                    dst = peers.get(src)
                    try:
                        data = src.recv(65536)
                        if data and dst is not None:
                            dst.sendall(data)
                    except OSError:
                        data = b""
                    if not data:
                        for s in (src, dst):
                            if s is not None and s in peers:
                                sel.unregister(s)
                                peers.pop(s, None)
                                s.close()
        finally:
            for s in peers:
                s.close()
            self._listener.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
            with contextlib.suppress(OSError):
                self.path.unlink()
