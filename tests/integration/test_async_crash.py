"""kill -9 while asynchronous events pour in: every accepted (202) event still runs.

A no-op function appends each event's id to a file opened with O_APPEND (its own ledger,
independent of Lamina). Senders push 2,000 Event invocations over keep-alive HTTP; a killer
SIGKILLs the server at random moments at least five times while they do, and restarts it on the
same data dir (a new port each time; the senders follow). Afterwards every id that got a 202 must
be in the ledger; ids that ran more than once (at-least-once delivery) are counted and printed.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import os
import random
import signal
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration.conftest import PYTHON_RUNTIME, ROLE, client_for, make_zip
from tests.integration.lamina_process import LaminaProcess

EVENTS = 2000
KILLS = 6
SENDERS = 4
DELIVERY_DEADLINE_S = 120.0

NOOP_LEDGER = """
import os

PATH = os.environ["LEDGER"]


def handler(event, context):
    fd = os.open(PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (event["id"] + "\\n").encode())
    finally:
        os.close(fd)
"""


class Cluster:
    """The one server, restarted in place; senders read the current endpoint from here."""

    def __init__(self, server: LaminaProcess) -> None:
        self.server = server
        self.endpoint = server.endpoint
        self.lock = threading.Lock()
        self.kills = 0

    def crash_and_restart(self) -> None:
        with self.lock:
            self.server.stop(signal.SIGKILL)
            self.kills += 1
            self.endpoint = self.server.start(timeout_s=60)


def send_all(cluster: Cluster, name: str, ids: list[str], accepted: list[str]) -> None:
    conn: http.client.HTTPConnection | None = None
    conn_endpoint = ""
    path = f"/2015-03-31/functions/{name}/invocations"
    for event_id in ids:
        body = json.dumps({"id": event_id}).encode()
        deadline = time.monotonic() + 90
        while True:
            assert time.monotonic() < deadline, f"could not send {event_id}"
            endpoint = cluster.endpoint
            try:
                if conn is None or conn_endpoint != endpoint:
                    if conn is not None:
                        conn.close()
                    parts = urlsplit(endpoint)
                    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                    conn_endpoint = endpoint
                conn.request(
                    "POST",
                    path,
                    body,
                    {"X-Amz-Invocation-Type": "Event", "Content-Type": "application/json"},
                )
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.02)  # the server is down or restarting: try again
                continue
            if resp.status == 202:
                accepted.append(event_id)
                break
            # Anything else (e.g. the function not loaded yet) is not an acceptance: retry.
            time.sleep(0.02)
    if conn is not None:
        conn.close()


@pytest.mark.slow
def test_no_accepted_event_is_lost_across_kill_9(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.txt"
    server = LaminaProcess(
        tmp_path / "data",
        "--async-concurrency",
        "8",
        env={"LAMINA_SANDBOX": "process"},
    )
    server.start()
    cluster = Cluster(server)
    try:
        lam = client_for(server.endpoint)
        name = f"crash-{uuid.uuid4().hex[:8]}"
        lam.create_function(
            FunctionName=name,
            Runtime=PYTHON_RUNTIME,
            Role=ROLE,
            Handler="f.handler",
            Code={"ZipFile": make_zip({"f.py": NOOP_LEDGER})},
            Timeout=30,
            Environment={"Variables": {"LEDGER": str(ledger)}},
        )
        lam.get_waiter("function_active_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 300}
        )

        ids = [f"e{i:05d}" for i in range(EVENTS)]
        accepted: list[str] = []
        senders = [
            threading.Thread(
                target=send_all, args=(cluster, name, ids[k::SENDERS], accepted), daemon=True
            )
            for k in range(SENDERS)
        ]
        # Kill when the accepted count passes random marks, after a random extra moment, so the
        # kills land during enqueue commits, leases, invocations and completions alike.
        rng = random.Random()
        marks = sorted(rng.sample(range(100, EVENTS - 100), KILLS))
        started = time.monotonic()
        for t in senders:
            t.start()
        for mark in marks:
            while len(accepted) < mark and any(t.is_alive() for t in senders):
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.25))
            cluster.crash_and_restart()
        for t in senders:
            t.join(timeout=180)
            assert not t.is_alive(), "a sender is stuck"
        sent_s = time.monotonic() - started
        assert cluster.kills >= 5
        assert len(accepted) == EVENTS

        deadline = time.monotonic() + DELIVERY_DEADLINE_S
        want = set(accepted)
        seen: collections.Counter[str] = collections.Counter()
        while time.monotonic() < deadline:
            seen = collections.Counter(ledger.read_text().split()) if ledger.exists() else seen
            if want <= set(seen):
                break
            time.sleep(0.2)
        lost = sorted(want - set(seen))
        duplicates = {k: n for k, n in seen.items() if n > 1}
        print(
            f"\n{len(accepted)} events accepted in {sent_s:.1f} s across {cluster.kills} kill -9s;"
            f" delivered {len(set(seen))} distinct, {sum(seen.values())} runs in all;"
            f" lost {len(lost)}; duplicates {len(duplicates)}"
            f" (extra runs: {sum(n - 1 for n in duplicates.values())})"
        )
        if duplicates:
            print("duplicates:", " ".join(f"{k}x{n}" for k, n in sorted(duplicates.items())))
        assert not lost, f"{len(lost)} accepted events never ran: {lost[:20]}"
    finally:
        cluster.server.stop()
        reap_orphans(f"LEDGER={ledger}")


def reap_orphans(marker: str) -> None:
    """Kill this test's environments that outlived a killed server (found by their env var)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in environ:
            with contextlib.suppress(OSError):
                os.kill(int(proc.name), signal.SIGKILL)
