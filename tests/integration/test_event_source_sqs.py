"""Event source mappings on Lamina's own queues, driven by boto3 as against Lambda and SQS:
the API and its errors, batches, deletes, retries through the visibility timeout, the queue's
dead-letter queue, ReportBatchItemFailures, filters, concurrency and a restart."""

from __future__ import annotations

import contextlib
import json
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import (
    CreateFunction,
    client_for,
    deploy,
)
from tests.integration.event_sources import (
    events_of,
    poll,
    records_of,
    wait_state,
)
from tests.integration.lamina_process import LaminaProcess


@pytest.fixture(scope="module")
def sqs(endpoint: str) -> Any:
    return client_for(endpoint, "sqs")


@pytest.fixture
def queue(sqs: Any) -> Iterator[Callable[..., tuple[str, str]]]:
    """Create a queue; returns (url, arn)."""
    made: list[str] = []

    def create(**attributes: str) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=f"esm-{uuid.uuid4().hex[:10]}", Attributes=attributes)[
            "QueueUrl"
        ]
        made.append(url)
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        return str(url), str(arn)

    yield create
    for url in made:
        with contextlib.suppress(ClientError):
            sqs.delete_queue(QueueUrl=url)


def queue_counts(sqs: Any, url: str) -> tuple[int, int]:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def batch_function(create_function: CreateFunction, **env: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"Timeout": 3}
    if env:
        kwargs["Environment"] = {"Variables": env}
    return create_function("batch", **kwargs)


def reserved_batch_function(
    create_function: CreateFunction, lambda_client: Any, *, delay: str, reserved: int
) -> dict[str, Any]:
    """A batch function that takes `delay` seconds a batch and may run `reserved` at once."""
    fn = batch_function(create_function, DELAY=delay)
    lambda_client.put_function_concurrency(
        FunctionName=fn["FunctionName"], ReservedConcurrentExecutions=reserved
    )
    return fn


def send_backlog(sqs: Any, url: str, chunks: int, prefix: str = "") -> None:
    """Send `chunks` batches of ten messages, "<prefix><chunk>-<i>"."""
    for chunk in range(chunks):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "MessageBody": f"{prefix}{chunk}-{i}"} for i in range(10)],
        )


def wait_records(logs: Any, function: str, count: int) -> list[dict[str, Any]]:
    """The records the function logged, once there are at least `count` of them."""

    def enough() -> list[dict[str, Any]]:
        got = records_of(logs, function)
        return got if len(got) >= count else []

    return poll(enough, what=f"{count} records")  # type: ignore[no-any-return]


# -- the API -----------------------------------------------------------------------------------


def test_mapping_lifecycle(
    lambda_client: Any, create_function: CreateFunction, queue: Callable[..., tuple[str, str]]
) -> None:
    fn = batch_function(create_function)
    _url, arn = queue()
    created = lambda_client.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=fn["FunctionName"]
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert created["State"] == "Creating"
    assert created["StateTransitionReason"] == "USER_INITIATED"
    assert created["BatchSize"] == 10
    assert created["MaximumBatchingWindowInSeconds"] == 0
    assert created["EventSourceArn"] == arn
    assert created["FunctionArn"] == fn["FunctionArn"]
    assert created["FunctionResponseTypes"] == []
    ident = created["UUID"]
    assert len(ident) == 36
    assert created["EventSourceMappingArn"].endswith(f":event-source-mapping:{ident}")
    assert "StartingPosition" not in created and "DestinationConfig" not in created

    got = wait_state(lambda_client, ident, "Enabled")
    assert got["LastModified"].timestamp() > time.time() - 60

    listed = lambda_client.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [ident]
    by_fn = lambda_client.list_event_source_mappings(FunctionName=fn["FunctionArn"])
    assert [m["UUID"] for m in by_fn["EventSourceMappings"]] == [ident]
    other = lambda_client.list_event_source_mappings(FunctionName="no-such-function-here")
    assert other["EventSourceMappings"] == []

    updated = lambda_client.update_event_source_mapping(
        UUID=ident,
        BatchSize=50,
        MaximumBatchingWindowInSeconds=2,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        ScalingConfig={"MaximumConcurrency": 3},
        FilterCriteria={"Filters": [{"Pattern": '{"body": {"kind": ["a"]}}'}]},
    )
    assert updated["State"] == "Updating"
    assert updated["BatchSize"] == 50
    assert updated["ScalingConfig"] == {"MaximumConcurrency": 3}
    assert updated["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert updated["FilterCriteria"]["Filters"][0]["Pattern"] == '{"body": {"kind": ["a"]}}'
    wait_state(lambda_client, ident, "Enabled")

    disabling = lambda_client.update_event_source_mapping(UUID=ident, Enabled=False)
    assert disabling["State"] == "Disabling"
    wait_state(lambda_client, ident, "Disabled")
    enabling = lambda_client.update_event_source_mapping(UUID=ident, Enabled=True)
    assert enabling["State"] == "Enabling"
    wait_state(lambda_client, ident, "Enabled")

    # An empty FilterCriteria and ScalingConfig remove them.
    cleared = lambda_client.update_event_source_mapping(
        UUID=ident, FilterCriteria={}, ScalingConfig={}
    )
    assert "FilterCriteria" not in cleared and "ScalingConfig" not in cleared

    deleted = lambda_client.delete_event_source_mapping(UUID=ident)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert deleted["State"] == "Deleting"

    def gone() -> bool:
        try:
            lambda_client.get_event_source_mapping(UUID=ident)
        except lambda_client.exceptions.ResourceNotFoundException:
            return True
        return False

    poll(gone, 20, "the mapping to be deleted")


def test_pagination(
    lambda_client: Any,
    create_function: CreateFunction,
    queue: Callable[..., tuple[str, str]],
    mappings: Callable[..., dict[str, Any]],
) -> None:
    fn = batch_function(create_function)
    made = {
        mappings(EventSourceArn=queue()[1], FunctionName=fn["FunctionName"])["UUID"]
        for _ in range(3)
    }
    seen: list[str] = []
    paginator = lambda_client.get_paginator("list_event_source_mappings")
    for page in paginator.paginate(
        FunctionName=fn["FunctionName"], PaginationConfig={"PageSize": 2}
    ):
        assert len(page["EventSourceMappings"]) <= 2
        seen.extend(m["UUID"] for m in page["EventSourceMappings"])
    assert sorted(seen) == sorted(made)


def test_validation_errors(
    lambda_client: Any,
    create_function: CreateFunction,
    queue: Callable[..., tuple[str, str]],
    mappings: Callable[..., dict[str, Any]],
) -> None:
    fn = batch_function(create_function)
    name = fn["FunctionName"]
    _url, arn = queue()
    errors = lambda_client.exceptions

    def refused(exc: type[Exception], match: str, **kwargs: Any) -> None:
        with pytest.raises(exc) as info:
            lambda_client.create_event_source_mapping(**kwargs)
        assert match in str(info.value), str(info.value)

    refused(
        errors.InvalidParameterValueException,
        "Unrecognized event source",
        EventSourceArn="arn:aws:sns:us-east-1:000000000000:topic",
        FunctionName=name,
    )
    refused(
        errors.InvalidParameterValueException,
        "NonExistentQueue",
        EventSourceArn="arn:aws:sqs:us-east-1:000000000000:no-such-queue",
        FunctionName=name,
    )
    refused(
        errors.ResourceNotFoundException,
        "Function not found",
        EventSourceArn=arn,
        FunctionName="no-such-function-esm",
    )
    refused(
        errors.InvalidParameterValueException,
        "greater than 0 if maximum batch size",
        EventSourceArn=arn,
        FunctionName=name,
        BatchSize=11,
    )
    refused(
        errors.InvalidParameterValueException,
        "Unsupported DestinationConfig",
        EventSourceArn=arn,
        FunctionName=name,
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )
    refused(
        errors.InvalidParameterValueException,
        "Unsupported StartingPosition",
        EventSourceArn=arn,
        FunctionName=name,
        StartingPosition="LATEST",
    )
    refused(
        errors.InvalidParameterValueException,
        "Invalid filter pattern",
        EventSourceArn=arn,
        FunctionName=name,
        FilterCriteria={"Filters": [{"Pattern": '{"body": {"x": [{"bogus": 1}]}}'}]},
    )
    refused(
        ClientError, "ValidationException", EventSourceArn=arn, FunctionName=name, BatchSize=20_000
    )
    refused(
        ClientError,
        "ValidationException",
        EventSourceArn=arn,
        FunctionName=name,
        ScalingConfig={"MaximumConcurrency": 1001},
    )
    refused(
        ClientError,
        "ValidationException",
        EventSourceArn=arn,
        FunctionName=name,
        MaximumBatchingWindowInSeconds=301,
    )
    refused(ClientError, "ValidationException", EventSourceArn="not-an-arn", FunctionName=name)

    # The queue's visibility timeout must cover the function's timeout.
    _short_url, short = queue(VisibilityTimeout="2")
    refused(
        errors.InvalidParameterValueException,
        "Queue visibility timeout: 2 seconds is less than Function timeout: 3 seconds",
        EventSourceArn=short,
        FunctionName=name,
    )

    first = mappings(EventSourceArn=arn, FunctionName=name)
    refused(
        errors.ResourceConflictException,
        first["UUID"],
        EventSourceArn=arn,
        FunctionName=fn["FunctionArn"],
    )

    missing = str(uuid.uuid4())
    for call in (
        lambda: lambda_client.get_event_source_mapping(UUID=missing),
        lambda: lambda_client.update_event_source_mapping(UUID=missing, BatchSize=5),
        lambda: lambda_client.delete_event_source_mapping(UUID=missing),
    ):
        with pytest.raises(errors.ResourceNotFoundException) as info:
            call()
        assert "The resource you requested does not exist." in str(info.value)
    with pytest.raises(errors.InvalidParameterValueException):
        lambda_client.update_event_source_mapping(UUID=first["UUID"], BatchSize=11)
    with pytest.raises(errors.InvalidParameterValueException, match="Unsupported"):
        lambda_client.update_event_source_mapping(UUID=first["UUID"], MaximumRetryAttempts=3)
    # Pointing a second mapping of the queue at the first one's function is a conflict too.
    other = batch_function(create_function)
    second = mappings(EventSourceArn=arn, FunctionName=other["FunctionName"])
    with pytest.raises(errors.ResourceConflictException, match=first["UUID"]):
        lambda_client.update_event_source_mapping(UUID=second["UUID"], FunctionName=name)


# -- processing ----------------------------------------------------------------------------------


def test_batches_are_delivered_in_sqs_shape_and_deleted(
    lambda_client: Any,
    sqs: Any,
    logs: Any,
    create_function: CreateFunction,
    queue: Callable[..., tuple[str, str]],
    mappings: Callable[..., dict[str, Any]],
) -> None:
    fn = batch_function(create_function)
    url, arn = queue()
    sent = {}
    for i in range(25):
        attrs = {"n": {"DataType": "Number", "StringValue": str(i)}}
        reply = sqs.send_message(
            QueueUrl=url, MessageBody=json.dumps({"i": i}), MessageAttributes=attrs
        )
        sent[reply["MessageId"]] = reply
    mappings(EventSourceArn=arn, FunctionName=fn["FunctionName"], BatchSize=10)
    got = wait_records(logs, fn["FunctionName"], 25)
    assert sorted(r["messageId"] for r in got) == sorted(sent)
    assert all(len(e["Records"]) <= 10 for e in events_of(logs, fn["FunctionName"]))
    record = got[0]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == arn
    assert record["awsRegion"] == "us-east-1"
    assert record["md5OfBody"] == sent[record["messageId"]]["MD5OfMessageBody"]
    assert record["md5OfMessageAttributes"] == sent[record["messageId"]]["MD5OfMessageAttributes"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert set(record["attributes"]) >= {
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["messageAttributes"]["n"]["dataType"] == "Number"
    assert record["messageAttributes"]["n"]["stringValue"] == str(json.loads(record["body"])["i"])
    assert record["receiptHandle"]
    poll(lambda: queue_counts(sqs, url) == (0, 0), 30, "the queue to be emptied")
    mapping = lambda_client.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"][0]
    assert mapping["LastProcessingResult"] == "OK"


def test_batching_window_fills_larger_batches(
    sqs: Any,
    logs: Any,
    create_function: CreateFunction,
    queue: Callable[..., tuple[str, str]],
    mappings: Callable[..., dict[str, Any]],
) -> None:
    fn = batch_function(create_function)
    url, arn = queue()
    send_backlog(sqs, url, 4, prefix="m")
    mappings(
        EventSourceArn=arn,
        FunctionName=fn["FunctionName"],
        BatchSize=100,
        MaximumBatchingWindowInSeconds=2,
        ScalingConfig={"MaximumConcurrency": 2},
    )
    wait_records(logs, fn["FunctionName"], 40)
    sizes = [len(e["Records"]) for e in events_of(logs, fn["FunctionName"])]
    assert max(sizes) > 10, sizes


def test_failed_batch_returns_after_visibility_timeout_then_reaches_the_dlq(
    lambda_client: Any,
    sqs: Any,
    logs: Any,
    create_function: CreateFunction,
    queue: Callable[..., tuple[str, str]],
    mappings: Callable[..., dict[str, Any]],
) -> None:
    fn = batch_function(create_function)  # raises when a record asks to fail
    dlq_url, dlq_arn = queue()
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    url, arn = queue(VisibilityTimeout="3", RedrivePolicy=redrive)
    ok = sqs.send_message(QueueUrl=url, MessageBody="fine")["MessageId"]
    bad = sqs.send_message(QueueUrl=url, MessageBody="please fail")["MessageId"]
    mappings(
        EventSourceArn=arn,
        FunctionName=fn["FunctionName"],
        BatchSize=10,
        MaximumBatchingWindowInSeconds=0,  # window + timeout within the visibility timeout
    )
    started = time.monotonic()

    def dead_letters() -> list[dict[str, Any]]:
        return list(
            sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            )
        )

    letters: list[dict[str, Any]] = []
    poll(
        lambda: letters.extend(dead_letters()) or len(letters) >= 2, what="both messages in the DLQ"
    )
    # The whole batch failed each time, so the good message shared the bad one's fate.
    assert sorted(m["MessageId"] for m in letters) == sorted([ok, bad])
    counts = [
        r["attributes"]["ApproximateReceiveCount"]
        for r in records_of(logs, fn["FunctionName"])
        if r["messageId"] == bad
    ]
    assert counts[:2] == ["1", "2"]
    assert time.monotonic() - started >= 3  # the retry waited for the visibility timeout
    mapping = lambda_client.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"][0]
    assert mapping["LastProcessingResult"].startswith("PROBLEM")


def test_report_batch_item_failures_returns_only_the_failed(
    sqs: Any,
    logs: Any,
    create_function: CreateFunction,
    queue: Callable[..., tuple[str, str]],
    mappings: Callable[..., dict[str, Any]],
) -> None:
    fn = batch_function(create_function, MODE="report")
    dlq_url, dlq_arn = queue()
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    url, arn = queue(VisibilityTimeout="3", RedrivePolicy=redrive)
    good, bad = [], []
    for i in range(10):
        body = f"fail {i}" if i % 2 else f"ok {i}"
        mid = sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"]
        (bad if i % 2 else good).append(mid)
    mappings(
        EventSourceArn=arn,
        FunctionName=fn["FunctionName"],
        BatchSize=10,
        MaximumBatchingWindowInSeconds=0,  # window + timeout within the visibility timeout
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    letters: list[dict[str, Any]] = []

    def collect() -> bool:
        got = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        letters.extend(got.get("Messages", []))
        return len(letters) >= len(bad)

    poll(collect, what="the failed messages in the DLQ")
    assert sorted(m["MessageId"] for m in letters) == sorted(bad)
    delivered = records_of(logs, fn["FunctionName"])
    for mid in good:
        assert [
            r["attributes"]["ApproximateReceiveCount"] for r in delivered if r["messageId"] == mid
        ] == ["1"]
    for mid in bad:
        counts = [
            r["attributes"]["ApproximateReceiveCount"] for r in delivered if r["messageId"] == mid
        ]
        assert counts == ["1", "2"]
    poll(lambda: queue_counts(sqs, url) == (0, 0), 30, "the source queue to be empty")


def test_filtered_out_messages_are_deleted_without_an_invocation(
    sqs: Any,
    logs: Any,
    create_function: CreateFunction,
    queue: Callable[..., tuple[str, str]],
    mappings: Callable[..., dict[str, Any]],
) -> None:
    fn = batch_function(create_function)
    url, arn = queue()
    pattern = {"body": {"kind": ["order"], "amount": [{"numeric": [">", 10]}]}}
    mappings(
        EventSourceArn=arn,
        FunctionName=fn["FunctionName"],
        FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]},
    )
    bodies = [
        {"kind": "order", "amount": 50},
        {"kind": "order", "amount": 5},
        {"kind": "refund", "amount": 50},
        "plain text",
        {"kind": "order", "amount": 11},
    ]
    for body in bodies:
        sqs.send_message(
            QueueUrl=url, MessageBody=json.dumps(body) if isinstance(body, dict) else body
        )
    poll(lambda: queue_counts(sqs, url) == (0, 0), what="every message to be deleted")
    time.sleep(0.5)  # let the last log batch reach the store
    got = wait_records(logs, fn["FunctionName"], 2)
    assert sorted(json.loads(r["body"])["amount"] for r in got) == [11, 50]


def test_throttles_back_off_and_respect_reserved_concurrency(
    lambda_client: Any,
    sqs: Any,
    logs: Any,
    create_function: CreateFunction,
    queue: Callable[..., tuple[str, str]],
    mappings: Callable[..., dict[str, Any]],
) -> None:
    fn = reserved_batch_function(create_function, lambda_client, delay="0.3", reserved=1)
    url, arn = queue(VisibilityTimeout="30")
    send_backlog(sqs, url, 3)
    mappings(
        EventSourceArn=arn,
        FunctionName=fn["FunctionName"],
        BatchSize=2,
        ScalingConfig={"MaximumConcurrency": 5},
    )
    got = wait_records(logs, fn["FunctionName"], 30)
    # Throttled batches were retried, not failed: each message arrived once.
    counts = [r["attributes"]["ApproximateReceiveCount"] for r in got]
    assert len({r["messageId"] for r in got}) == 30
    assert counts.count("1") == 30, counts
    poll(lambda: queue_counts(sqs, url) == (0, 0), 30, "the queue to be empty")


def spans_of(logs: Any, function: str) -> list[tuple[int, int]]:
    """(start, end) in ms of every invocation of the function, from its START and END lines."""
    starts: dict[str, int] = {}
    ends: dict[str, int] = {}
    kwargs: dict[str, Any] = {"logGroupName": f"/aws/lambda/{function}"}
    while True:
        try:
            page = logs.filter_log_events(**kwargs)
        except ClientError:
            return []
        for item in page["events"]:
            words = item["message"].split()
            if len(words) >= 3 and words[1] == "RequestId:" and words[0] in ("START", "END"):
                (starts if words[0] == "START" else ends)[words[2]] = int(item["timestamp"])
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    return [(starts[r], ends[r]) for r in starts if r in ends]


def peak_overlap(spans: list[tuple[int, int]]) -> int:
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    peak = now = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def test_concurrency_scales_up_under_a_backlog_to_the_function_concurrency(
    lambda_client: Any,
    sqs: Any,
    logs: Any,
    create_function: CreateFunction,
    queue: Callable[..., tuple[str, str]],
    mappings: Callable[..., dict[str, Any]],
) -> None:
    """Lambda starts an SQS mapping with five concurrent batches and adds more while messages
    are waiting, up to MaximumConcurrency or, without it, what the function may run at once (here
    its reserved concurrency): invocations overlap more than five at a time, never more than 8."""
    fn = reserved_batch_function(create_function, lambda_client, delay="0.5", reserved=8)
    url, arn = queue(VisibilityTimeout="30")
    send_backlog(sqs, url, 12)
    mappings(
        EventSourceArn=arn,
        FunctionName=fn["FunctionName"],
        BatchSize=1,
    )
    poll(lambda: queue_counts(sqs, url) == (0, 0), 120, "the backlog to be drained")
    spans = poll(
        lambda: (
            len(spans_of(logs, fn["FunctionName"])) >= 120 and spans_of(logs, fn["FunctionName"])
        )
    )
    peak = peak_overlap(spans)
    assert 5 < peak <= 8, f"{peak} invocations at once"


def test_a_disabled_mapping_does_not_poll(
    lambda_client: Any,
    sqs: Any,
    logs: Any,
    create_function: CreateFunction,
    queue: Callable[..., tuple[str, str]],
    mappings: Callable[..., dict[str, Any]],
) -> None:
    fn = batch_function(create_function)
    url, arn = queue()
    made = mappings(EventSourceArn=arn, FunctionName=fn["FunctionName"], Enabled=False)
    sqs.send_message(QueueUrl=url, MessageBody="waits")
    time.sleep(1.5)
    assert queue_counts(sqs, url) == (1, 0)
    lambda_client.update_event_source_mapping(UUID=made["UUID"], Enabled=True)
    poll(lambda: queue_counts(sqs, url) == (0, 0), what="the message to be consumed")


# -- a restart -----------------------------------------------------------------------------------


def test_mappings_survive_a_restart_and_resume(tmp_path: Path) -> None:
    server = LaminaProcess(tmp_path / "data")
    server.start()
    try:
        lam = client_for(server.endpoint)
        sqs = client_for(server.endpoint, "sqs")
        logs = client_for(server.endpoint, "logs")
        deploy(
            lam,
            "sink",
            "batch",
        )
        url = sqs.create_queue(QueueName="resumes")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        made = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="sink", BatchSize=5)
        disabled = lam.create_event_source_mapping(
            EventSourceArn=sqs.get_queue_attributes(
                QueueUrl=sqs.create_queue(QueueName="stays-off")["QueueUrl"],
                AttributeNames=["QueueArn"],
            )["Attributes"]["QueueArn"],
            FunctionName="sink",
            Enabled=False,
        )
        wait_state(lam, made["UUID"], "Enabled")
        sqs.send_message(QueueUrl=url, MessageBody="before")
        poll(lambda: len(records_of(logs, "sink")) >= 1, what="the first record")
        before = {m["UUID"]: m for m in lam.list_event_source_mappings()["EventSourceMappings"]}

        server.stop(signal.SIGKILL)
        server.start()
        lam = client_for(server.endpoint)
        sqs = client_for(server.endpoint, "sqs")
        logs = client_for(server.endpoint, "logs")
        after = {m["UUID"]: m for m in lam.list_event_source_mappings()["EventSourceMappings"]}
        assert set(after) == set(before)
        for ident, m in after.items():
            for key in ("EventSourceArn", "FunctionArn", "BatchSize", "State", "LastModified"):
                assert m[key] == before[ident][key]
        assert after[disabled["UUID"]]["State"] == "Disabled"
        sqs.send_message(QueueUrl=url, MessageBody="after")
        poll(
            lambda: {r["body"] for r in records_of(logs, "sink")} >= {"before", "after"},
            what="the record sent after the restart",
        )
    finally:
        server.stop()


def test_a_mapping_may_name_an_alias(
    lambda_client: Any,
    sqs: Any,
    logs: Any,
    create_function: CreateFunction,
    queue: Callable[..., tuple[str, str]],
    mappings: Callable[..., dict[str, Any]],
) -> None:
    fn = batch_function(create_function)
    version = lambda_client.publish_version(FunctionName=fn["FunctionName"])["Version"]
    lambda_client.create_alias(
        FunctionName=fn["FunctionName"], Name="live", FunctionVersion=version
    )
    url, arn = queue()
    made = mappings(EventSourceArn=arn, FunctionName=f"{fn['FunctionName']}:live")
    assert made["FunctionArn"] == f"{fn['FunctionArn']}:live"
    listed = lambda_client.list_event_source_mappings(FunctionName=f"{fn['FunctionName']}:live")
    assert [m["UUID"] for m in listed["EventSourceMappings"]] == [made["UUID"]]
    assert (
        lambda_client.list_event_source_mappings(FunctionName=f"{fn['FunctionName']}:other")[
            "EventSourceMappings"
        ]
        == []
    )
    sqs.send_message(QueueUrl=url, MessageBody="to the alias")
    poll(lambda: records_of(logs, fn["FunctionName"]), what="the record")
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.create_event_source_mapping(
            EventSourceArn=arn, FunctionName=f"{fn['FunctionName']}:missing"
        )


def test_the_aws_cli_manages_mappings(
    aws_cli: Callable[..., Any],
    create_function: CreateFunction,
    queue: Callable[..., tuple[str, str]],
) -> None:
    fn = batch_function(create_function)
    _url, arn = queue()
    created = json.loads(
        aws_cli(
            "lambda",
            "create-event-source-mapping",
            "--function-name",
            fn["FunctionName"],
            "--event-source-arn",
            arn,
            "--batch-size",
            "5",
            "--function-response-types",
            "ReportBatchItemFailures",
        ).stdout
    )
    assert created["State"] == "Creating" and created["BatchSize"] == 5
    listed = json.loads(
        aws_cli("lambda", "list-event-source-mappings", "--event-source-arn", arn).stdout
    )
    assert [m["UUID"] for m in listed["EventSourceMappings"]] == [created["UUID"]]
    updated = json.loads(
        aws_cli(
            "lambda", "update-event-source-mapping", "--uuid", created["UUID"], "--no-enabled"
        ).stdout
    )
    assert updated["State"] == "Disabling"
    deleted = json.loads(
        aws_cli("lambda", "delete-event-source-mapping", "--uuid", created["UUID"]).stdout
    )
    assert deleted["State"] == "Deleting"
    failed = aws_cli("lambda", "get-event-source-mapping", "--uuid", str(uuid.uuid4()), check=False)
    assert failed.returncode != 0 and "ResourceNotFoundException" in failed.stderr


def test_a_deleted_queue_is_reported_not_fatal(
    lambda_client: Any,
    sqs: Any,
    create_function: CreateFunction,
    queue: Callable[..., tuple[str, str]],
    mappings: Callable[..., dict[str, Any]],
) -> None:
    fn = batch_function(create_function)
    url, arn = queue()
    made = mappings(EventSourceArn=arn, FunctionName=fn["FunctionName"])
    sqs.delete_queue(QueueUrl=url)

    def reported() -> bool:
        got = lambda_client.get_event_source_mapping(UUID=made["UUID"])
        return "does not exist" in got["LastProcessingResult"] and got["State"] == "Enabled"

    poll(reported, 60, "the missing queue to be reported")
    assert lambda_client.get_function(FunctionName=fn["FunctionName"])


def test_a_long_window_stretches_the_visibility_timeout(
    sqs: Any,
    logs: Any,
    create_function: CreateFunction,
    queue: Callable[..., tuple[str, str]],
    mappings: Callable[..., dict[str, Any]],
) -> None:
    fn = batch_function(create_function)  # timeout 3 s
    url, arn = queue(VisibilityTimeout="4")
    mappings(
        EventSourceArn=arn,
        FunctionName=fn["FunctionName"],
        BatchSize=20,
        MaximumBatchingWindowInSeconds=2,
    )
    sqs.send_message(QueueUrl=url, MessageBody="please fail")
    poll(lambda: records_of(logs, fn["FunctionName"]), what="the first delivery")
    # window 2 + timeout 3 > visibility 4: Lambda holds the message for 2 + 3 + 30 s.
    time.sleep(6)
    assert len(records_of(logs, fn["FunctionName"])) == 1
    assert queue_counts(sqs, url) == (0, 1)


def test_killing_lamina_mid_batch_loses_no_message(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    server = LaminaProcess(tmp_path / "data", env={"LAMINA_SANDBOX": "process"})
    server.start()
    try:
        lam = client_for(server.endpoint)
        sqs = client_for(server.endpoint, "sqs")
        deploy(
            lam,
            "ledger",
            "ledger",
            Timeout=3,
            Environment={"Variables": {"LEDGER": str(ledger), "DELAY": "0.2"}},
        )
        url = sqs.create_queue(QueueName="crash", Attributes={"VisibilityTimeout": "3"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sent = set()
        for chunk in range(6):
            reply = sqs.send_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "MessageBody": f"{chunk}-{i}"} for i in range(10)],
            )
            sent |= {m["MessageId"] for m in reply["Successful"]}
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="ledger", BatchSize=5)

        def seen() -> set[str]:
            return set(ledger.read_text().split()) if ledger.exists() else set()

        poll(lambda: len(seen()) >= 10, what="processing to be under way")
        server.stop(signal.SIGKILL)  # batches in flight stay invisible, then come back
        server.start()
        sqs = client_for(server.endpoint, "sqs")
        poll(lambda: seen() >= sent, 120, "every message after the restart")
        poll(lambda: queue_counts(sqs, url) == (0, 0), 60, "the queue to be empty")
    finally:
        server.stop()
