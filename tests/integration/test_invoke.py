"""Invoke through boto3: payloads, headers, log tails, the environment and the context object."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from typing import Any

import pytest

from tests.integration.conftest import (
    PYTHON_RUNTIME,
    CreateFunction,
    client_for,
    invoke_json,
    make_zip,
)

REPORT_RE = re.compile(
    r"^REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: \d+\.\d\d ms\t"
    r"Billed Duration: \d+ ms\tMemory Size: (?P<mem>\d+) MB\tMax Memory Used: \d+ MB\t"
    r"(?P<init>Init Duration: \d+\.\d\d ms\t)?$"
)
STREAM_RE = re.compile(r"^\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}$")


def tail_lines(resp: dict[str, Any]) -> list[str]:
    return base64.b64decode(resp["LogResult"]).decode().splitlines()


def wait_for_log(logs: Any, group: str, needle: str, timeout_s: float = 30.0) -> list[str]:
    """Poll the function's log group until a message contains `needle`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            events = logs.filter_log_events(logGroupName=group)["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        messages = [e["message"] for e in events]
        if any(needle in m for m in messages):
            return messages
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} never appeared in {group}")


def test_payload_round_trip(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function("echo")["FunctionName"]
    event = {"text": "héllo ✓", "n": [1, 2.5, None, True], "nested": {"a": {"b": "c"}}}
    resp, body = invoke_json(lambda_client, name, event)
    assert resp["StatusCode"] == 200
    assert body["event"] == event
    assert resp["ExecutedVersion"] == "$LATEST"
    assert resp["ResponseMetadata"]["HTTPHeaders"]["x-amz-executed-version"] == "$LATEST"
    assert body["request_id"] == resp["ResponseMetadata"]["RequestId"]
    assert body["request_id"] == resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]


def test_empty_payload_is_an_empty_object(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    name = create_function("echo")["FunctionName"]
    for kwargs in ({}, {"Payload": b""}):
        resp = lambda_client.invoke(FunctionName=name, **kwargs)
        assert json.loads(resp["Payload"].read())["event"] == {}


def test_log_tail_cold_then_warm(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function("chatty", MemorySize=256)["FunctionName"]
    resp, _ = invoke_json(
        lambda_client, name, {"lines": ["first line", "second line"]}, LogType="Tail"
    )
    rid = resp["ResponseMetadata"]["RequestId"]
    lines = tail_lines(resp)
    assert lines[0] == f"START RequestId: {rid} Version: $LATEST"
    assert lines[1:3] == ["first line", "second line"]
    assert lines[-2] == f"END RequestId: {rid}"
    m = REPORT_RE.match(lines[-1])
    assert m, lines[-1]
    assert m["id"] == rid and m["mem"] == "256" and m["init"], "cold start has Init Duration"

    resp, _ = invoke_json(lambda_client, name, {"lines": ["warm"]}, LogType="Tail")
    rid = resp["ResponseMetadata"]["RequestId"]
    lines = tail_lines(resp)
    assert lines == [
        f"START RequestId: {rid} Version: $LATEST",
        "warm",
        f"END RequestId: {rid}",
        lines[-1],
    ]
    m = REPORT_RE.match(lines[-1])
    assert m and m["id"] == rid and not m["init"], "a warm start has no Init Duration"

    # Without LogType=Tail there is no log result.
    resp, _ = invoke_json(lambda_client, name, {})
    assert "LogResult" not in resp


def test_output_without_newline_stays_with_its_invocation(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    name = create_function("chatty")["FunctionName"]
    resp, _ = invoke_json(lambda_client, name, {"partial": "no newline here"}, LogType="Tail")
    lines = tail_lines(resp)
    assert lines[1] == "no newline here" and lines[2].startswith("END RequestId:")
    resp, _ = invoke_json(lambda_client, name, {"lines": ["next"]}, LogType="Tail")
    lines = tail_lines(resp)
    assert lines[0].startswith("START RequestId:") and lines[1] == "next"
    assert "no newline here" not in "\n".join(lines)


def test_log_tail_is_the_last_4_kb(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function("chatty")["FunctionName"]
    lines = [f"line {i:04d} " + "x" * 90 for i in range(100)]
    resp, _ = invoke_json(lambda_client, name, {"lines": lines}, LogType="Tail")
    raw = base64.b64decode(resp["LogResult"])
    assert len(raw) == 4096
    text = raw.decode()
    assert text.endswith("\t\n") and "REPORT RequestId:" in text
    assert "line 0099" in text and "line 0000" not in text
    assert "START RequestId" not in text


def test_client_context_and_identity(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function("context_info")["FunctionName"]
    cc = {
        "custom": {"k": "v"},
        "env": {"platform": "test"},
        "client": {"installation_id": "inst-1", "app_title": "Lamina tests"},
    }
    _, body = invoke_json(
        lambda_client,
        name,
        {},
        ClientContext=base64.b64encode(json.dumps(cc).encode()).decode(),
    )
    assert body["client_context"] == {
        "custom": {"k": "v"},
        "env": {"platform": "test"},
        "installation_id": "inst-1",
        "app_title": "Lamina tests",
    }
    assert body["identity"] == {"id": None, "pool": None}
    _, body = invoke_json(lambda_client, name, {})
    assert body["client_context"] is None


def test_environment_variables(
    lambda_client: Any, create_function: CreateFunction, lamina: Any
) -> None:
    cfg = create_function(
        "echo",
        MemorySize=192,
        Environment={"Variables": {"GREETING": "hi", "EMPTY": ""}},
    )
    name = cfg["FunctionName"]
    _, body = invoke_json(lambda_client, name, {})
    env = body["env"]
    assert env["GREETING"] == "hi" and env["EMPTY"] == ""
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "192"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    assert STREAM_RE.match(env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == body["log_stream_name"]
    assert re.fullmatch(r"127\.0\.0\.1:\d+", env["AWS_LAMBDA_RUNTIME_API"])
    if env["LAMBDA_TASK_ROOT"] != "/var/task":  # a sandbox maps the code at /var/task
        assert os.path.isdir(env["LAMBDA_TASK_ROOT"])
        assert os.path.isfile(os.path.join(env["LAMBDA_TASK_ROOT"], "echo.py"))
    assert os.path.isdir(env["LAMBDA_RUNTIME_DIR"])
    assert env["_HANDLER"] == "echo.handler"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{PYTHON_RUNTIME}"
    assert env["TZ"] == ":UTC"
    assert env["LANG"] == "en_US.UTF-8"
    assert env["PATH"].split(":")[1:] == ["/usr/local/bin", "/usr/bin/", "/bin", "/opt/bin"]
    assert env["LD_LIBRARY_PATH"].endswith("/opt/lib")
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SESSION_TOKEN"]
    # Nothing of the server's own environment leaks in: the harness starts the server with
    # PYTHONUNBUFFERED=1, and every other variable of the server process stays out too.
    with open(f"/proc/{lamina.proc.pid}/environ", "rb") as f:
        host = dict(item.decode().partition("=")[::2] for item in f.read().split(b"\0") if item)
    assert host["PYTHONUNBUFFERED"] == "1"
    leaked = {
        k for k in host if k in env and env[k] == host[k] and not k.startswith(("AWS_", "LANG"))
    }
    assert not leaked
    assert "PYTHONUNBUFFERED" not in env and "HOME" not in env


def test_context_fields(lambda_client: Any, create_function: CreateFunction) -> None:
    cfg = create_function("context_info", Timeout=7, MemorySize=512)
    name, arn = cfg["FunctionName"], cfg["FunctionArn"]
    resp, body = invoke_json(lambda_client, name, {})
    assert body["request_id"] == resp["ResponseMetadata"]["RequestId"]
    assert body["function_name"] == name
    assert body["function_version"] == "$LATEST"
    assert body["invoked_function_arn"] == arn
    assert body["memory_limit_in_mb"] == "512" and body["memory_type"] == "str"
    assert body["log_group_name"] == f"/aws/lambda/{name}"
    assert STREAM_RE.match(body["log_stream_name"])
    assert 4000 < body["remaining_ms"] <= 7000
    _, body = invoke_json(lambda_client, name, {}, Qualifier="$LATEST")
    assert body["invoked_function_arn"] == f"{arn}:$LATEST"
    _, body = invoke_json(lambda_client, arn, {})
    assert body["invoked_function_arn"] == arn


def test_handlers_in_packages(lambda_client: Any, create_function: CreateFunction) -> None:
    source = "def handler(event, context):\n    return {'where': __name__}\n"
    code = make_zip(
        {
            "pkg/__init__.py": "",
            "pkg/mod.py": source,
            "pkg/sub/__init__.py": "",
            "pkg/sub/mod.py": source,
            "plain/mod.py": source,  # a namespace package (no __init__.py)
        }
    )
    for handler, module in (
        ("pkg/mod.handler", "pkg.mod"),
        ("pkg.sub.mod.handler", "pkg.sub.mod"),
        ("pkg/sub/mod.handler", "pkg.sub.mod"),
        ("plain.mod.handler", "plain.mod"),
    ):
        name = create_function(zip_bytes=code, handler=handler)["FunctionName"]
        resp, body = invoke_json(lambda_client, name, {})
        assert "FunctionError" not in resp, body
        assert body == {"where": module}


def test_dry_run(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function("chatty")["FunctionName"]
    resp = lambda_client.invoke(FunctionName=name, InvocationType="DryRun", Payload=b"{}")
    assert resp["StatusCode"] == 204
    assert resp["Payload"].read() == b""


def test_event_invocation_runs_in_the_background(
    lambda_client: Any, create_function: CreateFunction, endpoint: str
) -> None:
    name = create_function("chatty")["FunctionName"]
    marker = f"event-marker-{time.time_ns()}"
    resp = lambda_client.invoke(
        FunctionName=name, InvocationType="Event", Payload=json.dumps({"lines": [marker]})
    )
    assert resp["StatusCode"] == 202
    assert resp["Payload"].read() == b""
    assert "ExecutedVersion" not in resp
    rid = resp["ResponseMetadata"]["RequestId"]
    messages = wait_for_log(client_for(endpoint, "logs"), f"/aws/lambda/{name}", marker)
    assert f"START RequestId: {rid} Version: $LATEST" in messages
    assert any(m.startswith(f"REPORT RequestId: {rid}\t") for m in messages)


@pytest.mark.parametrize(
    ("kind", "expected", "content_type"),
    [
        ("none", b"null", "application/json"),
        ("str", b'"hello"', "application/json"),
        ("list", b'[1, "two", null]', "application/json"),
        ("int", b"42", "application/json"),
        ("float", b"2.5", "application/json"),
        ("decimal", b'{"whole": 3, "part": 1.5}', "application/json"),
        ("bytes", b"\x00raw bytes\xff", "application/unknown"),
    ],
)
def test_result_types(
    lambda_client: Any,
    create_function: CreateFunction,
    kind: str,
    expected: bytes,
    content_type: str,
) -> None:
    name = create_function("results")["FunctionName"]
    resp = lambda_client.invoke(FunctionName=name, Payload=json.dumps({"kind": kind}))
    assert "FunctionError" not in resp
    assert resp["Payload"].read() == expected
    assert resp["ResponseMetadata"]["HTTPHeaders"]["content-type"] == content_type


def test_unserialisable_result(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function("results")["FunctionName"]
    resp, body = invoke_json(lambda_client, name, {"kind": "unserialisable"})
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.MarshalError"
    assert body["errorMessage"].startswith("Unable to marshal response:")
    assert "object is not JSON serializable" in body["errorMessage"]
    assert body["requestId"] == resp["ResponseMetadata"]["RequestId"]
