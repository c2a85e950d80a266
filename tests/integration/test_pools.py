"""Pool behaviour seen through GET /lamina/status: warm reuse, scale-out, counters, throttles, and
memory pressure (idle environments evicted first, then a clear throttle rather than thrashing)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (
    CreateFunction,
    client_for,
    deploy,
    invoke_json,
    probe_function,
)
from tests.integration.lamina_process import LaminaProcess


def call(endpoint: str, method: str, path: str) -> dict[str, Any]:
    req = urllib.request.Request(f"{endpoint}{path}", method=method)
    with urllib.request.urlopen(req) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
    return doc


def version_status(endpoint: str, name: str) -> dict[str, Any]:
    [found] = call(endpoint, "GET", f"/lamina/status?FunctionName={name}")["Functions"]
    return found


def test_scale_out_and_warm_reuse_are_counted(
    lambda_client: Any, endpoint: str, create_function: CreateFunction
) -> None:
    name = probe_function(create_function)
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: invoke_json(lambda_client, name, {"sleep": 1.0}), range(3)))
    st = version_status(endpoint, name)
    assert (st["environments"], st["cold_starts"], st["invocations"]) == (3, 3, 3), st
    _, body = invoke_json(lambda_client, name, {})
    _, again = invoke_json(lambda_client, name, {})
    assert body["stream"] == again["stream"], "the most recently used environment is reused"
    st = version_status(endpoint, name)
    assert (st["environments"], st["warm_starts"], st["invocations"]) == (3, 2, 5), st
    deadline = time.monotonic() + 30  # the spare forked after the scale-out (no later change)
    while version_status(endpoint, name)["spares"] != 1:
        assert time.monotonic() < deadline, version_status(endpoint, name)
        time.sleep(0.05)
    out = subprocess.run(
        [sys.executable, "-m", "lamina", "status", "--endpoint", endpoint],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    [row] = [line.split() for line in out.splitlines() if line.startswith(f"{name}:$LATEST")]
    header = next(line.split() for line in out.splitlines() if line.startswith("FUNCTION"))
    assert header[-1] == "SPARE" and row[-1] == "1", out
    assert row[1:8] == ["3", "0", "3", "0", "5", "3", "3"], (
        out
    )  # envs busy idle prov invokes cold forked
    assert call(endpoint, "POST", f"/lamina/drain?FunctionName={name}")["Stopped"] == 3
    assert version_status(endpoint, name)["environments"] == 0


def test_throttles_are_counted(
    lambda_client: Any, endpoint: str, create_function: CreateFunction
) -> None:
    name = probe_function(create_function)
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(lambda_client.exceptions.TooManyRequestsException):
        invoke_json(lambda_client, name, {})
    assert version_status(endpoint, name)["throttles"] == 1


def test_memory_pressure_evicts_idle_environments_then_throttles(
    lambda_client: Any, endpoint: str, create_function: CreateFunction
) -> None:
    idle_fn = probe_function(create_function)
    new_fn = probe_function(create_function)
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


def test_spares_follow_the_setting_and_go_first_under_memory_pressure(tmp_path: Path) -> None:
    """--spare-environments 2 keeps two spares of a version that scaled out from its template,
    0 keeps none; under memory pressure spares are stopped before idle environments, and are not
    counted as evicted environments."""
    server = LaminaProcess(tmp_path / "data", "--spare-environments", "2")
    off = LaminaProcess(tmp_path / "data-off", "--spare-environments", "0")
    server.start()
    off.start()
    try:
        for proc, spares in ((server, 2), (off, 0)):
            client = client_for(proc.endpoint)
            deploy(client, "spared", "snapshot_probe")
            invoke_json(client, "spared", {})
            deadline = time.monotonic() + 30
            while version_status(proc.endpoint, "spared")["spares"] != spares:
                assert time.monotonic() < deadline, version_status(proc.endpoint, "spared")
                time.sleep(0.05)
            time.sleep(0.5)  # no more than that are made
            st = version_status(proc.endpoint, "spared")
            assert (st["spares"], st["environments"], st["idle"]) == (spares, 1, 1), st
        client = client_for(server.endpoint)
        deploy(client, "other", "snapshot_probe")
        host = call(server.endpoint, "GET", "/lamina/status")["Host"]
        call(server.endpoint, "POST", f"/lamina/memory-floor?MB={host['AvailableMemoryMB'] * 4}")
        with pytest.raises(client.exceptions.TooManyRequestsException):
            invoke_json(client, "other", {})
        st = version_status(server.endpoint, "spared")
        # the spares went, and the idle environment: only the latter counts as an eviction
        assert (st["spares"], st["environments"], st["evictions"]) == (0, 0, 1), st
    finally:
        server.stop()
        off.stop()
