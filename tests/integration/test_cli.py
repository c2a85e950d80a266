"""The `lamina` command against a running server, as a user types it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import make_zip

LAMINA = [sys.executable, "-m", "lamina"]

APP_V1 = (
    "import socket, time\n"
    "def handler(event, context):\n"
    "    print('v1 got', event)\n"
    "    if isinstance(event, dict) and 'notify' in event:\n"
    "        socket.create_connection(('127.0.0.1', event['notify']), timeout=10).close()\n"
    "    time.sleep(event.get('sleep', 0) if isinstance(event, dict) else 0)\n"
    "    return {'v': 1, 'event': event}\n"
)
APP_V2 = "def handler(event, context):\n    return {'v': 2, 'event': event}\n"
FAILING = "def handler(event, context):\n    raise ValueError('it broke')\n"

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def lamina_cli(endpoint: str) -> Run:
    def run(*args: str, check: bool = True, env_endpoint: str | None = None) -> Any:
        env = {**os.environ, "LAMINA_ENDPOINT": env_endpoint or endpoint}
        proc = subprocess.run(
            [*LAMINA, *args], capture_output=True, text=True, env=env, timeout=120
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"lamina {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run


@pytest.fixture
def fname(lambda_client: Any) -> Any:
    name = f"cli-{uuid.uuid4().hex[:10]}"
    yield name
    with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.delete_function(FunctionName=name)


def test_deploy_list_invoke_delete(lamina_cli: Run, fname: str, tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "app.py").write_text(APP_V1)
    out = lamina_cli("deploy", fname, str(folder), "--memory", "256", "--env", "GREETING=hi").stdout
    assert out.startswith("created arn:aws:lambda:us-east-1:000000000000:function:" + fname)

    listing = lamina_cli("functions", "list").stdout
    assert any(line.split()[0] == fname and "256 MB" in line for line in listing.splitlines())

    out = lamina_cli("invoke", fname, "--payload", '{"x": 1}').stdout
    assert json.loads(out) == {"v": 1, "event": {"x": 1}}
    payload_file = tmp_path / "event.json"
    payload_file.write_text('{"from": "file"}')
    out = lamina_cli("invoke", fname, "--payload", f"@{payload_file}").stdout
    assert json.loads(out)["event"] == {"from": "file"}

    # Update from a zip: the new code runs on the next call.
    package = tmp_path / "v2.zip"
    package.write_bytes(make_zip({"app.py": APP_V2}))
    out = lamina_cli("deploy", fname, str(package)).stdout
    assert out.startswith("updated ")
    assert json.loads(lamina_cli("invoke", fname).stdout) == {"v": 2, "event": {}}

    assert lamina_cli("delete", fname).stdout.strip() == f"deleted {fname}"
    gone = lamina_cli("invoke", fname, check=False)
    assert gone.returncode != 0
    assert gone.stderr.strip().count("\n") == 0
    assert "ResourceNotFoundException" in gone.stderr


def test_deploy_publishes_and_moves_an_alias(lamina_cli: Run, fname: str, tmp_path: Path) -> None:
    package = tmp_path / "v1.zip"
    package.write_bytes(make_zip({"app.py": APP_V1}))
    out = lamina_cli("deploy", fname, str(package), "--alias", "live").stdout.splitlines()
    assert out[1:] == ["published version 1", "alias live -> 1"]
    package.write_bytes(make_zip({"app.py": APP_V2}))
    out = lamina_cli("deploy", fname, str(package), "--publish").stdout.splitlines()
    assert out[1:] == ["published version 2"]
    assert json.loads(lamina_cli("invoke", fname, "--qualifier", "live").stdout)["v"] == 1
    out = lamina_cli("deploy", fname, str(package), "--alias", "live").stdout.splitlines()
    assert out[1:] == ["published version 2", "alias live -> 2"]  # unchanged: no version 3
    assert json.loads(lamina_cli("invoke", fname, "--qualifier", "live").stdout)["v"] == 2


def test_deploy_zip_creates(lamina_cli: Run, fname: str, tmp_path: Path) -> None:
    package = tmp_path / "fn.zip"
    package.write_bytes(make_zip({"main.py": APP_V2}))
    out = lamina_cli("deploy", fname, str(package), "--handler", "main.handler").stdout
    assert out.startswith("created ")
    assert json.loads(lamina_cli("invoke", fname, "--payload", "[1]").stdout)["event"] == [1]


def test_failing_function(lamina_cli: Run, fname: str, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(FAILING)
    lamina_cli("deploy", fname, str(tmp_path))
    proc = lamina_cli("invoke", fname, check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "ValueError: it broke" in lines[0]
    assert json.loads(proc.stdout)["errorType"] == "ValueError"
    bad = lamina_cli("invoke", fname, "--payload", "{not json", check=False)
    assert bad.returncode != 0 and "not JSON" in bad.stderr
    missing = lamina_cli("invoke", fname, "--payload", f"@{tmp_path}/nope.json", check=False)
    assert missing.returncode != 0 and "cannot read" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_logs_and_follow(lamina_cli: Run, fname: str, tmp_path: Path, endpoint: str) -> None:
    (tmp_path / "app.py").write_text(APP_V1)
    lamina_cli("deploy", fname, str(tmp_path), "--timeout", "20")
    lamina_cli("invoke", fname, "--payload", '{"first": 1}')
    out = lamina_cli("logs", fname).stdout
    assert "START RequestId:" in out and "END RequestId:" in out and "REPORT RequestId:" in out
    assert "v1 got {'first': 1}" in out

    follower = subprocess.Popen(
        [*LAMINA, "logs", fname, "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LAMINA_ENDPOINT": endpoint},
    )
    seen: list[str] = []
    reader = threading.Thread(
        target=lambda: seen.extend(iter(follower.stdout.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not any("first" in line for line in seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        # A slow call that prints early and ends after a quick one: its early line is stored
        # last but stamped first, and must still be shown.
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(60)
        slow_event = json.dumps({"slow": 1, "sleep": 4, "notify": listener.getsockname()[1]})
        slow = threading.Thread(target=lamina_cli, args=("invoke", fname, "--payload", slow_event))
        slow.start()
        with listener:
            listener.accept()[0].close()  # the slow call has printed its line
        lamina_cli("invoke", fname, "--payload", '{"second": 2}')
        slow.join(60)
        while not any("slow" in line for line in seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any("v1 got {'second': 2}" in line for line in seen), seen
        assert any("v1 got {'slow': 1, 'sleep': 4" in line for line in seen), seen
    finally:
        follower.terminate()
        follower.wait(10)
    text = "".join(seen)
    assert text.count("REPORT RequestId:") >= 3


def test_unreachable_endpoint(lamina_cli: Run) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = lamina_cli("functions", "list", check=False, env_endpoint=f"http://127.0.0.1:{port}")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "cannot reach Lamina" in lines[0]


def test_doctor_lists_runtimes_and_why_not() -> None:
    from lamina.runtime.runtimes import catalog

    proc = subprocess.run([*LAMINA, "doctor"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    can, _, cannot = proc.stdout.partition("Runtimes this host cannot run:")
    assert "Runtimes this host can run:" in can
    for rid, why in catalog().items():
        if why is None:
            assert f"\n  {rid}: " in can
        else:
            line = next(
                x for x in cannot.splitlines() if rid in x.strip().split(": ", 1)[0].split(", ")
            )
            assert line.endswith(why)
    assert "provided.al2023: runs the package's executable `bootstrap`" in can
