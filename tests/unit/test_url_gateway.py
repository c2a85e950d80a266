"""The function URL gateway's mappings: request -> event, result -> response, CORS."""

from __future__ import annotations

import base64
import json

import pytest

from lamina.api.url_gateway import (
    buffered_response,
    build_event,
    preflight_headers,
    response_cors_headers,
    stream_response,
)
from lamina.control.function_urls import Cors, FunctionUrlConfig, _cors
from lamina.errors import InvalidParameterValueException, ValidationException

CFG = FunctionUrlConfig(
    region="us-east-1",
    account_id="000000000000",
    function_name="f",
    qualifier=None,
    url_id="a" * 32,
    auth_type="NONE",
    creation_time="t",
    last_modified_time="t",
)


def scope(headers: list[tuple[bytes, bytes]], query: bytes = b"", method: str = "GET") -> dict:
    return {
        "type": "http",
        "method": method,
        "headers": headers,
        "query_string": query,
        "client": ("10.0.0.1", 5555),
        "server": ("127.0.0.1", 9009),
        "http_version": "1.1",
        "scheme": "http",
    }


def test_event_headers_cookies_query() -> None:
    event = build_event(
        CFG,
        scope(
            [
                (b"Host", b"h"),
                (b"X-A", b"1"),
                (b"x-a", b"2"),
                (b"Cookie", b"a=1; b=2"),
                (b"cookie", b"c=3"),
            ],
            b"k=1&k=2&e=&s=a+b",
        ),
        "/p%20q",
        b"",
        "rid",
        "trace",
    )
    assert event["headers"]["x-a"] == "1,2"
    assert event["cookies"] == ["a=1", "b=2", "c=3"]
    assert event["queryStringParameters"] == {"k": "1,2", "e": "", "s": "a b"}
    assert event["rawQueryString"] == "k=1&k=2&e=&s=a+b"
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == "/p%20q"
    assert event["requestContext"]["http"]["sourceIp"] == "10.0.0.1"
    assert event["headers"]["x-forwarded-for"] == "10.0.0.1"
    assert "body" not in event and event["isBase64Encoded"] is False


@pytest.mark.parametrize(
    ("content_type", "body", "b64"),
    [
        ("application/json", b'{"a": 1}', False),
        ("text/plain; charset=utf-8", "héllo".encode(), False),
        ("application/vnd.api+json", b"{}", False),
        ("", b"untyped text", False),
        ("application/octet-stream", b"abc", True),
        ("image/png", b"\x89PNG", True),
        ("text/plain", b"\xff\xfe", True),
        ("multipart/form-data; boundary=x", b"--x", True),
    ],
)
def test_event_body_encoding(content_type: str, body: bytes, b64: bool) -> None:
    headers = [(b"content-type", content_type.encode())] if content_type else []
    event = build_event(CFG, scope(headers, method="POST"), "/", body, "r", "t")
    assert event["isBase64Encoded"] is b64
    assert (base64.b64decode(event["body"]) if b64 else event["body"].encode()) == body


def test_http_shaped_results() -> None:
    status, headers, body = buffered_response(
        json.dumps(
            {
                "statusCode": "418",
                "headers": {"X-Flag": True, "content-type": "text/plain"},
                "multiValueHeaders": {"x-m": ["1", "2"]},
                "cookies": ["a=1; Secure", "b=2"],
                "body": base64.b64encode(b"\x00\x01").decode(),
                "isBase64Encoded": True,
            }
        ).encode()
    )
    assert status == 418 and body == b"\x00\x01"
    assert headers == [
        ("x-flag", "true"),
        ("content-type", "text/plain"),
        ("x-m", "1"),
        ("x-m", "2"),
        ("set-cookie", "a=1; Secure"),
        ("set-cookie", "b=2"),
    ]
    assert buffered_response(b'{"statusCode": 204}') == (
        204,
        [("content-type", "application/json")],
        b"",
    )


@pytest.mark.parametrize(
    ("payload", "body"),
    [
        (b'{"hello": "world"}', b'{"hello":"world"}'),
        (b'["hello", 3, true]', b'["hello",3,true]'),
        (b'"hello"', b"hello"),
        (b"3", b"3"),
        (b"null", b"null"),
        (b'{"statusCode": 200, "body": "{\\"hello\\": \\"world\\"}"}', b'{"hello": "world"}'),
    ],
)
def test_bare_results(payload: bytes, body: bytes) -> None:
    assert buffered_response(payload) == (200, [("content-type", "application/json")], body)


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"statusCode": "abc"}',
        b'{"statusCode": 99}',
        b'{"statusCode": 200, "body": "***", "isBase64Encoded": true}',
    ],
)
def test_unmappable_results_are_502(payload: bytes) -> None:
    assert buffered_response(payload)[0] == 502


def test_stream_prelude() -> None:
    prelude = json.dumps({"statusCode": 202, "headers": {"a": "b"}, "cookies": ["c=d"]})
    status, headers, body = stream_response(
        prelude.encode() + b"\0" * 8 + b"rest\0of it",
        "application/vnd.awslambda.http-integration-response",
    )
    assert status == 202 and body == b"rest\0of it"
    assert ("a", "b") in headers and ("set-cookie", "c=d") in headers
    assert stream_response(b"raw", "text/plain") == (200, [("content-type", "text/plain")], b"raw")
    assert (
        stream_response(b"no separator", "application/vnd.awslambda.http-integration-response")[0]
        == 502
    )


def test_cors_headers() -> None:
    cors = Cors(
        allow_origins=("https://a.example",),
        allow_methods=("GET",),
        allow_headers=("x-h",),
        expose_headers=("x-e", "x-f"),
        max_age_s=5,
    )
    assert response_cors_headers(cors, "https://b.example") == []
    assert response_cors_headers(cors, "HTTPS://A.EXAMPLE") == [
        ("access-control-allow-origin", "HTTPS://A.EXAMPLE"),
        ("vary", "Origin"),
        ("access-control-expose-headers", "x-e,x-f"),
    ]
    assert ("access-control-max-age", "5") in preflight_headers(cors, "https://a.example")
    star = Cors(allow_origins=("*",))
    assert response_cors_headers(star, "https://x") == [("access-control-allow-origin", "*")]
    with_credentials = Cors(allow_origins=("*",), allow_credentials=True)
    assert response_cors_headers(with_credentials, "https://x")[0] == (
        "access-control-allow-origin",
        "https://x",
    )


def test_cors_validation() -> None:
    assert _cors({"AllowMethods": ["*"], "MaxAge": 0}) == Cors(allow_methods=("*",), max_age_s=0)
    with pytest.raises(ValidationException, match=r"cors\.maxAge"):
        _cors({"MaxAge": -1})
    with pytest.raises(ValidationException, match=r"cors\.allowOrigins"):
        _cors({"AllowOrigins": [""]})
    with pytest.raises(ValidationException, match=r"cors\.allowHeaders"):
        _cors({"AllowHeaders": ["h"] * 101})
    with pytest.raises(ValidationException, match=r"cors\.allowCredentials"):
        _cors({"AllowCredentials": "yes"})
    with pytest.raises(InvalidParameterValueException):
        _cors({"AllowMethods": ["BREW"]})


def test_stream_error_trailers() -> None:
    from lamina.runtime.environment import _stream_error

    body = base64.b64encode(b'{"errorMessage": "midway", "errorType": "Midway"}').decode()
    payload, error_type = _stream_error(
        {
            "lambda-runtime-function-error-type": "Midway",
            "lambda-runtime-function-error-body": body,
        }
    )
    assert error_type == "Midway" and json.loads(payload)["errorMessage"] == "midway"
    payload, error_type = _stream_error({"lambda-runtime-function-error-type": "Only.Type"})
    assert error_type == "Only.Type" and json.loads(payload)["errorType"] == "Only.Type"
