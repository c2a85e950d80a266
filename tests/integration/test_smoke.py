"""The first thing a user does: create a function with boto3 and invoke it."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import CreateFunction, invoke_json


def test_create_and_invoke(lambda_client: Any, create_function: CreateFunction) -> None:
    cfg = create_function("echo")
    assert cfg["State"] == "Pending"
    resp, body = invoke_json(lambda_client, cfg["FunctionName"], {"hello": "world"})
    assert resp["StatusCode"] == 200
    assert "FunctionError" not in resp
    assert resp["ExecutedVersion"] == "$LATEST"
    assert body["event"] == {"hello": "world"}
    assert body["request_id"] == resp["ResponseMetadata"]["RequestId"]
    assert body["function_name"] == cfg["FunctionName"]
    assert body["memory_limit_in_mb"] == "128"
