"""The Linux sandbox's guarantees, each proven with a real function on a real server.

A test that needs a mechanism the host lacks skips, naming the guarantee the server reported
as not enforced (the server prints them at start-up; `lamina doctor` prints the same).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (
    CreateFunction,
    client_for,
    deploy,
    function_zip,
    invoke_json,
)
from tests.integration.lamina_process import LaminaProcess


def _guarantees(lamina: LaminaProcess) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lamina.output:
        if line.startswith("    ") and ": " in line:
            key, _, value = line.strip().partition(": ")
            out[key] = value
    return out


def need(lamina: LaminaProcess, *names: str) -> None:
    g = _guarantees(lamina)
    for name in names:
        state = g.get(name, "not reported")
        if not state.startswith(("enforced", "available")):
            pytest.skip(f"{name}: {state}")


def probe(create_function: CreateFunction, **kwargs: Any) -> str:
    kwargs.setdefault("Timeout", 30)
    cfg = create_function(
        zip_bytes=function_zip("sandbox_probe"), handler="sandbox_probe.handler", **kwargs
    )
    return str(cfg["FunctionName"])


def _processes_with(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(pid))
    return found


def _no_process_left(marker: str, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while _processes_with(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_host_data_and_other_environments_are_invisible(
    lamina: LaminaProcess, lambda_client: Any, create_function: CreateFunction
) -> None:
    need(lamina, "filesystem view")
    other = probe(create_function)
    secret = f"/tmp/secret-{uuid.uuid4().hex}"
    assert invoke_json(lambda_client, other, {"action": "write", "path": secret})[1] == "ok"
    sha = lambda_client.get_function(FunctionName=other)["Configuration"]["CodeSha256"]
    other_code = lamina.data_dir / "code" / base64.b64decode(sha).hex()
    assert (other_code / "sandbox_probe.py").exists()
    me = probe(create_function, Environment={"Variables": {"PROBE": "me"}})
    paths = [
        str(lamina.data_dir / "lamina.db"),
        str(lamina.data_dir),
        str(other_code / "sandbox_probe.py"),
        str(lamina.data_dir / "sandbox"),
        secret,
        "/etc/shadow",
        "/root/.bashrc",
    ]
    _, seen = invoke_json(lambda_client, me, {"action": "read", "paths": paths})
    assert [path for path, result in seen.items() if result == "ok"] == []
    # its own code is at /var/task, read-only
    _, own = invoke_json(lambda_client, me, {"action": "read", "paths": ["/var/task"]})
    assert own == {"/var/task": "ok"}
    _, wrote = invoke_json(lambda_client, me, {"action": "write", "path": "/var/task/x"})
    assert wrote in ("EROFS", "EACCES"), wrote


def test_own_pid_namespace(
    lamina: LaminaProcess, lambda_client: Any, create_function: CreateFunction
) -> None:
    need(lamina, "process isolation")
    _, ident = invoke_json(lambda_client, probe(create_function), {"action": "identity"})
    assert len(ident["pids"]) < 10, ident["pids"]  # only its own tree


def test_unprivileged_user_without_capabilities(
    lamina: LaminaProcess, lambda_client: Any, create_function: CreateFunction
) -> None:
    need(lamina, "unprivileged user")
    _, ident = invoke_json(lambda_client, probe(create_function), {"action": "identity"})
    assert ident["uid"] != 0 and ident["gid"] != 0
    assert ident["CapEff"] == "0000000000000000"
    assert ident["NoNewPrivs"] == "1"


def test_seccomp_refuses_ptrace_mount_namespaces_and_keyrings(
    lamina: LaminaProcess, lambda_client: Any, create_function: CreateFunction
) -> None:
    need(lamina, "seccomp filter")
    name = probe(create_function)
    assert invoke_json(lambda_client, name, {"action": "identity"})[1]["Seccomp"] == "2"
    _, calls = invoke_json(lambda_client, name, {"action": "syscalls"})
    assert calls == {"ptrace": "EPERM", "mount": "EPERM", "unshare": "EPERM", "keyctl": "EPERM"}


def test_allocation_past_memory_size_is_the_lambda_oom_result(
    lamina: LaminaProcess, lambda_client: Any, create_function: CreateFunction
) -> None:
    need(lamina, "memory limit")
    name = probe(create_function, MemorySize=128)
    resp, body = invoke_json(lambda_client, name, {"action": "alloc", "mb": 400}, LogType="Tail")
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert "Runtime exited with error: signal: killed" in body["errorMessage"]
    log = base64.b64decode(resp["LogResult"]).decode()
    assert "Runtime.OutOfMemory" in log, log
    assert "Max Memory Used: 12" in log or "Max Memory Used: 13" in log, log
    resp, body = invoke_json(lambda_client, name, {"action": "alloc", "mb": 16})
    assert "FunctionError" not in resp and body == 16


def test_tmp_is_sized_by_ephemeral_storage_and_not_by_memory(
    lamina: LaminaProcess, lambda_client: Any, create_function: CreateFunction
) -> None:
    need(lamina, "ephemeral storage", "memory limit")
    if "separate from memory" not in _guarantees(lamina)["ephemeral storage"]:
        pytest.skip("/tmp counts against memory on this host")
    name = probe(create_function, MemorySize=128, EphemeralStorage={"Size": 512}, Timeout=60)
    _, first = invoke_json(lambda_client, name, {"action": "fill", "path": "/tmp/a", "mb": 400})
    assert first == {"written_mb": 400, "error": None}
    _, more = invoke_json(lambda_client, name, {"action": "fill", "path": "/tmp/b", "mb": 200})
    assert more["error"] == "ENOSPC"
    assert first["written_mb"] + more["written_mb"] <= 512


def test_background_thread_does_not_run_while_frozen(
    lamina: LaminaProcess, lambda_client: Any, create_function: CreateFunction
) -> None:
    need(lamina, "freeze between invocations")
    name = probe(create_function)
    _, first = invoke_json(lambda_client, name, {"action": "counter"})
    time.sleep(1.0)  # unfrozen, the thread would count about 200 here
    _, second = invoke_json(lambda_client, name, {"action": "counter", "sleep": 0.3})
    assert second["at_start"] - first["at_start"] < 60, (first, second)
    assert second["during"] > 0  # thawed: it runs again during the invocation


def test_idle_environment_runs_on_for_the_freeze_delay_then_stops(
    lamina: LaminaProcess, tmp_path: Path
) -> None:
    """Environments in steady use are not frozen between calls; one idle for longer than the
    freeze delay is: its background thread runs during the delay and not after it."""
    need(lamina, "freeze between invocations")
    server = LaminaProcess(tmp_path / "data", "--freeze-delay", "0.5")
    server.start()
    try:
        client = client_for(server.endpoint)
        deploy(
            client,
            "frozen-later",
            "sandbox_probe",
            Timeout=30,
        )
        _, first = invoke_json(client, "frozen-later", {"action": "counter"})
        time.sleep(2.0)  # unfrozen, the thread would count about 400 here
        _, second = invoke_json(client, "frozen-later", {"action": "counter"})
        ran = second["at_start"] - first["at_start"]
        assert 10 < ran < 160, (first, second)  # about 100 in the 0.5 s delay, none after
    finally:
        server.stop()


def test_isolated_network_reaches_only_the_runtime_api(
    lamina: LaminaProcess, lambda_client: Any, create_function: CreateFunction
) -> None:
    need(lamina, "isolated network mode")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        host_net = probe(create_function)
        assert invoke_json(lambda_client, host_net, {"action": "connect", "port": port})[1] == (
            "connected"
        )
        isolated = probe(create_function, Environment={"Variables": {"LAMINA_NETWORK": "isolated"}})
        resp, result = invoke_json(lambda_client, isolated, {"action": "connect", "port": port})
        assert "FunctionError" not in resp
        assert result in ("ECONNREFUSED", "ENETUNREACH"), result
        # the Runtime API keeps working across warm invocations
        assert "uid" in invoke_json(lambda_client, isolated, {"action": "identity"})[1]


def test_timeout_leaves_no_process_behind(
    lamina: LaminaProcess, lambda_client: Any, create_function: CreateFunction
) -> None:
    need(lamina, "timeout kill")
    marker = f"{4000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**9}"
    name = probe(create_function, Timeout=2)
    _, body = invoke_json(lambda_client, name, {"action": "daemon", "marker": marker})
    assert body["errorType"] == "Sandbox.Timedout"
    assert _no_process_left(marker), f"a sleep {marker} survived"


def test_fork_bomb_is_contained_and_the_server_keeps_serving(
    lamina: LaminaProcess, lambda_client: Any, create_function: CreateFunction
) -> None:
    need(lamina, "pids limit", "timeout kill")
    bomb = probe(create_function, Timeout=3)
    healthy = probe(create_function)
    resp, body = invoke_json(lambda_client, bomb, {"action": "forkbomb"})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] in ("Sandbox.Timedout", "Runtime.ExitError"), body
    resp, ident = invoke_json(lambda_client, healthy, {"action": "identity"})
    assert "FunctionError" not in resp and "uid" in ident
    assert lambda_client.list_functions()["Functions"]


def test_memory_limit_and_cpu_share_follow_memory_size(
    lamina: LaminaProcess, lambda_client: Any, create_function: CreateFunction
) -> None:
    """The values written to the environments' cgroups (no timing: the host is shared)."""
    need(lamina, "memory limit", "cpu share")
    small = probe(create_function, MemorySize=128)
    large = probe(create_function, MemorySize=1769)
    for name in (small, large):
        invoke_json(lambda_client, name, {"action": "identity"})  # warm: its groups exist
    assert lamina.proc is not None
    server = f"lamina-{lamina.proc.pid}"
    limits: set[int] = set()
    shares: set[int] = set()
    for base in Path("/sys/fs/cgroup").rglob(server):
        for env in base.glob("env-*"):
            for file, into in (
                ("memory.limit_in_bytes", limits),
                ("memory.max", limits),
                ("cpu.shares", shares),
                ("cpu.weight", shares),
            ):
                with contextlib.suppress(OSError, ValueError):
                    into.add(int((env / file).read_text()))
    mb = 1024 * 1024
    assert {128 * mb, 1769 * mb} <= limits
    assert {74, 1024} <= shares or {7, 100} <= shares, shares
    # A template (Init once per version, then only forks) gets the whole host's share, so that
    # its Init and, in a burst, its forks do not wait behind everything else.
    with urllib.request.urlopen(f"{lamina.endpoint}/lamina/status?FunctionName={small}") as r:
        if json.loads(r.read())["Functions"][0]["templates"]:
            cpus = os.cpu_count() or 1
            assert 1024 * cpus in shares or 100 * cpus in shares, shares
    # The server's own group weighs what its environments together are entitled to (at least
    # one ordinary process), not one process for all of them.
    base_shares = [
        (file, int((base / file).read_text()))
        for base in Path("/sys/fs/cgroup").rglob(server)
        for file in ("cpu.shares", "cpu.weight")
        if (base / file).exists()
    ]
    default = {"cpu.shares": 1024, "cpu.weight": 100}
    assert base_shares and all(v > default[f] for f, v in base_shares), base_shares
