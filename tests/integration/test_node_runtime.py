"""Lamina's Node.js runtime (nodejsNN.x for the host's Node.js major): the handler contract of
Lambda's Node.js runtimes, driven through the public API with boto3."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from lamina.runtime.runtimes import NODE_IDS, node_interpreter
from tests.integration.conftest import CreateFunction, invoke_json, make_zip

AVAILABLE = [rid for rid in NODE_IDS if node_interpreter(rid) is not None]
pytestmark = pytest.mark.skipif(not AVAILABLE, reason="no Node.js on this host")
NODE = AVAILABLE[0] if AVAILABLE else "nodejs20.x"

LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\t(\S+)\t(INFO|WARN|ERROR|DEBUG|TRACE)\t"
)


def log_of(resp: dict[str, Any]) -> str:
    return base64.b64decode(resp["LogResult"]).decode()


def node_function(
    create_function: CreateFunction,
    files: dict[str, str],
    handler: str = "index.handler",
    **kwargs: Any,
) -> str:
    code = make_zip(files)
    return str(
        create_function(zip_bytes=code, handler=handler, runtime=NODE, **kwargs)["FunctionName"]
    )


CONTEXT_JS = """
exports.handler = async (event, context) => {
  console.log('hello from node', JSON.stringify(event));
  console.warn('careful');
  console.error('multi\\nline');
  return {
    event,
    requestId: context.awsRequestId,
    functionName: context.functionName,
    functionVersion: context.functionVersion,
    arn: context.invokedFunctionArn,
    memory: context.memoryLimitInMB,
    logGroup: context.logGroupName,
    logStream: context.logStreamName,
    remaining: context.getRemainingTimeInMillis(),
    identity: context.identity === undefined ? 'undefined' : context.identity,
    clientContext: context.clientContext === undefined ? 'undefined' : context.clientContext,
    waits: context.callbackWaitsForEmptyEventLoop,
    executionEnv: process.env.AWS_EXECUTION_ENV,
    nodePath: process.env.NODE_PATH,
    taskRoot: process.env.LAMBDA_TASK_ROOT,
    cwd: process.cwd(),
    trace: process.env._X_AMZN_TRACE_ID || null,
    node: process.version,
  };
};
"""


def test_async_handler_and_context(lambda_client: Any, create_function: CreateFunction) -> None:
    name = node_function(create_function, {"index.js": CONTEXT_JS}, MemorySize=256, Timeout=7)
    resp, body = invoke_json(lambda_client, name, {"a": [1, 2]}, LogType="Tail")
    rid = resp["ResponseMetadata"]["RequestId"]
    assert "FunctionError" not in resp, body
    assert body["event"] == {"a": [1, 2]}
    assert body["requestId"] == rid
    assert body["functionName"] == name and body["functionVersion"] == "$LATEST"
    assert body["arn"].endswith(f":function:{name}")
    assert body["memory"] == "256"  # a string, as on Lambda
    assert body["logGroup"] == f"/aws/lambda/{name}"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", body["logStream"])
    assert 5000 < body["remaining"] <= 7000
    assert body["identity"] == "undefined" and body["clientContext"] == "undefined"
    assert body["waits"] is True
    assert body["executionEnv"] == f"AWS_Lambda_{NODE}"
    major = NODE.removeprefix("nodejs").removesuffix(".x")
    assert body["node"].startswith(f"v{major}.")
    # layers' modules first (under /opt, or where a sandbox without its own view puts them)
    node_path = body["nodePath"].split(":")
    assert node_path[0].endswith(f"/nodejs/node{major}/node_modules")
    assert node_path[1].endswith("/nodejs/node_modules")
    assert body["cwd"] == body["taskRoot"]
    assert body["trace"] and body["trace"].startswith("Root=")

    log = log_of(resp)
    lines = log.split("\n")
    hello = next(line for line in lines if "hello from node" in line)
    m = LINE.match(hello)
    assert m is not None, hello
    assert m.group(2) == rid and m.group(3) == "INFO"
    assert hello.endswith('hello from node {"a":[1,2]}')
    assert any(LINE.match(x) and "\tWARN\tcareful" in x for x in lines)
    assert any(x.endswith("\tERROR\tmulti\rline") for x in lines)  # one event per call

    cc = {"custom": {"k": "v"}, "env": {"e": 1}}
    resp, body = invoke_json(
        lambda_client, name, {}, ClientContext=base64.b64encode(json.dumps(cc).encode()).decode()
    )
    assert body["clientContext"] == cc


def test_callback_handlers(lambda_client: Any, create_function: CreateFunction) -> None:
    code = """
let calls = 0;
exports.waits = (event, context, callback) => {
  calls += 1;
  setTimeout(() => console.log('timer done', calls), 300);
  callback(null, { calls, waited: context.callbackWaitsForEmptyEventLoop });
};
exports.nowait = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = false;
  setTimeout(() => console.log('late timer'), 200);
  callback(null, 'no wait');
};
exports.fails = (event, context, callback) => callback(new TypeError('bad input'));
exports.string = (event, context, callback) => callback('plain string error');
exports.succeed = (event, context) => { context.succeed({ via: 'succeed' }); };
exports.nothing = (event, context) => { setTimeout(() => {}, 10); };
exports.twice = (event, context, callback) => { callback(null, 1); callback(null, 2); };
"""
    files = {"index.js": code}
    waits = node_function(create_function, files, handler="index.waits")
    resp, body = invoke_json(lambda_client, waits, {}, LogType="Tail")
    assert body == {"calls": 1, "waited": True}
    # The invocation ends only once the timer has run: its output is in this invocation's log.
    assert "timer done 1" in log_of(resp)
    resp, body = invoke_json(lambda_client, waits, {})
    assert body == {"calls": 2, "waited": True}  # warm: module state kept

    nowait = node_function(create_function, files, handler="index.nowait")
    resp, body = invoke_json(lambda_client, nowait, {}, LogType="Tail")
    assert body == "no wait" and "late timer" not in log_of(resp)

    fails = node_function(create_function, files, handler="index.fails")
    resp, body = invoke_json(lambda_client, fails, {}, LogType="Tail")
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "TypeError" and body["errorMessage"] == "bad input"
    assert body["trace"][0] == "TypeError: bad input"
    assert any("index.js" in frame for frame in body["trace"])
    record = next(x for x in log_of(resp).split("\n") if "Invoke Error" in x)
    assert "\tERROR\tInvoke Error \t{" in record
    logged = json.loads(record.split("Invoke Error \t", 1)[1])
    assert logged["errorType"] == "TypeError" and logged["stack"][0] == "TypeError: bad input"

    string = node_function(create_function, files, handler="index.string")
    resp, body = invoke_json(lambda_client, string, {})
    assert body == {"errorType": "string", "errorMessage": "plain string error", "trace": []}

    for handler, expected in (("index.succeed", {"via": "succeed"}), ("index.nothing", None)):
        fname = node_function(create_function, files, handler=handler)
        resp, body = invoke_json(lambda_client, fname, {})
        assert "FunctionError" not in resp and body == expected

    twice = node_function(create_function, files, handler="index.twice")
    resp, body = invoke_json(lambda_client, twice, {})
    assert body == 1


def test_async_errors(lambda_client: Any, create_function: CreateFunction) -> None:
    code = """
class CustomError extends Error { constructor(m) { super(m); this.name = 'CustomError'; this.code = 42; } }
exports.rejects = async () => { throw new CustomError('async boom'); };
exports.uncaught = async () => {
  setTimeout(() => { throw new Error('from a timer'); }, 10);
  await new Promise((r) => setTimeout(r, 5000));
};
exports.unhandled = async () => {
  Promise.reject(new Error('nobody waits'));
  await new Promise((r) => setTimeout(r, 5000));
};
let n = 0;
exports.count = async () => ++n;
"""
    files = {"index.js": code}
    name = node_function(create_function, files, handler="index.rejects")
    resp, body = invoke_json(lambda_client, name, {})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "CustomError" and body["errorMessage"] == "async boom"

    name = node_function(create_function, files, handler="index.uncaught", Timeout=10)
    resp, body = invoke_json(lambda_client, name, {}, LogType="Tail")
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Error" and body["errorMessage"] == "from a timer"
    assert "\tERROR\tUncaught Exception \t{" in log_of(resp)

    name = node_function(create_function, files, handler="index.unhandled", Timeout=10)
    resp, body = invoke_json(lambda_client, name, {}, LogType="Tail")
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.UnhandledPromiseRejection"
    assert body["errorMessage"] == "Error: nobody waits"
    assert "Unhandled Promise Rejection" in log_of(resp)

    # the process ended after reporting: the next invocation is a cold start that works
    name = node_function(create_function, files, handler="index.count")
    for expected in (1, 2):
        resp, body = invoke_json(lambda_client, name, {})
        assert body == expected


@pytest.mark.parametrize(
    ("files", "handler", "expected"),
    [
        (
            {"index.mjs": "export const handler = async (e) => ({ esm: true, e });"},
            "index.handler",
            {"esm": True, "e": {"x": 1}},
        ),
        (
            {
                "package.json": '{"type": "module"}',
                "app.js": "const top = await Promise.resolve('tla');\nexport async function handler() { return top; }",
            },
            "app.handler",
            "tla",
        ),
        ({"lib/deep/mod.cjs": "module.exports.h = async () => 'cjs';"}, "lib/deep/mod.h", "cjs"),
        (
            {"src/app.js": "exports.api = { v1: { get: async () => 'nested' } };"},
            "src/app.api.v1.get",
            "nested",
        ),
        (
            {
                "node_modules/greeter/package.json": '{"name": "greeter", "main": "main.js"}',
                "node_modules/greeter/main.js": "exports.greet = (n) => 'hi ' + n;",
                "index.js": "const { greet } = require('greeter');\nexports.handler = async () => greet('dep');",
            },
            "index.handler",
            "hi dep",
        ),
        ({"handler": "exports.run = async () => 'no extension';"}, "handler.run", "no extension"),
    ],
)
def test_module_kinds(
    lambda_client: Any,
    create_function: CreateFunction,
    files: dict[str, str],
    handler: str,
    expected: Any,
) -> None:
    name = node_function(create_function, files, handler=handler)
    resp, body = invoke_json(lambda_client, name, {"x": 1})
    assert "FunctionError" not in resp, body
    assert body == expected


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        (
            {"index.js": "exports.handler = async () => 1;"},
            "missing.handler",
            "Runtime.ImportModuleError",
            "Error: Cannot find module 'missing'",
        ),
        (
            {"index.js": "require('not-installed-anywhere');"},
            "index.handler",
            "Runtime.ImportModuleError",
            "Error: Cannot find module 'not-installed-anywhere'",
        ),
        (
            {"index.js": "exports.other = 1;"},
            "index.handler",
            "Runtime.HandlerNotFound",
            "index.handler is undefined or not exported",
        ),
        (
            {"index.js": "exports.handler = 5;"},
            "index.handler",
            "Runtime.HandlerNotFound",
            "index.handler is not a function",
        ),
        (
            {"index.js": "exports.handler = async () => {"},
            "index.handler",
            "Runtime.UserCodeSyntaxError",
            "SyntaxError: Unexpected end of input",
        ),
        (
            {"index.js": "throw new RangeError('init went wrong');"},
            "index.handler",
            "RangeError",
            "init went wrong",
        ),
        (
            {
                "index.mjs": "await Promise.reject(new Error('esm init'));\nexport const handler = 1;"
            },
            "index.handler",
            "Error",
            "esm init",
        ),
    ],
)
def test_init_errors(
    lambda_client: Any,
    create_function: CreateFunction,
    files: dict[str, str],
    handler: str,
    error_type: str,
    message: str,
) -> None:
    name = node_function(create_function, files, handler=handler)
    for _ in range(2):  # not sticky: every invocation tries the Init again
        resp, body = invoke_json(lambda_client, name, {}, LogType="Tail")
        assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
        assert body["errorType"] == error_type, body
        assert body["errorMessage"].startswith(message), body
        assert isinstance(body["trace"], list)
        log = log_of(resp)
        assert "\tundefined\tERROR\tUncaught Exception \t{" in log
        assert log.index("Uncaught Exception") < log.index("START RequestId")


def test_json_log_format(lambda_client: Any, create_function: CreateFunction) -> None:
    code = """
exports.handler = async () => {
  console.debug('hidden');
  console.info('shown', 1);
  console.error(new Error('as json'));
  return 'ok';
};
"""
    name = node_function(
        create_function,
        {"index.js": code},
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "INFO"},
    )
    resp, _ = invoke_json(lambda_client, name, {}, LogType="Tail")
    rid = resp["ResponseMetadata"]["RequestId"]
    records = [json.loads(x) for x in log_of(resp).split("\n") if x.startswith('{"timestamp"')]
    assert [r["level"] for r in records] == ["INFO", "ERROR"]
    assert records[0]["message"] == "shown 1" and records[0]["requestId"] == rid
    assert records[1]["message"]["errorType"] == "Error"
    assert records[1]["message"]["errorMessage"] == "as json"


def test_streamed_handler_is_answered_whole(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    code = """
exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.setContentType('text/plain');
  responseStream.write('part one, ');
  responseStream.write(context.functionName ? 'part two' : '?');
  responseStream.end();
});
"""
    name = node_function(create_function, {"index.js": code})
    resp = lambda_client.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in resp
    assert resp["Payload"].read() == b"part one, part two"


def test_timeout_and_memory_limit(lambda_client: Any, create_function: CreateFunction) -> None:
    code = """
exports.sleepy = async () => new Promise((r) => setTimeout(r, 60000));
exports.hog = async () => { const keep = []; for (;;) keep.push(new Array(1e6).fill(7)); };
"""
    name = node_function(create_function, {"index.js": code}, handler="index.sleepy", Timeout=1)
    resp, body = invoke_json(lambda_client, name, {})
    assert resp["FunctionError"] == "Unhandled" and body["errorType"] == "Sandbox.Timedout"
    name = node_function(create_function, {"index.js": code}, handler="index.hog", Timeout=60)
    resp, body = invoke_json(lambda_client, name, {})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] in ("Runtime.ExitError", "Runtime.OutOfMemory"), body


def test_other_node_majors_are_refused(lambda_client: Any, create_function: CreateFunction) -> None:
    missing = [rid for rid in NODE_IDS if rid not in AVAILABLE]
    if not missing:
        pytest.skip("every Node.js major is installed here")
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException) as err:
        create_function(
            zip_bytes=make_zip({"index.js": ""}), handler="index.handler", runtime=missing[0]
        )
    message = err.value.response["Error"]["Message"]
    major = missing[0].removeprefix("nodejs").removesuffix(".x")
    assert f"no Node.js {major} found" in message and NODE in message
