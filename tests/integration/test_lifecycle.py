"""Environment lifecycle: init once, warm reuse, timeouts, scale-out, throttling, expiry, shutdown."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import (
    FUNCTIONS,
    ROLE,
    CreateFunction,
    client_for,
    deploy,
    invoke_json,
    make_zip,
)
from tests.integration.lamina_process import LaminaProcess


def alive(pid: int) -> bool:
    """Whether the host pid is a live (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def environment_pids(stream: str) -> set[int]:
    """Host pids of every live process of one environment, found by the log stream name each
    inherits in its environment (inside a PID namespace the function's own pid means nothing
    on the host)."""
    needle = f"\0AWS_LAMBDA_LOG_STREAM_NAME={stream}\0".encode()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = b"\0" + f.read()
        except OSError:
            continue
        if needle in environ and alive(int(entry)):
            found.add(int(entry))
    return found


def wait_until(check: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def log_of(resp: dict[str, Any]) -> str:
    return base64.b64decode(resp["LogResult"]).decode()


def throttle_reason(call: Callable[[], Any]) -> str | None:
    try:
        call()
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "TooManyRequestsException"
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        return str(exc.response["Reason"])
    return None


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Callable[..., LaminaProcess]]:
    """Start a private server with extra flags; stopped afterwards."""
    started: list[LaminaProcess] = []

    def start(*args: str) -> LaminaProcess:
        server = LaminaProcess(tmp_path / f"data{len(started)}", *args)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


def create_on(client: Any, name: str, module: str = "lifecycle", **kwargs: Any) -> None:
    deploy(client, name, module, **kwargs)


def test_init_once_and_warm_state(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function("lifecycle")["FunctionName"]
    r1, first = invoke_json(lambda_client, name, {"write": "kept"}, LogType="Tail")
    r2, second = invoke_json(lambda_client, name, {}, LogType="Tail")
    r3, third = invoke_json(lambda_client, name, {"cleanup": True}, LogType="Tail")
    assert first["stream"] == second["stream"] == third["stream"]
    assert first["pid"] == second["pid"] == third["pid"]
    assert [first["inits"], second["inits"], third["inits"]] == [1, 1, 1]
    assert [first["calls"], second["calls"], third["calls"]] == [1, 2, 3]
    assert second["found"] == "kept" and third["found"] == "kept"
    assert "Init Duration" in log_of(r1)
    assert "Init Duration" not in log_of(r2) and "Init Duration" not in log_of(r3)


def test_timeout(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function("lifecycle", Timeout=1)["FunctionName"]
    _, before = invoke_json(lambda_client, name, {})
    started = time.monotonic()
    resp, body = invoke_json(lambda_client, name, {"sleep": 5}, LogType="Tail")
    elapsed = time.monotonic() - started
    rid = resp["ResponseMetadata"]["RequestId"]
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    assert body == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {rid} Error: Task timed out after 1.00 seconds",
    }
    assert elapsed < 4.8  # not the handler's 5 s
    log = log_of(resp)
    assert f"{rid} Task timed out after 1.00 seconds" in log
    assert "Status: timeout" in log.splitlines()[-1]
    assert wait_until(lambda: not environment_pids(before["stream"]))
    resp, after = invoke_json(lambda_client, name, {}, LogType="Tail")
    assert "FunctionError" not in resp
    assert after["stream"] != before["stream"] and after["calls"] == 1
    assert "Init Duration" in log_of(resp)


def test_concurrent_invokes_scale_out(
    lambda_client: Any, create_function: CreateFunction, endpoint: str
) -> None:
    name = create_function("lifecycle")["FunctionName"]
    client = client_for(endpoint, max_pool_connections=10)
    started = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: invoke_json(client, name, {"sleep": 1})[1], range(6)))
    elapsed = time.monotonic() - started
    assert len({r["stream"] for r in results}) == 6
    assert all(r["calls"] == 1 for r in results)
    assert elapsed < 5.0, elapsed


def hold_slots(client: Any, name: str, count: int, sleep_s: float = 3) -> list[Any]:
    """Start `count` calls that sleep; return their futures once all of them are running.

    Each call connects to a socket of the test's when its handler starts, whatever sandbox
    the environment is in (the host network is shared by default).
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)
    port = listener.getsockname()[1]
    pool = ThreadPoolExecutor(count)
    futures = [
        pool.submit(invoke_json, client, name, {"sleep": sleep_s, "notify": port})
        for _ in range(count)
    ]
    pool.shutdown(wait=False)
    with listener:
        for _ in range(count):
            listener.accept()[0].close()
    return futures


def test_reserved_concurrency(
    lambda_client: Any, create_function: CreateFunction, endpoint: str, tmp_path: Path
) -> None:
    name = create_function("lifecycle", Timeout=30)["FunctionName"]
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    slow = hold_slots(lambda_client, name, 1)
    reason = throttle_reason(lambda: invoke_json(client_for(endpoint), name, {}))
    assert "FunctionError" not in slow[0].result()[0]
    assert reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
    # Once it is done, calls go through again.
    assert "FunctionError" not in invoke_json(lambda_client, name, {})[0]

    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    for _ in range(2):
        assert (
            throttle_reason(lambda: invoke_json(lambda_client, name, {}))
            == "ReservedFunctionConcurrentInvocationLimitExceeded"
        )
    lambda_client.delete_function_concurrency(FunctionName=name)
    assert "FunctionError" not in invoke_json(lambda_client, name, {})[0]


def test_account_concurrency_limit(
    own_server: Callable[..., LaminaProcess], tmp_path: Path
) -> None:
    server = own_server("--account-concurrency", "2", "--min-unreserved-concurrency", "0")
    client = client_for(server.endpoint, max_pool_connections=10)
    create_on(client, "limited", Timeout=30)
    slow = hold_slots(client, "limited", 2)
    reason = throttle_reason(lambda: invoke_json(client, "limited", {}))
    for f in slow:
        assert "FunctionError" not in f.result()[0]
    assert reason == "ConcurrentInvocationLimitExceeded"


def test_idle_environments_stop(own_server: Callable[..., LaminaProcess]) -> None:
    server = own_server("--idle-timeout", "1")
    client = client_for(server.endpoint)
    create_on(client, "idler")
    _, body = invoke_json(client, "idler", {})
    assert environment_pids(body["stream"])
    assert wait_until(lambda: not environment_pids(body["stream"]), timeout_s=30)
    _, again = invoke_json(client, "idler", {})
    assert again["stream"] != body["stream"] and again["calls"] == 1


def test_updates_retire_environments(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function("lifecycle", Environment={"Variables": {"SETTING": "one"}})[
        "FunctionName"
    ]
    waiter = lambda_client.get_waiter("function_updated_v2")
    _, first = invoke_json(lambda_client, name, {})
    assert first["setting"] == "one" and first["code"] == "v1"

    lambda_client.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"SETTING": "two"}}
    )
    waiter.wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    _, second = invoke_json(lambda_client, name, {})
    assert second["setting"] == "two" and second["stream"] != first["stream"]
    assert wait_until(lambda: not environment_pids(first["stream"]))

    source = (FUNCTIONS / "lifecycle.py").read_text().replace('CODE = "v1"', 'CODE = "v2"')
    lambda_client.update_function_code(
        FunctionName=name, ZipFile=make_zip({"lifecycle.py": source})
    )
    waiter.wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    _, third = invoke_json(lambda_client, name, {})
    assert third["code"] == "v2" and third["stream"] != second["stream"]
    assert wait_until(lambda: not environment_pids(second["stream"]))


def test_delete_stops_environments(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function("lifecycle")["FunctionName"]
    _, body = invoke_json(lambda_client, name, {})
    assert environment_pids(body["stream"])
    lambda_client.delete_function(FunctionName=name)
    assert wait_until(lambda: not environment_pids(body["stream"]))


def test_runtime_exiting_while_idle(lambda_client: Any, create_function: CreateFunction) -> None:
    """A runtime killed from outside between calls is replaced, and the call still succeeds."""
    name = create_function("lifecycle")["FunctionName"]
    _, body = invoke_json(lambda_client, name, {})
    for pid in environment_pids(body["stream"]):
        with contextlib.suppress(ProcessLookupError):  # gone with an earlier one
            os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not environment_pids(body["stream"]))
    resp, again = invoke_json(lambda_client, name, {})
    assert "FunctionError" not in resp
    assert again["stream"] != body["stream"] and again["calls"] == 1


# A custom runtime that answers an invocation and then, when asked to, exits after a pause
# without fetching the next event: an invocation handed to it in that pause is never received.
EXITING_RUNTIME = """#!/bin/sh
exec python3 -I -S - <<'EOF'
import http.client, json, os, sys, time

conn = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    resp = conn.getresponse()
    event = json.loads(resp.read())
    rid = resp.getheader("Lambda-Runtime-Aws-Request-Id")
    body = {"stream": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"], "pid": os.getpid()}
    conn.request("POST", f"/2018-06-01/runtime/invocation/{rid}/response", json.dumps(body))
    conn.getresponse().read()
    if event.get("exit_after"):
        time.sleep(event["exit_after"])
        sys.exit(0)
EOF
"""


def test_invocation_never_received_runs_in_another_environment(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    """An environment that dies before its runtime fetched the event (here: the runtime exits a
    second after answering, without asking for more) hands the invocation to a new one: the
    caller gets the function's answer, never a Runtime.ExitError for a call it did not run."""
    code = make_zip({"bootstrap": EXITING_RUNTIME}, executable=("bootstrap",))
    name = create_function(zip_bytes=code, handler="x", runtime="provided.al2023")["FunctionName"]
    for _ in range(2):
        _, first = invoke_json(lambda_client, name, {"exit_after": 1.0})
        # Sent at once: the first environment is idle, alive, and will exit without taking it.
        started = time.monotonic()
        resp, second = invoke_json(lambda_client, name, {}, LogType="Tail")
        assert "FunctionError" not in resp, second
        assert second["stream"] != first["stream"]
        assert "Init Duration" in log_of(resp)  # it ran in a new environment
        assert time.monotonic() - started >= 0.5  # it waited for the first one to exit


# A custom runtime whose second `/next` gives up after 0.3 s (its own client timeout), then
# asks again on a new connection two seconds later.
RECONNECTING_RUNTIME = """#!/bin/sh
exec python3 -I -S - <<'EOF'
import http.client, json, os, socket, time

api = os.environ["AWS_LAMBDA_RUNTIME_API"]
calls = 0
while True:
    conn = http.client.HTTPConnection(api, timeout=0.3 if calls == 1 else None)
    try:
        conn.request("GET", "/2018-06-01/runtime/invocation/next")
        resp = conn.getresponse()
    except (socket.timeout, TimeoutError):
        conn.close()
        time.sleep(2.0)
        calls += 1
        continue
    resp.read()
    rid = resp.getheader("Lambda-Runtime-Aws-Request-Id")
    calls += 1
    conn.request("POST", f"/2018-06-01/runtime/invocation/{rid}/response", json.dumps(calls))
    conn.getresponse().read()
    conn.close()
EOF
"""


def test_event_for_a_runtime_that_hung_up_waits_for_its_next_request(
    own_server: Callable[..., LaminaProcess],
) -> None:
    """A runtime that gave up waiting for its next event and asks again on a new connection
    gets the invocation that came in between (it is not written to the closed connection)."""
    server = own_server("--freeze-delay", "30")  # not frozen while its client timeout runs
    client = client_for(server.endpoint)
    code = make_zip({"bootstrap": RECONNECTING_RUNTIME}, executable=("bootstrap",))
    client.create_function(
        FunctionName="reconnects",
        Runtime="provided.al2023",
        Role=ROLE,
        Handler="x",
        Code={"ZipFile": code},
        Timeout=10,
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName="reconnects", WaiterConfig={"Delay": 0.1}
    )
    assert invoke_json(client, "reconnects", {})[1] == 1
    time.sleep(0.8)  # its second `/next` has timed out; it asks again in about 1.5 s
    started = time.monotonic()
    resp, body = invoke_json(client, "reconnects", {})
    assert "FunctionError" not in resp, body
    assert body == 3 and time.monotonic() - started < 5


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_leaves_nothing_running(
    own_server: Callable[..., LaminaProcess], sig: signal.Signals
) -> None:
    server = own_server()
    client = client_for(server.endpoint, max_pool_connections=10)
    create_on(client, "spawner")
    create_on(client, "other", module="echo")
    with ThreadPoolExecutor(2) as pool:
        bodies = list(
            pool.map(lambda _: invoke_json(client, "spawner", {"spawn": True})[1], [0, 1])
        )
    _, other = invoke_json(client, "other", {})
    streams = [other["log_stream_name"], *(body["stream"] for body in bodies)]
    pids = set().union(*(environment_pids(s) for s in streams))
    # Each spawner environment has its runtime and its `sleep 300` grandchild at least.
    assert all(len(environment_pids(s)) >= 2 for s in streams[1:])
    assert all(body["children"] for body in bodies)
    assert server.stop(sig) == 0
    assert wait_until(lambda: not any(alive(p) for p in pids), timeout_s=10), [
        p for p in pids if alive(p)
    ]
