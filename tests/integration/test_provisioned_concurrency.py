"""Provisioned concurrency: Put/Get/List/DeleteProvisionedConcurrencyConfig(s) on a version or an
alias, environments ready before traffic, no Init Duration within the count, Lambda's refusals."""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.integration.conftest import (
    CreateFunction,
    client_for,
    function_zip,
    invoke_json,
    make_zip,
)


def lamina_status(endpoint: str, name: str, version: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{endpoint}/lamina/status?FunctionName={name}") as resp:
        doc = json.loads(resp.read())
    for f in doc["Functions"]:
        if f["Version"] == version:
            return dict(f)
    return {}


def wait_status(client: Any, name: str, qualifier: str, want: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        got = client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        if got["Status"] == want or time.monotonic() > deadline:
            assert got["Status"] == want, got
            return dict(got)
        time.sleep(0.1)


def probe_function(lambda_client: Any, create_function: CreateFunction, **kwargs: Any) -> str:
    cfg = create_function(
        zip_bytes=function_zip("snapshot_probe"), handler="snapshot_probe.handler", **kwargs
    )
    name = str(cfg["FunctionName"])
    lambda_client.publish_version(FunctionName=name)
    return name


def no_init_duration(resp: dict[str, Any]) -> bool:
    return "Init Duration" not in base64.b64decode(resp["LogResult"]).decode()


def test_provisioned_version_is_ready_before_traffic(
    lambda_client: Any, endpoint: str, create_function: CreateFunction
) -> None:
    name = probe_function(lambda_client, create_function)
    put = lambda_client.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=2
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["Status"] == "IN_PROGRESS" and put["RequestedProvisionedConcurrentExecutions"] == 2
    ready = wait_status(lambda_client, name, "1", "READY")
    assert ready["AvailableProvisionedConcurrentExecutions"] == 2
    assert ready["AllocatedProvisionedConcurrentExecutions"] == 2
    st = lamina_status(endpoint, name, "1")
    assert (st["provisioned"], st["idle"], st["invocations"]) == (2, 2, 0), st

    # Two calls at once: both land on provisioned environments, neither cold-starts.
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(
                invoke_json, lambda_client, name, {"sleep": 1.0}, Qualifier="1", LogType="Tail"
            )
            for _ in range(2)
        ]
        results = [f.result() for f in futures]
    for resp, body in results:
        assert no_init_duration(resp), base64.b64decode(resp["LogResult"]).decode()
        assert body["init_type"] == "provisioned-concurrency"
    assert len({body["stream"] for _, body in results}) == 2
    st = lamina_status(endpoint, name, "1")
    assert (st["cold_starts"], st["warm_starts"], st["environments"]) == (0, 2, 2), st

    listed = lambda_client.list_provisioned_concurrency_configs(FunctionName=name)
    [item] = listed["ProvisionedConcurrencyConfigs"]
    assert item["FunctionArn"].endswith(f":function:{name}:1")
    assert item["Status"] == "READY" and item["RequestedProvisionedConcurrentExecutions"] == 2

    lambda_client.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    with pytest.raises(lambda_client.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        lambda_client.get_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    assert lamina_status(endpoint, name, "1")["provisioned"] == 0
    assert (
        lambda_client.list_provisioned_concurrency_configs(FunctionName=name)[
            "ProvisionedConcurrencyConfigs"
        ]
        == []
    )


def test_provisioned_alias_and_refusals(
    lambda_client: Any, endpoint: str, create_function: CreateFunction
) -> None:
    name = probe_function(lambda_client, create_function)
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    errors = lambda_client.exceptions
    with pytest.raises(errors.InvalidParameterValueException, match="unpublished"):
        lambda_client.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="$LATEST", ProvisionedConcurrentExecutions=1
        )
    unchecked = client_for(endpoint, parameter_validation=False)  # boto3 refuses 0 itself
    with pytest.raises(errors.InvalidParameterValueException, match="greater than or equal"):
        unchecked.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=0
        )
    with pytest.raises(errors.ResourceNotFoundException):
        lambda_client.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="nope", ProvisionedConcurrentExecutions=1
        )
    with pytest.raises(errors.ProvisionedConcurrencyConfigNotFoundException):
        lambda_client.get_provisioned_concurrency_config(FunctionName=name, Qualifier="live")
    # Beyond the account: the unreserved pool may not fall below its floor.
    with pytest.raises(errors.InvalidParameterValueException, match="UnreservedConcurrent"):
        lambda_client.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=10_000
        )

    lambda_client.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1
    )
    wait_status(lambda_client, name, "live", "READY")
    # The version behind the alias cannot be provisioned a second time.
    with pytest.raises(errors.ResourceConflictException):
        lambda_client.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
        )
    resp, body = invoke_json(lambda_client, name, {}, Qualifier="live", LogType="Tail")
    assert no_init_duration(resp) and body["init_type"] == "provisioned-concurrency"

    # Beyond reserved concurrency.
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    with pytest.raises(errors.InvalidParameterValueException, match="reservedConcurrent"):
        lambda_client.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=2
        )
    lambda_client.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="live")


def test_failed_init_fails_the_configuration(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    cfg = create_function(
        zip_bytes=make_zip({"boom.py": "raise RuntimeError('boom at Init')\n"}),
        handler="boom.handler",
    )
    name = cfg["FunctionName"]
    lambda_client.publish_version(FunctionName=name)
    lambda_client.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
    )
    failed = wait_status(lambda_client, name, "1", "FAILED")
    assert failed["AvailableProvisionedConcurrentExecutions"] == 0
    assert "StatusReason" in failed
