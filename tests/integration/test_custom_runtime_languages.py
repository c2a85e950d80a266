"""Custom runtimes (provided.al2023 / provided.al2) in other languages: a bash script, a compiled C
program, and AWS's own Node.js client (npm `aws-lambda-ric`, built once by scripts/build-node-ric).

Each talks to Lamina only through the Runtime API at $AWS_LAMBDA_RUNTIME_API.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import CreateFunction, invoke_json, make_zip

HERE = Path(__file__).parent / "runtimes"
ROOT = Path(__file__).parents[2]


def log_of(resp: dict[str, Any]) -> str:
    return base64.b64decode(resp["LogResult"]).decode()


FUNCTION_SH = """handler() {
  case "$1" in
    *fail*) return 1 ;;
  esac
  printf '{"shell": true, "event": %s, "function": "%s"}' "$1" "$AWS_LAMBDA_FUNCTION_NAME"
}
"""


@pytest.mark.parametrize("runtime", ["provided.al2023", "provided.al2"])
def test_bash_runtime(lambda_client: Any, create_function: CreateFunction, runtime: str) -> None:
    code = make_zip(
        {"bootstrap": (HERE / "bootstrap.sh").read_text(), "function.sh": FUNCTION_SH},
        executable=("bootstrap",),
    )
    name = create_function(zip_bytes=code, handler="function.handler", runtime=runtime)[
        "FunctionName"
    ]
    for n in (1, 2):  # cold, then warm
        resp, body = invoke_json(lambda_client, name, {"n": n}, LogType="Tail")
        rid = resp["ResponseMetadata"]["RequestId"]
        assert "FunctionError" not in resp, body
        assert body == {"shell": True, "event": {"n": n}, "function": name}
        assert f"bash runtime got {rid}" in log_of(resp)
    resp, body = invoke_json(lambda_client, name, {"fail": True})
    assert resp["FunctionError"] == "Unhandled"
    assert body == {"errorMessage": "handler failed", "errorType": "Function.ShellError"}

    missing = create_function(zip_bytes=code, handler="function.nothere", runtime=runtime)
    resp, body = invoke_json(lambda_client, missing["FunctionName"], {})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.HandlerNotFound"


CURL_BOOTSTRAP = """#!/bin/sh
set -eu
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
while true; do
  headers=$(mktemp)
  event=$(curl -sS -D "$headers" "$api/invocation/next")
  id=$(grep -i '^lambda-runtime-aws-request-id:' "$headers" | cut -d' ' -f2 | tr -d '\\r')
  rm -f "$headers"
  curl -sS -X POST "$api/invocation/$id/response" -d "{\\"echo\\": $event}" >/dev/null
done
"""


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl on this host")
def test_the_documented_curl_runtime(lambda_client: Any, create_function: CreateFunction) -> None:
    """The example in docs/runtimes.md, verbatim."""
    doc = (ROOT / "docs" / "runtimes.md").read_text()
    assert CURL_BOOTSTRAP in doc
    code = make_zip({"bootstrap": CURL_BOOTSTRAP}, executable=("bootstrap",))
    name = create_function(zip_bytes=code, handler="x.y", runtime="provided.al2023")["FunctionName"]
    for n in (1, 2):
        resp, body = invoke_json(lambda_client, name, {"n": n})
        assert "FunctionError" not in resp and body == {"echo": {"n": n}}


@cache
def c_bootstrap(tmp: Path) -> bytes:
    out = tmp / "bootstrap"
    subprocess.run(
        ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out), str(HERE / "bootstrap.c")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out.read_bytes()


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on this host")
def test_compiled_c_runtime(
    lambda_client: Any, create_function: CreateFunction, tmp_path: Path
) -> None:
    code = make_zip({"bootstrap": c_bootstrap(tmp_path)}, executable=("bootstrap",))
    name = create_function(zip_bytes=code, handler="c.main", runtime="provided.al2023")[
        "FunctionName"
    ]
    resp, body = invoke_json(lambda_client, name, {"hello": "c"}, LogType="Tail")
    rid = resp["ResponseMetadata"]["RequestId"]
    assert "FunctionError" not in resp, body
    assert body == {"runtime": "c", "request_id": rid, "event": {"hello": "c"}}
    log = log_of(resp)
    assert "C runtime started for handler c.main" in log and f"C runtime got {rid}" in log
    big = {"data": "x" * 300_000}  # more than one read of the socket
    resp, body = invoke_json(lambda_client, name, big)
    assert "FunctionError" not in resp and body["event"] == big
    resp, body = invoke_json(lambda_client, name, {"fail": 1})
    assert resp["FunctionError"] == "Unhandled"
    assert body == {"errorMessage": "asked to fail", "errorType": "C.Failure"}
    resp, body = invoke_json(lambda_client, name, {"after": "error"})
    assert body["event"] == {"after": "error"}


@pytest.fixture(scope="session")
def node_ric() -> Path:
    """aws-lambda-ric as built by scripts/build-node-ric (built now if the cache is missing)."""
    if shutil.which("node") is None:
        pytest.skip("no Node.js on this host")
    proc = subprocess.run(
        [str(ROOT / "scripts" / "build-node-ric")],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        pytest.skip(f"aws-lambda-ric could not be built here: {proc.stderr.strip()[-2000:]}")
    import os

    cache_dir = Path(os.environ.get("LAMINA_NODE_RIC_DIR") or ROOT / ".cache" / "aws-lambda-ric")
    return cache_dir / "node_modules" / "aws-lambda-ric"


BOOTSTRAP_NODE_RIC = """#!/bin/sh
cd "$LAMBDA_TASK_ROOT"
exec node node_modules/aws-lambda-ric/bin/index.mjs "$_HANDLER"
"""

NODE_APP = """
exports.handler = async (event, context) => {
  if (event.fail) throw new RangeError('ric says no');
  console.log('ric handling', context.awsRequestId);
  return {
    event,
    requestId: context.awsRequestId,
    functionName: context.functionName,
    memory: context.memoryLimitInMB,
    remaining: context.getRemainingTimeInMillis(),
    executionEnv: process.env.AWS_EXECUTION_ENV || null,
  };
};
"""


def ric_zip(ric: Path, app: str) -> bytes:
    files: dict[str, str | bytes] = {"bootstrap": BOOTSTRAP_NODE_RIC, "index.js": app}
    for path in ric.rglob("*"):
        if path.is_file():
            files[f"node_modules/aws-lambda-ric/{path.relative_to(ric)}"] = path.read_bytes()
    return make_zip(files, executable=("bootstrap",))


def test_aws_lambda_ric_for_node(
    lambda_client: Any, create_function: CreateFunction, node_ric: Path
) -> None:
    code = ric_zip(node_ric, NODE_APP)
    name = create_function(
        zip_bytes=code, handler="index.handler", runtime="provided.al2023", MemorySize=256
    )["FunctionName"]
    resp, body = invoke_json(lambda_client, name, {"hello": "ric"}, LogType="Tail")
    rid = resp["ResponseMetadata"]["RequestId"]
    assert "FunctionError" not in resp, body
    assert body["event"] == {"hello": "ric"} and body["requestId"] == rid
    assert body["functionName"] == name and body["memory"] == "256"
    assert 0 < body["remaining"] <= 3000
    assert body["executionEnv"] is None  # a custom runtime
    log = log_of(resp)
    assert f"\t{rid}\tINFO\tric handling {rid}" in log

    resp, body = invoke_json(lambda_client, name, {"fail": True})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "RangeError" and body["errorMessage"] == "ric says no"
    assert body["trace"][0] == "RangeError: ric says no"
    resp, body = invoke_json(lambda_client, name, {"again": 1})
    assert "FunctionError" not in resp and body["event"] == {"again": 1}

    broken = create_function(
        zip_bytes=ric_zip(node_ric, NODE_APP), handler="nothere.handler", runtime="provided.al2023"
    )
    resp, body = invoke_json(lambda_client, broken["FunctionName"], {})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert body["errorMessage"].startswith("Error: Cannot find module 'nothere'")


def test_lamina_node_runtime_matches_aws_lambda_ric(
    lambda_client: Any, create_function: CreateFunction, node_ric: Path
) -> None:
    """The same handlers under AWS's client and under Lamina's own Node.js bootstrap give the
    same answers and error documents (apart from stack frames, which name each runtime's files)."""
    from lamina.runtime.runtimes import NODE_IDS, node_interpreter

    node = next((rid for rid in NODE_IDS if node_interpreter(rid)), None)
    if node is None:
        pytest.skip("no nodejsNN.x runtime here")
    app = """
exports.ok = async (event) => ({ got: event, n: [1, 'two', null] });
exports.none = async () => undefined;
exports.cb = (event, context, callback) => callback(null, 'by callback');
exports.waits = (event, context, callback) => {
  let late = 'before';
  setTimeout(() => { late = 'after'; }, 50);
  callback(null, { get late() { return late; } });
};
exports.err = async () => { const e = new Error('with code'); e.name = 'Custom'; throw e; };
exports.str = (event, context, callback) => callback('a string');
exports.sync = () => 'ignored';
exports.big = async () => ({ n: 1n });
exports.failed = (event, context) => context.fail();
exports.done = (event, context) => context.done(null, { via: 'done' });
exports.deep = { er: { fn: async () => 'deep' } };
exports.notfn = 'x';
"""
    ric_code = ric_zip(node_ric, app)
    own_code = make_zip({"index.js": app})
    handlers = ["ok", "none", "cb", "waits", "err", "str", "sync", "big", "failed", "done"]
    handlers += ["deep.er.fn", "notfn", "missing"]
    for handler in handlers:
        theirs = create_function(
            zip_bytes=ric_code, handler=f"index.{handler}", runtime="provided.al2023"
        )["FunctionName"]
        ours = create_function(zip_bytes=own_code, handler=f"index.{handler}", runtime=node)[
            "FunctionName"
        ]
        a_resp, a = invoke_json(lambda_client, theirs, {"k": "v"})
        b_resp, b = invoke_json(lambda_client, ours, {"k": "v"})
        assert a_resp.get("FunctionError") == b_resp.get("FunctionError"), handler
        if isinstance(a, dict) and "trace" in a:
            assert a["trace"][:1] == b["trace"][:1], handler
            a, b = {**a, "trace": None}, {**b, "trace": None}
        assert a == b, handler
