"""Real brokers for the stream source tests: the machine's Redis and PostgreSQL (skipped with a
reason where they are absent), a private redis-server that a test may restart, and helpers that
read what the recording function saw."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests.integration.conftest import wait_for

REDIS_URL = os.environ.get("LAMINA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "LAMINA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
ACCOUNT = "000000000000"
REGION = "us-east-1"


def redis_or_skip(url: str = REDIS_URL) -> Any:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        pytest.skip(f"no Redis at {url} ({exc}); set LAMINA_TEST_REDIS_URL to run these tests")
    return client


def postgres_or_skip(url: str = POSTGRES_URL) -> Any:
    psycopg = pytest.importorskip("psycopg")
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL at {url} ({exc}); set LAMINA_TEST_POSTGRES_URL to run these")


class Broker(Protocol):
    name: str
    arn: str

    def mapping_args(self) -> dict[str, Any]: ...

    def produce(self, items: list[dict[str, Any]]) -> None: ...

    def connected(self, mapping_uuid: str) -> bool:
        """The mapping's poller has set up its position on the broker."""
        ...

    def close(self) -> None: ...


class RedisBroker:
    name = "redis"

    def __init__(self, client: Any, url: str = REDIS_URL) -> None:
        self.client = client
        self.url = url
        self.key = f"lamina-test-{uuid.uuid4().hex[:12]}"
        self.arn = f"arn:aws:redis:{REGION}:{ACCOUNT}:stream/{self.key}"

    def mapping_args(self) -> dict[str, Any]:
        return {
            "EventSourceArn": self.arn,
            "SelfManagedEventSource": {"Endpoints": {"REDIS_URL": [self.url]}},
        }

    def produce(self, items: list[dict[str, Any]]) -> None:
        pipe = self.client.pipeline(transaction=True)  # one batch sees them all
        for item in items:
            pipe.xadd(self.key, {"data": json.dumps(item)})
        pipe.execute()

    def connected(self, mapping_uuid: str) -> bool:
        try:
            groups = self.client.xinfo_groups(self.key)
        except Exception:
            return False
        names = {g["name"].decode() if isinstance(g["name"], bytes) else g["name"] for g in groups}
        return f"lamina-{mapping_uuid}" in names

    def groups(self) -> list[str]:
        try:
            groups = self.client.xinfo_groups(self.key)
        except Exception:
            return []
        return [g["name"].decode() if isinstance(g["name"], bytes) else g["name"] for g in groups]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.delete(self.key)


class PostgresBroker:
    name = "postgres"

    def __init__(self, conn: Any, url: str = POSTGRES_URL) -> None:
        self.conn = conn
        self.url = url
        self.table = f"lamina_test_{uuid.uuid4().hex[:12]}"
        self.arn = f"arn:aws:postgres:{REGION}:{ACCOUNT}:table/public.{self.table}"
        conn.execute(
            f"CREATE TABLE {self.table} (id serial PRIMARY KEY, n int NOT NULL, poison boolean)"
        )

    def mapping_args(self) -> dict[str, Any]:
        return {
            "EventSourceArn": self.arn,
            "SelfManagedEventSource": {"Endpoints": {"POSTGRES_URL": [self.url]}},
        }

    def produce(self, items: list[dict[str, Any]]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {self.table} (n, poison) VALUES (%s, %s)",
                [(item["n"], bool(item.get("poison"))) for item in items],
            )

    def connected(self, mapping_uuid: str) -> bool:
        try:
            row = self.conn.execute(
                "SELECT 1 FROM lamina_cdc.consumers WHERE mapping_uuid = %s", [mapping_uuid]
            ).fetchone()
        except Exception:
            return False
        return row is not None

    def terminate_backends(self, mapping_uuid: str) -> int:
        rows = self.conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [f"lamina-{mapping_uuid}"],
        ).fetchall()
        return len(rows)

    def close(self) -> None:
        """Drop the table and what mappings of it left in lamina_cdc (a test may end before the
        server settles a delete, or drive sources without mappings)."""
        with contextlib.suppress(Exception):
            self.conn.execute(f"DROP TABLE IF EXISTS {self.table}")
        source = f"public.{self.table}"
        for table in ("consumers", "changes"):
            with contextlib.suppress(Exception):
                self.conn.execute(f"DELETE FROM lamina_cdc.{table} WHERE source = %s", [source])


# -- a private redis-server -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A redis-server of the test's own (append-only file, fsync on every write), which the test
    may stop and start again without disturbing the machine's shared one."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.5),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# -- what the function saw ---------------------------------------------------------------------


class Seen:
    """Drains a Lamina queue of the recorder's reports (one per invocation)."""

    def __init__(self, sqs: Any, url: str) -> None:
        self.sqs = sqs
        self.url = url
        self.batches: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in got.get("Messages", []):
            self.batches.append(json.loads(message["Body"]))
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        self.batches.sort(key=lambda b: b.get("t", 0))  # recorder reports carry a clock
        return self.batches

    def until(
        self, check: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 90.0
    ) -> list[dict[str, Any]]:
        return wait_for(lambda: check(self.drain()) and self.batches, timeout_s, "batches")  # type: ignore[no-any-return]

    def processed(self) -> list[int]:
        """The ns of batches that succeeded, in processing order (repeats included)."""
        return [n for b in self.batches if not b["failed"] for n in b["ns"]]


def assert_in_order_without_gaps(batches: list[dict[str, Any]], expected: range) -> None:
    """Every record processed; none processed before the one ahead of it had been (redelivery of
    records already processed, at least once, is allowed)."""
    highest = expected.start - 1
    for batch in (b for b in batches if not b["failed"]):
        ns = batch["ns"]
        assert ns == list(range(ns[0], ns[0] + len(ns))), f"batch out of order: {ns}"
        assert ns[0] <= highest + 1, f"records {highest + 1}..{ns[0] - 1} skipped before {ns}"
        highest = max(highest, ns[-1])
    assert highest == expected.stop - 1, f"processed up to {highest} of {expected}"
