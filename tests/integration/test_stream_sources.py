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


def test_records_arrive_in_order_in_the_source_shape(
    broker: Broker,
    lambda_client: Any,
    sqs: Any,
    queue: Any,
    create_function: CreateFunction,
    mappings: list[str],
) -> None:
    seen_url, _ = queue()
    function = recorder(create_function, seen_url)
    mapping = start_mapping(lambda_client, broker, function, mappings, BatchSize=5)
    assert mapping["EventSourceArn"] == broker.arn
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    broker.produce(items(range(12)))
    broker.produce(items(range(12, 30)))
    seen = Seen(sqs, seen_url)
    seen.until(lambda b: 29 in [n for x in b for n in x["ns"]])
    assert seen.processed() == list(range(30)), "each record once, in order"
    assert all(len(b["ns"]) <= 5 for b in seen.batches)
    got = lambda_client.get_event_source_mapping(UUID=mapping["UUID"])
    assert got["LastProcessingResult"] == "OK"


def test_record_shapes(
    broker: Broker,
    lambda_client: Any,
    sqs: Any,
    queue: Any,
    create_function: CreateFunction,
    mappings: list[str],
) -> None:
    """The event as the function receives it (stream_shape forwards it whole)."""
    seen_url, _ = queue()
    cfg = create_function(
        zip_bytes=function_zip("stream_shape"),
        handler="stream_shape.handler",
        Environment={"Variables": {"SEEN_QUEUE_URL": seen_url}},
    )
    start_mapping(lambda_client, broker, cfg["FunctionName"], mappings)
    broker.produce(items(range(2)))
    seen = Seen(sqs, seen_url)
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


def test_latest_skips_what_came_before_and_trim_horizon_does_not(
    broker: Broker,
    lambda_client: Any,
    sqs: Any,
    queue: Any,
    create_function: CreateFunction,
    mappings: list[str],
) -> None:
    # A first mapping sets the source up (PostgreSQL captures changes from then on).
    first_url, _ = queue()
    start_mapping(lambda_client, broker, recorder(create_function, first_url), mappings)
    broker.produce(items(range(5)))
    Seen(sqs, first_url).until(lambda b: 4 in [n for x in b for n in x["ns"]])
    latest_url, _ = queue()
    horizon_url, _ = queue()
    latest_fn = recorder(create_function, latest_url)
    start_mapping(lambda_client, broker, latest_fn, mappings, StartingPosition="LATEST")
    horizon_fn = recorder(create_function, horizon_url)
    start_mapping(lambda_client, broker, horizon_fn, mappings, StartingPosition="TRIM_HORIZON")
    broker.produce(items(range(5, 10)))
    latest, horizon = Seen(sqs, latest_url), Seen(sqs, horizon_url)
    latest.until(lambda b: 9 in [n for x in b for n in x["ns"]])
    horizon.until(lambda b: 9 in [n for x in b for n in x["ns"]])
    assert latest.processed() == list(range(5, 10))
    assert horizon.processed() == list(range(10))


def test_report_batch_item_failures_checkpoints_before_the_first_failure(
    broker: Broker,
    lambda_client: Any,
    sqs: Any,
    queue: Any,
    create_function: CreateFunction,
    mappings: list[str],
) -> None:
    seen_url, _ = queue()
    failure_url, failure_arn = queue()
    function = recorder(create_function, seen_url, mode="report")
    start_mapping(
        lambda_client,
        broker,
        function,
        mappings,
        BatchSize=6,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": failure_arn}},
    )
    broker.produce(items(range(6), poison={3}))
    failures = Seen(sqs, failure_url)
    failures.until(lambda b: len(b) >= 1)
    seen = Seen(sqs, seen_url)
    seen.drain()
    # First the whole batch; then, from the first failed record on, the retry.
    assert seen.batches[0]["ns"] == [0, 1, 2, 3, 4, 5]
    assert seen.batches[1]["ns"] == [3, 4, 5]
    assert len([b for b in seen.batches if 3 in b["ns"]]) == 2  # MaximumRetryAttempts=1
    record = failures.batches[0]
    info = record["KinesisBatchInfo" if broker.name == "redis" else "DDBStreamBatchInfo"]
    assert info["batchSize"] == 3
    assert info["startSequenceNumber"] == seen.batches[1]["seqs"][0]
    assert info["endSequenceNumber"] == seen.batches[1]["seqs"][-1]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    # After giving up, the shard moves on.
    broker.produce(items(range(6, 8)))
    seen.until(lambda b: 7 in [n for x in b for n in x["ns"]])


def test_bisect_isolates_the_failing_record(
    broker: Broker,
    lambda_client: Any,
    sqs: Any,
    queue: Any,
    create_function: CreateFunction,
    mappings: list[str],
) -> None:
    seen_url, _ = queue()
    failure_url, failure_arn = queue()
    function = recorder(create_function, seen_url, mode="raise")
    start_mapping(
        lambda_client,
        broker,
        function,
        mappings,
        BatchSize=8,
        BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": failure_arn}},
    )
    broker.produce(items(range(8), poison={5}))
    failures = Seen(sqs, failure_url)
    failures.until(lambda b: len(b) >= 1)
    seen = Seen(sqs, seen_url)
    seen.until(lambda b: 7 in [n for x in b if not x["failed"] for n in x["ns"]])
    assert sorted(set(seen.processed())) == [0, 1, 2, 3, 4, 6, 7]
    record = failures.batches[0]
    info = record["KinesisBatchInfo" if broker.name == "redis" else "DDBStreamBatchInfo"]
    assert info["batchSize"] == 1
    poison_seq = next(b["seqs"][0] for b in seen.batches if b["ns"] == [5])
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == poison_seq
    assert len(failures.drain()) == 1


def test_retries_exhausted_go_to_the_on_failure_queue(
    broker: Broker,
    lambda_client: Any,
    sqs: Any,
    queue: Any,
    create_function: CreateFunction,
    mappings: list[str],
) -> None:
    seen_url, _ = queue()
    failure_url, failure_arn = queue()
    function = recorder(create_function, seen_url, mode="raise")
    mapping = start_mapping(
        lambda_client,
        broker,
        function,
        mappings,
        BatchSize=3,
        MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": failure_arn}},
    )
    broker.produce(items(range(3), poison={1}))
    failures = Seen(sqs, failure_url)
    failures.until(lambda b: len(b) >= 1)
    seen = Seen(sqs, seen_url)
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
    info = record["KinesisBatchInfo" if broker.name == "redis" else "DDBStreamBatchInfo"]
    assert info["streamArn"] == broker.arn
    assert info["batchSize"] == 3
    assert info["startSequenceNumber"] == seen.batches[0]["seqs"][0]
    assert info["endSequenceNumber"] == seen.batches[0]["seqs"][-1]
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    # The shard moved on past the batch given up.
    broker.produce(items(range(3, 5)))
    seen.until(lambda b: 4 in [n for x in b for n in x["ns"]])
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
        Seen(sqs, seen_url).until(lambda b: 2 in [n for x in b for n in x["ns"]])
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


def test_a_function_as_on_failure_destination_gets_the_record(
    broker: Broker,
    lambda_client: Any,
    sqs: Any,
    queue: Any,
    create_function: CreateFunction,
    mappings: list[str],
) -> None:
    """Lamina's extension: OnFailure may name a function, which is invoked asynchronously with the
    on-failure record (AWS takes queues, topics and buckets for streams)."""
    seen_url, _ = queue()
    failure_url, _ = queue()
    function = recorder(create_function, seen_url, mode="raise")
    destination = create_function(
        zip_bytes=function_zip("stream_shape"),
        handler="stream_shape.handler",
        Environment={"Variables": {"SEEN_QUEUE_URL": failure_url}},
    )
    start_mapping(
        lambda_client,
        broker,
        function,
        mappings,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": destination["FunctionArn"]}},
    )
    broker.produce(items(range(2), poison={0}))
    failures = Seen(sqs, failure_url)
    failures.until(lambda b: len(b) >= 1)
    record = failures.batches[0]["event"]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    info = record["KinesisBatchInfo" if broker.name == "redis" else "DDBStreamBatchInfo"]
    assert info["streamArn"] == broker.arn
    assert info["batchSize"] == 2


def test_a_missing_on_failure_queue_holds_the_shard_until_it_exists(
    broker: Broker,
    lambda_client: Any,
    sqs: Any,
    queue: Any,
    create_function: CreateFunction,
    mappings: list[str],
) -> None:
    """A batch given up is checkpointed only once its on-failure record was delivered: while the
    destination queue does not exist the shard waits (the records after it are not processed) and
    the mapping says why; once the queue is created the record arrives and the stream moves on."""
    seen_url, _ = queue()
    name = f"streams-late-{uuid.uuid4().hex[:10]}"
    failure_arn = f"arn:aws:sqs:us-east-1:000000000000:{name}"
    function = recorder(create_function, seen_url, mode="raise")
    mapping = start_mapping(
        lambda_client,
        broker,
        function,
        mappings,
        BatchSize=2,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": failure_arn}},
    )
    broker.produce(items(range(2), poison={0}))

    def result() -> str:
        got = lambda_client.get_event_source_mapping(UUID=mapping["UUID"])
        return str(got["LastProcessingResult"])

    wait_for(lambda: "could not be sent" in result(), 60, "the mapping to report the destination")
    assert failure_arn in result()
    broker.produce(items(range(2, 4)))
    seen = Seen(sqs, seen_url)
    time.sleep(3)  # several send attempts (1 s, 2 s): the shard must not move on meanwhile
    seen.drain()
    assert seen.processed() == [], "records after the batch were processed before it was settled"
    assert [b["ns"] for b in seen.batches] == [[0, 1]], "the batch given up was invoked again"
    assert "could not be sent" in result()

    url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    try:
        failures = Seen(sqs, url)
        failures.until(lambda b: len(b) >= 1, 60)
        info = failures.batches[0][
            "KinesisBatchInfo" if broker.name == "redis" else "DDBStreamBatchInfo"
        ]
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
