"""Ordered stream sources (Redis Streams, PostgreSQL table changes) through event source mappings,
driven with boto3 against a real Lamina and the machine's real Redis and PostgreSQL.

Every test runs against both brokers: the stream semantics (order, partial batch failures,
bisection, retries, on-failure records, starting positions) are the same for both.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import CreateFunction, client_for, function_zip
from tests.integration.stream_brokers import (
    Broker,
    PostgresBroker,
    RedisBroker,
    Seen,
    postgres_or_skip,
    redis_or_skip,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture(params=["redis", "postgres"])
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    made: Broker
    if request.param == "redis":
        made = RedisBroker(redis_or_skip())
    else:
        made = PostgresBroker(postgres_or_skip())
    yield made
    made.close()


@pytest.fixture(scope="module")
def sqs(endpoint: str) -> Any:
    return client_for(endpoint, "sqs")


@pytest.fixture
def queue(sqs: Any) -> Iterator[Callable[[], tuple[str, str]]]:
    """Make a Lamina queue: (url, arn)."""
    made: list[str] = []

    def create() -> tuple[str, str]:
        url = str(sqs.create_queue(QueueName=f"streams-{uuid.uuid4().hex[:10]}")["QueueUrl"])
        made.append(url)
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return url, str(attrs["Attributes"]["QueueArn"])

    yield create
    for url in made:
        with contextlib.suppress(ClientError):
            sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def mappings(lambda_client: Any) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for mapping in made:
        with contextlib.suppress(ClientError):
            lambda_client.delete_event_source_mapping(UUID=mapping)


def recorder(create_function: CreateFunction, seen_url: str, mode: str = "ok") -> str:
    cfg = create_function(
        zip_bytes=function_zip("stream_recorder"),
        handler="stream_recorder.handler",
        Timeout=30,
        Environment={"Variables": {"SEEN_QUEUE_URL": seen_url, "MODE": mode}},
    )
    return str(cfg["FunctionName"])


def start_mapping(
    client: Any, broker: Broker, function: str, made: list[str], **params: Any
) -> dict[str, Any]:
    params.setdefault("StartingPosition", "TRIM_HORIZON")
    params.setdefault("BatchSize", 10)
    mapping = client.create_event_source_mapping(
        FunctionName=function, **broker.mapping_args(), **params
    )
    made.append(mapping["UUID"])
    wait_for(
        lambda: client.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Enabled",
        30,
        "the mapping to be Enabled",
    )
    wait_for(lambda: broker.connected(mapping["UUID"]), 30, "the poller to connect")
    return dict(mapping)


def items(numbers: range, poison: set[int] = frozenset()) -> list[dict[str, Any]]:  # type: ignore[assignment]
    return [{"n": n, "poison": n in poison} for n in numbers]


def batch_info(broker: Broker, record: dict[str, Any]) -> dict[str, Any]:
    """The batch an on-failure record names, under the member the broker's kind uses."""
    return dict(record["KinesisBatchInfo" if broker.name == "redis" else "DDBStreamBatchInfo"])


def has(n: int) -> Callable[[list[dict[str, Any]]], bool]:
    """For Seen.until: record `n` was in some batch."""
    return lambda batches: n in [m for b in batches for m in b["ns"]]


@dataclass
class Streams:
    """What a test here works with: the broker under test, the clients, and the queues and
    mappings it makes (deleted by their fixtures)."""

    broker: Broker
    lambda_client: Any
    sqs: Any
    queue: Callable[[], tuple[str, str]]
    create_function: CreateFunction
    mappings: list[str]

    def recorder(self, mode: str = "ok") -> tuple[str, Seen]:
        """A stream_recorder function in `mode` and the reports it sends to a queue of its own."""
        seen_url, _ = self.queue()
        return recorder(self.create_function, seen_url, mode), Seen(self.sqs, seen_url)

    def start(self, function: str, **params: Any) -> dict[str, Any]:
        return start_mapping(self.lambda_client, self.broker, function, self.mappings, **params)

    def failing(self, mode: str, **params: Any) -> tuple[Seen, Seen, dict[str, Any]]:
        """A recorder in `mode` mapped with an on-failure queue: (its reports, the on-failure
        records, the mapping)."""
        function, seen = self.recorder(mode)
        failure_url, failure_arn = self.queue()
        destination = {"OnFailure": {"Destination": failure_arn}}
        mapping = self.start(function, DestinationConfig=destination, **params)
        return seen, Seen(self.sqs, failure_url), mapping


@pytest.fixture
def streams(
    broker: Broker,
    lambda_client: Any,
    sqs: Any,
    queue: Callable[[], tuple[str, str]],
    create_function: CreateFunction,
    mappings: list[str],
) -> Streams:
    return Streams(broker, lambda_client, sqs, queue, create_function, mappings)


def test_records_arrive_in_order_in_the_source_shape(streams: Streams) -> None:
    broker = streams.broker
    function, seen = streams.recorder()
    mapping = streams.start(function, BatchSize=5)
    assert mapping["EventSourceArn"] == broker.arn
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    broker.produce(items(range(12)))
    broker.produce(items(range(12, 30)))
    seen.until(has(29))
    assert seen.processed() == list(range(30)), "each record once, in order"
    assert all(len(b["ns"]) <= 5 for b in seen.batches)
    got = streams.lambda_client.get_event_source_mapping(UUID=mapping["UUID"])
    assert got["LastProcessingResult"] == "OK"


def test_record_shapes(streams: Streams) -> None:
    """The event as the function receives it (stream_shape forwards it whole)."""
    broker = streams.broker
    seen_url, _ = streams.queue()
    cfg = streams.create_function(
        zip_bytes=function_zip("stream_shape"),
        handler="stream_shape.handler",
        Environment={"Variables": {"SEEN_QUEUE_URL": seen_url}},
    )
    streams.start(cfg["FunctionName"])
    broker.produce(items(range(2)))
    seen = Seen(streams.sqs, seen_url)
    seen.until(lambda b: sum(len(x["event"]["Records"]) for x in b) >= 2)
    record = seen.batches[0]["event"]["Records"][0]
    assert record["eventSourceARN"] == broker.arn
    assert record["awsRegion"] == "us-east-1"
    if broker.name == "redis":
        assert record["eventSource"] == "aws:kinesis"
        assert record["eventName"] == "aws:kinesis:record"
        assert record["eventVersion"] == "1.0"
        kinesis = record["kinesis"]
        assert kinesis["kinesisSchemaVersion"] == "1.0"
        assert json.loads(base64.b64decode(kinesis["data"])) == {"n": 0, "poison": False}
        assert record["eventID"] == f"shardId-000000000000:{kinesis['sequenceNumber']}"
        assert isinstance(kinesis["approximateArrivalTimestamp"], float)
        assert kinesis["partitionKey"]
    else:
        assert record["eventSource"] == "aws:dynamodb"
        assert record["eventName"] == "INSERT"
        ddb = record["dynamodb"]
        assert ddb["Keys"] == {"id": {"N": ddb["NewImage"]["id"]["N"]}}
        assert ddb["NewImage"]["n"] == {"N": "0"}
        assert ddb["NewImage"]["poison"] == {"BOOL": False}
        assert "OldImage" not in ddb
        assert ddb["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert ddb["SequenceNumber"].isdigit()
        assert isinstance(ddb["ApproximateCreationDateTime"], int)
        assert ddb["SizeBytes"] > 0


def test_latest_skips_what_came_before_and_trim_horizon_does_not(streams: Streams) -> None:
    # A first mapping sets the source up (PostgreSQL captures changes from then on).
    first_fn, first = streams.recorder()
    streams.start(first_fn)
    streams.broker.produce(items(range(5)))
    first.until(has(4))
    latest_fn, latest = streams.recorder()
    horizon_fn, horizon = streams.recorder()
    streams.start(latest_fn, StartingPosition="LATEST")
    streams.start(horizon_fn, StartingPosition="TRIM_HORIZON")
    streams.broker.produce(items(range(5, 10)))
    latest.until(has(9))
    horizon.until(has(9))
    assert latest.processed() == list(range(5, 10))
    assert horizon.processed() == list(range(10))


def test_report_batch_item_failures_checkpoints_before_the_first_failure(streams: Streams) -> None:
    broker = streams.broker
    seen, failures, _ = streams.failing(
        "report",
        BatchSize=6,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        MaximumRetryAttempts=1,
    )
    broker.produce(items(range(6), poison={3}))
    failures.until(lambda b: len(b) >= 1)
    seen.drain()
    # First the whole batch; then, from the first failed record on, the retry.
    assert seen.batches[0]["ns"] == [0, 1, 2, 3, 4, 5]
    assert seen.batches[1]["ns"] == [3, 4, 5]
    assert len([b for b in seen.batches if 3 in b["ns"]]) == 2  # MaximumRetryAttempts=1
    record = failures.batches[0]
    info = batch_info(broker, record)
    assert info["batchSize"] == 3
    assert info["startSequenceNumber"] == seen.batches[1]["seqs"][0]
    assert info["endSequenceNumber"] == seen.batches[1]["seqs"][-1]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    # After giving up, the shard moves on.
    broker.produce(items(range(6, 8)))
    seen.until(has(7))


def test_bisect_isolates_the_failing_record(streams: Streams) -> None:
    broker = streams.broker
    seen, failures, _ = streams.failing(
        "raise", BatchSize=8, BisectBatchOnFunctionError=True, MaximumRetryAttempts=0
    )
    broker.produce(items(range(8), poison={5}))
    failures.until(lambda b: len(b) >= 1)
    seen.until(lambda b: 7 in [n for x in b if not x["failed"] for n in x["ns"]])
    assert sorted(set(seen.processed())) == [0, 1, 2, 3, 4, 6, 7]
    info = batch_info(broker, failures.batches[0])
    assert info["batchSize"] == 1
    poison_seq = next(b["seqs"][0] for b in seen.batches if b["ns"] == [5])
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == poison_seq
    assert len(failures.drain()) == 1


def test_retries_exhausted_go_to_the_on_failure_queue(streams: Streams) -> None:
    broker = streams.broker
    seen, failures, mapping = streams.failing("raise", BatchSize=3, MaximumRetryAttempts=2)
    broker.produce(items(range(3), poison={1}))
    failures.until(lambda b: len(b) >= 1)
    seen.drain()
    assert [b["ns"] for b in seen.batches[:3]] == [[0, 1, 2]] * 3  # one try and two retries
    record = failures.batches[0]
    assert record["version"] == "1.0"
    assert record["timestamp"].endswith("Z")
    context = record["requestContext"]
    assert context["condition"] == "RetryAttemptsExhausted"
    assert context["approximateInvokeCount"] == 3
    assert context["functionArn"] == mapping["FunctionArn"]
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responseContext"]["statusCode"] == 200
    info = batch_info(broker, record)
    assert info["streamArn"] == broker.arn
    assert info["batchSize"] == 3
    assert info["startSequenceNumber"] == seen.batches[0]["seqs"][0]
    assert info["endSequenceNumber"] == seen.batches[0]["seqs"][-1]
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    # The shard moved on past the batch given up.
    broker.produce(items(range(3, 5)))
    seen.until(has(4))
    assert seen.batches[-1]["ns"][-1] == 4


def test_the_aws_cli_names_a_redis_stream(
    aws_cli: Any, sqs: Any, queue: Any, create_function: CreateFunction
) -> None:
    client = redis_or_skip()
    broker = RedisBroker(client)
    seen_url, _ = queue()
    function = recorder(create_function, seen_url)
    try:
        out = aws_cli(
            "lambda",
            "create-event-source-mapping",
            "--function-name",
            function,
            "--event-source-arn",
            broker.arn,
            "--self-managed-event-source",
            json.dumps({"Endpoints": {"REDIS_URL": [broker.url]}}),
            "--starting-position",
            "TRIM_HORIZON",
            "--maximum-retry-attempts",
            "3",
            "--bisect-batch-on-function-error",
        )
        mapping = json.loads(out.stdout)
        assert mapping["EventSourceArn"] == broker.arn
        assert mapping["SelfManagedEventSource"] == {"Endpoints": {"REDIS_URL": [broker.url]}}
        assert mapping["MaximumRetryAttempts"] == 3
        assert mapping["BisectBatchOnFunctionError"] is True
        wait_for(lambda: broker.connected(mapping["UUID"]), 30, "the poller to connect")
        broker.produce(items(range(3)))
        Seen(sqs, seen_url).until(has(2))
        aws_cli("lambda", "delete-event-source-mapping", "--uuid", mapping["UUID"])
        wait_for(lambda: f"lamina-{mapping['UUID']}" not in broker.groups(), 30, "the group to go")
    finally:
        broker.close()


def test_deleting_the_last_mapping_of_a_table_removes_its_trigger(
    lambda_client: Any, queue: Any, create_function: CreateFunction
) -> None:
    conn = postgres_or_skip()
    broker = PostgresBroker(conn)
    seen_url, _ = queue()
    made: list[str] = []
    try:
        first = start_mapping(lambda_client, broker, recorder(create_function, seen_url), made)
        second = start_mapping(lambda_client, broker, recorder(create_function, seen_url), made)

        def triggers() -> int:
            row = conn.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                [broker.table],
            ).fetchone()
            return int(row[0])

        assert triggers() == 1
        lambda_client.delete_event_source_mapping(UUID=first["UUID"])
        wait_for(lambda: not broker.connected(first["UUID"]), 30, "the first consumer to go")
        assert triggers() == 1, "another mapping still reads the table"
        lambda_client.delete_event_source_mapping(UUID=second["UUID"])
        wait_for(lambda: triggers() == 0, 30, "the trigger to be dropped")
        assert not broker.connected(second["UUID"])
    finally:
        for mapping in made:
            with contextlib.suppress(ClientError):
                lambda_client.delete_event_source_mapping(UUID=mapping)
        broker.close()


def test_a_function_as_on_failure_destination_gets_the_record(streams: Streams) -> None:
    """Lamina's extension: OnFailure may name a function, which is invoked asynchronously with the
    on-failure record (AWS takes queues, topics and buckets for streams)."""
    broker = streams.broker
    function, _ = streams.recorder("raise")
    failure_url, _ = streams.queue()
    destination = streams.create_function(
        zip_bytes=function_zip("stream_shape"),
        handler="stream_shape.handler",
        Environment={"Variables": {"SEEN_QUEUE_URL": failure_url}},
    )
    streams.start(
        function,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": destination["FunctionArn"]}},
    )
    broker.produce(items(range(2), poison={0}))
    failures = Seen(streams.sqs, failure_url)
    failures.until(lambda b: len(b) >= 1)
    record = failures.batches[0]["event"]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    info = batch_info(broker, record)
    assert info["streamArn"] == broker.arn
    assert info["batchSize"] == 2


def test_a_missing_on_failure_queue_holds_the_shard_until_it_exists(streams: Streams) -> None:
    """A batch given up is checkpointed only once its on-failure record was delivered: while the
    destination queue does not exist the shard waits (the records after it are not processed) and
    the mapping says why; once the queue is created the record arrives and the stream moves on."""
    broker, sqs = streams.broker, streams.sqs
    name = f"streams-late-{uuid.uuid4().hex[:10]}"
    failure_arn = f"arn:aws:sqs:us-east-1:000000000000:{name}"
    function, seen = streams.recorder("raise")
    mapping = streams.start(
        function,
        BatchSize=2,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": failure_arn}},
    )
    broker.produce(items(range(2), poison={0}))

    def result() -> str:
        got = streams.lambda_client.get_event_source_mapping(UUID=mapping["UUID"])
        return str(got["LastProcessingResult"])

    wait_for(lambda: "could not be sent" in result(), 60, "the mapping to report the destination")
    assert failure_arn in result()
    broker.produce(items(range(2, 4)))
    time.sleep(3)  # several send attempts (1 s, 2 s): the shard must not move on meanwhile
    seen.drain()
    assert seen.processed() == [], "records after the batch were processed before it was settled"
    assert [b["ns"] for b in seen.batches] == [[0, 1]], "the batch given up was invoked again"
    assert "could not be sent" in result()

    url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    try:
        failures = Seen(sqs, url)
        failures.until(lambda b: len(b) >= 1, 60)
        info = batch_info(broker, failures.batches[0])
        assert info["batchSize"] == 2
        assert info["startSequenceNumber"] == seen.batches[0]["seqs"][0]
        seen.until(lambda b: 3 in [n for x in b if not x["failed"] for n in x["ns"]], 60)
        assert seen.processed() == [2, 3]
        assert len(failures.drain()) == 1, "the record was sent once"
    finally:
        with contextlib.suppress(ClientError):
            sqs.delete_queue(QueueUrl=url)


def test_a_missing_on_failure_function_holds_the_shard_until_it_exists(
    lambda_client: Any,
    sqs: Any,
    queue: Any,
    create_function: CreateFunction,
    mappings: list[str],
) -> None:
    """The same for a function as destination (Lamina's extension), on Redis: nothing moves on
    while the function does not exist; once it is created it gets the record, then the rest."""
    broker = RedisBroker(redis_or_skip())
    try:
        seen_url, _ = queue()
        failure_url, _ = queue()
        function = recorder(create_function, seen_url, mode="raise")
        name = f"late-{uuid.uuid4().hex[:10]}"
        destination = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
        mapping = start_mapping(
            lambda_client,
            broker,
            function,
            mappings,
            BatchSize=2,
            MaximumRetryAttempts=0,
            DestinationConfig={"OnFailure": {"Destination": destination}},
        )
        broker.produce(items(range(2), poison={0}))
        wait_for(
            lambda: (
                "could not be sent"
                in str(
                    lambda_client.get_event_source_mapping(UUID=mapping["UUID"])[
                        "LastProcessingResult"
                    ]
                )
            ),
            60,
            "the mapping to report the destination",
        )
        broker.produce(items(range(2, 4)))
        seen = Seen(sqs, seen_url)
        time.sleep(2)
        seen.drain()
        assert seen.processed() == [], "records after the batch were processed first"
        create_function(
            zip_bytes=function_zip("stream_shape"),
            name=name,
            handler="stream_shape.handler",
            Environment={"Variables": {"SEEN_QUEUE_URL": failure_url}},
        )
        failures = Seen(sqs, failure_url)
        failures.until(lambda b: len(b) >= 1, 60)
        record = failures.batches[0]["event"]
        assert record["KinesisBatchInfo"]["batchSize"] == 2
        seen.until(lambda b: 3 in [n for x in b if not x["failed"] for n in x["ns"]], 60)
        assert seen.processed() == [2, 3]
    finally:
        broker.close()
