"""RabbitMQ queues as an event source, against a real broker on 127.0.0.1:5672 (guest/guest).

Skipped with the reason when no broker answers there (a laptop without RabbitMQ); in CI (CI set)
a missing broker fails instead, since .ci/run starts one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import (
    CreateFunction,
    client_for,
    deploy,
)
from tests.integration.event_sources import events_of, poll, wait_state
from tests.integration.lamina_process import LaminaProcess

BROKER = "amqp://127.0.0.1:5672"
GUEST_URL = "amqp://guest:guest@127.0.0.1:5672/"
SECRET = "arn:aws:secretsmanager:us-east-1:000000000000:secret:rmq-guest"
AUTH = [{"Type": "BASIC_AUTH", "URI": SECRET}, {"Type": "VIRTUAL_HOST", "URI": "/"}]


def _broker_problem() -> str | None:
    """Why the broker cannot be used, or None; a loaded machine gets three generous tries."""

    async def probe() -> None:
        connection = await aio_pika.connect(GUEST_URL, timeout=20)
        await connection.close()

    problem = None
    for attempt in range(3):
        try:
            asyncio.run(probe())
            return None
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
            time.sleep(1 + attempt)
    return problem


@pytest.fixture(scope="module")
def broker() -> str:
    problem = _broker_problem()
    if problem is not None:
        reason = (
            f"RabbitMQ is not reachable at {BROKER} as guest/guest ({problem}); start it with "
            "`rabbitmq-server -detached` to run these tests"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return BROKER


@pytest.fixture(scope="module")
def secret(lamina: LaminaProcess) -> str:
    """The BASIC_AUTH secret, in Lamina's secret store (a file in its data dir)."""
    folder = lamina.data_dir / "secrets"
    folder.mkdir(exist_ok=True)
    (folder / "rmq-guest").write_text(json.dumps({"username": "guest", "password": "guest"}))
    return SECRET


async def _declare(name: str) -> None:
    connection = await aio_pika.connect(GUEST_URL, timeout=10)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(name, durable=True)


async def _publish(name: str, bodies: list[str], **properties: Any) -> list[str]:
    connection = await aio_pika.connect(GUEST_URL, timeout=10)
    ids = []
    async with connection:
        channel = await connection.channel()
        for body in bodies:
            ident = str(uuid.uuid4())
            ids.append(ident)
            message = aio_pika.Message(
                body.encode(),
                message_id=ident,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                **properties,
            )
            await channel.default_exchange.publish(message, routing_key=name)
    return ids


async def _ready_count(name: str) -> int:
    connection = await aio_pika.connect(GUEST_URL, timeout=10)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        return int(queue.declaration_result.message_count or 0)


async def _delete(name: str) -> None:
    connection = await aio_pika.connect(GUEST_URL, timeout=10)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(name)


def publish(name: str, bodies: list[str], **properties: Any) -> list[str]:
    return asyncio.run(_publish(name, bodies, **properties))


def ready_count(name: str) -> int:
    return asyncio.run(_ready_count(name))


@pytest.fixture
def rabbit_queue(broker: str) -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def create() -> str:
        name = f"esm-{uuid.uuid4().hex[:10]}"
        asyncio.run(_declare(name))
        made.append(name)
        return name

    yield create
    for name in made:
        with contextlib.suppress(Exception):
            asyncio.run(_delete(name))


def messages_of(logs: Any, function: str) -> list[dict[str, Any]]:
    return [
        m
        for e in events_of(logs, function)
        for batch in e.get("rmqMessagesByQueue", {}).values()
        for m in batch
    ]


def ids_seen(logs: Any, function: str) -> set[str]:
    return {m["basicProperties"]["messageId"] for m in messages_of(logs, function)}


def self_managed(queue: str, **extra: Any) -> dict[str, Any]:
    return {
        "SelfManagedEventSource": {"Endpoints": {"RABBITMQ_BROKERS": [BROKER]}},
        "Queues": [queue],
        "SourceAccessConfigurations": AUTH,
        **extra,
    }


def test_messages_arrive_in_lambda_shape_and_are_acked(
    lambda_client: Any,
    logs: Any,
    create_function: CreateFunction,
    rabbit_queue: Callable[[], str],
    mappings: Callable[..., dict[str, Any]],
    secret: str,
) -> None:
    fn = create_function("batch")
    queue = rabbit_queue()
    ids = publish(
        queue,
        [json.dumps({"i": i}) for i in range(30)],
        content_type="application/json",
        headers={"origin": "test", "n": 7},
        priority=3,
    )
    made = mappings(FunctionName=fn["FunctionName"], BatchSize=10, **self_managed(queue))
    assert made["BatchSize"] == 10
    assert made["Queues"] == [queue]
    assert made["SourceAccessConfigurations"] == AUTH
    assert made["SelfManagedEventSource"] == {"Endpoints": {"RABBITMQ_BROKERS": [BROKER]}}
    assert "EventSourceArn" not in made and "ScalingConfig" not in made

    poll(lambda: ids_seen(logs, fn["FunctionName"]) >= set(ids), what="30 messages")
    events = events_of(logs, fn["FunctionName"])
    event = events[0]
    assert event["eventSource"] == "aws:rmq"
    assert event["eventSourceArn"] == BROKER
    assert list(event["rmqMessagesByQueue"]) == [f"{queue}::/"]
    assert all(len(m) <= 10 for e in events for m in e["rmqMessagesByQueue"].values())
    message = event["rmqMessagesByQueue"][f"{queue}::/"][0]
    props = message["basicProperties"]
    assert props["contentType"] == "application/json"
    assert props["deliveryMode"] == 2
    assert props["priority"] == 3
    assert props["headers"]["origin"] == {"bytes": list(b"test")}
    assert props["headers"]["n"] == 7
    assert props["bodySize"] == len(base64.b64decode(message["data"]))
    assert message["redelivered"] is False
    assert json.loads(base64.b64decode(message["data"])) in [{"i": i} for i in range(30)]
    got = lambda_client.get_event_source_mapping(UUID=made["UUID"])
    assert got["LastProcessingResult"] == "OK"
    # Every message was acknowledged: none is left, not even after the consumer goes away.
    lambda_client.update_event_source_mapping(UUID=made["UUID"], Enabled=False)
    wait_state(lambda_client, made["UUID"], "Disabled")
    assert ready_count(queue) == 0


def test_a_failed_batch_is_requeued_and_redelivered(
    logs: Any,
    create_function: CreateFunction,
    rabbit_queue: Callable[[], str],
    mappings: Callable[..., dict[str, Any]],
    secret: str,
) -> None:
    fn = create_function("batch")  # raises for "fail-once" unless it is a redelivery
    queue = rabbit_queue()
    (ident,) = publish(queue, ["fail-once please"])
    mappings(FunctionName=fn["FunctionName"], **self_managed(queue))

    def deliveries() -> list[dict[str, Any]]:
        found = [
            m
            for m in messages_of(logs, fn["FunctionName"])
            if m["basicProperties"]["messageId"] == ident
        ]
        return found if len(found) >= 2 else []

    first, second = deliveries_list = poll(deliveries, what="the redelivery")[:2]
    assert first["redelivered"] is False and second["redelivered"] is True
    assert len(deliveries_list) == 2
    poll(lambda: ready_count(queue) == 0, 30, "the queue to be empty")


def test_filters_drop_and_ack_unmatched_messages(
    logs: Any,
    create_function: CreateFunction,
    rabbit_queue: Callable[[], str],
    mappings: Callable[..., dict[str, Any]],
    secret: str,
) -> None:
    fn = create_function("batch")
    queue = rabbit_queue()
    pattern = {"data": {"kind": ["order"]}}
    wanted = publish(queue, [json.dumps({"kind": "order"})] * 2)
    publish(queue, [json.dumps({"kind": "other"}), "not json"])
    mappings(
        FunctionName=fn["FunctionName"],
        FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]},
        **self_managed(queue),
    )
    poll(lambda: ids_seen(logs, fn["FunctionName"]) >= set(wanted), what="the matching messages")
    poll(lambda: ready_count(queue) == 0, 30, "the queue to be empty")
    time.sleep(0.5)
    assert ids_seen(logs, fn["FunctionName"]) == set(wanted)


def test_broker_arn_form_and_validation(
    lambda_client: Any,
    logs: Any,
    create_function: CreateFunction,
    rabbit_queue: Callable[[], str],
    mappings: Callable[..., dict[str, Any]],
    secret: str,
) -> None:
    fn = create_function("batch")
    name = fn["FunctionName"]
    queue = rabbit_queue()
    arn = "arn:aws:mq:us-east-1:000000000000:broker:local:b-0123456789ab"
    made = mappings(
        EventSourceArn=arn,
        FunctionName=name,
        Queues=[queue],
        SourceAccessConfigurations=AUTH,
    )
    assert made["EventSourceArn"] == arn
    assert made["BatchSize"] == 100
    (ident,) = publish(queue, ["via the broker ARN"])
    poll(lambda: ident in ids_seen(logs, name), what="the message")
    assert events_of(logs, name)[0]["eventSourceArn"] == arn

    errors = lambda_client.exceptions
    cases: list[tuple[type[Exception], str, dict[str, Any]]] = [
        (
            errors.InvalidParameterValueException,
            "Queues",
            {"EventSourceArn": arn, "SourceAccessConfigurations": AUTH},
        ),
        (
            errors.InvalidParameterValueException,
            "BASIC_AUTH",
            {"EventSourceArn": arn, "Queues": ["q"]},
        ),
        (
            errors.InvalidParameterValueException,
            "Secrets Manager secret ARN",
            {
                "EventSourceArn": arn,
                "Queues": ["q"],
                "SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": "guest:guest"}],
            },
        ),
        (
            errors.InvalidParameterValueException,
            "Unsupported ScalingConfig",
            {**self_managed("q"), "ScalingConfig": {"MaximumConcurrency": 2}},
        ),
        (
            errors.InvalidParameterValueException,
            "Unsupported FunctionResponseTypes",
            {**self_managed("q"), "FunctionResponseTypes": ["ReportBatchItemFailures"]},
        ),
        (
            errors.InvalidParameterValueException,
            "credentials go in a BASIC_AUTH secret",
            {
                **self_managed("q"),
                "SelfManagedEventSource": {"Endpoints": {"RABBITMQ_BROKERS": ["amqp://u:p@h:1"]}},
            },
        ),
        (
            errors.ResourceConflictException,
            made["UUID"],
            {"EventSourceArn": arn, "Queues": [queue], "SourceAccessConfigurations": AUTH},
        ),
    ]
    for exc, match, kwargs in cases:
        with pytest.raises(exc) as info:
            lambda_client.create_event_source_mapping(FunctionName=name, **kwargs)
        assert match in str(info.value), (kwargs, str(info.value))


def test_unreachable_broker_missing_secret_and_missing_queue_are_reported(
    lambda_client: Any,
    create_function: CreateFunction,
    rabbit_queue: Callable[[], str],
    mappings: Callable[..., dict[str, Any]],
    secret: str,
) -> None:
    fn = create_function("batch")
    down = mappings(
        FunctionName=fn["FunctionName"],
        SelfManagedEventSource={"Endpoints": {"RABBITMQ_BROKERS": ["amqp://127.0.0.1:1"]}},
        Queues=["anything"],
        SourceAccessConfigurations=AUTH,
    )
    no_secret = mappings(
        FunctionName=fn["FunctionName"],
        **self_managed(
            "other",
            SourceAccessConfigurations=[
                {
                    "Type": "BASIC_AUTH",
                    "URI": "arn:aws:secretsmanager:us-east-1:000000000000:secret:absent",
                }
            ],
        ),
    )
    no_queue = mappings(
        FunctionName=fn["FunctionName"], **self_managed(f"absent-{uuid.uuid4().hex}")
    )

    def result(ident: str) -> str:
        return str(lambda_client.get_event_source_mapping(UUID=ident)["LastProcessingResult"])

    poll(
        lambda: result(down["UUID"]).startswith("PROBLEM: Connection error"),
        30,
        "a connection problem",
    )
    poll(
        lambda: (
            "absent" in result(no_secret["UUID"])
            and result(no_secret["UUID"]).startswith("PROBLEM")
        ),
        30,
        "a secret problem",
    )
    poll(lambda: "does not exist" in result(no_queue["UUID"]), 30, "a missing queue")
    for ident in (down["UUID"], no_secret["UUID"], no_queue["UUID"]):
        assert lambda_client.get_event_source_mapping(UUID=ident)["State"] == "Enabled"
    # The server is unharmed.
    assert lambda_client.get_function(FunctionName=fn["FunctionName"])


@pytest.mark.slow
def test_a_broker_restart_mid_stream_loses_nothing(
    lambda_client: Any,
    logs: Any,
    create_function: CreateFunction,
    rabbit_queue: Callable[[], str],
    mappings: Callable[..., dict[str, Any]],
    secret: str,
) -> None:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        pytest.skip("rabbitmqctl is not installed: the broker cannot be restarted from here")
    fn = create_function("batch", Environment={"Variables": {"DELAY": "0.05"}})
    queue = rabbit_queue()
    sent = publish(queue, [f"before {i}" for i in range(150)])
    made = mappings(FunctionName=fn["FunctionName"], BatchSize=5, **self_managed(queue))
    poll(lambda: len(ids_seen(logs, fn["FunctionName"])) >= 20, what="processing to be under way")

    problems: list[str] = []
    states: set[str] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            with contextlib.suppress(ClientError):
                got = lambda_client.get_event_source_mapping(UUID=made["UUID"])
                states.add(got["State"])
                if got["LastProcessingResult"].startswith("PROBLEM"):
                    problems.append(got["LastProcessingResult"])
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        subprocess.run([ctl, "stop_app"], check=True, capture_output=True, timeout=120)
        time.sleep(2)
    finally:
        subprocess.run([ctl, "start_app"], check=True, capture_output=True, timeout=180)
        subprocess.run([ctl, "await_startup"], check=False, capture_output=True, timeout=180)
    sent += poll(lambda: _publish_when_up(queue), 60, "the broker to take messages again")
    poll(
        lambda: ids_seen(logs, fn["FunctionName"]) >= set(sent),
        180,
        "every message after the restart",
    )
    stop.set()
    watcher.join(5)
    assert problems, "the outage was not reported in LastProcessingResult"
    assert any("Connection error" in p for p in problems), problems
    assert states == {"Enabled"}, f"the mapping left Enabled during the outage: {states}"
    poll(
        lambda: (
            lambda_client.get_event_source_mapping(UUID=made["UUID"])["LastProcessingResult"]
            == "OK"
        ),
        60,
        "the mapping to report OK again",
    )


def _publish_when_up(queue: str) -> list[str]:
    try:
        return publish(queue, [f"after {i}" for i in range(50)])
    except Exception:
        return []


@pytest.mark.slow
def test_killing_lamina_mid_batch_loses_no_message(
    broker: str, rabbit_queue: Callable[[], str], tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    server = LaminaProcess(tmp_path / "data", env={"LAMINA_SANDBOX": "process"})
    server.start()
    try:
        (server.data_dir / "secrets").mkdir()
        (server.data_dir / "secrets" / "rmq-guest").write_text(
            json.dumps({"username": "guest", "password": "guest"})
        )
        lam = client_for(server.endpoint)
        deploy(
            lam,
            "ledger",
            "ledger",
            Environment={"Variables": {"LEDGER": str(ledger), "DELAY": "0.2"}},
        )
        queue = rabbit_queue()
        sent = publish(queue, [f"m{i}" for i in range(60)])
        lam.create_event_source_mapping(FunctionName="ledger", BatchSize=5, **self_managed(queue))

        def seen() -> set[str]:
            return set(ledger.read_text().split()) if ledger.exists() else set()

        poll(lambda: len(seen()) >= 10, what="processing to be under way")
        server.stop(signal.SIGKILL)  # batches in flight were not acked: the broker keeps them
        server.start()
        poll(lambda: seen() >= set(sent), 120, "every message after the restart")
        poll(lambda: ready_count(queue) == 0, 30, "the queue to be empty")
    finally:
        server.stop()
