"""Ordered stream sources across failures: Lamina killed mid-stream and started again, a Redis
server restarted mid-stream, PostgreSQL connections terminated mid-stream, a broker that is not
there at all. No record may be lost or processed before the one ahead of it (redelivery of what
was already processed is allowed: at least once)."""

from __future__ import annotations

import contextlib
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import PYTHON_RUNTIME, ROLE, client_for, deploy, function_zip
from tests.integration.lamina_process import LaminaProcess
from tests.integration.stream_brokers import (
    Broker,
    PostgresBroker,
    PrivateRedis,
    RedisBroker,
    Seen,
    assert_in_order_without_gaps,
    free_port,
    postgres_or_skip,
    redis_or_skip,
    wait_for,
)

pytestmark = pytest.mark.slow

CONNECTION_PROBLEM = (
    "PROBLEM: Connection error. Please check your event source connection configuration."
)


def highest_processed(seen: Seen) -> int:
    return max(seen.processed(), default=-1)


def items(numbers: range) -> list[dict[str, Any]]:
    return [{"n": n} for n in numbers]


class Deployment:
    """A function that records what it receives, a queue for the records, and a mapping."""

    def __init__(self, endpoint: str, broker: Broker, delay_s: float = 0.1) -> None:
        self.lam = client_for(endpoint)
        self.sqs = client_for(endpoint, "sqs")
        self.broker = broker
        self.name = f"streams-{uuid.uuid4().hex[:10]}"
        self.queue_url = str(self.sqs.create_queue(QueueName=self.name)["QueueUrl"])
        deploy(
            self.lam,
            self.name,
            "stream_recorder",
            Timeout=30,
            Environment={"Variables": {"SEEN_QUEUE_URL": self.queue_url, "DELAY_S": str(delay_s)}},
        )
        mapping = self.lam.create_event_source_mapping(
            FunctionName=self.name,
            StartingPosition="TRIM_HORIZON",
            BatchSize=5,
            **broker.mapping_args(),
        )
        self.uuid = str(mapping["UUID"])
        self.seen = Seen(self.sqs, self.queue_url)

    def wait_connected(self) -> None:
        wait_for(lambda: self.broker.connected(self.uuid), 60, "the poller to connect")

    def reconnect(self, endpoint: str) -> None:
        """Talk to a restarted server (same data dir, new port)."""
        self.lam = client_for(endpoint)
        self.sqs = client_for(endpoint, "sqs")
        self.queue_url = str(self.sqs.get_queue_url(QueueName=self.name)["QueueUrl"])
        self.seen.sqs, self.seen.url = self.sqs, self.queue_url

    def last_result(self) -> str:
        return str(self.lam.get_event_source_mapping(UUID=self.uuid)["LastProcessingResult"])

    def wait_result(self, result: str, timeout_s: float, what: str) -> None:
        wait_for(lambda: self.last_result() == result, timeout_s, what)

    def reach(self, n: int) -> None:
        """Wait until record `n` (or one after it) was processed."""
        self.seen.until(lambda _b: highest_processed(self.seen) >= n)

    def assert_all_in_order(self, count: int) -> None:
        """Records 0 to count - 1 all processed, each after the ones before it."""
        self.reach(count - 1)
        assert_in_order_without_gaps(self.seen.batches, range(count))

    def remove(self) -> None:
        with contextlib.suppress(ClientError):
            self.lam.delete_event_source_mapping(UUID=self.uuid)
        with contextlib.suppress(ClientError):
            self.lam.delete_function(FunctionName=self.name)


@pytest.fixture(params=["redis", "postgres"])
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    made: Broker
    if request.param == "redis":
        made = RedisBroker(redis_or_skip())
    else:
        made = PostgresBroker(postgres_or_skip())
    yield made
    made.close()


def test_lamina_killed_mid_stream_loses_and_reorders_nothing(
    broker: Broker, tmp_path: Path
) -> None:
    server = LaminaProcess(tmp_path / "data")
    server.start()
    try:
        app = Deployment(server.endpoint, broker)
        app.wait_connected()
        broker.produce(items(range(40)))
        app.reach(10)
        server.stop(signal.SIGKILL)  # a crash: nothing is given back gracefully
        assert highest_processed(app.seen) < 39, "the stream should still be mid-way"
        broker.produce(items(range(40, 60)))
        server.start()
        app.reconnect(server.endpoint)
        app.assert_all_in_order(60)
        app.remove()
    finally:
        server.stop()


def test_redis_restarted_mid_stream_loses_nothing(endpoint: str, tmp_path: Path) -> None:
    redis = pytest.importorskip("redis")
    private = PrivateRedis(tmp_path)
    private.start()
    try:
        broker = RedisBroker(redis.Redis.from_url(private.url), private.url)
        app = Deployment(endpoint, broker)
        app.wait_connected()
        broker.produce(items(range(30)))
        app.reach(5)
        private.stop()
        app.wait_result(CONNECTION_PROBLEM, 60, "the outage to be reported")
        private.start()
        broker.produce(items(range(30, 50)))
        app.assert_all_in_order(50)
        app.wait_result("OK", 30, "the mapping to recover")
        app.remove()
    finally:
        private.stop()


def test_a_redis_down_from_the_start_is_retried_until_it_is_up(
    endpoint: str, tmp_path: Path
) -> None:
    """A mapping created while its broker is down stays Enabled, says so, keeps trying (with
    backoff) and, once the broker is up, starts at its starting position and processes all."""
    redis = pytest.importorskip("redis")
    private = PrivateRedis(tmp_path)  # on a free port, not started yet
    try:
        broker = RedisBroker(redis.Redis.from_url(private.url), private.url)
        app = Deployment(endpoint, broker)
        app.wait_result(CONNECTION_PROBLEM, 60, "the outage to be reported")
        time.sleep(4)  # several attempts, backing off
        got = app.lam.get_event_source_mapping(UUID=app.uuid)
        assert got["State"] == "Enabled"
        assert got["LastProcessingResult"] == CONNECTION_PROBLEM
        assert app.lam.list_functions()["Functions"] is not None  # the server still serves
        private.start()
        app.wait_connected()
        broker.produce(items(range(10)))
        app.assert_all_in_order(10)
        app.wait_result("OK", 30, "the mapping to recover")
        app.remove()
    finally:
        private.stop()


def test_postgres_connections_terminated_mid_stream_lose_nothing(endpoint: str) -> None:
    broker = PostgresBroker(postgres_or_skip())
    try:
        app = Deployment(endpoint, broker)
        app.wait_connected()
        broker.produce(items(range(30)))
        for round_ in range(3):
            app.reach(5 + 8 * round_)
            wait_for(lambda: broker.terminate_backends(app.uuid) > 0, 30, "a backend to end")
        broker.produce(items(range(30, 45)))
        app.assert_all_in_order(45)
        app.remove()
    finally:
        broker.close()


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_a_broker_that_is_not_there_is_reported_not_fatal(
    kind: str, endpoint: str, lambda_client: Any
) -> None:
    port = free_port()
    if kind == "redis":
        args = {
            "EventSourceArn": "arn:aws:redis:us-east-1:000000000000:stream/nowhere",
            "SelfManagedEventSource": {"Endpoints": {"REDIS_URL": [f"redis://127.0.0.1:{port}"]}},
        }
    else:
        args = {
            "EventSourceArn": "arn:aws:postgres:us-east-1:000000000000:table/public.nowhere",
            "SelfManagedEventSource": {
                "Endpoints": {"POSTGRES_URL": [f"postgresql://postgres@127.0.0.1:{port}/test"]}
            },
        }
    name = f"streams-{uuid.uuid4().hex[:10]}"
    lambda_client.create_function(
        FunctionName=name,
        Runtime=PYTHON_RUNTIME,
        Role=ROLE,
        Handler="stream_recorder.handler",
        Code={"ZipFile": function_zip("stream_recorder")},
    )
    try:
        mapping = lambda_client.create_event_source_mapping(
            FunctionName=name, StartingPosition="LATEST", **args
        )
        wait_for(
            lambda: (
                lambda_client.get_event_source_mapping(UUID=mapping["UUID"]).get(
                    "LastProcessingResult"
                )
                == CONNECTION_PROBLEM
            ),
            60,
            "the connection problem to be reported",
        )
        got = lambda_client.get_event_source_mapping(UUID=mapping["UUID"])
        assert got["State"] == "Enabled"
        assert lambda_client.list_functions()["Functions"] is not None  # the server still serves
        lambda_client.delete_event_source_mapping(UUID=mapping["UUID"])
    finally:
        lambda_client.delete_function(FunctionName=name)
