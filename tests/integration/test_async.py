"""Asynchronous invocation: durable acceptance, Lambda's retries, event age, destinations and DLQ.

The functions keep their own ledger (a file per key, appended with O_APPEND), so what ran is
observed independently of Lamina's records. The server runs with a short retry base so that
Lambda's 1-minute/2-minute waits take a fraction of a second.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import PYTHON_RUNTIME, ROLE, client_for, make_zip
from tests.integration.lamina_process import LaminaProcess

DEADLINE_S = 120.0

LEDGER_FUNCTION = """
import os


def handler(event, context):
    path = os.path.join(os.environ["LEDGER_DIR"], event.get("key", "default"))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (context.aws_request_id + "\\n").encode())
    finally:
        os.close(fd)
    with open(path) as f:
        attempt = sum(1 for _ in f)
    if event.get("sleep"):
        import time
        time.sleep(event["sleep"])
    if attempt <= int(event.get("fail_times", 0)):
        raise RuntimeError(f"attempt {attempt} fails")
    return {"attempt": attempt, "key": event.get("key")}
"""

RECORDER_FUNCTION = """
import json
import os


def handler(event, context):
    path = os.path.join(os.environ["LEDGER_DIR"], "recorded-" + context.function_name)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(event) + "\\n").encode())
    finally:
        os.close(fd)
    return {"recorded": True}
"""


def start_server(data_dir: Path, retry_base_s: float) -> LaminaProcess:
    server = LaminaProcess(
        data_dir,
        "--account-concurrency",
        "50",
        "--min-unreserved-concurrency",
        "10",
        "--async-retry-base",
        str(retry_base_s),
        env={"LAMINA_SANDBOX": "process"},  # the functions write their ledger on the host
    )
    server.start()
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaProcess]:
    proc = start_server(tmp_path_factory.mktemp("async-data"), 0.2)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def lam(server: LaminaProcess) -> Any:
    return client_for(server.endpoint)


@pytest.fixture(scope="module")
def sqs(server: LaminaProcess) -> Any:
    return client_for(server.endpoint, "sqs")


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger"
    path.mkdir()
    return path


def new_function(lam: Any, ledger: Path, code: str = LEDGER_FUNCTION, **kwargs: Any) -> str:
    name = f"async-{uuid.uuid4().hex[:10]}"
    lam.create_function(
        FunctionName=name,
        Runtime=PYTHON_RUNTIME,
        Role=ROLE,
        Handler="f.handler",
        Code={"ZipFile": make_zip({"f.py": code})},
        Timeout=30,
        Environment={"Variables": {"LEDGER_DIR": str(ledger)}},
        **kwargs,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 300}
    )
    return name


def new_queue(sqs: Any) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=f"dest-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return str(url), str(arn)


def invoke_event(lam: Any, name: str, event: dict[str, Any]) -> str:
    resp = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event))
    assert resp["StatusCode"] == 202
    return str(resp["ResponseMetadata"]["RequestId"])


def receive(sqs: Any, url: str, count: int = 1) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(got) < count and time.monotonic() < deadline:
        resp = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2, MessageAttributeNames=["All"]
        )
        for msg in resp.get("Messages", []):
            got.append(msg)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
    assert len(got) >= count, f"only {len(got)} of {count} messages arrived"
    return got


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def check_record(
    record: dict[str, Any],
    *,
    request_id: str,
    function_arn: str,
    condition: str,
    count: int,
    request: dict[str, Any],
) -> None:
    assert set(record) >= {"version", "timestamp", "requestContext", "requestPayload"}
    assert record["version"] == "1.0"
    assert record["timestamp"].endswith("Z") and "T" in record["timestamp"]
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": function_arn,
        "condition": condition,
        "approximateInvokeCount": count,
    }
    assert record["requestPayload"] == request


# -- retries ---------------------------------------------------------------------------------------


def test_retries_are_counted_exactly_and_keep_the_request_id(
    lam: Any, sqs: Any, ledger: Path
) -> None:
    url, arn = new_queue(sqs)
    name = new_function(lam, ledger)
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": arn}}
    )
    event = {"key": "twice", "fail_times": 2}
    request_id = invoke_event(lam, name, event)
    (msg,) = receive(sqs, url)
    record = json.loads(msg["Body"])
    check_record(
        record,
        request_id=request_id,
        function_arn=f"arn:aws:lambda:us-east-1:000000000000:function:{name}:$LATEST",
        condition="Success",
        count=3,
        request=event,
    )
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"attempt": 3, "key": "twice"}
    # The function ran exactly three times (two failures, one success), all with one request id.
    assert lines(ledger / "twice") == [request_id] * 3


def test_retries_exhausted_go_to_on_failure_and_the_dlq(lam: Any, sqs: Any, ledger: Path) -> None:
    dest_url, dest_arn = new_queue(sqs)
    dlq_url, dlq_arn = new_queue(sqs)
    name = new_function(lam, ledger, DeadLetterConfig={"TargetArn": dlq_arn})
    lam.put_function_event_invoke_config(
        FunctionName=name,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": dest_arn}},
    )
    event = {"key": "always", "fail_times": 99}
    request_id = invoke_event(lam, name, event)
    (msg,) = receive(sqs, dest_url)
    record = json.loads(msg["Body"])
    check_record(
        record,
        request_id=request_id,
        function_arn=f"arn:aws:lambda:us-east-1:000000000000:function:{name}:$LATEST",
        condition="RetriesExhausted",
        count=2,
        request=event,
    )
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    response = record["responsePayload"]
    assert response["errorMessage"] == "attempt 2 fails"
    assert response["errorType"] == "RuntimeError"
    assert isinstance(response["stackTrace"], list)
    # The dead-letter message: the event itself, with the error in its attributes.
    (letter,) = receive(sqs, dlq_url)
    assert json.loads(letter["Body"]) == event
    assert letter["MessageAttributes"] == {
        "RequestID": {"DataType": "String", "StringValue": request_id},
        "ErrorCode": {"DataType": "Number", "StringValue": "200"},
        "ErrorMessage": {"DataType": "String", "StringValue": "attempt 2 fails"},
    }
    assert lines(ledger / "always") == [request_id] * 2


def test_maximum_retry_attempts_zero_runs_once(lam: Any, sqs: Any, ledger: Path) -> None:
    url, arn = new_queue(sqs)
    name = new_function(lam, ledger)
    lam.put_function_event_invoke_config(
        FunctionName=name,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )
    request_id = invoke_event(lam, name, {"key": "once", "fail_times": 1})
    (msg,) = receive(sqs, url)
    record = json.loads(msg["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    # The record is written when the event leaves the queue: no attempt can follow it.
    assert lines(ledger / "once") == [request_id]


def test_default_is_two_retries(lam: Any, sqs: Any, ledger: Path) -> None:
    dlq_url, dlq_arn = new_queue(sqs)
    name = new_function(lam, ledger, DeadLetterConfig={"TargetArn": dlq_arn})
    request_id = invoke_event(lam, name, {"key": "default", "fail_times": 99})
    (letter,) = receive(sqs, dlq_url)
    assert letter["MessageAttributes"]["RequestID"]["StringValue"] == request_id
    assert lines(ledger / "default") == [request_id] * 3


def test_event_age_exceeded(tmp_path: Path, ledger: Path) -> None:
    # Retries wait 100 s x attempt here, past the 60 s maximum age: after the first failure the
    # event takes the failure path at once, as on Lambda (approximateInvokeCount 1).
    server = start_server(tmp_path / "data", 100.0)
    try:
        lam, sqs = client_for(server.endpoint), client_for(server.endpoint, "sqs")
        url, arn = new_queue(sqs)
        name = new_function(lam, ledger)
        lam.put_function_event_invoke_config(
            FunctionName=name,
            MaximumEventAgeInSeconds=60,
            DestinationConfig={"OnFailure": {"Destination": arn}},
        )
        event = {"key": "aged", "fail_times": 99}
        request_id = invoke_event(lam, name, event)
        (msg,) = receive(sqs, url)
        record = json.loads(msg["Body"])
        check_record(
            record,
            request_id=request_id,
            function_arn=f"arn:aws:lambda:us-east-1:000000000000:function:{name}:$LATEST",
            condition="EventAgeExceeded",
            count=1,
            request=event,
        )
        assert record["responseContext"]["functionError"] == "Unhandled"
        assert lines(ledger / "aged") == [request_id]
    finally:
        server.stop()


# -- destinations ----------------------------------------------------------------------------------


def test_destinations_to_functions(lam: Any, ledger: Path) -> None:
    on_success = new_function(lam, ledger, RECORDER_FUNCTION)
    on_failure = new_function(lam, ledger, RECORDER_FUNCTION)
    name = new_function(lam, ledger)
    arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}:$LATEST"
    lam.put_function_event_invoke_config(
        FunctionName=name,
        MaximumRetryAttempts=0,
        DestinationConfig={
            "OnSuccess": {
                "Destination": f"arn:aws:lambda:us-east-1:000000000000:function:{on_success}"
            },
            "OnFailure": {
                "Destination": f"arn:aws:lambda:us-east-1:000000000000:function:{on_failure}"
            },
        },
    )
    good = {"key": "good"}
    bad = {"key": "bad", "fail_times": 1}
    good_id = invoke_event(lam, name, good)
    bad_id = invoke_event(lam, name, bad)
    success_log = ledger / f"recorded-{on_success}"
    failure_log = ledger / f"recorded-{on_failure}"
    wait_for(lambda: bool(lines(success_log)) and bool(lines(failure_log)), "both records")
    (ok,) = [json.loads(line) for line in lines(success_log)]
    check_record(
        ok, request_id=good_id, function_arn=arn, condition="Success", count=1, request=good
    )
    assert ok["responsePayload"] == {"attempt": 1, "key": "good"}
    (failed,) = [json.loads(line) for line in lines(failure_log)]
    check_record(
        failed,
        request_id=bad_id,
        function_arn=arn,
        condition="RetriesExhausted",
        count=1,
        request=bad,
    )
    assert failed["responseContext"]["functionError"] == "Unhandled"
    assert failed["responsePayload"]["errorMessage"] == "attempt 1 fails"


# -- throttles, payloads, the config API -----------------------------------------------------------


def test_throttled_events_all_run(lam: Any, ledger: Path) -> None:
    name = new_function(lam, ledger)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    ids = [invoke_event(lam, name, {"key": "throttled", "sleep": 0.05}) for _ in range(20)]
    wait_for(lambda: len(lines(ledger / "throttled")) >= len(ids), "every throttled event")
    assert sorted(set(lines(ledger / "throttled"))) == sorted(ids)


def test_async_payload_limit(lam: Any, ledger: Path) -> None:
    name = new_function(lam, ledger)
    too_big = json.dumps({"x": "a" * (1024 * 1024)}).encode()
    with pytest.raises(lam.exceptions.RequestTooLargeException):
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=too_big)
    fits = json.dumps({"key": "big", "x": "a" * (1024 * 1024 - 100)}).encode()
    assert lam.invoke(FunctionName=name, InvocationType="Event", Payload=fits)["StatusCode"] == 202
    wait_for(lambda: bool(lines(ledger / "big")), "the large event")


def test_event_invoke_config_api(lam: Any, sqs: Any, server: LaminaProcess, ledger: Path) -> None:
    name = new_function(lam, ledger)
    other = new_function(lam, ledger)
    _url, queue_arn = new_queue(sqs)
    arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as info:
        lam.get_function_event_invoke_config(FunctionName=name)
    assert "doesn't have an EventInvokeConfig" in str(info.value)
    put = lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)
    assert put["FunctionArn"] == f"{arn}:$LATEST"
    assert put["MaximumRetryAttempts"] == 1
    assert "MaximumEventAgeInSeconds" not in put
    assert put["LastModified"].year >= 2024
    updated = lam.update_function_event_invoke_config(
        FunctionName=name,
        MaximumEventAgeInSeconds=300,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    assert updated["MaximumRetryAttempts"] == 1  # kept: Update merges
    assert updated["MaximumEventAgeInSeconds"] == 300
    assert updated["DestinationConfig"]["OnFailure"] == {"Destination": queue_arn}
    got = lam.get_function_event_invoke_config(FunctionName=name)
    assert {
        k: got[k] for k in ("FunctionArn", "MaximumRetryAttempts", "MaximumEventAgeInSeconds")
    } == {
        "FunctionArn": f"{arn}:$LATEST",
        "MaximumRetryAttempts": 1,
        "MaximumEventAgeInSeconds": 300,
    }
    # Put replaces the whole configuration.
    replaced = lam.put_function_event_invoke_config(FunctionName=name, MaximumEventAgeInSeconds=60)
    assert "MaximumRetryAttempts" not in replaced
    listed = lam.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"]
    assert [c["FunctionArn"] for c in listed] == [f"{arn}:$LATEST"]
    # The wire gives LastModified as epoch seconds.
    with urllib.request.urlopen(
        f"{server.endpoint}/2019-09-25/functions/{name}/event-invoke-config", timeout=30
    ) as resp:
        assert isinstance(json.loads(resp.read())["LastModified"], float | int)

    # Validation.
    unchecked = client_for(server.endpoint, parameter_validation=False)
    for kwargs in (
        {"MaximumRetryAttempts": 3},
        {"MaximumRetryAttempts": -1},
        {"MaximumEventAgeInSeconds": 59},
        {"MaximumEventAgeInSeconds": 21601},
    ):
        with pytest.raises(unchecked.exceptions.ClientError) as err:
            unchecked.put_function_event_invoke_config(FunctionName=name, **kwargs)
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as err:
        lam.put_function_event_invoke_config(FunctionName=name)
    assert "at least one of error handling or destination setting" in str(err.value)
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as err:
        lam.put_function_event_invoke_config(
            FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": arn}}
        )
    assert "destination for itself" in str(err.value)
    missing = "arn:aws:lambda:us-east-1:000000000000:function:no-such-function"
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as err:
        lam.put_function_event_invoke_config(
            FunctionName=name, DestinationConfig={"OnFailure": {"Destination": missing}}
        )
    assert f"The destination ARN {missing} is invalid" in str(err.value)
    lam.put_function_event_invoke_config(
        FunctionName=name,
        DestinationConfig={
            "OnFailure": {"Destination": f"arn:aws:lambda:us-east-1:000000000000:function:{other}"}
        },
    )
    lam.delete_function_event_invoke_config(FunctionName=name)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_event_invoke_config(FunctionName=name)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.delete_function_event_invoke_config(FunctionName=name)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.put_function_event_invoke_config(
            FunctionName="no-such-function", MaximumRetryAttempts=1
        )


def test_events_survive_a_graceful_restart(tmp_path: Path, ledger: Path) -> None:
    """SIGTERM while one event runs and others wait: after the restart every event runs."""
    server = LaminaProcess(
        tmp_path / "data",
        "--async-concurrency",
        "1",
        env={"LAMINA_SANDBOX": "process"},
    )
    server.start()
    try:
        lam = client_for(server.endpoint)
        name = new_function(lam, ledger)
        ids = [invoke_event(lam, name, {"key": "restart", "sleep": 1.0}) for _ in range(3)]
        wait_for(lambda: bool(lines(ledger / "restart")), "the first event to start")
        server.stop()  # SIGTERM: the worker gives back what it held
        server.start()
        wait_for(lambda: set(lines(ledger / "restart")) >= set(ids), "every event after restart")
    finally:
        server.stop()
