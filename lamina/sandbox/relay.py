"""Runs inside an isolated-network environment: TCP 127.0.0.1:PORT -> a Unix socket, then the runtime.

`python -I -S relay.py SOCKET PORT -- COMMAND...`: listens on 127.0.0.1:PORT in the environment's
empty network namespace, starts COMMAND, and forwards every connection to SOCKET (bind-mounted
from the host, where Lamina forwards it to the Runtime API). Exits as COMMAND exits. Standard
library only; imports nothing of Lamina.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import sys


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
    pidfd = os.pidfd_open(child)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(pidfd, selectors.EVENT_READ, "exit")
    peers: dict[socket.socket, socket.socket] = {}
    while True:
        for key, _ in sel.select():
            if key.data == "exit":
                _, status = os.waitpid(child, 0)
                if os.WIFSIGNALED(status):
                    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
                    os.kill(os.getpid(), os.WTERMSIG(status))
                os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)
            if key.data == "accept":
                conn, _ = listener.accept()
                up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    up.connect(path)
                except OSError:
                    conn.close()
                    up.close()
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


if __name__ == "__main__":
    main(sys.argv[1:])
