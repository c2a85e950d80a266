#!/usr/bin/env python3
"""Asynchronous invocation benchmark: how fast Lamina accepts durable Event invocations, how fast
it delivers them, and how long an event waits between its enqueue and its start.

    python bench/async.py                # 5,000 events in a burst, then a paced run
    python bench/async.py --events 2000 --connections 16

A `lamina server` on a free port with a temporary data dir (the process sandbox, so that the
function can keep a ledger on the host). A no-op function appends `<id> <sent> <started>` to a
file; the client is a raw HTTP/1.1 keep-alive client (asyncio) sending Invoke with
X-Amz-Invocation-Type: Event, so the figures measure the server, not botocore.

- accepted/s: 202s per second over the burst (each 202 follows the event's commit);
- delivered/s: events run per second, from the first send to the last start;
- enqueue-to-start: the function's start time minus the time the client sent the event, p50/p99,
  in the burst (queueing included) and in a paced run well under capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

RUNTIME = f"python{sys.version_info[0]}.{sys.version_info[1]}"
REPO = Path(__file__).resolve().parent.parent

HANDLER = """
import os
import time

PATH = os.environ["LEDGER"]


def handler(event, context):
    started = time.time()
    fd = os.open(PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{event['id']} {event['sent']} {started}\\n".encode())
    finally:
        os.close(fd)
"""

_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


def start_server(data_dir: Path, concurrency: int) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "LAMINA_SANDBOX": "process",
        "LAMINA_ASYNC_CONCURRENCY": str(concurrency),
    }
    cmd = [sys.executable, "-m", "lamina", "server", "--port", "0", "--data-dir", str(data_dir)]
    cmd += ["--log-level", "warning"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.search(r"Lamina is listening on (http://\S+)", line)
        if m:
            return proc, m.group(1)
    raise RuntimeError("lamina server did not start")


def request(host: str, method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def roundtrip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> tuple[int, bytes]:
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    m = _LENGTH.search(head)
    body = await reader.readexactly(int(m.group(1))) if m else b""
    return int(head.split(b" ", 2)[1]), body


async def create_function(host: str, port: int, name: str, ledger: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("f.py", HANDLER)
    import base64

    spec = {
        "FunctionName": name,
        "Runtime": RUNTIME,
        "Role": "arn:aws:iam::000000000000:role/bench",
        "Handler": "f.handler",
        "Code": {"ZipFile": base64.b64encode(buf.getvalue()).decode()},
        "Timeout": 30,
        "Environment": {"Variables": {"LEDGER": str(ledger)}},
    }
    reader, writer = await asyncio.open_connection(host, port)
    status, body = await roundtrip(
        reader,
        writer,
        request(f"{host}:{port}", "POST", "/2015-03-31/functions", json.dumps(spec).encode(), {}),
    )
    assert status == 201, body
    while True:  # until Active
        status, body = await roundtrip(
            reader,
            writer,
            request(f"{host}:{port}", "GET", f"/2015-03-31/functions/{name}", b"", {}),
        )
        if json.loads(body)["Configuration"]["State"] == "Active":
            break
        await asyncio.sleep(0.05)
    writer.close()


async def send_events(
    host: str,
    port: int,
    name: str,
    ids: list[str],
    connections: int,
    rate: float | None,
    invocation_type: str = "Event",
) -> float:
    """Send every event; return the seconds it took to get all the answers (202 for Event)."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in ids:
        queue.put_nowait(i)
    path = f"/2015-03-31/functions/{name}/invocations"
    headers = {"X-Amz-Invocation-Type": invocation_type, "Content-Type": "application/json"}
    expected = {"Event": 202, "DryRun": 204, "RequestResponse": 200}[invocation_type]
    started = time.perf_counter()

    async def worker(k: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        n = 0
        while not queue.empty():
            event_id = queue.get_nowait()
            if rate:
                due = started + (int(event_id[1:]) / rate)
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            body = json.dumps({"id": event_id, "sent": time.time()}).encode()
            status, text = await roundtrip(
                reader, writer, request(f"{host}:{port}", "POST", path, body, headers)
            )
            if status != expected:
                raise RuntimeError(f"{event_id}: {status} {text[:200]!r}")
            n += 1
        writer.close()

    await asyncio.gather(*(worker(k) for k in range(connections)))
    return time.perf_counter() - started


async def put_concurrency(host: str, port: int, name: str, value: int | None) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    path = f"/2017-10-31/functions/{name}/concurrency"
    if value is None:
        data = request(f"{host}:{port}", "DELETE", path, b"", {})
    else:
        body = json.dumps({"ReservedConcurrentExecutions": value}).encode()
        data = request(f"{host}:{port}", "PUT", path, body, {})
    status, text = await roundtrip(reader, writer, data)
    assert status in (200, 204), text
    writer.close()


def read_ledger(ledger: Path) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    if ledger.exists():
        for line in ledger.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                out.setdefault(parts[0], (float(parts[1]), float(parts[2])))
    return out


def wait_delivered(
    ledger: Path, ids: list[str], timeout_s: float
) -> dict[str, tuple[float, float]]:
    deadline = time.monotonic() + timeout_s
    while True:
        seen = read_ledger(ledger)
        if len(seen.keys() & set(ids)) == len(ids) or time.monotonic() > deadline:
            return {k: v for k, v in seen.items() if k in set(ids)}
        time.sleep(0.1)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main_async(args: argparse.Namespace) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="lamina-bench-async-"))
    proc, endpoint = start_server(tmp / "data", args.concurrency)
    host, port_text = endpoint.removeprefix("http://").rsplit(":", 1)
    port = int(port_text)
    results: dict[str, float] = {}
    try:
        burst_ledger, paced_ledger = tmp / "burst.txt", tmp / "paced.txt"
        await create_function(host, port, "bench-burst", burst_ledger)
        await create_function(host, port, "bench-paced", paced_ledger)
        # Warm up: environments started, so that the burst measures the queue.
        warm = [f"w{i:06d}" for i in range(args.concurrency * 4)]
        await send_events(host, port, "bench-burst", warm, min(8, args.connections), None)
        wait_delivered(burst_ledger, warm, 60)

        # 0. Baselines measured in the same run: the same request answered without a commit
        #    (DryRun: resolved, checked, 204), and synchronous invocations of the same function.
        dry = [f"d{i:06d}" for i in range(args.events)]
        dry_s = await send_events(host, port, "bench-burst", dry, args.connections, None, "DryRun")
        results["dryrun_per_s"] = args.events / dry_s
        sync = [f"s{i:06d}" for i in range(min(args.events, 2000))]
        sync_s = await send_events(
            host, port, "bench-burst", sync, args.concurrency, None, "RequestResponse"
        )
        results["sync_per_s"] = len(sync) / sync_s
        # 1. Acceptance alone: the function is held at reserved concurrency 0, so the worker
        #    runs nothing while the events pour in (the few it leases wait and back off).
        await put_concurrency(host, port, "bench-burst", 0)
        ids = [f"b{i:06d}" for i in range(args.events)]
        accept_s = await send_events(host, port, "bench-burst", ids, args.connections, None)
        results["events"] = args.events
        results["accepted_per_s"] = args.events / accept_s
        # 2. Delivery alone: release the function and time the backlog's drain.
        t0 = time.time()
        await put_concurrency(host, port, "bench-burst", None)
        seen = wait_delivered(burst_ledger, ids, 300)
        results["delivered"] = len(seen)
        # The few events leased while the function was held sit out a throttle backoff (up to
        # seconds): time the drain to the start of all but the last 2 x concurrency events.
        starts = sorted(s for _, s in seen.values())
        k = max(1, len(starts) - 2 * args.concurrency)
        results["delivered_per_s"] = k / (starts[k - 1] - t0)
        # 3. Both at once: a burst of new events while they are being delivered.
        mixed = [f"m{i:06d}" for i in range(args.events)]
        t0 = time.time()
        mixed_s = await send_events(host, port, "bench-burst", mixed, args.connections, None)
        seen = wait_delivered(burst_ledger, mixed, 300)
        results["mixed_accepted_per_s"] = args.events / mixed_s
        results["mixed_delivered_per_s"] = len(seen) / (max(s for _, s in seen.values()) - t0)
        lat = [(s - sent) * 1000 for sent, s in seen.values()]
        results["burst_p50_ms"] = pct(lat, 0.50)
        results["burst_p99_ms"] = pct(lat, 0.99)

        paced = [f"p{i:06d}" for i in range(int(args.paced_rate * args.paced_s))]
        await send_events(host, port, "bench-paced", paced, 4, args.paced_rate)
        seen = wait_delivered(paced_ledger, paced, 120)
        lat = [(s - sent) * 1000 for sent, s in seen.values()]
        results["paced_rate"] = args.paced_rate
        results["paced_p50_ms"] = pct(lat, 0.50)
        results["paced_p99_ms"] = pct(lat, 0.99)
        results["paced_mean_ms"] = statistics.fmean(lat)
    finally:
        proc.terminate()
        proc.wait(30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=8, help="the async worker's concurrency")
    parser.add_argument("--paced-rate", type=float, default=200.0, help="events/s of the paced run")
    parser.add_argument("--paced-s", type=float, default=5.0)
    args = parser.parse_args()
    r = asyncio.run(main_async(args))
    print(f"cores: {os.cpu_count()}  events: {int(r['events'])}  delivered: {int(r['delivered'])}")
    print(f"baseline: DryRun invokes (no commit)       {r['dryrun_per_s']:8.0f} /s")
    print(f"baseline: sync invokes ({args.concurrency} connections)     {r['sync_per_s']:8.0f} /s")
    print(f"accepted (durable, 202), nothing running   {r['accepted_per_s']:8.0f} /s")
    print(f"delivered (no-op) from a backlog           {r['delivered_per_s']:8.0f} /s")
    print(f"both at once: accepted                     {r['mixed_accepted_per_s']:8.0f} /s")
    print(f"both at once: delivered                    {r['mixed_delivered_per_s']:8.0f} /s")
    print(
        f"enqueue-to-start, burst   p50 {r['burst_p50_ms']:8.1f} ms   p99 {r['burst_p99_ms']:8.1f} ms"
    )
    print(
        f"enqueue-to-start, paced at {r['paced_rate']:.0f}/s   p50 {r['paced_p50_ms']:6.1f} ms   "
        f"p99 {r['paced_p99_ms']:6.1f} ms"
    )


if __name__ == "__main__":
    main()
