"""Function failures are results (200 + FunctionError), never server errors, and never sticky."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from tests.integration.conftest import CreateFunction, function_zip, invoke_json, make_zip

OK_HANDLER = "def handler(event, context):\n    return 'fine'\n"


def log_of(resp: dict[str, Any]) -> str:
    return base64.b64decode(resp["LogResult"]).decode()


def test_handler_exception(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function("failing")["FunctionName"]
    resp, body = invoke_json(lambda_client, name, {"how": "raise"}, LogType="Tail")
    rid = resp["ResponseMetadata"]["RequestId"]
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    assert set(body) == {"errorMessage", "errorType", "stackTrace", "requestId"}
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "something broke"
    assert body["requestId"] == rid
    assert any("failing.py" in frame and "in handler" in frame for frame in body["stackTrace"])
    log = log_of(resp)
    # The error record is one log event: its lines are joined with carriage returns.
    record = next(line for line in log.split("\n") if line.startswith("[ERROR]"))
    parts = record.split("\r")
    assert parts[0] == "[ERROR] ValueError: something broke"
    assert parts[1] == "Traceback (most recent call last):"
    assert any("failing.py" in p for p in parts[2:]) and any("raise ValueError" in p for p in parts)
    assert f"END RequestId: {rid}" in log
    # The environment survives a handled exception: the next call is warm and succeeds.
    resp, body = invoke_json(lambda_client, name, {}, LogType="Tail")
    assert "FunctionError" not in resp
    assert "Init Duration" not in log_of(resp)


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        ({"app.py": OK_HANDLER}, "missing.handler", "Runtime.ImportModuleError", None),
        (
            {"app.py": "import not_a_module_anywhere\n"},
            "app.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'not_a_module_anywhere'",
        ),
        (
            {"app.py": OK_HANDLER},
            "app.nope",
            "Runtime.HandlerNotFound",
            "Handler 'nope' missing on module 'app'",
        ),
        (
            {"app.py": "def handler(event, context)\n    return 1\n"},
            "app.handler",
            "Runtime.UserCodeSyntaxError",
            None,
        ),
        ({"app.py": OK_HANDLER}, "apphandler", "Runtime.MalformedHandlerName", None),
        (
            {"app.py": "raise RuntimeError('init went wrong')\n"},
            "app.handler",
            "RuntimeError",
            "init went wrong",
        ),
    ],
)
def test_init_errors(
    lambda_client: Any,
    create_function: CreateFunction,
    files: dict[str, str],
    handler: str,
    error_type: str,
    message: str | None,
) -> None:
    try:
        name = create_function(zip_bytes=make_zip(files), handler=handler)["FunctionName"]
    except lambda_client.exceptions.InvalidParameterValueException:
        # Lambda refuses some malformed handler strings at create time already.
        assert error_type == "Runtime.MalformedHandlerName"
        return
    for _ in range(2):  # every call re-initialises and fails the same way
        resp, body = invoke_json(lambda_client, name, {}, LogType="Tail")
        rid = resp["ResponseMetadata"]["RequestId"]
        assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
        assert body["errorType"] == error_type, body
        if message is not None:
            assert body["errorMessage"] == message
        lines = log_of(resp).splitlines()
        start = lines.index(f"START RequestId: {rid} Version: $LATEST")
        # Like Lambda, the init error is logged before START.
        assert any(f"[ERROR] {error_type}" in line for line in lines[:start]), lines
        assert lines[-2] == f"END RequestId: {rid}"
        report = re.match(r"REPORT RequestId: \S+\tDuration: (\d+\.\d\d) ms\t", lines[-1])
        assert report and float(report[1]) > 0, lines[-1]
    # Fixing the code makes the function work.
    lambda_client.update_function_code(FunctionName=name, ZipFile=make_zip({"app.py": OK_HANDLER}))
    lambda_client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1}
    )
    lambda_client.update_function_configuration(FunctionName=name, Handler="app.handler")
    lambda_client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1}
    )
    resp, body = invoke_json(lambda_client, name, {})
    assert "FunctionError" not in resp and body == "fine"


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("sys_exit", "Runtime exited with error: exit status 3"),
        ("os_exit", "Runtime exited with error: exit status 4"),
        ("sigkill", "Runtime exited with error: signal: killed"),
    ],
)
def test_runtime_exits(
    lambda_client: Any, create_function: CreateFunction, how: str, reason: str
) -> None:
    name = create_function("failing")["FunctionName"]
    _, before = invoke_json(lambda_client, name, {})
    resp, body = invoke_json(lambda_client, name, {"how": how}, LogType="Tail")
    rid = resp["ResponseMetadata"]["RequestId"]
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    assert body == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: {reason}",
    }
    log = log_of(resp)
    assert f"failing: {how}" in log
    assert f"RequestId: {rid} Error: {reason}" in log
    # The next call gets a fresh environment.
    resp, after = invoke_json(lambda_client, name, {}, LogType="Tail")
    assert "FunctionError" not in resp
    # A fresh environment: a cold start, a new log stream (pids repeat in PID namespaces).
    assert "Init Duration" in log_of(resp)
    assert after["stream"] != before["stream"]


def test_response_too_large(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function("failing", MemorySize=512)["FunctionName"]
    resp, body = invoke_json(lambda_client, name, {"how": "big"})
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Function.ResponseSizeTooLarge"
    assert "exceeded maximum allowed payload size" in body["errorMessage"]
    resp, body = invoke_json(lambda_client, name, {})
    assert "FunctionError" not in resp and "pid" in body


def test_errors_are_never_5xx(lambda_client: Any, create_function: CreateFunction) -> None:
    """A sweep of failure kinds through the raw status codes boto3 saw."""
    name = create_function(zip_bytes=function_zip("failing"), handler="failing.handler")[
        "FunctionName"
    ]
    for how in ("raise", "sys_exit", "sigkill", "big", None):
        resp = lambda_client.invoke(FunctionName=name, Payload=json.dumps({"how": how}))
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
        resp["Payload"].read()
