"""Lamina's SQS-compatible queues, driven by boto3 and the AWS CLI as against SQS."""

from __future__ import annotations

import concurrent.futures
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

from tests.integration.conftest import client_for
from tests.integration.lamina_process import LaminaProcess


@pytest.fixture(scope="module")
def sqs(endpoint: str) -> Any:
    return client_for(endpoint, "sqs")


@pytest.fixture
def queue(sqs: Any) -> Iterator[Callable[..., str]]:
    made: list[str] = []

    def create(**attributes: str) -> str:
        url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:10]}", Attributes=attributes)[
            "QueueUrl"
        ]
        made.append(url)
        return str(url)

    yield create
    for url in made:
        with contextlib.suppress(ClientError):
            sqs.delete_queue(QueueUrl=url)


def arn_of(sqs: Any, url: str) -> str:
    return str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )


def test_queue_lifecycle(sqs: Any, endpoint: str) -> None:
    name = f"life-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "45"})["QueueUrl"]
    assert url == f"{endpoint}/000000000000/{name}"
    # Creating again with the same attributes is idempotent; with others it is refused.
    assert (
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "45"})["QueueUrl"] == url
    )
    with pytest.raises(sqs.exceptions.QueueNameExists):
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "46"})
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    assert url in sqs.list_queues(QueueNamePrefix="life-")["QueueUrls"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "45"
    assert attrs["QueueArn"] == f"arn:aws:sqs:us-east-1:000000000000:{name}"
    assert attrs["DelaySeconds"] == "0"
    assert attrs["MessageRetentionPeriod"] == "345600"
    assert attrs["ReceiveMessageWaitTimeSeconds"] == "0"
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert int(attrs["CreatedTimestamp"]) > 1_600_000_000
    sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"DelaySeconds": "2", "MessageRetentionPeriod": "60"}
    )
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["DelaySeconds", "MessageRetentionPeriod"]
    )["Attributes"]
    assert attrs == {"DelaySeconds": "2", "MessageRetentionPeriod": "60"}
    with pytest.raises(sqs.exceptions.InvalidAttributeValue):
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "50000"})
    with pytest.raises(sqs.exceptions.InvalidAttributeName):
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["NoSuchAttribute"])
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as info:
        sqs.get_queue_url(QueueName=name)
    assert info.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"


def test_missing_queue_errors(sqs: Any, endpoint: str) -> None:
    url = f"{endpoint}/000000000000/missing-{uuid.uuid4().hex[:8]}"
    for call in (
        lambda: sqs.send_message(QueueUrl=url, MessageBody="x"),
        lambda: sqs.receive_message(QueueUrl=url),
        lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]),
        lambda: sqs.purge_queue(QueueUrl=url),
        lambda: sqs.delete_queue(QueueUrl=url),
    ):
        with pytest.raises(sqs.exceptions.QueueDoesNotExist):
            call()


def test_send_receive_delete_with_attributes(sqs: Any, queue: Callable[..., str]) -> None:
    url = queue()
    attributes = {
        "timestamp": {"DataType": "Number", "StringValue": "1493147359900"},
    }
    sent = sqs.send_message(QueueUrl=url, MessageBody="hello", MessageAttributes=attributes)
    assert sent["MD5OfMessageBody"] == "5d41402abc4b2a76b9719d911017c592"
    assert sent["MD5OfMessageAttributes"] == "235c5c510d26fb653d073faed50ae77c"
    before_ms = int(time.time() * 1000) - 60_000
    got = sqs.receive_message(
        QueueUrl=url,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
        WaitTimeSeconds=5,
    )["Messages"]
    assert len(got) == 1
    msg = got[0]
    assert msg["MessageId"] == sent["MessageId"]
    assert msg["Body"] == "hello"
    assert msg["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert msg["MessageAttributes"] == attributes
    assert msg["MD5OfMessageAttributes"] == "235c5c510d26fb653d073faed50ae77c"
    assert msg["Attributes"]["ApproximateReceiveCount"] == "1"
    assert int(msg["Attributes"]["SentTimestamp"]) > before_ms
    assert "ApproximateFirstReceiveTimestamp" in msg["Attributes"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "0"
    assert counts["ApproximateNumberOfMessagesNotVisible"] == "0"
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")


def test_only_requested_attributes_are_returned(sqs: Any, queue: Callable[..., str]) -> None:
    url = queue()
    sqs.send_message(
        QueueUrl=url,
        MessageBody="x",
        MessageAttributes={
            "a.one": {"DataType": "String", "StringValue": "1"},
            "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    msg = sqs.receive_message(
        QueueUrl=url, MessageAttributeNames=["a.*"], AttributeNames=["SentTimestamp"]
    )["Messages"][0]
    assert set(msg["MessageAttributes"]) == {"a.one"}
    assert set(msg["Attributes"]) == {"SentTimestamp"}


def test_visibility_timeout(sqs: Any, queue: Callable[..., str]) -> None:
    url = queue(VisibilityTimeout="1")
    sqs.send_message(QueueUrl=url, MessageBody="v")
    first = sqs.receive_message(QueueUrl=url)["Messages"][0]
    # In flight: not received by anyone else until the timeout passes.
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1"
    again = sqs.receive_message(
        QueueUrl=url, WaitTimeSeconds=10, MessageSystemAttributeNames=["ApproximateReceiveCount"]
    )["Messages"][0]
    assert again["MessageId"] == first["MessageId"]
    assert again["ReceiptHandle"] != first["ReceiptHandle"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    # Hide it for long, then make it visible at once.
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=again["ReceiptHandle"], VisibilityTimeout=600
    )
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=again["ReceiptHandle"], VisibilityTimeout=0
    )
    third = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"][0]
    assert third["MessageId"] == first["MessageId"]
    # The older receipt handle no longer deletes the message; the newest does.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=third["ReceiptHandle"], VisibilityTimeout=0
    )
    fourth = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"][0]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=fourth["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    with pytest.raises(ClientError):
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=fourth["ReceiptHandle"], VisibilityTimeout=5
        )


def test_redrive_to_dead_letter_queue(sqs: Any, queue: Callable[..., str]) -> None:
    dlq = queue()
    policy = json.dumps({"deadLetterTargetArn": arn_of(sqs, dlq), "maxReceiveCount": 2})
    src = queue(VisibilityTimeout="0", RedrivePolicy=policy)
    assert json.loads(
        sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    ) == json.loads(policy)
    sent = sqs.send_message(QueueUrl=src, MessageBody="poison")
    counts = []
    for _ in range(2):
        msg = sqs.receive_message(
            QueueUrl=src, MessageSystemAttributeNames=["ApproximateReceiveCount"]
        )["Messages"][0]
        counts.append(msg["Attributes"]["ApproximateReceiveCount"])
    assert counts == ["1", "2"]
    # The third receive finds it over maxReceiveCount: it moves to the DLQ instead.
    assert "Messages" not in sqs.receive_message(QueueUrl=src)
    moved = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=5)["Messages"]
    assert [m["MessageId"] for m in moved] == [sent["MessageId"]]
    assert moved[0]["Body"] == "poison"


def test_delay_seconds(sqs: Any, queue: Callable[..., str]) -> None:
    url = queue()
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "1"
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)["Messages"]
    assert got[0]["Body"] == "later"
    # A queue-wide delay applies to messages that name none.
    delayed = queue(DelaySeconds="1")
    sqs.send_message(QueueUrl=delayed, MessageBody="q")
    assert "Messages" not in sqs.receive_message(QueueUrl=delayed)
    assert sqs.receive_message(QueueUrl=delayed, WaitTimeSeconds=10)["Messages"][0]["Body"] == "q"


def test_long_polling_returns_when_a_message_arrives(
    sqs: Any, queue: Callable[..., str], endpoint: str
) -> None:
    url = queue()
    other = client_for(endpoint, "sqs")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        waiting = pool.submit(lambda: other.receive_message(QueueUrl=url, WaitTimeSeconds=20))
        time.sleep(0.3)  # let the poll begin (the result does not depend on it)
        sqs.send_message(QueueUrl=url, MessageBody="wake")
        result = waiting.result(timeout=30)
        elapsed = time.monotonic() - started
    assert result["Messages"][0]["Body"] == "wake"
    assert elapsed < 15, f"long poll took {elapsed:.1f} s for a message sent at once"


def test_empty_long_poll_waits(sqs: Any, queue: Callable[..., str]) -> None:
    url = queue(ReceiveMessageWaitTimeSeconds="1")
    started = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    assert time.monotonic() - started >= 0.9


def test_purge(sqs: Any, queue: Callable[..., str]) -> None:
    url = queue()
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(5)]
    )
    sqs.purge_queue(QueueUrl=url)
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"


def test_batches(sqs: Any, queue: Callable[..., str]) -> None:
    url = queue()
    result = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "a", "MessageBody": "one"},
            {"Id": "b", "MessageBody": "two", "DelaySeconds": 0},
            {
                "Id": "bad",
                "MessageBody": "three",
                "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "NaNope"}},
            },
        ],
    )
    assert {e["Id"] for e in result["Successful"]} == {"a", "b"}
    assert [(f["Id"], f["SenderFault"]) for f in result["Failed"]] == [("bad", True)]
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert sorted(m["Body"] for m in got) == ["one", "two"]
    deleted = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
        + [{"Id": "junk", "ReceiptHandle": "junk"}],
    )
    assert {e["Id"] for e in deleted["Successful"]} == {"d0", "d1"}
    assert [f["Id"] for f in deleted["Failed"]] == ["junk"]
    with pytest.raises(sqs.exceptions.EmptyBatchRequest):
        sqs.send_message_batch(QueueUrl=url, Entries=[])
    with pytest.raises(sqs.exceptions.BatchEntryIdsNotDistinct):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": "x", "MessageBody": "1"}, {"Id": "x", "MessageBody": "2"}],
        )
    with pytest.raises(sqs.exceptions.TooManyEntriesInBatchRequest):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "m"} for i in range(11)]
        )


def test_list_queues_paginates(sqs: Any, queue: Callable[..., str]) -> None:
    prefix = f"page-{uuid.uuid4().hex[:6]}"
    urls = sorted(sqs.create_queue(QueueName=f"{prefix}-{i}")["QueueUrl"] for i in range(3))
    try:
        first = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=2)
        assert first["QueueUrls"] == urls[:2]
        rest = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=2, NextToken=first["NextToken"])
        assert rest["QueueUrls"] == urls[2:]
        assert "NextToken" not in rest
    finally:
        for url in urls:
            sqs.delete_queue(QueueUrl=url)


def test_aws_cli(aws_cli: Callable[..., Any]) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    url = json.loads(aws_cli("sqs", "create-queue", "--queue-name", name).stdout)["QueueUrl"]
    assert (
        json.loads(aws_cli("sqs", "get-queue-url", "--queue-name", name).stdout)["QueueUrl"] == url
    )
    assert url in json.loads(aws_cli("sqs", "list-queues").stdout)["QueueUrls"]
    sent = json.loads(
        aws_cli("sqs", "send-message", "--queue-url", url, "--message-body", "from the cli").stdout
    )
    got = json.loads(
        aws_cli(
            "sqs",
            "receive-message",
            "--queue-url",
            url,
            "--wait-time-seconds",
            "5",
            "--attribute-names",
            "All",
        ).stdout
    )["Messages"][0]
    assert got["MessageId"] == sent["MessageId"]
    assert got["Body"] == "from the cli"
    aws_cli("sqs", "delete-message", "--queue-url", url, "--receipt-handle", got["ReceiptHandle"])
    attrs = json.loads(
        aws_cli(
            "sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "All"
        ).stdout
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    aws_cli("sqs", "purge-queue", "--queue-url", url)
    aws_cli("sqs", "delete-queue", "--queue-url", url)
    missing = aws_cli("sqs", "get-queue-url", "--queue-name", name, check=False)
    assert missing.returncode != 0
    assert "NonExistentQueue" in missing.stderr or "does not exist" in missing.stderr


def test_messages_survive_kill_9(tmp_path: Path) -> None:
    server = LaminaProcess(tmp_path / "data")
    server.start()
    try:
        sqs = client_for(server.endpoint, "sqs")
        url = sqs.create_queue(QueueName="durable")["QueueUrl"]
        sent = sqs.send_message(QueueUrl=url, MessageBody="kept")
        server.stop(signal.SIGKILL)
        server.start()
        sqs = client_for(server.endpoint, "sqs")
        url = sqs.get_queue_url(QueueName="durable")["QueueUrl"]
        got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
        assert [m["MessageId"] for m in got] == [sent["MessageId"]]
    finally:
        server.stop()
