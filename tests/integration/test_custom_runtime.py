"""Custom runtimes (provided.al2023): the official awslambdaric client, and a hand-written one.

Both talk to Lamina only through the Runtime API at $AWS_LAMBDA_RUNTIME_API.
"""

from __future__ import annotations

import base64
import importlib.metadata
import sys
from functools import cache
from typing import Any

from tests.integration.conftest import CreateFunction, invoke_json, make_zip

BOOTSTRAP_RIC = """#!/bin/sh
cd $LAMBDA_TASK_ROOT
export PYTHONPATH=$LAMBDA_TASK_ROOT
exec python3 -m awslambdaric app.handler
"""

APP = """import os
import sys

def handler(event, context):
    if event.get("fail"):
        raise KeyError("no such thing")
    print("ric handling", context.aws_request_id)
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "execution_env": os.environ.get("AWS_EXECUTION_ENV"),
        "python": list(sys.version_info[:3]),
    }
"""


@cache
def vendored_ric() -> dict[str, bytes]:
    """The installed awslambdaric with its dependencies, as files for a deployment package."""
    files: dict[str, bytes] = {}
    for dist in ("awslambdaric", "simplejson", "snapshot-restore-py"):
        for path in importlib.metadata.distribution(dist).files or ():
            name = str(path)
            if name.startswith("..") or "__pycache__" in name:
                continue
            files[name] = path.locate().read_bytes()  # type: ignore[attr-defined]
    assert any(n.startswith("awslambdaric/") for n in files)
    return files


def ric_zip(app: str) -> bytes:
    return make_zip(
        {**vendored_ric(), "app.py": app, "bootstrap": BOOTSTRAP_RIC}, executable=("bootstrap",)
    )


def log_of(resp: dict[str, Any]) -> str:
    return base64.b64decode(resp["LogResult"]).decode()


def test_awslambdaric(lambda_client: Any, create_function: CreateFunction) -> None:
    cfg = create_function(
        zip_bytes=ric_zip(APP), handler="app.handler", runtime="provided.al2023", MemorySize=256
    )
    name = cfg["FunctionName"]
    resp, body = invoke_json(lambda_client, name, {"hello": "ric"}, LogType="Tail")
    rid = resp["ResponseMetadata"]["RequestId"]
    assert "FunctionError" not in resp, body
    assert body["event"] == {"hello": "ric"}
    assert body["request_id"] == rid
    assert body["function_name"] == name
    assert body["memory"] == "256"
    assert body["arn"] == cfg["FunctionArn"]
    assert 0 < body["remaining_ms"] <= 3000
    assert body["execution_env"] is None  # not set for custom runtimes
    # `python3` on PATH is the interpreter Lamina runs on (the vendored client was built for it).
    assert body["python"] == list(sys.version_info[:3])
    log = log_of(resp)
    assert f"ric handling {rid}" in log and "Init Duration" in log

    # A handler error, then the same (warm) environment answers again.
    resp, body = invoke_json(lambda_client, name, {"fail": True})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "KeyError"
    assert body["errorMessage"] == "'no such thing'"
    assert body["requestId"] == resp["ResponseMetadata"]["RequestId"]
    assert any("app.py" in frame for frame in body["stackTrace"])
    resp, body = invoke_json(lambda_client, name, {"again": 1}, LogType="Tail")
    assert "FunctionError" not in resp and body["event"] == {"again": 1}
    assert "Init Duration" not in log_of(resp)


def test_awslambdaric_init_error(lambda_client: Any, create_function: CreateFunction) -> None:
    code = ric_zip("import module_that_is_not_there\n")
    name = create_function(zip_bytes=code, handler="app.handler", runtime="provided.al2023")[
        "FunctionName"
    ]
    for _ in range(2):
        resp, body = invoke_json(lambda_client, name, {}, LogType="Tail")
        assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
        assert body["errorType"] == "Runtime.ImportModuleError"
        assert body["errorMessage"] == (
            "Unable to import module 'app': No module named 'module_that_is_not_there'"
        )
        log = log_of(resp)
        assert log.index("Runtime.ImportModuleError") < log.index("START RequestId")


BOOTSTRAP_URLLIB = '''#!/usr/bin/env python3
"""A whole custom runtime: the Runtime API loop with urllib."""
import json
import os
import sys
import urllib.request

api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
print("custom runtime starting for", os.environ["_HANDLER"], flush=True)
if os.environ["_HANDLER"] == "broken":
    body = json.dumps({"errorMessage": "cannot start", "errorType": "Custom.InitFailed"})
    req = urllib.request.Request(api + "/init/error", body.encode(), method="POST")
    req.add_header("Lambda-Runtime-Function-Error-Type", "Custom.InitFailed")
    urllib.request.urlopen(req).read()
    sys.exit(1)
while True:
    with urllib.request.urlopen(api + "/invocation/next") as resp:
        rid = resp.headers["Lambda-Runtime-Aws-Request-Id"]
        deadline = int(resp.headers["Lambda-Runtime-Deadline-Ms"])
        event = json.loads(resp.read())
    print("custom runtime got", rid, flush=True)
    if event.get("fail"):
        doc = {"errorMessage": "asked to fail", "errorType": "Custom.Failure"}
        url = f"{api}/invocation/{rid}/error"
    else:
        doc = {"echo": event, "rid": rid, "deadline": deadline}
        url = f"{api}/invocation/{rid}/response"
    urllib.request.urlopen(urllib.request.Request(url, json.dumps(doc).encode(), method="POST"))
'''


def test_python_script_bootstrap(lambda_client: Any, create_function: CreateFunction) -> None:
    code = make_zip({"bootstrap": BOOTSTRAP_URLLIB}, executable=("bootstrap",))
    name = create_function(zip_bytes=code, handler="whatever", runtime="provided.al2023")[
        "FunctionName"
    ]
    resp, body = invoke_json(lambda_client, name, {"n": 1}, LogType="Tail")
    rid = resp["ResponseMetadata"]["RequestId"]
    assert "FunctionError" not in resp, body
    assert body["echo"] == {"n": 1} and body["rid"] == rid and body["deadline"] > 0
    log = log_of(resp)
    assert f"custom runtime got {rid}" in log
    resp, body = invoke_json(lambda_client, name, {"fail": True})
    assert resp["FunctionError"] == "Unhandled"
    assert body == {"errorMessage": "asked to fail", "errorType": "Custom.Failure"}
    resp, body = invoke_json(lambda_client, name, {"n": 2})
    assert "FunctionError" not in resp and body["echo"] == {"n": 2}

    broken = create_function(zip_bytes=code, handler="broken", runtime="provided.al2023")
    resp, body = invoke_json(lambda_client, broken["FunctionName"], {}, LogType="Tail")
    assert resp["FunctionError"] == "Unhandled"
    assert body == {"errorMessage": "cannot start", "errorType": "Custom.InitFailed"}
    assert "custom runtime starting for broken" in log_of(resp)


BOOTSTRAP_EXPECT = '''#!/usr/bin/env python3
"""Posts its response the way curl posts a large body: `Expect: 100-continue` first."""
import json
import os
import socket

host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
sock = socket.create_connection((host, int(port)))
reader = sock.makefile("rb")


def read_response():
    status = reader.readline()
    headers = {}
    while (line := reader.readline()) not in (b"\\r\\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", "0")))
    return status, headers, body


while True:
    sock.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    _, headers, body = read_response()
    rid = headers["lambda-runtime-aws-request-id"]
    payload = json.dumps({"size": len(body), "pad": "x" * 2_000_000}).encode()
    sock.sendall(
        f"POST /2018-06-01/runtime/invocation/{rid}/response HTTP/1.1\\r\\nHost: x\\r\\n"
        f"Content-Length: {len(payload)}\\r\\nExpect: 100-continue\\r\\n\\r\\n".encode()
    )
    sock.settimeout(5)
    interim = reader.readline()
    reader.readline()
    sock.settimeout(None)
    assert interim.startswith(b"HTTP/1.1 100"), interim
    sock.sendall(payload)
    status, _, _ = read_response()
    assert b" 202 " in status, status
'''


def test_expect_100_continue(lambda_client: Any, create_function: CreateFunction) -> None:
    code = make_zip({"bootstrap": BOOTSTRAP_EXPECT}, executable=("bootstrap",))
    name = create_function(zip_bytes=code, handler="x", runtime="provided.al2023", MemorySize=256)[
        "FunctionName"
    ]
    for _ in range(2):
        resp, body = invoke_json(lambda_client, name, {"a": 1})
        assert "FunctionError" not in resp, body
        assert body["size"] == len(b'{"a": 1}') and len(body["pad"]) == 2_000_000


def test_missing_bootstrap(lambda_client: Any, create_function: CreateFunction) -> None:
    code = make_zip({"app.py": "print('no bootstrap here')\n"})
    name = create_function(zip_bytes=code, handler="app.handler", runtime="provided.al2023")[
        "FunctionName"
    ]
    resp, body = invoke_json(lambda_client, name, {})
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    assert body["errorType"].startswith("Runtime.")
