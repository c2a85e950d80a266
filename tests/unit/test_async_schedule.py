"""The asynchronous invocation schedule and records, as Lambda defines them."""

from __future__ import annotations

import json

from lamina.invoke.async_worker import retry_delay_s, throttle_delay_s
from lamina.invoke.destinations import error_message, invocation_record


def test_function_errors_wait_one_then_two_minutes() -> None:
    assert [retry_delay_s(60.0, n) for n in (1, 2)] == [60.0, 120.0]


def test_throttles_back_off_from_one_second_to_five_minutes() -> None:
    delays = [throttle_delay_s(n) for n in range(1, 12)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(delays) == 300.0
    assert delays == sorted(delays)


def test_failure_record_shape() -> None:
    error = json.dumps({"errorMessage": "boom", "errorType": "ValueError"}).encode()
    record = invocation_record(
        request_id="r-1",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST",
        condition="RetriesExhausted",
        invoke_count=3,
        request_payload=b'{"a": 1}',
        executed_version="$LATEST",
        function_error="Unhandled",
        response_payload=error,
    )
    assert list(record) == [
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    ]
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorMessage"] == "boom"


def test_a_record_of_an_event_that_never_ran_has_no_response() -> None:
    record = invocation_record(
        request_id="r-2",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST",
        condition="EventAgeExceeded",
        invoke_count=0,
        request_payload=b"not json",
        executed_version=None,
        function_error=None,
        response_payload=None,
    )
    assert "responseContext" not in record and "responsePayload" not in record
    assert record["requestPayload"] == "not json"


def test_dead_letter_error_message_is_the_function_error_cut_to_1_kb() -> None:
    long = json.dumps({"errorMessage": "x" * 5000}).encode()
    assert error_message(long, "fallback") == "x" * 1024
    assert error_message(None, "EventAgeExceeded") == "EventAgeExceeded"
