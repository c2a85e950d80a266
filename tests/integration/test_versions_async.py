"""Asynchronous invocation of versions and aliases: each qualifier has its own event invoke
config (retries, destinations), the event runs the version the qualifier names, and deleting a
version or alias takes its config with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import make_zip
from tests.integration.test_async import (  # noqa: F401  (fixtures)
    lam,
    ledger,
    new_function,
    new_queue,
    receive,
    server,
    sqs,
)

VERSIONED = """
TAG = {tag!r}


def handler(event, context):
    return {{"tag": TAG, "version": context.function_version,
             "arn": context.invoked_function_arn}}
"""


def code(tag: str) -> bytes:
    return make_zip({"f.py": VERSIONED.format(tag=tag)})


def settle(client: Any, name: str) -> None:
    client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 300}
    )


def test_event_invoke_configs_per_qualifier(lam: Any, sqs: Any, ledger: Path) -> None:  # noqa: F811
    name = new_function(lam, ledger, VERSIONED.format(tag="one"))
    lam.publish_version(FunctionName=name)
    lam.update_function_code(FunctionName=name, ZipFile=code("two"))
    settle(lam, name)
    lam.publish_version(FunctionName=name)
    lam.update_function_code(FunctionName=name, ZipFile=code("three"))
    settle(lam, name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="2")
    arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"

    queues = {q: new_queue(sqs) for q in ("$LATEST", "1", "live")}
    for qualifier, (_url, queue_arn) in queues.items():
        put = lam.put_function_event_invoke_config(
            FunctionName=name,
            Qualifier=qualifier,
            DestinationConfig={"OnSuccess": {"Destination": queue_arn}},
        )
        assert put["FunctionArn"] == f"{arn}:{qualifier}"
    listed = lam.list_function_event_invoke_configs(FunctionName=name)
    assert sorted(c["FunctionArn"] for c in listed["FunctionEventInvokeConfigs"]) == sorted(
        f"{arn}:{q}" for q in queues
    )
    got = lam.get_function_event_invoke_config(FunctionName=f"{name}:live")
    assert got["DestinationConfig"]["OnSuccess"]["Destination"] == queues["live"][1]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_event_invoke_config(FunctionName=name, Qualifier="2")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.put_function_event_invoke_config(
            FunctionName=name, Qualifier="9", MaximumRetryAttempts=0
        )

    expected = {
        "$LATEST": ("three", "$LATEST", None),
        "1": ("one", "1", "1"),
        "live": ("two", "2", "live"),
    }
    for _tag, _version, named in expected.values():
        kwargs = {"Qualifier": named} if named else {}
        resp = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}", **kwargs)
        assert resp["StatusCode"] == 202
        assert "ExecutedVersion" not in resp
    for qualifier, (tag, version, named) in expected.items():
        (msg,) = receive(sqs, queues[qualifier][0])
        record = json.loads(msg["Body"])
        assert record["requestContext"]["functionArn"] == f"{arn}:{qualifier}"
        assert record["responseContext"]["executedVersion"] == version
        assert record["responsePayload"]["tag"] == tag
        assert record["responsePayload"]["version"] == version
        assert record["responsePayload"]["arn"] == (f"{arn}:{named}" if named else arn)

    # A deleted alias or version takes its settings with it.
    lam.delete_alias(FunctionName=name, Name="live")
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_event_invoke_config(FunctionName=name, Qualifier="live")
    lam.delete_alias(FunctionName=name, Name="live")
    lam.delete_function(FunctionName=name, Qualifier="1")
    remaining = lam.list_function_event_invoke_configs(FunctionName=name)
    assert [c["FunctionArn"] for c in remaining["FunctionEventInvokeConfigs"]] == [f"{arn}:$LATEST"]
