"""Function URLs: the config API (boto3, AWS CLI) and HTTP requests to the URLs themselves.

Requests go over real sockets: host-based through http.client (to 127.0.0.1 with the URL's Host,
as glibc does not resolve *.localhost here) and curl (which does), path-based through httpx.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.conftest import (
    CreateFunction,
    client_for,
    deploy,
    make_zip,
)
from tests.integration.lamina_process import LaminaProcess

URL_RE = re.compile(r"^http://([0-9a-z]{32})\.lambda-url\.us-east-1\.localhost:(\d+)/$")

Response = tuple[int, list[tuple[str, str]], bytes]


def call(
    url: str,
    method: str = "GET",
    path: str = "/",
    body: bytes | None = None,
    headers: list[tuple[str, str]] | dict[str, str] | None = None,
) -> Response:
    """One request to a host-based function URL: to 127.0.0.1 with the URL's Host header."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=120)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", parts.netloc)
        items = headers.items() if isinstance(headers, dict) else headers or []
        for name, value in items:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, [(k.lower(), v) for k, v in resp.getheaders()], resp.read()
    finally:
        conn.close()


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k == name), None)


def path_url(function_url: str, endpoint: str) -> str:
    """The path-based form of a URL: <endpoint>/lambda-url/<url-id>/."""
    m = URL_RE.match(function_url)
    assert m, function_url
    return f"{endpoint}/lambda-url/{m.group(1)}/"


@pytest.fixture
def url_function(lambda_client: Any, create_function: CreateFunction) -> Callable[..., str]:
    """A url_app function with a URL; returns the FunctionUrl."""

    def make(**url_args: Any) -> str:
        name = create_function("url_app")["FunctionName"]
        cfg = lambda_client.create_function_url_config(
            FunctionName=name, AuthType="NONE", **url_args
        )
        return str(cfg["FunctionUrl"])

    return make


# -- the configuration API -----------------------------------------------------------------------


def test_config_lifecycle(lambda_client: Any, create_function: CreateFunction) -> None:
    fn = create_function("url_app")
    name, arn = fn["FunctionName"], fn["FunctionArn"]
    cors = {"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"], "MaxAge": 60}
    created = lambda_client.create_function_url_config(
        FunctionName=name, AuthType="NONE", Cors=cors
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert URL_RE.match(created["FunctionUrl"])
    assert created["FunctionArn"] == arn
    assert created["AuthType"] == "NONE"
    assert created["Cors"] == cors
    assert "LastModifiedTime" not in created and "InvokeMode" not in created
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", created["CreationTime"])

    got = lambda_client.get_function_url_config(FunctionName=arn)
    assert got["FunctionUrl"] == created["FunctionUrl"]
    assert got["LastModifiedTime"] == got["CreationTime"] == created["CreationTime"]

    updated = lambda_client.update_function_url_config(
        FunctionName=name, AuthType="AWS_IAM", InvokeMode="BUFFERED", Cors={"AllowOrigins": ["*"]}
    )
    assert updated["FunctionUrl"] == created["FunctionUrl"]  # the address never changes
    assert updated["AuthType"] == "AWS_IAM" and updated["InvokeMode"] == "BUFFERED"
    assert updated["Cors"] == {"AllowOrigins": ["*"]}
    assert updated["LastModifiedTime"] >= created["CreationTime"]

    listed = lambda_client.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"]
    assert [c["FunctionUrl"] for c in listed] == [created["FunctionUrl"]]
    assert listed[0]["AuthType"] == "AWS_IAM"

    with pytest.raises(lambda_client.exceptions.ResourceConflictException) as conflict:
        lambda_client.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert conflict.value.response["Error"]["Message"] == (
        f"Failed to create function url config for [functionArn = {arn}]. "
        "Error message:  FunctionUrlConfig exists for this Lambda function"
    )

    lambda_client.delete_function_url_config(FunctionName=name)
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException) as missing:
        lambda_client.get_function_url_config(FunctionName=name)
    assert (
        missing.value.response["Error"]["Message"] == "The resource you requested does not exist."
    )
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.delete_function_url_config(FunctionName=name)
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.update_function_url_config(FunctionName=name, AuthType="NONE")
    assert lambda_client.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"] == []
    status, _, _ = call(created["FunctionUrl"], path="/dict")
    assert status == 403  # the address is gone with its configuration


def test_config_errors(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function("url_app")["FunctionName"]
    exc = lambda_client.exceptions

    def error_of(fn: Callable[..., Any], **kwargs: Any) -> tuple[str, str]:
        with pytest.raises(lambda_client.exceptions.ClientError) as info:
            fn(**kwargs)
        err = info.value.response["Error"]
        return err["Code"], err["Message"]

    code, message = error_of(
        lambda_client.create_function_url_config, FunctionName="no-such-fn", AuthType="NONE"
    )
    assert (code, message) == ("ResourceNotFoundException", "Function does not exist")
    with pytest.raises(exc.ResourceNotFoundException):
        lambda_client.list_function_url_configs(FunctionName="no-such-fn")
    code, message = error_of(lambda_client.get_function_url_config, FunctionName="no-such-fn")
    assert message == "The resource you requested does not exist."
    code, message = error_of(
        lambda_client.create_function_url_config, FunctionName=name, AuthType="OPEN"
    )
    assert code == "ValidationException"
    assert "Member must satisfy enum value set: [NONE, AWS_IAM]" in message
    code, message = error_of(
        lambda_client.create_function_url_config,
        FunctionName=name,
        AuthType="NONE",
        InvokeMode="CHUNKED",
    )
    assert code == "ValidationException" and "'invokeMode'" in message
    for qualifier in ("$LATEST", "1"):
        code, message = error_of(
            lambda_client.create_function_url_config,
            FunctionName=name,
            AuthType="NONE",
            Qualifier=qualifier,
        )
        assert code == "ValidationException" and "'qualifier'" in message, qualifier
    code, _ = error_of(
        lambda_client.create_function_url_config,
        FunctionName=name,
        AuthType="NONE",
        Qualifier="no-such-alias",
    )
    assert code == "ResourceNotFoundException"
    code, message = error_of(
        lambda_client.create_function_url_config,
        FunctionName=name,
        AuthType="NONE",
        Cors={"MaxAge": 86401},
    )
    assert code == "ValidationException" and "'cors.maxAge'" in message
    code, message = error_of(
        lambda_client.create_function_url_config,
        FunctionName=name,
        AuthType="NONE",
        Cors={"AllowMethods": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]},
    )
    assert code == "ValidationException" and "'cors.allowMethods'" in message
    code, _ = error_of(
        lambda_client.create_function_url_config,
        FunctionName=name,
        AuthType="NONE",
        Cors={"AllowMethods": ["FETCH"]},
    )
    assert code == "InvalidParameterValueException"
    code, message = error_of(
        lambda_client.create_function_url_config,
        FunctionName=f"{name}:other",
        AuthType="NONE",
        Qualifier="alias",
    )
    assert code == "InvalidParameterValueException" and "does not match" in message
    # Nothing was left behind by the refusals.
    assert lambda_client.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"] == []


def test_aws_cli(aws_cli: Any, create_function: CreateFunction) -> None:
    name = create_function("url_app")["FunctionName"]
    created = json.loads(
        aws_cli(
            "lambda",
            "create-function-url-config",
            "--function-name",
            name,
            "--auth-type",
            "NONE",
            "--cors",
            "AllowOrigins=https://a.example,AllowMethods=GET,MaxAge=30",
        ).stdout
    )
    assert URL_RE.match(created["FunctionUrl"])
    assert created["Cors"] == {
        "AllowOrigins": ["https://a.example"],
        "AllowMethods": ["GET"],
        "MaxAge": 30,
    }
    got = json.loads(aws_cli("lambda", "get-function-url-config", "--function-name", name).stdout)
    assert got["FunctionUrl"] == created["FunctionUrl"]
    updated = json.loads(
        aws_cli(
            "lambda",
            "update-function-url-config",
            "--function-name",
            name,
            "--invoke-mode",
            "RESPONSE_STREAM",
        ).stdout
    )
    assert updated["InvokeMode"] == "RESPONSE_STREAM" and updated["AuthType"] == "NONE"
    listed = json.loads(
        aws_cli("lambda", "list-function-url-configs", "--function-name", name).stdout
    )
    assert [c["FunctionUrl"] for c in listed["FunctionUrlConfigs"]] == [created["FunctionUrl"]]
    aws_cli("lambda", "delete-function-url-config", "--function-name", name)
    missing = aws_cli("lambda", "get-function-url-config", "--function-name", name, check=False)
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr


def test_deleting_the_function_deletes_its_url(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    name = create_function("url_app")["FunctionName"]
    url = lambda_client.create_function_url_config(FunctionName=name, AuthType="NONE")[
        "FunctionUrl"
    ]
    assert call(url, path="/dict")[0] == 200
    lambda_client.delete_function(FunctionName=name)
    assert call(url, path="/dict")[0] == 403
    create_function("url_app", name=name)  # the same name again: no URL comes back with it
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.get_function_url_config(FunctionName=name)


def test_alias_qualified_url(lambda_client: Any, create_function: CreateFunction) -> None:
    fn = create_function("url_app", Publish=True)
    name, arn = fn["FunctionName"], fn["FunctionArn"].removesuffix(":1")  # published: qualified
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    plain = lambda_client.create_function_url_config(FunctionName=name, AuthType="NONE")
    live = lambda_client.create_function_url_config(
        FunctionName=name, AuthType="NONE", Qualifier="live"
    )
    assert live["FunctionArn"] == f"{arn}:live" and plain["FunctionArn"] == arn
    assert live["FunctionUrl"] != plain["FunctionUrl"]
    assert (
        lambda_client.get_function_url_config(FunctionName=f"{name}:live")["FunctionUrl"]
        == live["FunctionUrl"]
    )
    listed = lambda_client.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"]
    assert sorted(c["FunctionArn"] for c in listed) == [arn, f"{arn}:live"]
    page = lambda_client.list_function_url_configs(FunctionName=name, MaxItems=1)
    assert len(page["FunctionUrlConfigs"]) == 1 and page["NextMarker"]
    rest = lambda_client.list_function_url_configs(FunctionName=name, Marker=page["NextMarker"])
    assert len(rest["FunctionUrlConfigs"]) == 1 and "NextMarker" not in rest
    assert {
        page["FunctionUrlConfigs"][0]["FunctionArn"],
        rest["FunctionUrlConfigs"][0]["FunctionArn"],
    } == {arn, f"{arn}:live"}

    context = json.loads(call(live["FunctionUrl"], path="/context")[2])
    assert context["version"] == "1" and context["arn"] == f"{arn}:live"
    context = json.loads(call(plain["FunctionUrl"], path="/context")[2])
    assert context["version"] == "$LATEST" and context["arn"] == arn

    # Moving the alias moves its URL.
    lambda_client.update_function_configuration(FunctionName=name, Description="v2")
    lambda_client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
    )
    v2 = lambda_client.publish_version(FunctionName=name)["Version"]
    lambda_client.update_alias(FunctionName=name, Name="live", FunctionVersion=v2)
    assert json.loads(call(live["FunctionUrl"], path="/context")[2])["version"] == v2

    # Deleting the alias keeps the URL's configuration (as on AWS); the URL answers 404 until an
    # alias of that name exists again.
    lambda_client.delete_alias(FunctionName=name, Name="live")
    assert lambda_client.get_function_url_config(FunctionName=name, Qualifier="live")
    assert call(live["FunctionUrl"], path="/context")[0] == 404
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    assert json.loads(call(live["FunctionUrl"], path="/context")[2])["version"] == "1"


# -- requests to the URL -------------------------------------------------------------------------


def test_event_shape(url_function: Callable[..., str], endpoint: str) -> None:
    url = url_function()
    url_id = URL_RE.match(url).group(1)  # type: ignore[union-attr]
    status, headers, body = call(
        url,
        "POST",
        "/echo/a%2Fb?x=1&x=2&y=&z=a%20b",
        b'{"k": "v"}',
        [
            ("Content-Type", "application/json"),
            ("X-Repeat", "one"),
            ("X-Repeat", "two"),
            ("Cookie", "a=1; b=2"),
            ("User-Agent", "lamina-test/1.0"),
        ],
    )
    assert status == 200, body
    assert header(headers, "content-type") == "application/json"
    assert header(headers, "x-amzn-requestid")
    event = json.loads(body)
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/echo/a%2Fb"
    assert event["rawQueryString"] == "x=1&x=2&y=&z=a%20b"
    assert event["queryStringParameters"] == {"x": "1,2", "y": "", "z": "a b"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-repeat"] == "one,two"
    assert event["headers"]["content-type"] == "application/json"
    assert event["headers"]["host"] == urlsplit(url).netloc
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert event["body"] == '{"k": "v"}' and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["apiId"] == ctx["domainPrefix"] == url_id
    assert ctx["domainName"] == f"{url_id}.lambda-url.us-east-1.localhost"
    assert ctx["http"] == {
        "method": "POST",
        "path": "/echo/a%2Fb",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "lamina-test/1.0",
    }
    assert ctx["requestId"] == header(headers, "x-amzn-requestid")
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", ctx["time"])
    assert isinstance(ctx["timeEpoch"], int) and ctx["timeEpoch"] > 1_600_000_000_000

    # The same URL by its path-based address, with httpx.
    resp = httpx.get(path_url(url, endpoint) + "echo?q=1", timeout=120)
    assert resp.status_code == 200
    event = resp.json()
    assert event["rawPath"] == "/echo" and event["rawQueryString"] == "q=1"
    assert "cookies" not in event and "body" not in event
    assert event["requestContext"]["domainName"] == f"{url_id}.lambda-url.us-east-1.localhost"


def test_binary_round_trip(url_function: Callable[..., str], endpoint: str) -> None:
    url = url_function()
    data = os.urandom(256 * 1024) + bytes(range(256))
    status, headers, body = call(
        url, "PUT", "/binary", data, {"Content-Type": "application/octet-stream"}
    )
    assert status == 201
    assert header(headers, "content-type") == "application/octet-stream"
    assert header(headers, "x-sha256") == hashlib.sha256(data).hexdigest()
    assert body == data[::-1]
    # Text that is not UTF-8 arrives base64-encoded too.
    resp = httpx.put(
        path_url(url, endpoint) + "binary",
        content=b"\xff\xfe\x00text",
        headers={"content-type": "text/plain"},
        timeout=120,
    )
    assert resp.status_code == 201 and resp.content == b"txet\x00\xfe\xff"


def test_cookies_and_multi_value_headers(url_function: Callable[..., str]) -> None:
    url = url_function()
    status, headers, body = call(url, path="/cookies", headers={"Cookie": "x=1; y=2"})
    assert status == 200 and body == b"x=1;y=2"
    assert [v for k, v in headers if k == "set-cookie"] == [
        "session=abc; Path=/; HttpOnly",
        "theme=dark",
    ]
    assert [v for k, v in headers if k == "x-multi"] == ["one", "two"]
    assert header(headers, "content-type") == "text/plain"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/dict", b'{"hello":"world","n":3}'),
        ("/list", b'["hello",3,true]'),
        ("/string", b"hello"),
        ("/number", b"3.1"),
        ("/none", b"null"),
    ],
)
def test_bare_results_become_json(
    url_function: Callable[..., str], path: str, expected: bytes
) -> None:
    status, headers, body = call(url_function(), path=path)
    assert (status, body) == (200, expected)
    assert header(headers, "content-type") == "application/json"


def test_status_codes_and_errors(url_function: Callable[..., str], endpoint: str) -> None:
    url = url_function()
    status, headers, body = call(url, path="/teapot")
    assert (status, body) == (418, b"short and stout")
    assert header(headers, "content-type") == "application/json"
    assert call(url, path="/nowhere")[:1] == (404,)
    status, _, body = call(url, path="/fail")
    assert (status, body) == (502, b"Internal Server Error")
    status, _, body = call(url, path="/big")  # a result over the 6 MB response limit
    assert (status, body) == (502, b"Internal Server Error")
    status, headers, body = call(url, "POST", "/echo", b"x" * (6 * 1024 * 1024 + 1))
    assert status == 413 and header(headers, "x-amzn-errortype") == "RequestTooLargeException"
    # An unknown URL id: 403 with AWS's body.
    status, headers, body = call(url.replace(URL_RE.match(url).group(1), "0" * 32))  # type: ignore[union-attr]
    assert (status, body) == (403, b'{"Message":null}')
    assert header(headers, "x-amzn-errortype") == "AccessDeniedException"
    assert httpx.get(f"{endpoint}/lambda-url/{'1' * 32}/", timeout=60).status_code == 403


def test_throttle_is_429(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function("url_app")["FunctionName"]
    url = lambda_client.create_function_url_config(FunctionName=name, AuthType="NONE")[
        "FunctionUrl"
    ]
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    status, headers, _ = call(url, path="/dict")
    assert status == 429 and header(headers, "x-amzn-errortype") == "TooManyRequestsException"
    lambda_client.delete_function_concurrency(FunctionName=name)
    assert call(url, path="/dict")[0] == 200


def test_aws_iam_urls_refuse_unsigned_requests(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    name = create_function("url_app")["FunctionName"]
    url = lambda_client.create_function_url_config(FunctionName=name, AuthType="AWS_IAM")[
        "FunctionUrl"
    ]
    status, headers, body = call(url, path="/dict")
    assert (status, body) == (403, b'{"Message":"Forbidden"}')
    assert header(headers, "x-amzn-errortype") == "AccessDeniedException"
    lambda_client.update_function_url_config(FunctionName=name, AuthType="NONE")
    assert call(url, path="/dict")[0] == 200


def test_cors(url_function: Callable[..., str]) -> None:
    url = url_function(
        Cors={
            "AllowOrigins": ["https://app.example"],
            "AllowMethods": ["GET", "POST"],
            "AllowHeaders": ["content-type", "x-custom"],
            "ExposeHeaders": ["x-sha256"],
            "MaxAge": 600,
            "AllowCredentials": True,
        }
    )
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-custom",
    }
    status, headers, body = call(url, "OPTIONS", "/echo", headers=preflight)
    assert (status, body) == (200, b"")  # answered without the function
    assert header(headers, "access-control-allow-origin") == "https://app.example"
    assert header(headers, "access-control-allow-methods") == "GET,POST"
    assert header(headers, "access-control-allow-headers") == "content-type,x-custom"
    assert header(headers, "access-control-max-age") == "600"
    assert header(headers, "access-control-allow-credentials") == "true"

    status, headers, _ = call(
        url, "OPTIONS", "/echo", headers={**preflight, "Origin": "https://other.example"}
    )
    assert status == 200 and header(headers, "access-control-allow-origin") is None

    status, headers, _ = call(url, path="/cors-override", headers={"Origin": "https://app.example"})
    assert status == 200
    # The configuration wins over what the function says.
    assert [v for k, v in headers if k == "access-control-allow-origin"] == ["https://app.example"]
    assert header(headers, "access-control-expose-headers") == "x-sha256"
    assert header(headers, "access-control-allow-credentials") == "true"

    # Without CORS configured, OPTIONS reaches the function like any method.
    plain = url_function()
    status, _, body = call(plain, "OPTIONS", "/echo", headers=preflight)
    assert status == 200 and json.loads(body)["requestContext"]["http"]["method"] == "OPTIONS"
    status, headers, _ = call(plain, path="/cors-override", headers={"Origin": "https://x"})
    assert header(headers, "access-control-allow-origin") == "https://evil.example"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_host_based(url_function: Callable[..., str]) -> None:
    """curl resolves *.localhost to the loopback interface, as browsers do."""
    url = url_function(Cors={"AllowOrigins": ["*"]})
    out = subprocess.run(
        ["curl", "-sS", "-i", "-H", "Origin: https://x.example", "-b", "k=v", url + "echo?a=b"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    head, _, body = out.partition("\n\n")  # text mode turned CRLF into LF
    assert head.startswith("HTTP/1.1 200")
    assert "access-control-allow-origin: *" in head.lower()
    event = json.loads(body)
    assert event["cookies"] == ["k=v"] and event["queryStringParameters"] == {"a": "b"}
    assert event["headers"]["user-agent"].startswith("curl/")


# -- RESPONSE_STREAM -----------------------------------------------------------------------------

STREAMING_BOOTSTRAP = r'''#!/usr/bin/env python3
"""A custom runtime that answers in the streaming response mode, chunk by chunk."""
import http.client
import json
import os

host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
while True:
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    resp = conn.getresponse()
    rid = resp.headers["Lambda-Runtime-Aws-Request-Id"]
    event = json.loads(resp.read())
    conn.putrequest("POST", f"/2018-06-01/runtime/invocation/{rid}/response")
    conn.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
    conn.putheader("Transfer-Encoding", "chunked")
    if event["rawPath"] == "/raw":
        conn.putheader("Content-Type", "text/plain")
        chunks = [b"first,", b"second,", b"third"]
    else:
        conn.putheader("Content-Type", "application/vnd.awslambda.http-integration-response")
        prelude = {"statusCode": 201, "headers": {"content-type": "text/csv", "x-mode": "stream"},
                   "cookies": ["s=1"]}
        chunks = [json.dumps(prelude).encode() + b"\0" * 8, b"a,b\n", b"1,2\n"]
    conn.endheaders()
    for chunk in chunks:
        conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    conn.send(b"0\r\n\r\n")
    conn.getresponse().read()
    conn.close()
'''


def test_response_stream_mode(lambda_client: Any, create_function: CreateFunction) -> None:
    code = make_zip({"bootstrap": STREAMING_BOOTSTRAP}, executable=("bootstrap",))
    name = create_function(zip_bytes=code, handler="stream", runtime="provided.al2023")[
        "FunctionName"
    ]
    url = lambda_client.create_function_url_config(
        FunctionName=name, AuthType="NONE", InvokeMode="RESPONSE_STREAM"
    )["FunctionUrl"]
    status, headers, body = call(url, path="/prelude")
    assert (status, body) == (201, b"a,b\n1,2\n")
    assert header(headers, "content-type") == "text/csv"
    assert header(headers, "x-mode") == "stream"
    assert header(headers, "set-cookie") == "s=1"
    status, headers, body = call(url, path="/raw")
    assert (status, body) == (200, b"first,second,third")
    assert header(headers, "content-type") == "text/plain"


# -- durability ----------------------------------------------------------------------------------


def test_urls_survive_a_restart(tmp_path: Any) -> None:
    server = LaminaProcess(tmp_path / "data")
    server.start()
    try:
        client = client_for(server.endpoint)
        deploy(client, "kept", "url_app")
        cfg = client.create_function_url_config(
            FunctionName="kept", AuthType="NONE", Cors={"AllowOrigins": ["*"]}
        )
        old_port = urlsplit(server.endpoint).port
        assert call(cfg["FunctionUrl"], path="/dict")[0] == 200
        server.stop()
        server.start()
        client = client_for(server.endpoint)
        got = client.get_function_url_config(FunctionName="kept")
        new_port = urlsplit(server.endpoint).port
        assert got["FunctionUrl"] == cfg["FunctionUrl"].replace(f":{old_port}/", f":{new_port}/")
        assert got["Cors"] == {"AllowOrigins": ["*"]}
        assert got["CreationTime"] == cfg["CreationTime"]
        status, _, body = call(got["FunctionUrl"], path="/dict")
        assert (status, body) == (200, b'{"hello":"world","n":3}')
    finally:
        server.stop()


# -- InvokeWithResponseStream --------------------------------------------------------------------


def test_invoke_with_response_stream(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function("results")["FunctionName"]
    resp = lambda_client.invoke_with_response_stream(
        FunctionName=name, Payload=json.dumps({"kind": "list"}).encode(), LogType="Tail"
    )
    assert resp["StatusCode"] == 200 and resp["ExecutedVersion"] == "$LATEST"
    chunks, complete = [], None
    for event in resp["EventStream"]:
        if "PayloadChunk" in event:
            chunks.append(event["PayloadChunk"]["Payload"])
        else:
            complete = event["InvokeComplete"]
    assert complete is not None and "ErrorCode" not in complete
    assert "REPORT RequestId" in base64.b64decode(complete["LogResult"]).decode()
    direct = lambda_client.invoke(FunctionName=name, Payload=json.dumps({"kind": "list"}).encode())
    assert b"".join(chunks) == direct["Payload"].read()

    failing = create_function("failing")["FunctionName"]
    resp = lambda_client.invoke_with_response_stream(
        FunctionName=failing, Payload=json.dumps({"how": "raise"}).encode()
    )
    events = list(resp["EventStream"])
    assert len(events) == 1 and events[0]["InvokeComplete"]["ErrorCode"] == "Unhandled"
    assert "errorMessage" in json.loads(events[0]["InvokeComplete"]["ErrorDetails"])
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.invoke_with_response_stream(FunctionName="no-such-fn", Payload=b"{}")
    assert (
        lambda_client.invoke_with_response_stream(
            FunctionName=name, Payload=b"{}", InvocationType="DryRun"
        )["StatusCode"]
        == 204
    )


INCREMENTAL_BOOTSTRAP = r'''#!/usr/bin/env python3
"""Streams one chunk, waits until the test has seen it (it says so over HTTP), then the rest."""
import http.client
import json
import os
import time
import urllib.request

host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
while True:
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    resp = conn.getresponse()
    rid = resp.headers["Lambda-Runtime-Aws-Request-Id"]
    event = json.loads(resp.read())
    signal_url = "http://127.0.0.1:%s/go" % event["queryStringParameters"]["port"]
    conn.putrequest("POST", f"/2018-06-01/runtime/invocation/{rid}/response")
    conn.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.putheader("Trailer", "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body")
    conn.putheader("Content-Type", "application/vnd.awslambda.http-integration-response")
    conn.endheaders()

    def send(chunk):
        conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    send(json.dumps({"statusCode": 200, "headers": {"content-type": "text/plain"}}).encode())
    send(b"\0" * 8 + b"first;")
    deadline = time.time() + 50
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(signal_url, timeout=5).status == 200:
                break
        except OSError:
            time.sleep(0.05)
    send(b"second;")
    if event["rawPath"] == "/fail-midway":
        body = __import__("base64").b64encode(b'{"errorMessage": "midway", "errorType": "Midway"}')
        conn.send(b"0\r\nLambda-Runtime-Function-Error-Type: Midway\r\n"
                  b"Lambda-Runtime-Function-Error-Body: " + body + b"\r\n\r\n")
    else:
        send(b"done")
        conn.send(b"0\r\n\r\n")
    conn.getresponse().read()
    conn.close()
'''


class _Signal:
    """A tiny HTTP server the function polls: /go answers 200 once `go` is set."""

    def __init__(self) -> None:
        self.go = threading.Event()
        signal = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200 if signal.go.is_set() else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_response_stream_is_incremental(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    """The first chunk reaches the client while the function is still running: the function
    sends the rest only after the test has received it, so a buffered stream would never end."""
    code = make_zip({"bootstrap": INCREMENTAL_BOOTSTRAP}, executable=("bootstrap",))
    name = create_function(zip_bytes=code, handler="stream", runtime="provided.al2023", Timeout=60)[
        "FunctionName"
    ]
    url = lambda_client.create_function_url_config(
        FunctionName=name, AuthType="NONE", InvokeMode="RESPONSE_STREAM"
    )["FunctionUrl"]
    for path, ending in (("/ok", b"second;done"), ("/fail-midway", b"second;")):
        signal = _Signal()
        parts = urlsplit(url)
        conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=90)
        try:
            conn.request("GET", f"{path}?port={signal.port}", headers={"Host": parts.netloc})
            resp = conn.getresponse()
            assert resp.status == 200 and resp.getheader("content-type") == "text/plain"
            assert resp.getheader("transfer-encoding") == "chunked"
            first = resp.read1(65536)
            assert first == b"first;"
            signal.go.set()
            assert resp.read() == ending
        finally:
            conn.close()
            signal.close()
