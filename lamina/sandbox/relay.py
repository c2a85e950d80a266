"""Runs inside an isolated-network environment: TCP 127.0.0.1:PORT -> a Unix socket, then the runtime.

`python -I -S relay.py SOCKET PORT -- COMMAND...`: listens on 127.0.0.1:PORT in the environment's
empty network namespace, starts COMMAND, and forwards every connection to SOCKET (bind-mounted
from the host, where Lamina forwards it to the Runtime API). Exits as COMMAND exits. Standard
library only; imports nothing of Lamina (the host side, bridge.py, reuses `forward`).
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import sys
from collections.abc import Callable


def forward(listener: socket.socket, connect: Callable[[], socket.socket], stop_fd: int) -> None:
    """Pipe each connection accepted on `listener` to a fresh `connect()`, both ways, until
    `stop_fd` becomes readable; then close every connection. One thread, select-driven."""
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(stop_fd, selectors.EVENT_READ, "stop")
    peers: dict[socket.socket, socket.socket] = {}
    try:
        while True:
            for key, _ in sel.select():
                if key.data == "stop":
                    return
                if key.data == "accept":
                    conn, _ = listener.accept()
                    try:
                        up = connect()
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
        sel.close()


def main(argv: list[str]) -> None:
    path, port = argv[0], int(argv[1])
    command = argv[3:]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
    child = os.fork()
    if child == 0:
        listener.close()
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)

    def connect() -> socket.socket:
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            up.connect(path)
        except OSError:
            up.close()
            raise
        return up

    forward(listener, connect, os.pidfd_open(child))  # returns when the runtime exits
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


if __name__ == "__main__":
    main(sys.argv[1:])
