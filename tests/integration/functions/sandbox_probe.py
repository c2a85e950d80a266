"""Probes what an environment can see and do; each event names one action."""

import ctypes
import errno
import os
import socket
import threading
import time

_counter = 0
_thread = None


def _count():
    global _counter
    while True:
        _counter += 1
        time.sleep(0.005)


def _err(exc):
    return errno.errorcode.get(exc.errno or 0, str(exc)) if isinstance(exc, OSError) else repr(exc)


def handler(event, context):
    action = event["action"]
    if action == "read":
        out = {}
        for path in event["paths"]:
            try:
                if os.path.isdir(path):
                    os.listdir(path)
                else:
                    with open(path, "rb") as f:
                        f.read(1)
                out[path] = "ok"
            except OSError as exc:
                out[path] = _err(exc)
        return out
    if action == "write":
        try:
            with open(event["path"], "w") as f:
                f.write(event.get("text", "x"))
            return "ok"
        except OSError as exc:
            return _err(exc)
    if action == "identity":
        status = {}
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                status[key] = value.strip()
        return {
            "uid": os.getuid(),
            "gid": os.getgid(),
            "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
            "CapEff": status.get("CapEff"),
            "NoNewPrivs": status.get("NoNewPrivs"),
            "Seccomp": status.get("Seccomp"),
        }
    if action == "syscalls":
        libc = ctypes.CDLL(None, use_errno=True)
        out = {}
        for name, call in (
            ("ptrace", lambda: libc.ptrace(0, 0, None, None)),  # PTRACE_TRACEME
            ("mount", lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)),
            ("unshare", lambda: libc.unshare(0x10000000)),  # CLONE_NEWUSER
            ("keyctl", lambda: libc.syscall(250, 0, 0, 0, 0, 0)),  # keyctl on x86_64
        ):
            ctypes.set_errno(0)
            rc = call()
            out[name] = "ok" if rc == 0 else errno.errorcode.get(ctypes.get_errno(), "?")
        return out
    if action == "fill":
        written, error = 0, None
        chunk = b"\0" * (1 << 20)
        try:
            with open(event["path"], "ab") as f:
                for _ in range(event["mb"]):
                    f.write(chunk)
                    f.flush()
                    written += 1
                os.fsync(f.fileno())
        except OSError as exc:
            error = _err(exc)
        return {"written_mb": written, "error": error}
    if action == "alloc":
        blocks = []
        for _ in range(event["mb"] // 8):
            blocks.append(bytearray(8 << 20))
        return len(blocks) * 8
    if action == "counter":
        global _thread
        if _thread is None:
            _thread = threading.Thread(target=_count, daemon=True)
            _thread.start()
        before = _counter
        time.sleep(event.get("sleep", 0))
        return {"at_start": before, "during": _counter - before}
    if action == "connect":
        try:
            with socket.create_connection(("127.0.0.1", event["port"]), timeout=2):
                return "connected"
        except OSError as exc:
            return _err(exc)
    if action == "daemon":
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv("/bin/sleep", ["sleep", event["marker"]])
            os._exit(0)
        time.sleep(60)
        return "not reached"
    if action == "forkbomb":
        if os.fork() == 0:
            while True:
                try:
                    os.fork()
                except OSError:
                    time.sleep(0.01)
        time.sleep(60)
        return "not reached"
    return "ok"
