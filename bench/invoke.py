#!/usr/bin/env python3
"""Lamina's invoke benchmark: warm latency, cold starts, throughput and burst, each beside a baseline.

    python bench/invoke.py            # full run (about 1-2 minutes), rewrites docs/performance.md
    python bench/invoke.py --quick    # smoke run (well under 40 s), few iterations
    python bench/invoke.py --profile DIR   # also record py-spy profiles of the server

Everything runs on this machine in one go: a `lamina server` on a free port with a temporary data
dir, and a plain ASGI app (bench/baseline_app.py) serving the same handler. The client is a raw
HTTP/1.1 keep-alive client sending the bytes boto3 sends for Invoke, so that the figures measure
the servers, not botocore. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ctypes
import datetime as dt
import io
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DOC = REPO / "docs" / "performance.md"
BEGIN_MARK = "<!-- BEGIN GENERATED RESULTS (bench/invoke.py rewrites this part on every run) -->"
END_MARK = "<!-- END GENERATED RESULTS -->"

PYTHON = sys.executable
RUNTIME = f"python{sys.version_info[0]}.{sys.version_info[1]}"

HANDLERS = {
    "noop": "def handler(event, context):\n    return None\n",
    "boto3": "import boto3  # noqa: F401\n\n\ndef handler(event, context):\n    return None\n",
    "sleep": "import time\n\n\ndef handler(event, context):\n    time.sleep(0.1)\n    return None\n",
}

# What boto3 1.x sends for lambda.invoke(FunctionName=NAME, Payload=b"{}"), header for header
# (captured from botocore); the signature is a placeholder of the same length, since Lamina does
# not check signatures yet.
_USER_AGENT = (
    "Boto3/1.44.5 md/Botocore#1.44.5 ua/2.1 os/linux#6.1 md/arch#x86_64 lang/python#3.11.7 "
    "md/pyimpl#CPython m/N,e,E,Z,b cfg/retry-mode#standard Botocore/1.44.5"
)
_AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/lambda/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
)
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_INIT_DURATION = re.compile(r"Init Duration: ([\d.]+) ms")

PR_SET_PDEATHSIG = 1
_interrupted: list[str] = []  # set by the signal handler; a phase that fails after it re-raises


def invoke_request(host: str, name: str, *, tail: bool = False, body: bytes = b"{}") -> bytes:
    lines = [
        f"POST /2015-03-31/functions/{name}/invocations HTTP/1.1",
        f"Host: {host}",
        "Accept-Encoding: identity",
        f"User-Agent: {_USER_AGENT}",
        "X-Amz-Date: 20260101T000000Z",
        f"Authorization: {_AUTH}",
        "amz-sdk-invocation-id: 00000000-0000-4000-8000-000000000000",
        "amz-sdk-request: attempt=1; max=5",
    ]
    if tail:
        lines.append("X-Amz-Log-Type: Tail")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class BenchError(Exception):
    pass


# -- a raw HTTP/1.1 keep-alive client ------------------------------------------------------------


class Conn:
    """One kept-alive connection; Content-Length framed responses only (both servers send them)."""

    def __init__(self, host: str, port: int, timeout: float = 60.0) -> None:
        self.host = f"{host}:{port}"
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""

    def close(self) -> None:
        self.sock.close()

    def call(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        self.sock.sendall(request)
        buf = self._buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf += self._recv()
        head = buf[:end].decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" not in headers:
            raise BenchError(f"response without Content-Length: {head[0]}")
        start = end + 4
        stop = start + int(headers["content-length"])
        while len(buf) < stop:
            buf += self._recv()
        self._buf = buf[stop:]
        return status, headers, buf[start:stop]

    def _recv(self) -> bytes:
        chunk = self.sock.recv(262144)
        if not chunk:
            raise BenchError("the server closed the connection")
        return chunk

    def api(self, method: str, path: str, doc: dict[str, Any] | None = None) -> Any:
        """A control-plane call with a JSON body; raises on an error status."""
        body = json.dumps(doc).encode() if doc is not None else b""
        request = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        status, headers, payload = self.call(request)
        if status >= 300:
            raise BenchError(
                f"{method} {path} -> {status} {headers.get('x-amzn-errortype', '')}: "
                f"{payload[:300]!r}"
            )
        return json.loads(payload) if payload else None


# -- server processes ----------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the benchmark dies, however it dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _proc_start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat.rsplit(b")", 1)[1].split()[19].decode()


def descendants(root: int) -> list[int]:
    """Every live descendant of `root` (environments run in their own sessions, not its group)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def cpu_split(server_pid: int) -> tuple[float, float, float]:
    """CPU seconds so far of (the server, its environments' processes, this benchmark)."""
    runtimes = sum(cpu_seconds(pid) for pid in descendants(server_pid))
    return cpu_seconds(server_pid), runtimes, time.process_time()


class ServerProcess:
    """A server started in its own session, output to a file, stopped (tree and all) on close."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        listening: re.Pattern[str],
        cwd: Path | None = None,
    ):
        self.cwd = cwd
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.listening = listening
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = ""
        self.port = 0

    def start(self, timeout_s: float = 30.0) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
                cwd=self.cwd,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            m = self.listening.search(text)
            if m:
                self.host, port = m.group(1).rsplit(":", 1)
                self.port = int(port)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise BenchError(f"{self.name} did not start:\n{self.log_path.read_text(errors='replace')}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def connect(self) -> Conn:
        return Conn(self.host, self.port)

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        family = [(pid, _proc_start_time(pid)) for pid in descendants(proc.pid)]
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for pid, started in family:  # whatever outlived its parent (same pid, same start time)
            if started is not None and _proc_start_time(pid) == started:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)


# -- statistics ----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an unsorted list."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def dist(values_s: list[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in values_s]
    return {
        "n": len(ms),
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": max(ms) if ms else float("nan"),
    }


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


# -- function set-up -----------------------------------------------------------------------------


def zip_of(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("app.py", date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        zf.writestr(info, source)
    return buf.getvalue()


def create_function(conn: Conn, name: str, kind: str, timeout_s: int = 30) -> None:
    conn.api(
        "POST",
        "/2015-03-31/functions",
        {
            "FunctionName": name,
            "Runtime": RUNTIME,
            "Role": "arn:aws:iam::000000000000:role/lamina-bench",
            "Handler": "app.handler",
            "Code": {"ZipFile": base64.b64encode(zip_of(HANDLERS[kind])).decode()},
            "Timeout": timeout_s,
            "MemorySize": 128,
        },
    )
    wait_settled(conn, name)


def wait_settled(conn: Conn, name: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        cfg = conn.api("GET", f"/2015-03-31/functions/{name}/configuration")
        if cfg.get("State") == "Active" and cfg.get("LastUpdateStatus") in (None, "Successful"):
            return
        time.sleep(0.005)
    raise BenchError(f"function {name} did not become Active/Successful")


def retire_environments(conn: Conn, name: str, serial: int) -> None:
    """A configuration change retires the function's environments: the next call is cold."""
    conn.api(
        "PUT",
        f"/2015-03-31/functions/{name}/configuration",
        {"Environment": {"Variables": {"BENCH_SERIAL": str(serial)}}},
    )
    wait_settled(conn, name)


def init_duration_ms(headers: dict[str, str]) -> float | None:
    tail = headers.get("x-amz-log-result")
    if not tail:
        return None
    m = _INIT_DURATION.search(base64.b64decode(tail).decode("utf-8", "replace"))
    return float(m.group(1)) if m else None


def write_handler_dir(root: Path, kind: str) -> Path:
    path = root / f"handler-{kind}"
    path.mkdir(parents=True, exist_ok=True)
    (path / "app.py").write_text(HANDLERS[kind])
    # Compile once, as a deployed function would have been run before.
    subprocess.run([PYTHON, "-c", "import app"], cwd=path, check=True, timeout=60)
    return path


def timed_run(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, timeout=60, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


# -- load generation (asyncio protocols, one request in flight per connection) -------------------


class _Client(asyncio.Protocol):
    def __init__(self, request: bytes, deadline: float, sink: list[float], errors: list[int]):
        self.request = request
        self.deadline = deadline
        self.sink = sink
        self.errors = errors
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buf = b""
        self.need = -1
        self.status = 0
        self.sent = 0.0
        self.headers = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(BenchError(f"connection lost: {exc}"))

    def send(self) -> None:
        assert self.transport is not None
        self.buf = b""
        self.need = -1
        self.sent = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.headers = self.buf[: end + 2]
            m = _CONTENT_LENGTH.search(self.headers)
            if m is None:
                self.done.set_exception(BenchError("response without Content-Length"))
                return
            self.status = int(self.buf[9:12])
            self.need = end + 4 + int(m.group(1))
        if len(self.buf) < self.need:
            return
        now = time.perf_counter()
        self.sink.append(now - self.sent)
        if self.status != 200:
            self.errors.append(self.status)
        if now < self.deadline:
            self.send()
        elif not self.done.done():
            self.done.set_result(None)


def _run_async(coro: Any) -> Any:
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


async def _load(
    host: str, port: int, request: bytes, clients: int, seconds: float
) -> tuple[int, float, list[float], list[int]]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors: list[int] = []
    deadline = time.perf_counter() + 3600
    protos = []
    for _ in range(clients):
        _, proto = await loop.create_connection(
            lambda: _Client(request, deadline, latencies, errors), host, port
        )
        protos.append(proto)
    started = time.perf_counter()
    for proto in protos:
        proto.deadline = started + seconds
        proto.send()
    await asyncio.wait_for(asyncio.gather(*(p.done for p in protos)), seconds + 60)
    elapsed = time.perf_counter() - started
    for proto in protos:
        assert proto.transport is not None
        proto.transport.close()
    return len(latencies), elapsed, latencies, errors


def load(
    server: ServerProcess, request: bytes, clients: int, seconds: float
) -> tuple[int, float, list[float], list[int]]:
    return _run_async(_load(server.host, server.port, request, clients, seconds))


async def _burst(host: str, port: int, request: bytes, n: int) -> tuple[float, list[_Client]]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors: list[int] = []
    protos = []
    for _ in range(n):
        _, proto = await loop.create_connection(
            lambda: _Client(request, 0.0, latencies, errors), host, port
        )
        protos.append(proto)
    started = time.perf_counter()
    for proto in protos:
        proto.send()
    await asyncio.wait_for(asyncio.gather(*(p.done for p in protos)), 120)
    elapsed = time.perf_counter() - started
    for proto in protos:
        assert proto.transport is not None
        proto.transport.close()
    return elapsed, protos


# -- profiling -----------------------------------------------------------------------------------


class Profiler:
    """py-spy record on a pid for the length of a `with` block (raw collapsed stacks)."""

    def __init__(self, out_dir: Path | None) -> None:
        self.out_dir = out_dir
        self.py_spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
        if out_dir is not None and not Path(self.py_spy).exists():
            print("  (py-spy not found: pip install py-spy; profiling skipped)")
            self.out_dir = None

    @contextlib.contextmanager
    def record(self, pid: int, name: str) -> Iterator[None]:
        if self.out_dir is None:
            yield
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        out = self.out_dir / f"{name}.txt"
        proc = subprocess.Popen(
            [
                self.py_spy,
                "record",
                "--pid",
                str(pid),
                "--rate",
                "500",
                "--format",
                "raw",
                "--nonblocking",
                "-o",
                str(out),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        time.sleep(0.5)  # let it attach
        try:
            yield
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                _, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            if out.exists():
                summary = summarise_profile(out)
                (self.out_dir / f"{name}-summary.txt").write_text(summary)
                print(f"  profile: {out} (summary in {name}-summary.txt)")
            else:
                print(f"  py-spy wrote nothing: {err.decode(errors='replace')[-500:]}")


def summarise_profile(path: Path, top: int = 30) -> str:
    """Self and inclusive sample shares per function, per process, from py-spy's raw format."""
    per_proc: dict[str, dict[str, Any]] = {}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        # With --subprocesses each stack starts with its process chain (parent;child;...).
        owners = [f for f in frames if f.startswith("process ")]
        proc = "server"
        if owners and "bootstrap.py" in owners[-1]:
            proc = "runtime (bootstrap.py)"
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        entry = per_proc.setdefault(proc, {"total": 0, "self": {}, "incl": {}})
        entry["total"] += count
        leaf = _short(frames[-1])
        entry["self"][leaf] = entry["self"].get(leaf, 0) + count
        for name in {_short(f) for f in frames}:
            entry["incl"][name] = entry["incl"].get(name, 0) + count
    out = []
    for proc, entry in sorted(per_proc.items(), key=lambda kv: -kv[1]["total"]):
        total = entry["total"]
        out.append(f"== {proc}: {total} samples (non-idle)")
        for title, table in (("self", entry["self"]), ("inclusive", entry["incl"])):
            out.append(f"-- top {title}")
            for name, count in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
                out.append(f"{100 * count / total:6.1f}%  {count:7d}  {name}")
        out.append("")
    return "\n".join(out)


def _short(frame: str) -> str:
    """`func (path/to/file.py:123)` -> `func (file.py)`: merge lines of one function."""
    m = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if not m:
        return frame
    path = m.group(2)
    for marker in ("site-packages/", "lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = path.split("/lamina/", 1)[-1] if "/lamina/" in path else os.path.basename(path)
    return f"{m.group(1)} ({path})"


# -- the benchmark ------------------------------------------------------------------------------


PHASES = frozenset(("warm", "throughput", "cold", "boto3", "new-version", "burst", "density"))


@dataclass
class Plan:
    quick: bool
    warm_calls: int
    warm_warmup: int
    warm_block: int
    cold_starts: int
    boto3_starts: int
    new_version_starts: int
    tput_seconds: float
    tput_rounds: int
    tput_clients: int
    tput_warmup: float
    burst: int

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if quick:
            return cls(True, 300, 100, 150, 10, 5, 3, 1.0, 1, 16, 1.5, 100)
        return cls(False, 2000, 300, 250, 30, 12, 8, 2.5, 2, 16, 2.0, 100)


@dataclass
class Results:
    facts: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def machine_facts(quick: bool) -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = float("nan")
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as f:
        mem_gb = int(f.readline().split()[1]) / 1024 / 1024
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "lamina"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick (smoke run: few iterations, do not quote)" if quick else "full",
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(mem_gb, 1),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()} ({PYTHON})",
        "commit": (commit or "?") + (" + uncommitted changes in lamina/" if dirty else ""),
        "loadavg_start": os.getloadavg()[0],
    }


class Bench:
    def __init__(
        self,
        plan: Plan,
        work: Path,
        profiler: Profiler,
        lamina_src: Path | None = None,
        *,
        phases: frozenset[str] = PHASES,
        server_args: tuple[str, ...] = (),
    ) -> None:
        self.lamina_src = lamina_src
        self.phases = phases
        self.server_args = server_args
        self.plan = plan
        self.work = work
        self.profiler = profiler
        self.results = Results()
        self.lamina: ServerProcess | None = None
        self.baseline: ServerProcess | None = None
        self.dirs: dict[str, Path] = {}

    def say(self, text: str) -> None:
        print(text, flush=True)

    def phase(self, name: str, fn: Callable[[], None]) -> None:
        """Run one phase; a failure is recorded and the others still run."""
        started = time.monotonic()
        self.say(f"[{name}]")
        try:
            fn()
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            if _interrupted:
                raise KeyboardInterrupt(_interrupted[0]) from exc
            self.results.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            self.say(f"  FAILED: {type(exc).__name__}: {exc}")
        self.say(f"  ({time.monotonic() - started:.1f} s)")

    def run(self) -> Results:
        plan = self.plan
        self.results.facts = machine_facts(plan.quick)
        for kind in HANDLERS:
            self.dirs[kind] = write_handler_dir(self.work, kind)
        self.lamina = ServerProcess(
            "lamina server",
            [
                PYTHON,
                "-m",
                "lamina",
                "server",
                "--port",
                "0",
                "--data-dir",
                str(self.work / "data"),
                "--account-concurrency",
                "1000",
                "--log-level",
                "warning",
                *self.server_args,
            ],
            self.work / "lamina.log",
            re.compile(r"Lamina is listening on http://(\S+)"),
            cwd=self.lamina_src,
        )
        self.baseline = ServerProcess(
            "baseline ASGI app",
            [PYTHON, str(BENCH_DIR / "baseline_app.py"), "--handler-dir", str(self.dirs["noop"])],
            self.work / "baseline.log",
            re.compile(r"baseline listening on http://(\S+)"),
        )
        try:
            self.lamina.start()
            self.baseline.start()
            m = None
            for _ in range(100):  # the banner's sandbox line follows the listening line
                banner = self.lamina.log_path.read_text(errors="replace")
                m = re.search(r"^\s*sandbox:\s*(.+)$", banner, re.MULTILINE)
                if m:
                    break
                time.sleep(0.02)
            self.results.facts["sandbox"] = m.group(1).strip() if m else "not reported"
            if self.lamina_src is not None:
                self.results.facts["commit"] = f"source tree {self.lamina_src}"
            with contextlib.closing(self.lamina.connect()) as conn:
                for name, kind, timeout in (
                    ("bench-noop", "noop", 30),
                    ("bench-cold", "noop", 30),
                    ("bench-cold-new", "noop", 30),
                    ("bench-boto3", "boto3", 30),
                    ("bench-sleep", "sleep", 30),
                ):
                    create_function(conn, name, kind, timeout)
            for key, title, fn in (
                ("warm", "warm latency, c=1", self.warm),
                ("throughput", f"throughput, c={plan.tput_clients}", self.throughput),
                ("cold", "cold start, trivial handler", self.cold),
                ("boto3", "cold start, handler importing boto3", self.cold_boto3),
                (
                    "new-version",
                    "cold start of a new version (template made first)",
                    self.cold_new_version,
                ),
                (
                    "burst",
                    f"burst, {plan.burst} concurrent calls to a cold 100 ms function",
                    self.burst,
                ),
                ("density", "density (PSS of the idle environments)", self.density),
            ):
                if key in self.phases:
                    self.phase(title, fn)
        finally:
            self.results.facts["loadavg_end"] = os.getloadavg()[0]
            for server in (self.baseline, self.lamina):
                if server is not None:
                    server.stop()
        return self.results

    # 1. warm latency
    def warm(self) -> None:
        plan = self.plan
        assert self.lamina and self.baseline
        lam = self.lamina.connect()
        base = self.baseline.connect()
        try:
            lam_req = invoke_request(lam.host, "bench-noop")
            base_req = invoke_request(base.host, "bench-noop")
            for conn, req in ((lam, lam_req), (base, base_req)):
                for _ in range(plan.warm_warmup):
                    status, _, body = conn.call(req)
                    if status != 200:
                        raise BenchError(f"warm-up call answered {status}: {body[:200]!r}")
            samples: dict[str, list[float]] = {"lamina": [], "baseline": []}
            cpu_before = (cpu_split(self.lamina.pid), cpu_seconds(self.baseline.pid))
            with self.profiler.record(self.lamina.pid, "warm-c1"):
                # Interleaved blocks, so that noise from the rest of the machine hits both alike.
                while len(samples["lamina"]) < plan.warm_calls:
                    for key, conn, req in (("lamina", lam, lam_req), ("baseline", base, base_req)):
                        sink = samples[key]
                        perf = time.perf_counter
                        for _ in range(plan.warm_block):
                            t0 = perf()
                            status, _, _ = conn.call(req)
                            sink.append(perf() - t0)
                            if status != 200:
                                raise BenchError(f"{key} answered {status}")
            cpu_after = (cpu_split(self.lamina.pid), cpu_seconds(self.baseline.pid))
        finally:
            lam.close()
            base.close()
        lamina, baseline = dist(samples["lamina"]), dist(samples["baseline"])
        n_lam, n_base = len(samples["lamina"]), len(samples["baseline"])
        lamina["cpu_us_per_call"] = {
            "server": 1e6 * (cpu_after[0][0] - cpu_before[0][0]) / n_lam,
            "runtimes": 1e6 * (cpu_after[0][1] - cpu_before[0][1]) / n_lam,
        }
        baseline["cpu_us_per_call"] = {
            "server": 1e6 * (cpu_after[1] - cpu_before[1]) / n_base,
            "runtimes": 0.0,
        }
        self.results.figures["warm"] = {"lamina": lamina, "baseline": baseline}
        self.say(
            f"  lamina   p50 {lamina['p50']:.3f} ms  p90 {lamina['p90']:.3f}  p99 {lamina['p99']:.3f}\n"
            f"  baseline p50 {baseline['p50']:.3f} ms  p90 {baseline['p90']:.3f}  p99 {baseline['p99']:.3f}\n"
            f"  CPU per call: lamina server {lamina['cpu_us_per_call']['server']:.0f} us + "
            f"runtime {lamina['cpu_us_per_call']['runtimes']:.0f} us; "
            f"baseline server {baseline['cpu_us_per_call']['server']:.0f} us"
        )

    # 4. throughput
    def throughput(self) -> None:
        plan = self.plan
        assert self.lamina and self.baseline
        servers = {"lamina": self.lamina, "baseline": self.baseline}
        acc: dict[str, dict[str, Any]] = {
            k: {"calls": 0, "seconds": 0.0, "lat": [], "errors": [], "cpu": [0.0, 0.0, 0.0]}
            for k in servers
        }
        for server in servers.values():  # warm-up: Lamina scales out to `clients` environments
            req = invoke_request(f"{server.host}:{server.port}", "bench-noop")
            load(server, req, plan.tput_clients, plan.tput_warmup)
        for round_no in range(plan.tput_rounds):
            for key, server in servers.items():
                req = invoke_request(f"{server.host}:{server.port}", "bench-noop")
                profiling = key == "lamina" and round_no == 0
                ctx = (
                    self.profiler.record(server.pid, f"throughput-c{plan.tput_clients}")
                    if profiling
                    else contextlib.nullcontext()
                )
                with ctx:
                    before = cpu_split(server.pid)
                    count, elapsed, lat, errors = load(
                        server, req, plan.tput_clients, plan.tput_seconds
                    )
                    after = cpu_split(server.pid)
                a = acc[key]
                a["calls"] += count
                a["seconds"] += elapsed
                a["lat"].extend(lat)
                a["errors"].extend(errors)
                for i in range(3):
                    a["cpu"][i] += after[i] - before[i]
        out = {}
        for key, a in acc.items():
            calls = a["calls"] or 1
            server_cpu, runtime_cpu, client_cpu = (1e6 * c / calls for c in a["cpu"])
            out[key] = {
                "rps": a["calls"] / a["seconds"] if a["seconds"] else float("nan"),
                "calls": a["calls"],
                "seconds": a["seconds"],
                "errors": len(a["errors"]),
                "latency": dist(a["lat"]),
                "cpu_us_per_call": {
                    "server": server_cpu,
                    "runtimes": runtime_cpu,
                    "client": client_cpu,
                },
            }
            self.say(
                f"  {key:8s} {out[key]['rps']:8.0f} inv/s  ({a['calls']} calls, "
                f"{len(a['errors'])} errors, p50 {out[key]['latency']['p50']:.2f} ms, "
                f"p99 {out[key]['latency']['p99']:.2f} ms); CPU per call: server "
                f"{server_cpu:.0f} us, runtimes {runtime_cpu:.0f} us, client {client_cpu:.0f} us"
            )
        self.results.figures["throughput"] = out

    # 2. and 3. cold starts
    def _cold(
        self,
        name: str,
        kind: str,
        n: int,
        baselines: dict[str, list[str]],
        *,
        new_version: bool = False,
    ) -> dict[str, Any]:
        """n cold starts. By default a scale-out from zero: the function's idle environments are
        stopped (POST /lamina/drain) and its template kept, so the call is a snapshot start.
        With `new_version`, a configuration change retires environments and template alike:
        the call starts a template first (what the first call after a deploy pays)."""
        assert self.lamina
        times: list[float] = []
        inits: list[float] = []
        not_cold = 0
        base_times: dict[str, list[float]] = {k: [] for k in baselines}
        cwd = self.dirs[kind]
        with (
            contextlib.closing(self.lamina.connect()) as conn,
            self.profiler.record(self.lamina.pid, f"cold-{name}"),
        ):
            req = invoke_request(conn.host, name, tail=True)
            if not new_version:
                conn.call(req)  # the template is made here, once (not counted)
            for i in range(n):
                if new_version:
                    retire_environments(conn, name, i)
                else:
                    conn.api("POST", f"/lamina/drain?FunctionName={name}")
                time.sleep(0.02)  # let the stopped environment's exit settle
                t0 = time.perf_counter()
                status, headers, body = conn.call(req)
                elapsed = time.perf_counter() - t0
                if status != 200 or "x-amz-function-error" in headers:
                    raise BenchError(f"cold invoke answered {status}: {body[:300]!r}")
                init = init_duration_ms(headers)
                if init is None:
                    not_cold += 1
                    continue
                times.append(elapsed)
                inits.append(init / 1000)
                for key, argv in baselines.items():
                    base_times[key].append(timed_run(argv, cwd))
        return {
            "lamina": dist(times),
            "init_duration": dist(inits),
            "not_cold": not_cold,
            "baselines": {k: dist(v) for k, v in base_times.items()},
        }

    def cold(self) -> None:
        out = self._cold(
            "bench-cold",
            "noop",
            self.plan.cold_starts,
            {
                "python -c 'import app'": [PYTHON, "-c", "import app"],
                "python -I -S -c 'import app'": [
                    PYTHON,
                    "-I",
                    "-S",
                    "-c",
                    "import sys; sys.path.insert(0, '.'); import app",
                ],
            },
        )
        self.results.figures["cold"] = out
        self._say_cold(out)

    def cold_new_version(self) -> None:
        out = self._cold(
            "bench-cold-new",
            "noop",
            self.plan.new_version_starts,
            {"python -c 'import app'": [PYTHON, "-c", "import app"]},
            new_version=True,
        )
        self.results.figures["cold_new_version"] = out
        self._say_cold(out)

    def cold_boto3(self) -> None:
        out = self._cold(
            "bench-boto3",
            "boto3",
            self.plan.boto3_starts,
            {"python -c 'import boto3'": [PYTHON, "-c", "import boto3"]},
        )
        self.results.figures["cold_boto3"] = out
        self._say_cold(out)

    def _say_cold(self, out: dict[str, Any]) -> None:
        lam, init = out["lamina"], out["init_duration"]
        self.say(
            f"  lamina        p50 {lam['p50']:7.1f} ms  p99 {lam['p99']:7.1f} ms  (n={lam['n']}, "
            f"Init Duration p50 {init['p50']:.1f} ms, not cold: {out['not_cold']})"
        )
        for key, d in out["baselines"].items():
            self.say(f"  {key:28s} p50 {d['p50']:7.1f} ms  p99 {d['p99']:7.1f} ms")

    # 5. burst
    def burst(self) -> None:
        assert self.lamina
        n = self.plan.burst
        req = invoke_request(f"{self.lamina.host}:{self.lamina.port}", "bench-sleep", tail=True)
        with self.profiler.record(self.lamina.pid, "burst"):
            elapsed, protos = _run_async(_burst(self.lamina.host, self.lamina.port, req, n))
        statuses = [p.status for p in protos]
        cold = 0
        for p in protos:
            m = re.search(rb"\r\nx-amz-log-result:[ \t]*(\S+)", p.headers, re.IGNORECASE)
            if m and b"Init Duration" in base64.b64decode(m.group(1)):
                cold += 1
        lat = dist(protos[0].sink)  # every client appends to the same list
        # The floor this could reach with fresh interpreters: n processes started together.
        argv = [PYTHON, "-c", "import app; app.handler({}, None)"]
        started = time.perf_counter()
        procs = [
            subprocess.Popen(argv, cwd=self.dirs["sleep"], stdin=subprocess.DEVNULL)
            for _ in range(n)
        ]
        try:
            for proc in procs:
                proc.wait(120)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        fresh = time.perf_counter() - started
        self.results.figures["burst"] = {
            "n": n,
            "seconds": elapsed,
            "ok": sum(1 for s in statuses if s == 200),
            "cold": cold,
            "fresh_processes_seconds": fresh,
            "latency": lat,
        }
        self.say(
            f"  lamina: all {n} done in {elapsed:.2f} s ({statuses.count(200)} ok, {cold} cold)\n"
            f"  {n} fresh interpreters running the handler in parallel: {fresh:.2f} s"
        )

    # 6. density
    def density(self) -> None:
        """PSS of everything Lamina runs for its environments (launchers, templates, forks),
        summed over the server's descendants and divided by the number of environments that
        /lamina/status reports: each environment carries its share of the templates."""
        assert self.lamina
        with contextlib.closing(self.lamina.connect()) as conn:
            totals = conn.api("GET", "/lamina/status")["Totals"]
        envs = int(totals["environments"])
        if envs == 0:
            raise BenchError("no environments alive")
        pss = uss = 0.0
        roles: dict[str, list[float]] = {}  # where the memory is: [processes, PSS MB]
        for pid in descendants(self.lamina.pid):
            if pid == self.lamina.pid:
                continue
            fields = _smaps_rollup(pid)
            pss += fields.get("Pss", 0) / 1024
            uss += (fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)) / 1024
            role = roles.setdefault(_role(pid), [0, 0.0])
            role[0] += 1
            role[1] += fields.get("Pss", 0) / 1024
        self.results.figures["density"] = {
            "environments": envs,
            "spares": int(totals.get("spares", 0)),
            "templates": int(totals.get("templates", 0)),
            "pss_mb": pss / envs,
            "uss_mb": uss / envs,
            "per_gb": 1024 / (pss / envs),
            "pss_mb_by_role": {k: round(v[1], 1) for k, v in sorted(roles.items())},
        }
        self.say(
            f"  {envs} environments: PSS {pss / envs:.2f} MB, USS {uss / envs:.2f} MB "
            f"each (templates included) -> {1024 / (pss / envs):.0f} per GB"
        )
        self.say(
            f"  ({totals.get('templates', 0)} templates, {totals.get('spares', 0)} spares "
            "not counted as environments; PSS by process: "
            + ", ".join(f"{k} {int(v[0])} = {v[1]:.0f} MB" for k, v in sorted(roles.items()))
            + ")"
        )


def _role(pid: int) -> str:
    """What a process under the server is, for the density breakdown."""
    cmd = _cmdline(pid)
    exe = os.path.basename(cmd.split(b"\0", 1)[0]).decode(errors="replace")
    if exe in ("bwrap", "sh", "unshare", "setpriv", "_lamina_reaper"):
        return exe
    parent = os.path.basename(_cmdline(_ppid(pid)).split(b"\0", 1)[0]).decode(errors="replace")
    if parent == "_lamina_reaper" or (exe.startswith("python") and parent.startswith("python")):
        return "runtime (forked)"
    if exe.startswith("python"):
        return "runtime or template (launched)"
    return exe or "?"


def children_of(pid: int) -> list[int]:
    return [p for p in descendants(pid) if _ppid(p) == pid]


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _smaps_rollup(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name in ("Pss", "Private_Clean", "Private_Dirty"):
                    out[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


# -- report --------------------------------------------------------------------------------------


def _fmt(v: float, unit: str = "ms") -> str:
    if v != v:  # nan
        return "n/a"
    if unit == "ms":
        return f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms"
    if unit == "x":
        return f"{v:.2f}x"
    if unit == "/s":
        return f"{v:,.0f}/s"
    if unit == "s":
        return f"{v:.2f} s"
    return f"{v:.1f} {unit}"


def _check(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**missed**")


def table_rows(res: Results) -> list[tuple[str, ...]]:
    """(figure, Lamina, baseline, ratio, target, met) rows."""
    f = res.figures
    rows: list[tuple[str, ...]] = []

    def ok(value: float, limit: float, below: bool = True) -> bool | None:
        if value != value:
            return None
        return value <= limit if below else value >= limit

    if "warm" in f:
        lam, base = f["warm"]["lamina"], f["warm"]["baseline"]
        for q, limit in (("p50", 1.0), ("p90", None), ("p99", 3.0)):
            r = ratio(lam[q], base[q])
            rows.append(
                (
                    f"warm invoke latency {q}, c=1 (n={lam['n']})",
                    _fmt(lam[q]),
                    f"{_fmt(base[q])} (plain ASGI app)",
                    _fmt(r, "x") + " of baseline",
                    "" if limit is None else f"<= {limit:g} ms and <= 2x",
                    ""
                    if limit is None
                    else _check(ok(lam[q], limit) and ok(r, 2.0) if r == r else None),
                )
            )
        if "cpu_us_per_call" in lam:
            rows.append(_cpu_row("CPU time per warm call, c=1", lam, base))
    if "cold" in f:
        c = f["cold"]
        base = c["baselines"]["python -c 'import app'"]
        iso = c["baselines"]["python -I -S -c 'import app'"]
        for q, limit in (("p50", 10.0), ("p99", 25.0)):
            speedup = ratio(base[q], c["lamina"][q])
            rows.append(
                (
                    f"cold start {q}, trivial handler (n={c['lamina']['n']})",
                    _fmt(c["lamina"][q]),
                    f"{_fmt(base[q])} (`python -c 'import app'`); {_fmt(iso[q])} (`-I -S`)",
                    f"speed-up {_fmt(speedup, 'x')} (`-I -S`: "
                    f"{_fmt(ratio(iso[q], c['lamina'][q]), 'x')})",
                    f"<= {limit:g} ms" + (" and >= 3x faster" if q == "p50" else ""),
                    _check(
                        ok(c["lamina"][q], limit)
                        and (ok(speedup, 3.0, False) if q == "p50" else True)
                    ),
                )
            )
        rows.append(
            (
                "cold start: REPORT Init Duration p50 / p99",
                f"{_fmt(c['init_duration']['p50'])} / {_fmt(c['init_duration']['p99'])}",
                "",
                "",
                "",
                "",
            )
        )
    if "cold_new_version" in f:
        c = f["cold_new_version"]
        base = c["baselines"]["python -c 'import app'"]
        rows.append(
            (
                f"cold start p50 / p99 of a new version (template made first, n={c['lamina']['n']})",
                f"{_fmt(c['lamina']['p50'])} / {_fmt(c['lamina']['p99'])}",
                f"{_fmt(base['p50'])} / {_fmt(base['p99'])} (`python -c 'import app'`)",
                f"speed-up {_fmt(ratio(base['p50'], c['lamina']['p50']), 'x')}",
                "",
                "",
            )
        )
    if "cold_boto3" in f:
        c = f["cold_boto3"]
        base = c["baselines"]["python -c 'import boto3'"]
        speedup = ratio(base["p50"], c["lamina"]["p50"])
        rows.append(
            (
                f"cold start p50, handler importing boto3 (n={c['lamina']['n']})",
                _fmt(c["lamina"]["p50"]),
                f"{_fmt(base['p50'])} (`python -c 'import boto3'`)",
                f"speed-up {_fmt(speedup, 'x')}",
                "<= 15 ms and >= 10x faster",
                _check(ok(c["lamina"]["p50"], 15.0) and ok(speedup, 10.0, False)),
            )
        )
        rows.append(
            (
                "cold start p99, boto3 handler / its Init Duration p50",
                f"{_fmt(c['lamina']['p99'])} / {_fmt(c['init_duration']['p50'])}",
                f"{_fmt(base['p99'])}",
                f"speed-up {_fmt(ratio(base['p99'], c['lamina']['p99']), 'x')}",
                "",
                "",
            )
        )
    if "throughput" in f:
        t = f["throughput"]
        lam, base = t["lamina"], t["baseline"]
        r = ratio(lam["rps"], base["rps"])
        rows.append(
            (
                "throughput, no-op, 16 concurrent clients",
                _fmt(lam["rps"], "/s") + (f" ({lam['errors']} errors)" if lam["errors"] else ""),
                _fmt(base["rps"], "/s") + " (plain ASGI app)",
                _fmt(r, "x") + " of baseline",
                ">= 3,000/s and >= 0.5x",
                _check(ok(lam["rps"], 3000.0, False) and ok(r, 0.5, False)),
            )
        )
        rows.append(
            (
                "latency under that load, p50 / p99",
                f"{_fmt(lam['latency']['p50'])} / {_fmt(lam['latency']['p99'])}",
                f"{_fmt(base['latency']['p50'])} / {_fmt(base['latency']['p99'])}",
                f"{_fmt(ratio(lam['latency']['p50'], base['latency']['p50']), 'x')} / "
                f"{_fmt(ratio(lam['latency']['p99'], base['latency']['p99']), 'x')}",
                "",
                "",
            )
        )
        rows.append(_cpu_row("CPU time per call under that load", lam, base))
    if "burst" in f:
        b = f["burst"]
        rows.append(
            (
                f"burst: {b['n']} concurrent calls to a cold 100 ms function, all done",
                f"{_fmt(b['seconds'], 's')} ({b['ok']} ok, {b['cold']} cold starts)",
                f"{_fmt(b['fresh_processes_seconds'], 's')} ({b['n']} fresh interpreters in parallel)",
                _fmt(ratio(b["seconds"], b["fresh_processes_seconds"]), "x") + " of baseline",
                "<= 0.5 s",
                _check(ok(b["seconds"], 0.5) if b["ok"] == b["n"] else False),
            )
        )
    if "density" in f:
        d = f["density"]
        rows.append(
            (
                f"density: idle environments per GB (PSS, {d['environments']} envs)",
                f"{d['per_gb']:.0f}/GB ({d['pss_mb']:.1f} MB PSS, {d['uss_mb']:.1f} MB USS each)",
                "",
                "",
                ">= 300/GB",
                _check(ok(d["per_gb"], 300.0, False)),
            )
        )
    return rows


def _cpu_row(title: str, lam: dict[str, Any], base: dict[str, Any]) -> tuple[str, ...]:
    lc, bc = lam["cpu_us_per_call"], base["cpu_us_per_call"]
    total = lc["server"] + lc["runtimes"]
    return (
        title,
        f"{total:.0f} us (server {lc['server']:.0f} + runtime {lc['runtimes']:.0f})",
        f"{bc['server']:.0f} us",
        _fmt(ratio(total, bc["server"]), "x") + " of baseline",
        "",
        "",
    )


def markdown(res: Results) -> str:
    facts = res.facts
    lines = [
        BEGIN_MARK,
        "",
        f"## Results ({facts['date']}, {facts['mode']})",
        "",
        f"- Machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory_gb']} GB, "
        f"Linux {facts['kernel']}",
        f"- Python: {facts['python']}",
        f"- Lamina commit: {facts['commit']}; sandbox: {facts.get('sandbox', '?')}",
        f"- Load average (1 min) at start / end: {facts['loadavg_start']:.2f} / "
        f"{facts.get('loadavg_end', float('nan')):.2f} "
        "(anything near or above the CPU count means the figures are noisy)",
        f"- Benchmark wall time: {facts.get('wall_seconds', '?')} s",
        "",
        "| Figure | Lamina | Baseline | Ratio | Issue 4 target | |",
        "|---|---|---|---|---|---|",
    ]
    for row in table_rows(res):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    f = res.figures
    if "cold" in f:
        c = f["cold"]
        lines += [
            "",
            "Cold starts that were not cold (an idle environment was reused; not counted): "
            f"{c['not_cold']} of the trivial handler, "
            f"{f.get('cold_boto3', {}).get('not_cold', 'n/a')} of the boto3 one.",
        ]
    if res.errors:
        lines += ["", "Phases that failed in this run:", ""]
        lines += [f"- `{e}`" for e in res.errors]
    lines += ["", "Raw figures (milliseconds unless named otherwise):", "", "```json"]
    lines.append(json.dumps(f, indent=1, sort_keys=True))
    lines += ["```", "", END_MARK]
    return "\n".join(lines) + "\n"


def _rounded(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, 3)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj


def write_doc(res: Results, path: Path) -> None:
    res = Results(res.facts, _rounded(res.figures), res.errors)
    generated = markdown(res)
    text = path.read_text() if path.exists() else ""
    if BEGIN_MARK in text and END_MARK in text:
        head, rest = text.split(BEGIN_MARK, 1)
        tail = rest.split(END_MARK, 1)[1]
        text = head + generated.rstrip("\n") + tail
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "# Performance\n\n") + generated
    path.write_text(text)


def print_table(res: Results) -> None:
    rows = [("Figure", "Lamina", "Baseline", "Ratio", "Target", "")]
    rows += table_rows(res)
    widths = [min(48, max(len(r[i]) for r in rows)) for i in range(6)]
    print()
    for row in rows:
        print(
            "  ".join(cell.replace("`", "").ljust(w) for cell, w in zip(row, widths, strict=True))
        )
    for error in res.errors:
        print(f"FAILED {error}")


# -- entry point ---------------------------------------------------------------------------------


def _unmount_below(path: Path) -> int:
    """Lazily unmount whatever is still mounted under `path` (a sandbox's scratch disks, when a
    server died before cleaning up); deepest first. Returns how many mounts were found."""
    prefix = str(path) + "/"
    try:
        with open("/proc/self/mounts") as f:
            targets = [line.split()[1].replace("\\040", " ") for line in f]
    except OSError:
        return 0
    mine = sorted((t for t in targets if t.startswith(prefix)), key=len, reverse=True)
    if mine:
        libc = ctypes.CDLL(None, use_errno=True)
        for target in mine:
            if libc.umount2(os.fsencode(target), 2) != 0:  # MNT_DETACH
                subprocess.run(["umount", "-l", target], capture_output=True, check=False)
    return len(mine)


def _rmtree(path: Path) -> None:
    """Remove the work dir even if a server left mounts or read-only trees in it."""

    def fix(func: Callable[..., Any], p: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o755)
            os.chmod(p, 0o755)
            func(p)

    deadline = time.monotonic() + 10
    while True:
        left = _unmount_below(path)
        shutil.rmtree(path, onerror=fix)
        if not path.exists():
            return
        if time.monotonic() > deadline:
            print(f"warning: could not remove {path}", file=sys.stderr)
            return
        if left:
            print(f"  (unmounted {left} leftover mounts under {path})", file=sys.stderr)
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Lamina invoke benchmark (see bench/README.md)")
    parser.add_argument("--quick", action="store_true", help="smoke run: few iterations")
    parser.add_argument("--no-doc", action="store_true", help=f"do not rewrite {DOC}")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy profiles into DIR")
    parser.add_argument(
        "--sandbox",
        choices=("auto", "linux", "process"),
        help="LAMINA_SANDBOX for the server (default: the server's own default, auto)",
    )
    parser.add_argument(
        "--lamina-src",
        type=Path,
        metavar="DIR",
        help="run the server from this source tree (a folder holding lamina/), e.g. "
        "`git archive COMMIT lamina | tar -x -C DIR`, to compare two commits",
    )
    parser.add_argument(
        "--phases",
        default=",".join(sorted(PHASES)),
        help="comma-separated subset of: " + ", ".join(sorted(PHASES)) + " (default: all); "
        "a partial run prints its figures but never rewrites the doc",
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `lamina server` (repeat: --server-arg=--freeze-delay "
        "--server-arg=0)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument(
        "--time-limit", type=float, default=None, help="abort after this many seconds"
    )
    args = parser.parse_args(argv)
    phases = frozenset(p.strip() for p in args.phases.split(",") if p.strip())
    if not phases or not phases <= PHASES:
        parser.error(f"--phases: choose from {', '.join(sorted(PHASES))}")
    if phases != PHASES:
        args.no_doc = True
    plan = Plan.make(args.quick)
    if args.sandbox:
        os.environ["LAMINA_SANDBOX"] = args.sandbox

    def on_signal(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        _interrupted.append("time limit reached" if signum == signal.SIGALRM else name)
        raise KeyboardInterrupt(_interrupted[0])

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.alarm(int(args.time_limit or (150 if args.quick else 600)))

    work = Path(tempfile.mkdtemp(prefix="lamina-bench-"))
    started = time.monotonic()
    try:
        lamina_src = args.lamina_src.resolve() if args.lamina_src else None
        if lamina_src is not None and not (lamina_src / "lamina" / "__init__.py").exists():
            parser.error(f"--lamina-src: no lamina/ package in {lamina_src}")
        bench = Bench(
            plan,
            work,
            Profiler(args.profile),
            lamina_src,
            phases=phases,
            server_args=tuple(args.server_arg),
        )
        results = bench.run()
    except KeyboardInterrupt as exc:
        print(
            f"\ninterrupted ({exc or 'Ctrl-C'}); servers stopped, nothing written", file=sys.stderr
        )
        return 130
    finally:
        signal.alarm(0)
        _rmtree(work)
    results.facts["wall_seconds"] = round(time.monotonic() - started, 1)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(_rounded(results.__dict__), indent=1))
    if not args.no_doc:
        write_doc(results, DOC)
        print(f"\nwrote {DOC.relative_to(REPO)} ({results.facts['wall_seconds']} s)")
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
