"""Snapshot starts: environments forked from a function version's initialised template.

Each forked environment must behave as its own environment (own /tmp, own PID view under the
Linux sandboxes, own request ids and random state, the same uid/seccomp/no_new_privs as a plain
start) while the function's Init ran once (module-level values are shared, hooks ran); a
function that opts out, or cannot be forked (a thread at Init), starts plainly.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.integration.conftest import CreateFunction, client_for, invoke_json, probe_function

REAPER = "lamina/runtime/bootstrap/python/lib/_lamina_reaper"


def status(endpoint: str, name: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{endpoint}/lamina/status?FunctionName={name}") as resp:
        doc: dict[str, Any] = json.loads(resp.read())
    return doc


def concurrently(
    client: Any, name: str, n: int, sleep: float = 1.5
) -> list[tuple[dict[str, Any], Any]]:
    """n invocations at once, each held long enough that every one needs its own environment."""
    with ThreadPoolExecutor(n) as pool:
        futures = [
            pool.submit(invoke_json, client, name, {"sleep": sleep}, LogType="Tail")
            for _ in range(n)
        ]
        return [f.result() for f in futures]


def sandbox_name(endpoint: str, name: str) -> str:
    return str(status(endpoint, name)["Sandbox"])


def test_forked_environments_are_separate_but_init_ran_once(
    lambda_client: Any, endpoint: str, create_function: CreateFunction
) -> None:
    name = probe_function(create_function)
    results = concurrently(lambda_client, name, 3)
    bodies = [body for _, body in results]
    streams = {b["stream"] for b in bodies}
    assert len(streams) == 3, "three environments"
    # Init ran once, in the template: the module-level token is the same everywhere.
    assert len({b["token"] for b in bodies}) == 1
    assert all(b["hooks"] == ["before", "after"] for b in bodies)
    # As on Lambda without SnapStart configured: the function asked for nothing special.
    assert all(b["init_type"] == "on-demand" for b in bodies)
    # What must differ per environment.
    assert len({b["request_id"] for b in bodies}) == 3
    assert len({b["random"] for b in bodies}) == 3
    sandbox = sandbox_name(endpoint, name)
    if sandbox != "process":
        for b in bodies:  # its own /tmp: only its own marker
            assert b["tmp"] == [f"mark-{b['request_id']}"], b
            assert b["proc"] == [1, 2], b  # its own PID namespace: its init and itself
    else:
        assert len({b["pid"] for b in bodies}) == 3
    if sandbox.startswith("linux (bwrap"):
        for b in bodies:  # the same confinement as a plain start
            assert b["uid"] == 990 and b["no_new_privs"] == "1" and b["seccomp"] == "2", b
            assert b["cap_eff"] == "0000000000000000", b
    # Each environment's log opens with the template's Init output and reports an Init Duration.
    for resp, _ in results:
        tail = base64.b64decode(resp["LogResult"]).decode()
        assert f"init ran {bodies[0]['token']}" in tail
        assert "Init Duration" in tail
    st = status(endpoint, name)["Functions"][0]
    assert st["snapshot_starts"] >= 3 and st["templates"] == 1, st
    assert st["template_refusals"] == {}
    # A warm call after that: no Init Duration, the same environment's state.
    resp, body = invoke_json(lambda_client, name, {}, LogType="Tail")
    assert "Init Duration" not in base64.b64decode(resp["LogResult"]).decode()
    assert body["stream"] in streams


def test_opting_out_starts_each_environment_plainly(
    lambda_client: Any, endpoint: str, create_function: CreateFunction
) -> None:
    name = probe_function(
        create_function, Environment={"Variables": {"LAMINA_SNAPSHOT_START": "off"}}
    )
    bodies = [body for _, body in concurrently(lambda_client, name, 2)]
    assert len({b["token"] for b in bodies}) == 2, "Init ran in each environment"
    assert all(b["init_type"] == "on-demand" and b["hooks"] == [] for b in bodies)
    st = status(endpoint, name)["Functions"][0]
    assert st["snapshot_starts"] == 0 and st["cold_starts"] == 2, st


def test_a_thread_running_after_init_means_no_template(
    lambda_client: Any, endpoint: str, create_function: CreateFunction
) -> None:
    name = probe_function(create_function, Environment={"Variables": {"PROBE_THREAD": "1"}})
    bodies = [body for _, body in concurrently(lambda_client, name, 2)]
    assert len({b["token"] for b in bodies}) == 2
    st = status(endpoint, name)["Functions"][0]
    assert st["snapshot_starts"] == 0
    assert any("thread" in why for why in st["template_refusals"].values()), st


def test_a_burst_forks_every_environment_from_one_template(
    lambda_client: Any, endpoint: str, create_function: CreateFunction
) -> None:
    name = probe_function(create_function, Timeout=60)
    client = client_for(endpoint, max_pool_connections=20)
    bodies = [body for _, body in concurrently(client, name, 20, sleep=2.0)]
    assert len({b["stream"] for b in bodies}) == 20
    st = status(endpoint, name)["Functions"][0]
    assert (st["environments"], st["templates"], st["template_refusals"]) == (20, 1, {}), st
    if sandbox_name(endpoint, name) != "process":
        assert st["snapshot_starts"] == 20, st


def test_busy_forked_environment_survives_its_templates_retirement(
    lambda_client: Any, endpoint: str, create_function: CreateFunction
) -> None:
    name = probe_function(create_function, Timeout=60)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(invoke_json, lambda_client, name, {"sleep": 3.0})
        deadline = time.monotonic() + 30
        while not any(f["busy"] for f in status(endpoint, name)["Functions"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # A configuration change retires the version's template and environments...
        lambda_client.update_function_configuration(
            FunctionName=name, Environment={"Variables": {"CHANGED": "1"}}
        )
        resp, body = slow.result()
    # ...but the busy one (inside the template's PID namespace) finishes its invocation.
    assert "FunctionError" not in resp and body["token"], (resp, body)


def test_forked_environments_first_process_is_small_and_reaps_orphans(
    lambda_client: Any, endpoint: str, create_function: CreateFunction
) -> None:
    name = probe_function(create_function)
    invoke_json(lambda_client, name, {})
    post = urllib.request.Request(f"{endpoint}/lamina/drain?FunctionName={name}", method="POST")
    urllib.request.urlopen(post).close()
    forks = status(endpoint, name)["Functions"][0]["snapshot_starts"]
    resp, body = invoke_json(lambda_client, name, {"orphan": True}, LogType="Tail")
    assert "FunctionError" not in resp, body
    assert status(endpoint, name)["Functions"][0]["snapshot_starts"] == forks + 1
    assert "Init Duration" in base64.b64decode(resp["LogResult"]).decode()
    if sandbox_name(endpoint, name) == "process":
        return
    # The orphaned grandchild was reaped by the environment's pid 1, which is the small C
    # reaper where scripts/build-reaper could build it (the Python keeper otherwise).
    assert body["zombies"] == [] and body["proc"] == [1, 2], body
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    if os.access(os.path.join(root, REAPER), os.X_OK):
        assert body["init"] == "_lamina_reaper", body
    # It reports how the runtime ended: a crash is reported as for a plain start.
    resp, body = invoke_json(lambda_client, name, {"exit": 3})
    assert resp["FunctionError"] == "Unhandled", body
    assert "Runtime exited with error: exit status 3" in body["errorMessage"], body


def wait_status(endpoint: str, name: str, field: str, value: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        st: dict[str, Any] = status(endpoint, name)["Functions"][0]
        if st[field] == value:
            return st
        assert time.monotonic() < deadline, st
        time.sleep(0.05)


def test_a_spare_environment_is_forked_ahead_of_the_next_scale_out(
    lambda_client: Any, endpoint: str, create_function: CreateFunction
) -> None:
    name = probe_function(create_function)
    _, first = invoke_json(lambda_client, name, {})
    # After a scale-out from the template, one more environment is initialised ahead of need;
    # it is shown as a spare, not among the environments.
    st = wait_status(endpoint, name, "spares", 1)
    assert st["environments"] == 1, st
    post = urllib.request.Request(f"{endpoint}/lamina/drain?FunctionName={name}", method="POST")
    urllib.request.urlopen(post).close()
    resp, body = invoke_json(lambda_client, name, {}, LogType="Tail")
    # From the function's point of view a cold start: its own environment, Init reported.
    log = base64.b64decode(resp["LogResult"]).decode()
    assert "FunctionError" not in resp, body
    assert body["stream"] != first["stream"] and body["init_type"] == "on-demand"
    assert "Init Duration" in log and f"init ran {body['token']}" in log, log
    if sandbox_name(endpoint, name) != "process":
        assert body["tmp"] == [f"mark-{body['request_id']}"] and body["proc"] == [1, 2], body
    st = status(endpoint, name)["Functions"][0]
    assert (st["cold_starts"], st["snapshot_starts"], st["environments"]) == (2, 2, 1), st
    # Its next call is warm; and another spare is forked behind it.
    resp, again = invoke_json(lambda_client, name, {}, LogType="Tail")
    assert "Init Duration" not in base64.b64decode(resp["LogResult"]).decode()
    assert again["stream"] == body["stream"]
    wait_status(endpoint, name, "spares", 1)
