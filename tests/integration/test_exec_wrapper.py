"""AWS_LAMBDA_EXEC_WRAPPER: the managed runtimes start through a wrapper script, as on Lambda."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from lamina.runtime.runtimes import NODE_IDS, node_interpreter
from tests.integration.conftest import PYTHON_RUNTIME, CreateFunction, invoke_json, make_zip

NODE = next((rid for rid in NODE_IDS if node_interpreter(rid)), None)

WRAPPER = """#!/bin/sh
echo "wrapper starts: $1"
export WRAPPED_BY="wrapper with $# arguments"
exec "$@"
"""

CASES = [
    (
        PYTHON_RUNTIME,
        "app.handler",
        {"app.py": "import os\ndef handler(e, c):\n    return os.environ.get('WRAPPED_BY')\n"},
    ),
    (
        NODE,
        "index.handler",
        {"index.js": "exports.handler = async () => process.env.WRAPPED_BY || null;"},
    ),
]


@pytest.mark.parametrize(("runtime", "handler", "files"), CASES, ids=["python", "node"])
def test_exec_wrapper_runs_the_runtime(
    lambda_client: Any,
    create_function: CreateFunction,
    runtime: str | None,
    handler: str,
    files: dict[str, str],
) -> None:
    if runtime is None:
        pytest.skip("no Node.js on this host")
    code = make_zip({**files, "wrapper.sh": WRAPPER}, executable=("wrapper.sh",))
    name = create_function(
        zip_bytes=code,
        handler=handler,
        runtime=runtime,
        Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/var/task/wrapper.sh"}},
    )["FunctionName"]
    resp, body = invoke_json(lambda_client, name, {}, LogType="Tail")
    assert "FunctionError" not in resp, body
    assert body is not None and body.startswith("wrapper with ")
    log = base64.b64decode(resp["LogResult"]).decode()
    assert "wrapper starts: /" in log  # the runtime's own command followed

    plain = create_function(zip_bytes=code, handler=handler, runtime=runtime)["FunctionName"]
    resp, body = invoke_json(lambda_client, plain, {})
    assert body is None
