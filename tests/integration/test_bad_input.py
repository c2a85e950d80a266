"""Malformed and oversized requests get a 4xx naming an error a client can act on, never a 500.

A sweep driven by botocore's Lambda model: for every operation the server routes, each member of
its input is sent with values of the wrong type (and odd strings), over raw HTTP. The other
services' JSON protocols (SQS, Logs, EventBridge) and the S3 XML bodies get the same treatment.
After each group the server must still answer, and its log must hold no traceback.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import pathlib
import random
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import botocore.session
import pytest
from botocore.model import OperationModel, Shape, StructureShape
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from tests.integration.conftest import PYTHON_RUNTIME, ROLE, client_for, function_zip, make_zip
from tests.integration.lamina_process import LaminaProcess
from tests.integration.rawhttp import raw, raw_json

MODEL = botocore.session.get_session().get_service_model("lambda")
SERIALIZER = create_serializer("rest-json", include_validation=False)
PARSER = create_parser("rest-json")

# Errors Lambda answers for any operation (not all are in each operation's modelled list).
GENERIC_ERRORS = {
    "ValidationException",
    "InvalidParameterValueException",
    "InvalidRequestContentException",
    "ResourceNotFoundException",
    "RequestTooLargeException",
    "UnsupportedMediaTypeException",
    "UnknownOperationException",
}
# Operations that run a function: the sweep leaves them to the Invoke tests below.
SKIP = {"Invoke", "InvokeAsync", "InvokeWithResponseStream"}
MISSING_FN = "lamina-bad-input-missing"
ECHO_ZIP = function_zip("echo")
ESM_QUEUE_ARN = "arn:aws:sqs:us-east-1:000000000000:bad-input-esm"

# Wrong-typed values for a member, by the member's shape type.
WRONG: dict[str, list[Any]] = {
    "string": [123, True, [], {}, "", "x" * 70_000, "a\u0000b", "\U0001f600" * 10, "../.."],
    "integer": ["abc", 1.5, -1, 2**63, [], {}, True],
    "long": ["abc", 1.5, -1, 2**64, [], {}],
    "boolean": ["yes", 0, [], {}],
    "blob": [123, "not base64!", [], {}],
    "timestamp": ["yesterday", [], {}],
    "structure": ["x", 1, [], {"Unknown": 1}],
    "list": ["x", 1, {}, [None], [[[]]], list(range(1000))],
    "map": ["x", 1, [], {"k": []}, {"": ""}],
}
WRONG_PARAM = ["", "-1", "abc", "1.5", "99999999999999999999", "%00", "\u00e9", "x" * 5000]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaProcess]:
    """A server of this module's own: its log is read for tracebacks."""
    proc = LaminaProcess(tmp_path_factory.mktemp("lamina-bad-input"))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def fn(server: LaminaProcess) -> dict[str, Any]:
    client = client_for(server.endpoint)
    name = "bad-input-" + uuid.uuid4().hex[:8]
    _create(client, name)
    return {"name": name, "client": client}


def _create(client: Any, name: str) -> None:
    client.create_function(
        FunctionName=name,
        Runtime=PYTHON_RUNTIME,
        Role=ROLE,
        Handler="echo.handler",
        Code={"ZipFile": function_zip("echo")},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
    )


def _error_type(headers: dict[str, str], body: bytes) -> str | None:
    kind = headers.get("x-amzn-errortype")
    if kind is None and body:
        with contextlib.suppress(ValueError):
            doc = json.loads(body)
            if isinstance(doc, dict):
                kind = doc.get("__type") or doc.get("code")
    return kind.split(":", 1)[0].rsplit("#", 1)[-1] if kind else None


def _assert_healthy(server: LaminaProcess) -> None:
    status, _, _ = raw(server.endpoint, "GET", "/2015-03-31/functions", timeout_s=10)
    assert status == 200
    bad = [line for line in server.output if "Traceback" in line or " ERROR " in line]
    assert not bad, "".join(server.output[-60:])


def _check(
    status: int,
    headers: dict[str, str],
    body: bytes,
    allowed: set[str],
    what: str,
) -> None:
    assert status < 500, f"{what}: {status} {body[:300]!r}"
    if status >= 400:
        kind = _error_type(headers, body)
        assert kind in allowed, f"{what}: {status} {kind} {body[:300]!r}"


# -- the model-driven sweep ---------------------------------------------------------------------


def _base_value(name: str, shape: Shape, fn_name: str, depth: int = 0) -> Any:
    """A plausible value for a member: the sweep changes one member at a time from these."""
    kind = shape.type_name
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        return {
            "FunctionName": fn_name,
            "Role": ROLE,
            "Runtime": PYTHON_RUNTIME,
            "Handler": "echo.handler",
            "UUID": str(uuid.uuid4()),
            "Qualifier": "$LATEST",
            "FunctionVersion": "$LATEST",
            "EventSourceArn": ESM_QUEUE_ARN,
        }.get(name, "x1")
    if kind in ("integer", "long"):
        return int(shape.metadata.get("min", 1)) or 1
    if kind == "boolean":
        return False
    if kind == "blob":
        return ECHO_ZIP if name == "ZipFile" else b"{}"
    if kind == "timestamp":
        return dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    if kind == "structure" and depth < 3:
        assert isinstance(shape, StructureShape)
        return {
            m: _base_value(m, shape.members[m], fn_name, depth + 1) for m in shape.required_members
        }
    if kind == "list":
        return []
    return {}


def _nested_wrong(
    label: str, shape: Shape, fn_name: str, depth: int = 0
) -> Iterator[tuple[str, Any]]:
    """Wrong values for a member, and (two levels down) for each member of a structure in it,
    the structure's other required members plausible; a list of structures gets one entry."""
    for value in WRONG.get(shape.type_name, []):
        yield label, value
    if depth >= 2:
        return
    inner = shape
    wrap = False
    if shape.type_name == "list" and getattr(shape, "member", None) is not None:
        inner, wrap = shape.member, True  # type: ignore[attr-defined]
    if not isinstance(inner, StructureShape):
        return
    base = _base_value(label, inner, fn_name)
    for name, mshape in inner.members.items():
        for sub_label, value in _nested_wrong(f"{label}.{name}", mshape, fn_name, depth + 1):
            doc = {**base, name: value}
            yield sub_label, [doc] if wrap else doc


def _serialize(
    op: OperationModel, params: dict[str, Any]
) -> tuple[str, str, dict[str, str], bytes]:
    req = SERIALIZER.serialize_to_request(params, op)
    query = req["query_string"]
    path = req["url_path"]
    if query:
        path += ("&" if "?" in path else "?") + (
            urlencode(query, doseq=True) if isinstance(query, dict) else query
        )
    body = req["body"] if isinstance(req["body"], bytes) else str(req["body"]).encode()
    headers = {k: str(v) for k, v in req["headers"].items()}
    return req["method"], path, headers, body


def _parse_problem(op: OperationModel, status: int, headers: dict[str, str], body: bytes) -> str:
    """An accepted request's answer must parse as the model's output (what SDKs do with it)."""
    if op.output_shape is None or op.has_streaming_output:
        return ""
    try:
        PARSER.parse({"status_code": status, "headers": headers, "body": body}, op.output_shape)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def _readable(endpoint: str, name: str) -> str | None:
    """What Lamina accepted must read back as the model says (None: it does; "": it is gone)."""
    status, headers, body = raw(endpoint, "GET", f"/2015-03-31/functions/{name}")
    if status == 404:
        return ""
    try:
        PARSER.parse(
            {"status_code": status, "headers": headers, "body": body},
            MODEL.operation_model("GetFunction").output_shape,
        )
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _operations() -> list[str]:
    return [op for op in MODEL.operation_names if op not in SKIP]


def _served(endpoint: str, op: OperationModel) -> bool:
    base = _base(op, MISSING_FN)
    method, path, headers, body = _serialize(op, base)
    status, out, _ = raw(endpoint, method, path, body, headers, timeout_s=30)
    return not (status in (404, 405) and out.get("x-amzn-errortype") == "UnknownOperationException")


def _base(op: OperationModel, fn_name: str) -> dict[str, Any]:
    shape = op.input_shape
    if shape is None:
        return {}
    out = {m: _base_value(m, shape.members[m], fn_name) for m in shape.required_members}
    return {**out, **EXTRA_BASE.get(op.name, {})}


# Members the model leaves optional that a request needs to succeed.
EXTRA_BASE: dict[str, dict[str, Any]] = {
    "CreateFunction": {
        "Runtime": PYTHON_RUNTIME,
        "Handler": "echo.handler",
        "Code": {"ZipFile": ECHO_ZIP},
    },
    "CreateEventSourceMapping": {"EventSourceArn": ESM_QUEUE_ARN},
    "PublishLayerVersion": {"Content": {"ZipFile": ECHO_ZIP}},
}


def test_model_sweep(server: LaminaProcess) -> None:
    """Every member of every served operation, with wrong types and odd values."""
    endpoint = server.endpoint
    client = client_for(endpoint)
    fn = {"name": "bad-input-sweep-" + uuid.uuid4().hex[:8]}  # its own: the sweep changes it
    _create(client, fn["name"])
    client_for(endpoint, "sqs").create_queue(QueueName="bad-input-esm")
    served = 0
    failures: list[str] = []
    accepted: dict[str, int] = {}  # the bases are valid: some odd values get through
    for op_name in _operations():
        op = MODEL.operation_model(op_name)
        if not _served(endpoint, op):
            continue
        served += 1
        allowed = GENERIC_ERRORS | {s.name for s in op.error_shapes}
        shape = op.input_shape
        members = shape.members if shape is not None else {}
        # Destructive operations work on a function that does not exist: a wrong value that
        # got through would otherwise delete the sweep's function.
        target = MISSING_FN if op_name.startswith("Delete") else fn["name"]
        for member, mshape in members.items():
            location = mshape.serialization.get("location")
            if op_name == "CreateFunction":
                target = "bad-input-new-" + uuid.uuid4().hex[:8]  # a success makes a new one
            base = _base(op, target)
            if location in ("uri", "querystring", "header"):
                values: list[tuple[str, Any]] = [(member, v) for v in WRONG_PARAM]
            else:
                values = list(_nested_wrong(member, mshape, target))
            for label, value in values:
                if location in ("uri", "querystring", "header"):
                    method, path, headers, body = _serialize(op, {**base, member: "PLACEHOLDER"})
                    wire = mshape.serialization.get("name", member)
                    if location == "header":
                        headers[wire] = value.encode("utf-8").decode("latin-1")
                    else:
                        path = path.replace("PLACEHOLDER", quote(value, safe=""))
                else:
                    method, path, headers, body = _serialize(op, base)
                    doc = json.loads(body) if body else {}
                    if not isinstance(doc, dict):
                        continue
                    doc[mshape.serialization.get("name", member)] = value
                    body = json.dumps(doc).encode()
                    headers["Content-Type"] = "application/json"
                    headers.pop("Content-Length", None)
                status, out, resp = raw(endpoint, method, path, body, headers, timeout_s=30)
                try:
                    _check(status, out, resp, allowed, f"{op_name}.{label}={str(value)[:40]!r}")
                except AssertionError as exc:
                    failures.append(str(exc).split("\n", 1)[0])
                if status < 300:
                    accepted[op_name] = accepted.get(op_name, 0) + 1
                    problem = _parse_problem(op, status, out, resp)
                    if problem:
                        failures.append(f"{op_name}.{label}: the answer does not parse: {problem}")
                if op_name == "CreateEventSourceMapping" and status < 300:
                    made = json.loads(resp)["UUID"]
                    raw(endpoint, "DELETE", f"/2015-03-31/event-source-mappings/{made}")
                if op_name == "CreateFunction" and status < 300:
                    problem = _readable(endpoint, target)
                    if problem:
                        failures.append(f"CreateFunction.{member}: reads back wrong: {problem}")
                    raw(endpoint, "DELETE", f"/2015-03-31/functions/{target}")
        problem = _readable(endpoint, fn["name"])
        if problem:
            failures.append(f"{op_name}: the function reads back wrong: {problem}")
            with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                client.delete_function(FunctionName=fn["name"])
        if problem is not None:
            _create(client, fn["name"])  # go on with a new one
    assert not failures, "\n".join(failures)
    assert served >= 30
    print(accepted)
    for op_name in (
        "CreateFunction",
        "CreateEventSourceMapping",
        "PublishLayerVersion",
        "CreateAlias",
    ):
        assert accepted.get(op_name), (op_name, accepted)
    _assert_healthy(server)


# -- bodies, headers and paths ------------------------------------------------------------------


DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT, b"{", b"\xff\xfe", b"[]", b'"s"', b"nul\x00"])
def test_bad_json_bodies(server: LaminaProcess, fn: dict[str, Any], body: bytes) -> None:
    endpoint = server.endpoint
    name = fn["name"]
    cases = [
        ("POST", "/2015-03-31/functions"),
        ("PUT", f"/2015-03-31/functions/{name}/configuration"),
        ("POST", f"/2015-03-31/functions/{name}/aliases"),
        ("PUT", f"/2017-10-31/functions/{name}/concurrency"),
        ("POST", "/2015-03-31/event-source-mappings"),
        ("POST", f"/2015-03-31/functions/{name}/versions"),
    ]
    for method, path in cases:
        status, out, resp = raw(endpoint, method, path, body, {"Content-Type": "application/json"})
        _check(status, out, resp, GENERIC_ERRORS, f"{method} {path}")
        assert status == 400, (method, path, resp[:200])
    for path in (
        f"/2014-11-13/functions/{name}/invoke-async/",
        f"/2021-11-15/functions/{name}/response-streaming-invocations",
    ):
        status, out, resp = raw(endpoint, "POST", path, body)
        if body in (b"[]", b'"s"'):
            assert status < 300, resp
        else:
            assert status == 400 and out["x-amzn-errortype"] == "InvalidRequestContentException"
    for invocation_type in ("RequestResponse", "Event", "DryRun"):
        status, out, resp = raw(
            endpoint,
            "POST",
            f"/2015-03-31/functions/{name}/invocations",
            body,
            {"X-Amz-Invocation-Type": invocation_type},
        )
        if body in (b"[]", b'"s"'):  # JSON, if not an object: Lambda takes it
            assert status in (200, 202, 204), resp
            continue
        assert status == 400, resp
        assert out["x-amzn-errortype"] == "InvalidRequestContentException"
        assert b"Could not parse request body into json" in resp
    _assert_healthy(server)


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({"X-Amz-Invocation-Type": "Sync"}, "InvalidParameterValueException"),
        ({"X-Amz-Invocation-Type": ""}, "InvalidParameterValueException"),
        ({"X-Amz-Log-Type": "All"}, "InvalidParameterValueException"),
        ({"X-Amz-Client-Context": "not base64!"}, "InvalidParameterValueException"),
        (
            {"X-Amz-Client-Context": base64.b64encode(b"\xff\xfe").decode()},
            "InvalidParameterValueException",
        ),
        (
            {"X-Amz-Client-Context": base64.b64encode(b"[1, 2]").decode()},
            "InvalidParameterValueException",
        ),
        (
            {
                "X-Amz-Client-Context": base64.b64encode(
                    json.dumps({"custom": {"k": "v" * 4000}}).encode()
                ).decode()
            },
            "InvalidParameterValueException",
        ),
    ],
)
def test_bad_invoke_headers(
    server: LaminaProcess, fn: dict[str, Any], headers: dict[str, str], error: str
) -> None:
    path = f"/2015-03-31/functions/{fn['name']}/invocations"
    status, out, resp = raw(server.endpoint, "POST", path, b"{}", headers)
    assert status == 400, resp
    assert out["x-amzn-errortype"] == error
    _assert_healthy(server)


def test_invoke_payload_big_number(server: LaminaProcess, fn: dict[str, Any]) -> None:
    """A 5,000-digit integer is JSON: the payload check takes it (Python's int() would not)."""
    path = f"/2015-03-31/functions/{fn['name']}/invocations"
    payload = b'{"n": ' + b"7" * 5000 + b"}"
    status, _, resp = raw(
        server.endpoint, "POST", path, payload, {"X-Amz-Invocation-Type": "DryRun"}
    )
    assert status == 204, resp[:300]


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
def test_invoke_payload_non_numeric_constants(
    server: LaminaProcess, fn: dict[str, Any], token: bytes
) -> None:
    """NaN and Infinity are not JSON: refused as Lambda's parser refuses them (Python's json
    module would take them, and a Node runtime would then fail to read the event)."""
    path = f"/2015-03-31/functions/{fn['name']}/invocations"
    for invocation_type in ("RequestResponse", "Event", "DryRun"):
        status, out, resp = raw(
            server.endpoint,
            "POST",
            path,
            b'{"x": [1, ' + token + b"]}",
            {"X-Amz-Invocation-Type": invocation_type},
        )
        assert status == 400, resp[:300]
        assert out["x-amzn-errortype"] == "InvalidRequestContentException"
        assert b"Non-standard token" in resp


def test_invoke_size_limits(server: LaminaProcess, fn: dict[str, Any]) -> None:
    path = f"/2015-03-31/functions/{fn['name']}/invocations"
    big = b'"' + b"x" * (6 * 1024 * 1024) + b'"'
    status, out, _ = raw(server.endpoint, "POST", path, big)
    assert status == 413 and out["x-amzn-errortype"] == "RequestTooLargeException"
    event = b'"' + b"x" * (1024 * 1024) + b'"'
    status, out, _ = raw(server.endpoint, "POST", path, event, {"X-Amz-Invocation-Type": "Event"})
    assert status == 413 and out["x-amzn-errortype"] == "RequestTooLargeException"
    _assert_healthy(server)


@pytest.mark.parametrize(
    "segment",
    [
        "%00",
        "a%00b",
        "%2e%2e",
        "%2F",
        "..%2F..%2Fetc",
        "%C3%A9t%C3%A9",
        "%FF%FE",
        "%",
        "%zz",
        "x" * 10_000,
        "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Ax%3A%24LATEST%3Amore",
        "arn%3Aaws%3Alambda%3Aeu-west-1%3A999999999999%3Afunction%3Ax",
        "%F0%9F%98%80",
    ],
)
def test_odd_path_segments(server: LaminaProcess, segment: str) -> None:
    endpoint = server.endpoint
    for method, path in [
        ("GET", f"/2015-03-31/functions/{segment}"),
        ("GET", f"/2015-03-31/functions/{segment}/configuration"),
        ("DELETE", f"/2015-03-31/functions/{segment}"),
        ("POST", f"/2015-03-31/functions/{segment}/invocations"),
        ("GET", f"/2015-03-31/functions/{segment}/aliases/{segment}"),
        ("GET", f"/2015-03-31/event-source-mappings/{segment}"),
        ("GET", f"/2018-10-31/layers/{segment}/versions/1"),
        ("GET", f"/2021-10-31/functions/{segment}/url"),
        ("GET", f"/2019-09-25/functions/{segment}/event-invoke-config"),
    ]:
        status, out, resp = raw(endpoint, method, path, b"" if method != "POST" else b"{}")
        _check(status, out, resp, GENERIC_ERRORS, f"{method} {path[:80]}")
        assert status >= 400
    _assert_healthy(server)


@pytest.mark.parametrize(
    "query",
    [
        "MaxItems=-1",
        "MaxItems=abc",
        "MaxItems=0",
        "MaxItems=100000",
        "MaxItems=",
        "Marker=%00",
        "Marker=not-a-marker",
        "Marker=" + "A" * 5000,
        "Marker=%FF",
        "FunctionVersion=BOGUS",
        "MasterRegion=nowhere",
        "Qualifier=%00",
        "MaxItems=1&MaxItems=2",
        "%zz=%zz",
        "MaxItems=%C2%B2",  # a digit to str.isdigit(), not to int()
        "Marker=%C2%B2",
        "Qualifier=%C2%B2",
        "Qualifier=",
        "Qualifier=$LATEST:1",
        "Qualifier=" + "9" * 40,
        "Qualifier=%24LATEST%00",
    ],
)
def test_bad_query_parameters(server: LaminaProcess, fn: dict[str, Any], query: str) -> None:
    name = fn["name"]
    for path in [
        "/2015-03-31/functions/",
        f"/2015-03-31/functions/{name}/versions",
        f"/2015-03-31/functions/{name}/aliases",
        "/2015-03-31/event-source-mappings",
        "/2018-10-31/layers",
        f"/2021-10-31/functions/{name}/urls",
        f"/2019-09-25/functions/{name}/event-invoke-config/list",
        f"/2019-09-30/functions/{name}/provisioned-concurrency?List=ALL",
        f"/2015-03-31/functions/{name}/invocations",
        f"/2015-03-31/functions/{name}",
    ]:
        full = path + ("&" if "?" in path else "?") + query
        method = "POST" if path.endswith("/invocations") else "GET"
        status, out, resp = raw(server.endpoint, method, full, b"{}" if method == "POST" else None)
        _check(status, out, resp, GENERIC_ERRORS, f"{method} {full[:100]}")
    _assert_healthy(server)


def _raw_socket(endpoint: str, data: bytes, timeout_s: float = 10.0) -> bytes:
    """Bytes straight onto a socket (http.client will not send a lying Content-Length)."""
    parts = urlsplit(endpoint)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout_s) as sock:
        sock.sendall(data)
        with contextlib.suppress(ConnectionResetError):
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "head",
    [
        b"Content-Length: abc\r\n",
        b"Content-Length: -1\r\n",
        b"Content-Length: 99999999999999999999\r\n",
        b"Content-Length: 100\r\n",  # more declared than sent
        b"Content-Length: 1\r\nContent-Length: 2\r\n",
        b"Transfer-Encoding: chunked\r\n",  # and a body that is not chunked
    ],
)
def test_bad_content_length(server: LaminaProcess, head: bytes) -> None:
    request = b"POST /2015-03-31/functions HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n{}"
    answer = _raw_socket(server.endpoint, request)
    if answer:
        status = int(answer.split(b" ", 2)[1])
        assert status < 500, answer[:300]
    _assert_healthy(server)


@pytest.mark.parametrize(
    "head",
    [
        b"X-Big: " + b"x" * 200_000 + b"\r\n",
        b"".join(b"X-H%d: v\r\n" % i for i in range(2000)),
        b"X-Amz-Target: \xff\xfe.\x00\r\n",
        b"Host: \xff\r\n",
        b"Authorization: AWS4-HMAC-SHA256 Credential=\xff/\r\n",
    ],
)
def test_odd_headers(server: LaminaProcess, head: bytes) -> None:
    request = b"POST / HTTP/1.1\r\nHost: x\r\n" + head + b"Content-Length: 2\r\n\r\n{}"
    answer = _raw_socket(server.endpoint, request)
    if answer:
        status = int(answer.split(b" ", 2)[1])
        assert status < 500, answer[:300]
    _assert_healthy(server)


def test_declared_body_over_limit(server: LaminaProcess) -> None:
    request = (
        b"POST /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nContent-Length: 80000000\r\n\r\n{}"
    )
    answer = _raw_socket(server.endpoint, request)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"RequestTooLargeException" in answer
    _assert_healthy(server)


# -- X-Amz-Target services ----------------------------------------------------------------------


TARGETS = {
    "AmazonSQS": ("sqs", "application/x-amz-json-1.0"),
    "Logs_20140328": ("logs", "application/x-amz-json-1.1"),
    "AWSEvents": ("events", "application/x-amz-json-1.1"),
}


TARGET_BASE: dict[str, Any] = {}  # values for the required members, set per service


def _target_ops(service: str) -> list[tuple[str, Any]]:
    model = botocore.session.get_session().get_service_model(service)
    return [(name, model.operation_model(name)) for name in model.operation_names]


@pytest.mark.parametrize("prefix", sorted(TARGETS))
def test_json_target_services(server: LaminaProcess, prefix: str) -> None:
    service, content_type = TARGETS[prefix]
    endpoint = server.endpoint

    def post(operation: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        headers = {"X-Amz-Target": f"{prefix}.{operation}", "Content-Type": content_type}
        return raw(endpoint, "POST", "/", body, headers, timeout_s=30)

    queue_url = f"{endpoint}/000000000000/bad-input-queue"

    def ensure() -> None:
        if service == "sqs":
            post("CreateQueue", b'{"QueueName": "bad-input-queue"}')
        elif service == "events":
            post("PutRule", b'{"Name": "bad-input-rule", "ScheduleExpression": "rate(1 day)"}')

    TARGET_BASE.update(
        QueueUrl=queue_url,
        QueueName="bad-input-queue",
        Name="bad-input-rule",
        Rule="bad-input-rule",
    )
    for body in (DEEP, DEEP_OBJECT, b"{", b"[]", b"\xff", b"null", b"1"):
        status, out, resp = post(
            "ListQueues"
            if service == "sqs"
            else "DescribeLogGroups"
            if service == "logs"
            else "ListRules",
            body,
        )
        assert 400 <= status < 500, resp[:300]
        assert _error_type(out, resp) is not None, resp[:300]
    for bogus in ("NoSuchOperation", "", "." * 10, "\u00e9"):
        status, out, resp = post(bogus.encode().decode("latin-1"), b"{}")
        assert 400 <= status < 500, resp[:300]
    failures: list[str] = []
    for name, op in _target_ops(service):
        shape = op.input_shape
        if shape is None:
            continue
        status, out, resp = post(name, b"{}")
        assert status < 500, f"{name}: {resp[:300]!r}"
        if status == 400 and _error_type(out, resp) in (
            "UnsupportedOperation",
            "UnknownOperationException",
            "InvalidAction",
        ):
            continue  # not served
        allowed = {s.name for s in op.error_shapes} | {
            "ValidationException",
            "SerializationException",
            "InvalidParameterValue",
            "InvalidParameterValueException",
            "InvalidParameterException",
            "MissingParameter",
            "MissingRequiredParameterException",
            "InvalidAttributeName",
            "InvalidAttributeValue",
            "InvalidAddress",
            "ResourceNotFoundException",
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
            "InvalidMessageContents",
        }
        ensure()  # a destructive operation may have taken the resource
        base = {
            m: TARGET_BASE.get(m, _base_value(m, shape.members[m], "x1"))
            for m in shape.required_members
        }
        for member, mshape in shape.members.items():
            bodies = [{**base, member: value} for value in WRONG.get(mshape.type_name, [])]
            inner = getattr(mshape, "member", None)
            if isinstance(inner, StructureShape):  # batch entries: each of their members too
                entry = {
                    m: TARGET_BASE.get(m, _base_value(m, inner.members[m], "x1"))
                    for m in inner.required_members
                }
                for m, ms in inner.members.items():
                    bodies += [
                        {**base, member: [{**entry, m: v}]} for v in WRONG.get(ms.type_name, [])
                    ]
            for doc in bodies:
                status, out, resp = post(name, json.dumps(doc, default=str).encode())
                what = f"{prefix}.{name}.{member}: {json.dumps(doc, default=str)[:120]}"
                kind = _error_type(out, resp)
                if status >= 500 or (status >= 400 and kind not in allowed):
                    failures.append(f"{what}: {status} {kind} {resp[:200]!r}")
    assert not failures, "\n".join(failures)
    _assert_healthy(server)


# -- S3 XML bodies ------------------------------------------------------------------------------


def test_s3_xml_bombs(server: LaminaProcess) -> None:
    s3 = client_for(server.endpoint, "s3", s3={"addressing_style": "path"})
    bucket = "bad-input-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {chr(98 + i)} "' + f"&{chr(97 + i)};" * 10 + '">' for i in range(9))
        + "]><Delete><Object><Key>&j;</Key></Object></Delete>"
    )
    external = (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<Delete><Object><Key>&x;</Key></Object></Delete>"
    )
    deep = "<Delete>" + "<Object>" * 100_000 + "</Object>" * 100_000 + "</Delete>"
    for doc in (laughs, external, deep, "<Delete>", "\u0000", "<Delete><Object/></Delete>"):

        def body_is(request: Any, doc: str = doc, **_: Any) -> None:
            request.data = doc.encode()
            for header in list(request.headers):
                if header.lower() in ("content-md5", "content-length") or header.lower().startswith(
                    "x-amz-checksum"
                ):
                    del request.headers[header]

        s3.meta.events.register_first("before-sign.s3.DeleteObjects", body_is)
        try:
            with pytest.raises(s3.exceptions.ClientError) as info:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k"}]})
        finally:
            s3.meta.events.unregister("before-sign.s3.DeleteObjects", body_is)
        status = info.value.response["ResponseMetadata"]["HTTPStatusCode"]
        assert 400 <= status < 500, info.value.response
        assert info.value.response["Error"]["Code"] in (
            "MalformedXML",
            "InvalidRequest",
            "UserKeyMustBeSpecified",
        )
    _assert_healthy(server)


# -- the Runtime API, from a runtime's side -----------------------------------------------------


BOOTSTRAP_PROBE = '''#!/usr/bin/env python3
"""A custom runtime that misbehaves on purpose and reports what the Runtime API answered."""
import json
import os
import urllib.error
import urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"


def call(method, path, body=None, headers=None):
    req = urllib.request.Request(API + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def kind(body):
    try:
        return json.loads(body).get("errorType")
    except ValueError:
        return None


previous = {}
while True:
    _, headers, event = call("GET", "/invocation/next")
    rid = headers["Lambda-Runtime-Aws-Request-Id"]
    event = json.loads(event)
    seen = {}
    for label, path in (
        ("bogus", "/invocation/not-a-request-id/response"),
        ("bogus_error", "/invocation/not-a-request-id/error"),
        ("empty_id", "/invocation//response"),
        ("odd_id", "/invocation/%00%2F..%2F/response"),
        ("unknown", "/invocation/" + rid + "/result"),
        ("late_init_error", "/init/error"),
    ):
        status, _, body = call("POST", path, b"{}")
        seen[label] = [status, kind(body)]
    if event.get("deep_error"):
        status, _, body = call("POST", "/invocation/" + rid + "/error", b"[" * 100000 + b"]" * 100000)
    elif event.get("odd_error"):
        status, _, body = call(
            "POST",
            "/invocation/" + rid + "/error",
            b"\\xff\\xfe not json",
            {"Lambda-Runtime-Function-Error-Type": "X" * 10000},
        )
    elif event.get("odd_stream"):
        status, _, body = call(
            "POST",
            "/invocation/" + rid + "/response",
            b"streamed anyway",
            {"Lambda-Runtime-Function-Response-Mode": "streaming"},
        )
    elif event.get("big"):
        status, _, body = call("POST", "/invocation/" + rid + "/response", b"1" * (7 * 1024 * 1024))
    else:
        out = json.dumps({"seen": seen, "previous": previous}).encode()
        status, _, body = call("POST", "/invocation/" + rid + "/response", out)
    first = [status, kind(body)]
    status, _, body = call("POST", "/invocation/" + rid + "/response", b"{}")
    again = [status, kind(body)]
    status, _, body = call("POST", "/invocation/" + rid + "/error", b"{}")
    previous = {"first": first, "again": again, "error_after": [status, kind(body)]}
'''


def test_runtime_api_misuse(server: LaminaProcess) -> None:
    """Bad request ids, posts after the answer, an oversized response and a deeply nested error
    document: the runtime gets a 4xx, the caller Lambda's error, and the server goes on."""
    client = client_for(server.endpoint)
    name = "bad-runtime-" + uuid.uuid4().hex[:8]
    code = make_zip({"bootstrap": BOOTSTRAP_PROBE}, executable=("bootstrap",))
    client.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=ROLE,
        Handler="probe",
        Code={"ZipFile": code},
        MemorySize=512,
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
    )

    def invoke(event: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        resp = client.invoke(FunctionName=name, Payload=json.dumps(event).encode())
        return resp, json.loads(resp["Payload"].read())

    resp, body = invoke({})
    assert "FunctionError" not in resp, body
    for label, (status, _) in body["seen"].items():
        assert 400 <= status < 500, (label, status)
    assert body["seen"]["bogus"] == [400, "InvalidRequestID"]
    assert body["seen"]["late_init_error"][0] == 403

    resp, body = invoke({})  # what the previous invocation's runtime saw after its answer
    prev = body["previous"]
    assert prev["first"] == [202, None]
    assert prev["again"][0] in (400, 403) and prev["error_after"][0] in (400, 403), prev

    resp, body = invoke({"big": True})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Function.ResponseSizeTooLarge", body

    resp = client.invoke(FunctionName=name, Payload=b'{"odd_error": true}')
    assert resp["FunctionError"] == "Unhandled"
    resp["Payload"].read()
    resp = client.invoke(FunctionName=name, Payload=b'{"odd_stream": true}')
    assert resp["StatusCode"] == 200
    resp["Payload"].read()

    resp, body = invoke({"deep_error": True})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.Unknown", body

    resp, body = invoke({})
    assert "FunctionError" not in resp, body
    assert body["previous"]["first"] == [202, None], body  # the nested error post was taken
    client.delete_function(FunctionName=name)
    _assert_healthy(server)


# -- function URLs ------------------------------------------------------------------------------


def test_function_url_odd_requests(server: LaminaProcess, fn: dict[str, Any]) -> None:
    """Odd paths, query strings, headers and bodies reach the function or get a 4xx; the
    function's own failures are the URL's 502, never a 500."""
    client = fn["client"]
    url = client.create_function_url_config(FunctionName=fn["name"], AuthType="NONE")["FunctionUrl"]
    url_id = urlsplit(url).hostname.split(".", 1)[0]  # type: ignore[union-attr]
    base = f"/lambda-url/{url_id}"
    cases: list[tuple[str, str, bytes, dict[str, str]]] = [
        ("GET", base + "/%00/%zz/%FF", b"", {}),
        ("GET", base + "/?a=%zz&b=%00&%FF=1&&=&c", b"", {}),
        ("GET", base + "/" + "x" * 8000, b"", {}),
        ("POST", base + "/", b"\xff\xfe\x00", {"Content-Type": "application/json"}),
        ("POST", base + "/", b"[" * 100_000, {"Content-Type": "application/json"}),
        ("POST", base + "/", b"x" * (6 * 1024 * 1024 + 1), {"Content-Type": "text/plain"}),
        ("GET", base + "/", b"", {"Cookie": ";;=;a=%zz;" + "c=" * 2000}),
        ("GET", base + "/", b"", {"X-Forwarded-For": "not an address"}),
        ("GET", base + "/", b"", {"Content-Type": "\u00e9/\u00e9".encode().decode("latin-1")}),
        ("BREW", base + "/", b"", {}),
        ("GET", f"/lambda-url/{'z' * 32}/", b"", {}),
        ("GET", "/lambda-url/%00/", b"", {}),
        ("GET", "/lambda-url/", b"", {}),
    ]
    for method, path, body, headers in cases:
        status, _, resp = raw(server.endpoint, method, path, body or None, headers)
        assert status != 500 and status < 503, (method, path[:80], status, resp[:300])
    _assert_healthy(server)
    client.delete_function_url_config(FunctionName=fn["name"])


UVICORN_400 = b"Invalid HTTP request received."  # the HTTP server's own, before Lamina
S3_AUTH = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0",
    "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
}


def test_s3_odd_requests(server: LaminaProcess) -> None:
    """Keys, query parameters and headers S3 clients would never send: a 4xx S3 error each."""
    endpoint = server.endpoint
    s3 = client_for(endpoint, "s3", s3={"addressing_style": "path"})
    bucket = "bad-input-s3-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"0123456789")
    deep_token = base64.urlsafe_b64encode(b"[" * 3000).decode()  # past the decoder's depth
    cases: list[tuple[str, str, bytes, dict[str, str]]] = [
        ("GET", f"/{bucket}/%00", b"", {}),
        ("GET", f"/{bucket}/%zz", b"", {}),
        ("GET", f"/{bucket}/%FF%FE", b"", {}),
        ("GET", f"/{bucket}/..%2F..%2Fetc%2Fpasswd", b"", {}),
        ("GET", f"/{bucket}/../../etc/passwd", b"", {}),
        ("PUT", f"/{bucket}/" + "k" * 2000, b"x", {}),
        ("GET", f"/{bucket}?list-type=2&max-keys=-1", b"", {}),
        ("GET", f"/{bucket}?list-type=2&max-keys=abc", b"", {}),
        ("GET", f"/{bucket}?list-type=2&continuation-token=%00%FF", b"", {}),
        ("GET", f"/{bucket}?list-type=2&continuation-token={deep_token}", b"", {}),
        ("GET", f"/{bucket}?list-type=2&continuation-token=" + "A" * 10_000, b"", {}),
        ("GET", f"/{bucket}?list-type=3", b"", {}),
        ("GET", f"/{bucket}?marker=%00&max-keys=99999999999999999999", b"", {}),
        ("GET", f"/{bucket}?delimiter=%00&prefix=%FF", b"", {}),
        ("GET", f"/{bucket}/k", b"", {"Range": "bytes=abc"}),
        ("GET", f"/{bucket}/k", b"", {"Range": "bytes=5-1"}),
        ("GET", f"/{bucket}/k", b"", {"Range": "bytes=-0"}),
        ("GET", f"/{bucket}/k", b"", {"Range": "bytes=0-0,2-3"}),
        ("GET", f"/{bucket}/k", b"", {"Range": "bytes=99999999999999999999-"}),
        ("GET", f"/{bucket}/k", b"", {"If-Modified-Since": "yesterday"}),
        ("GET", f"/{bucket}/k", b"", {"If-Match": "\x00"}),
        ("PUT", f"/{bucket}/k2", b"x", {"Content-MD5": "not base64"}),
        ("PUT", f"/{bucket}/k2", b"x", {"Content-MD5": base64.b64encode(b"short").decode()}),
        (
            "PUT",
            f"/{bucket}/k2",
            b"not chunked at all",
            {
                "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                "x-amz-decoded-content-length": "abc",
            },
        ),
        (
            "PUT",
            f"/{bucket}/k2",
            b"zz;chunk-signature=0\r\nxx\r\n",
            {"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
        ),
        ("PUT", f"/{bucket}/k3", b"", {"x-amz-copy-source": "%00"}),
        ("PUT", f"/{bucket}/k3", b"", {"x-amz-copy-source": f"/{bucket}"}),
        ("PUT", f"/{bucket}/k3", b"", {"x-amz-copy-source": "/no-such-bucket/k"}),
        ("PUT", f"/{bucket}/k3?partNumber=abc&uploadId=nope", b"x", {}),
        ("PUT", f"/{bucket}/k3?partNumber=-1&uploadId=%00", b"x", {}),
        ("POST", f"/{bucket}/k3?uploadId=..%2F..", b"<CompleteMultipartUpload/>", {}),
        ("POST", f"/{bucket}/k3?uploads&uploadId=x", b"", {}),
        (
            "POST",
            f"/{bucket}?delete",
            b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>",
            {},
        ),
        (
            "PUT",
            f"/{bucket}?notification",
            b"<NotificationConfiguration><CloudFunctionConfiguration/></NotificationConfiguration>",
            {},
        ),
        ("PUT", f"/{bucket}?notification", b"\xff\xfe", {}),
        ("PUT", "/%00", b"", {}),
        ("PUT", "/" + "b" * 300, b"", {}),
        (
            "PUT",
            f"/{bucket}",
            b"<CreateBucketConfiguration><LocationConstraint>"
            + b"x" * 10_000
            + b"</LocationConstraint></CreateBucketConfiguration>",
            {},
        ),
        ("BREW", f"/{bucket}/k", b"", {}),
    ]
    for method, path, body, headers in cases:
        status, _, resp = raw(endpoint, method, path, body or None, {**S3_AUTH, **headers})
        assert status < 500, (method, path[:80], headers, status, resp[:300])
        if status >= 400 and resp != UVICORN_400:
            assert b"<Code>" in resp, (method, path[:80], status, resp[:300])
    _assert_healthy(server)


def test_deep_json_in_string_members(server: LaminaProcess, fn: dict[str, Any]) -> None:
    """Members that carry JSON text (patterns, policies, inputs) nested past the decoder's depth."""
    endpoint = server.endpoint
    deep = "[" * 2000 + "]" * 2000  # within the members' length limits, past the depth

    def target(prefix: str, op: str, doc: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        headers = {"X-Amz-Target": f"{prefix}.{op}", "Content-Type": "application/x-amz-json-1.1"}
        return raw(endpoint, "POST", "/", json.dumps(doc).encode(), headers)

    status, _, resp = target("AWSEvents", "PutRule", {"Name": "deep-rule", "EventPattern": deep})
    assert status == 400 and b"InvalidEventPatternException" in resp, resp[:300]
    target("AWSEvents", "PutRule", {"Name": "deep-rule", "ScheduleExpression": "rate(1 day)"})
    status, _, resp = target(
        "AWSEvents",
        "PutTargets",
        {
            "Rule": "deep-rule",
            "Targets": [
                {
                    "Id": "t",
                    "Arn": "arn:aws:lambda:us-east-1:000000000000:function:x",
                    "Input": deep,
                }
            ],
        },
    )
    assert status < 500, resp[:300]
    status, _, resp = target(
        "AmazonSQS",
        "CreateQueue",
        {"QueueName": "deep-q", "Attributes": {"RedrivePolicy": deep}},
    )
    assert 400 <= status < 500, resp[:300]
    queue = client_for(endpoint, "sqs").create_queue(QueueName="deep-esm")["QueueUrl"]
    status, out, resp = raw(
        endpoint,
        "POST",
        "/2015-03-31/event-source-mappings",
        json.dumps(
            {
                "FunctionName": fn["name"],
                "EventSourceArn": "arn:aws:sqs:us-east-1:000000000000:deep-esm",
                "FilterCriteria": {"Filters": [{"Pattern": deep}]},
            }
        ).encode(),
        {"Content-Type": "application/json"},
    )
    _check(status, out, resp, GENERIC_ERRORS, "CreateEventSourceMapping deep pattern")
    assert status == 400
    # A message whose body is nested too deep to parse is filtered as text: dropped by a
    # mapping that matches on a JSON body member, and the poller goes on.
    lam = fn["client"]
    uuid_ = lam.create_event_source_mapping(
        FunctionName=fn["name"],
        EventSourceArn="arn:aws:sqs:us-east-1:000000000000:deep-esm",
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"body": {"a": [1]}})}]},
        BatchSize=1,
    )["UUID"]
    sqs = client_for(endpoint, "sqs")
    sqs.send_message(QueueUrl=queue, MessageBody=deep)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        if (
            attrs["ApproximateNumberOfMessages"] == "0"
            and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
        ):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the deep message was not consumed: {attrs}")
    lam.delete_event_source_mapping(UUID=uuid_)
    _assert_healthy(server)


def test_lamina_own_routes(
    server: LaminaProcess, fn: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    """Lamina's own routes (status, drain, memory floor, buckets) hold to the same rule."""
    endpoint = server.endpoint
    for method, path in [
        ("POST", "/lamina/memory-floor?MB=%C2%B2"),  # a digit to str.isdigit, not to int()
        ("POST", "/lamina/memory-floor?MB=-1"),
        ("POST", "/lamina/memory-floor?MB=1.5"),
        ("POST", "/lamina/memory-floor"),
        ("POST", "/lamina/drain"),
        ("POST", "/lamina/drain?FunctionName=%00"),
        ("GET", "/lamina/status?FunctionName=%FF"),
        ("GET", "/_lamina/code/%00.zip"),
        ("GET", "/2018-10-31/layers/x/versions/%C2%B2"),
        ("DELETE", "/2018-10-31/layers/x/versions/%C2%B2"),
        ("GET", "/_lamina/code/..%2F..%2Fetc%2Fpasswd.zip"),
    ]:
        status, out, resp = raw(endpoint, method, path)
        _check(status, out, resp, GENERIC_ERRORS, f"{method} {path}")
    bucket = "bad-input-b-" + uuid.uuid4().hex[:6]
    base = "/lamina/v1/buckets"
    folder = json.dumps({"Path": str(tmp_path)}).encode()
    status, _, resp = raw(endpoint, "PUT", f"{base}/{bucket}", folder)
    assert status < 300, resp[:300]
    bodies: list[Any] = [
        *WRONG["structure"],
        {"Path": 1},
        {"Path": ""},
        {"Path": "a\u0000b"},
        {"Path": "relative"},
        {"Path": str(tmp_path / "missing"), "Region": []},
    ]
    notifications: list[Any] = [
        *WRONG["structure"],
        {"LambdaFunctionConfigurations": "x"},
        {"LambdaFunctionConfigurations": [1]},
        {"LambdaFunctionConfigurations": [{"LambdaFunctionArn": 1, "Events": "x"}]},
        {"LambdaFunctionConfigurations": [{"LambdaFunctionArn": fn["name"], "Events": [1]}]},
        {
            "LambdaFunctionConfigurations": [
                {
                    "LambdaFunctionArn": fn["name"],
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": [], "Value": {}}]}},
                }
            ]
        },
        {
            "LambdaFunctionConfigurations": [
                {"LambdaFunctionArn": fn["name"], "Events": ["s3:ObjectCreated:*"], "Filter": "x"}
            ]
        },
    ]
    cases = [
        ("PUT", f"{base}/{b}", json.dumps(x).encode())
        for b in (bucket, "%00", "x" * 300)
        for x in bodies
    ]
    cases += [
        ("PUT", f"{base}/{bucket}/notification", json.dumps(x).encode()) for x in notifications
    ]
    cases += [("PUT", f"{base}/{bucket}/notification", DEEP)]
    for method, path, body in cases:
        status, out, resp = raw(endpoint, method, path, body, {"Content-Type": "application/json"})
        _check(status, out, resp, GENERIC_ERRORS, f"{method} {path[:60]} {body[:80]!r}")
    raw(endpoint, "DELETE", f"{base}/{bucket}")
    _assert_healthy(server)


def test_logs_reads_with_odd_numbers(server: LaminaProcess, fn: dict[str, Any]) -> None:
    """Times, limits and tokens at the edges of their types, on a log group that has events."""
    endpoint = server.endpoint
    raw(endpoint, "POST", f"/2015-03-31/functions/{fn['name']}/invocations", b"{}")
    group = f"/aws/lambda/{fn['name']}"
    headers = {"X-Amz-Target": "", "Content-Type": "application/x-amz-json-1.1"}
    streams = client_for(endpoint, "logs").describe_log_streams(logGroupName=group)["logStreams"]
    stream = streams[0]["logStreamName"]
    for op, extra in [
        ("FilterLogEvents", {}),
        ("GetLogEvents", {"logStreamName": stream}),
        ("DescribeLogStreams", {}),
        ("DescribeLogGroups", {}),
    ]:
        for member in ("startTime", "endTime", "limit"):
            for value in (2**64, -(2**64), -1, 0, 10**30):
                doc = {"logGroupName": group, **extra, member: value}
                headers["X-Amz-Target"] = f"Logs_20140328.{op}"
                status, _, resp = raw(endpoint, "POST", "/", json.dumps(doc).encode(), headers)
                assert status < 500, (op, member, value, resp[:300])
        for token in ("", "x", "f/" + "9" * 30, "b/-1", "\u00e9", "0" * 5000):
            doc = {"logGroupName": group, **extra, "nextToken": token}
            headers["X-Amz-Target"] = f"Logs_20140328.{op}"
            status, _, resp = raw(endpoint, "POST", "/", json.dumps(doc).encode(), headers)
            assert status < 500, (op, token[:20], resp[:300])
            if op in ("FilterLogEvents", "GetLogEvents"):  # a token never handed out
                assert status == 400, (op, token[:20], resp[:300])
                assert json.loads(resp)["__type"] == "InvalidParameterException"
    _assert_healthy(server)


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rng.choice(
            ["", "x", "\u0000", "\U0001f600", "$LATEST", "arn:aws:lambda:::", "9" * 30]
        )
    if kind == 1:
        return rng.choice([0, -1, 1, 2**31, 2**63, -(2**63) - 1, 10**40])
    if kind == 2:
        return rng.choice([0.5, -0.0, 1e308, float("nan"), float("inf")])
    if kind == 3:
        return rng.choice([True, False])
    if kind == 4:
        return None
    if kind == 5:
        return "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(1, 40)))
    if kind in (6, 7):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {
        rng.choice(["Name", "Arn", "Key", "Value", "Variables", "x"]): _random_value(rng, depth + 1)
        for _ in range(rng.randrange(4))
    }


def test_random_bodies(server: LaminaProcess) -> None:
    """Random JSON values (NaN and Infinity too) for the members of every served operation with
    a body: a fixed seed, so that a failure repeats (LAMINA_FUZZ_SEED=N tries another)."""
    endpoint = server.endpoint
    client = client_for(endpoint)
    name = "bad-input-random-" + uuid.uuid4().hex[:8]
    _create(client, name)
    rng = random.Random(int(os.environ.get("LAMINA_FUZZ_SEED", "20261123")))
    failures: list[str] = []
    sent = 0
    for op_name in _operations():
        op = MODEL.operation_model(op_name)
        shape = op.input_shape
        if (
            shape is None
            or op.http["method"] not in ("POST", "PUT")
            or op_name.startswith("Delete")
        ):
            continue
        body_members = [m for m, ms in shape.members.items() if "location" not in ms.serialization]
        if not body_members or not _served(endpoint, op):
            continue
        target = "bad-input-rnd-new" if op_name == "CreateFunction" else name
        method, path, headers, _ = _serialize(op, _base(op, target))
        headers["Content-Type"] = "application/json"
        for _ in range(30):
            doc = {
                m: _random_value(rng) for m in rng.sample(body_members, min(3, len(body_members)))
            }
            body = json.dumps(doc).encode()  # NaN and Infinity as Python writes them
            status, out, resp = raw(endpoint, method, path, body, headers, timeout_s=30)
            sent += 1
            allowed = GENERIC_ERRORS | {s.name for s in op.error_shapes}
            kind = _error_type(out, resp)
            if status >= 500 or (status >= 400 and kind not in allowed):
                failures.append(f"{op_name} {body[:150]!r}: {status} {kind} {resp[:150]!r}")
            elif status < 300 and (problem := _parse_problem(op, status, out, resp)):
                failures.append(f"{op_name} {body[:150]!r}: the answer does not parse: {problem}")
        raw(endpoint, "DELETE", "/2015-03-31/functions/bad-input-rnd-new")
        if _readable(endpoint, name) is not None:
            with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                client.delete_function(FunctionName=name)
            _create(client, name)
    assert not failures, "\n".join(failures)
    assert sent >= 400, sent
    _assert_healthy(server)


@pytest.mark.parametrize("prefix", sorted(TARGETS))
def test_random_target_bodies(server: LaminaProcess, prefix: str) -> None:
    """The same random values for the members of SQS, Logs and EventBridge operations."""
    service, content_type = TARGETS[prefix]
    endpoint = server.endpoint
    rng = random.Random(int(os.environ.get("LAMINA_FUZZ_SEED", "20261123")))
    failures: list[str] = []
    for name, op in _target_ops(service):
        shape = op.input_shape
        if shape is None or not shape.members:
            continue
        members = list(shape.members)
        headers = {"X-Amz-Target": f"{prefix}.{name}", "Content-Type": content_type}
        for _ in range(10):
            doc = {m: _random_value(rng) for m in rng.sample(members, min(3, len(members)))}
            body = json.dumps(doc).encode()
            status, _, resp = raw(endpoint, "POST", "/", body, headers, timeout_s=30)
            if status >= 500:
                failures.append(f"{prefix}.{name} {body[:150]!r}: {status} {resp[:150]!r}")
    assert not failures, "\n".join(failures)
    _assert_healthy(server)


def test_event_source_mapping_uris_with_a_trailing_slash(
    server: LaminaProcess, fn: dict[str, Any]
) -> None:
    """Older botocore models send Create/ListEventSourceMappings to `.../event-source-mappings/`."""
    plain = raw_json(server.endpoint, "GET", "/2015-03-31/event-source-mappings")
    slashed = raw_json(server.endpoint, "GET", "/2015-03-31/event-source-mappings/")
    assert slashed[0] == plain[0] == 200
    assert slashed[2]["EventSourceMappings"] == plain[2]["EventSourceMappings"]
    status, headers, _ = raw_json(
        server.endpoint,
        "POST",
        "/2015-03-31/event-source-mappings/",
        # A name of its own: the model sweep may have created MISSING_FN by then.
        {"FunctionName": f"never-created-{uuid.uuid4().hex}", "EventSourceArn": ESM_QUEUE_ARN},
    )
    assert status == 404 and headers["x-amzn-errortype"] == "ResourceNotFoundException"
