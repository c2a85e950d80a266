"""The function lifecycle through the AWS CLI (the `awscli` package), as a user types it."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import awscli
import pytest

from tests.integration.conftest import PYTHON_RUNTIME, ROLE, function_zip

# The CLI's own waiters poll every 1-5 s; boto3's with a short delay keep the test quick.
WAIT = {"Delay": 0.2, "MaxAttempts": 300}

AwsCli = Callable[..., subprocess.CompletedProcess[str]]


def aws_json(aws_cli: AwsCli, *args: str) -> Any:
    return json.loads(aws_cli(*args, "--output", "json").stdout)


def poll(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout_s}s; last: {value!r}")
        time.sleep(0.2)


def test_lifecycle_through_the_cli(aws_cli: AwsCli, tmp_path: Path, lambda_client: Any) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    package = tmp_path / "function.zip"
    package.write_bytes(function_zip("echo"))
    try:
        created = aws_json(
            aws_cli,
            "lambda",
            "create-function",
            "--function-name",
            name,
            "--runtime",
            PYTHON_RUNTIME,
            "--role",
            ROLE,
            "--handler",
            "echo.handler",
            "--timeout",
            "60",
            "--environment",
            "Variables={STAGE=cli}",
            "--zip-file",
            f"fileb://{package}",
        )
        assert created["FunctionName"] == name
        assert created["CodeSize"] == package.stat().st_size
        assert created["Environment"] == {"Variables": {"STAGE": "cli"}}
        lambda_client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=WAIT)

        got = aws_json(aws_cli, "lambda", "get-function", "--function-name", name)
        assert got["Configuration"]["State"] == "Active"
        assert got["Configuration"]["Timeout"] == 60
        assert got["Code"]["Location"].startswith("http")

        names = aws_cli(
            "lambda",
            "list-functions",
            "--query",
            "Functions[].FunctionName",
            "--output",
            "text",
        ).stdout.split()
        assert name in names

        updated = aws_json(
            aws_cli,
            "lambda",
            "update-function-configuration",
            "--function-name",
            name,
            "--memory-size",
            "256",
            "--description",
            "via the CLI",
        )
        assert updated["MemorySize"] == 256
        assert updated["LastUpdateStatus"] == "InProgress"
        lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=WAIT)

        outfile = tmp_path / "out.json"
        meta = aws_json(
            aws_cli,
            "lambda",
            "invoke",
            "--function-name",
            name,
            "--payload",
            '{"from": "cli"}',
            "--log-type",
            "Tail",
            str(outfile),
        )
        assert meta["StatusCode"] == 200
        assert meta["ExecutedVersion"] == "$LATEST"
        assert "FunctionError" not in meta
        result = json.loads(outfile.read_text())
        assert result["event"] == {"from": "cli"}
        assert result["env"]["STAGE"] == "cli"
        assert result["memory_limit_in_mb"] == "256"
        request_id = result["request_id"]

        def log_messages() -> list[str]:
            events = aws_json(
                aws_cli, "logs", "filter-log-events", "--log-group-name", f"/aws/lambda/{name}"
            )["events"]
            return [e["message"] for e in events]

        messages = poll(
            log_messages,
            lambda ms: any(m.startswith(f"REPORT RequestId: {request_id}") for m in ms),
        )
        text = "".join(messages)
        assert f"START RequestId: {request_id} Version: $LATEST" in text
        assert f"END RequestId: {request_id}" in text
        assert f"echo {request_id}" in text  # the function's own output
        report = next(m for m in messages if m.startswith(f"REPORT RequestId: {request_id}"))
        assert "Duration: " in report and "Billed Duration: " in report
        assert "Memory Size: 256 MB" in report

        if not awscli.__version__.startswith("1."):  # `aws logs tail` exists in AWS CLI v2 only
            tail = aws_cli("logs", "tail", f"/aws/lambda/{name}", "--since", "1h")
            assert f"START RequestId: {request_id}" in tail.stdout
            assert f"REPORT RequestId: {request_id}" in tail.stdout

        aws_cli("lambda", "delete-function", "--function-name", name)
        with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
            lambda_client.get_function(FunctionName=name)
    finally:
        with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
            lambda_client.delete_function(FunctionName=name)


def test_cli_reports_errors(aws_cli: AwsCli, tmp_path: Path) -> None:
    """The CLI names Lambda's error type and message, and exits non-zero."""
    package = tmp_path / "function.zip"
    package.write_bytes(function_zip("echo"))
    base = {
        "--function-name": f"cli-bad-{uuid.uuid4().hex[:8]}",
        "--runtime": PYTHON_RUNTIME,
        "--role": ROLE,
        "--handler": "echo.handler",
        "--zip-file": f"fileb://{package}",
    }
    base["--runtime"] = "java21"
    proc = aws_cli(
        "lambda", "create-function", *[x for kv in base.items() for x in kv], check=False
    )
    assert proc.returncode != 0
    assert (
        "An error occurred (InvalidParameterValueException) when calling the CreateFunction "
        "operation: The runtime parameter of java21 is not supported" in proc.stderr
    )
