"""Pool behaviour seen through GET /lamina/status: warm reuse, scale-out, counters, throttles, and
memory pressure (idle environments evicted first, then a clear throttle rather than thrashing)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.integration.conftest import CreateFunction, function_zip, invoke_json


def call(endpoint: str, method: str, path: str) -> dict[str, Any]:
    req = urllib.request.Request(f"{endpoint}{path}", method=method)
    with urllib.request.urlopen(req) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
    return doc


def version_status(endpoint: str, name: str) -> dict[str, Any]:
    [found] = call(endpoint, "GET", f"/lamina/status?FunctionName={name}")["Functions"]
    return found


def make(create_function: CreateFunction, **kwargs: Any) -> str:
    cfg = create_function(
        zip_bytes=function_zip("snapshot_probe"), handler="snapshot_probe.handler", **kwargs
    )
    return str(cfg["FunctionName"])


def test_scale_out_and_warm_reuse_are_counted(
    lambda_client: Any, endpoint: str, create_function: CreateFunction
) -> None:
    name = make(create_function)
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: invoke_json(lambda_client, name, {"sleep": 1.0}), range(3)))
    st = version_status(endpoint, name)
    assert (st["environments"], st["cold_starts"], st["invocations"]) == (3, 3, 3), st
    _, body = invoke_json(lambda_client, name, {})
    _, again = invoke_json(lambda_client, name, {})
    assert body["stream"] == again["stream"], "the most recently used environment is reused"
    st = version_status(endpoint, name)
    assert (st["environments"], st["warm_starts"], st["invocations"]) == (3, 2, 5), st
    out = subprocess.run(
        [sys.executable, "-m", "lamina", "status", "--endpoint", endpoint],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    [row] = [line.split() for line in out.splitlines() if line.startswith(f"{name}:$LATEST")]
    assert row[1:8] == ["3", "0", "3", "0", "5", "3", "3"], (
        out
    )  # envs busy idle prov invokes cold forked
    assert call(endpoint, "POST", f"/lamina/drain?FunctionName={name}")["Stopped"] == 3
    assert version_status(endpoint, name)["environments"] == 0


def test_throttles_are_counted(
    lambda_client: Any, endpoint: str, create_function: CreateFunction
) -> None:
    name = make(create_function)
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(lambda_client.exceptions.TooManyRequestsException):
        invoke_json(lambda_client, name, {})
    assert version_status(endpoint, name)["throttles"] == 1


def test_memory_pressure_evicts_idle_environments_then_throttles(
    lambda_client: Any, endpoint: str, create_function: CreateFunction
) -> None:
    idle_fn = make(create_function)
    new_fn = make(create_function)
    invoke_json(lambda_client, idle_fn, {})
    assert version_status(endpoint, idle_fn)["idle"] == 1
    host = call(endpoint, "GET", "/lamina/status")["Host"]
    old_floor = host["MinAvailableMemoryMB"]
    # An artificially high floor: the host is "short of memory" whatever it has.
    call(endpoint, "POST", f"/lamina/memory-floor?MB={host['AvailableMemoryMB'] + 1_000_000}")
    try:
        with pytest.raises(lambda_client.exceptions.TooManyRequestsException) as raised:
            invoke_json(lambda_client, new_fn, {})
        err = raised.value.response
        assert err["Reason"] == "ConcurrentInvocationLimitExceeded"
        assert "memory available" in err["Error"]["Message"]
        assert version_status(endpoint, idle_fn)["environments"] == 0, "idle evicted first"
        assert version_status(endpoint, idle_fn)["evictions"] == 1
        assert version_status(endpoint, new_fn)["throttles"] == 1
    finally:
        call(endpoint, "POST", f"/lamina/memory-floor?MB={old_floor}")
    _, body = invoke_json(lambda_client, new_fn, {})
    assert body["token"]
