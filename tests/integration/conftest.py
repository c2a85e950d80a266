"""Integration fixtures: a real Lamina server process, boto3 and AWS CLI clients, packaged functions.

Nothing of Lamina's own is mocked here: tests talk to the server over HTTP as users do.

The helpers every test file may want (wait_for, deploy on a server a test starts itself,
probe_function, make_zip, function_zip, invoke_json) live here once: import them rather than
writing another copy in a test file.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.integration.lamina_process import LaminaProcess

FUNCTIONS = Path(__file__).parent / "functions"
ROLE = "arn:aws:iam::000000000000:role/lamina-test"
PYTHON_RUNTIME = f"python{sys.version_info[0]}.{sys.version_info[1]}"

os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def make_zip(files: dict[str, str | bytes], *, executable: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            mode = 0o755 if name in executable else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content)
    return buf.getvalue()


def function_zip(*modules: str) -> bytes:
    """Package handler modules from tests/integration/functions/ (by file stem)."""
    return make_zip({f"{m}.py": (FUNCTIONS / f"{m}.py").read_text() for m in modules})


def client_for(endpoint: str, service: str = "lambda", **config: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 0}, read_timeout=120, **config),
    )


@pytest.fixture(scope="session")
def lamina(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaProcess]:
    server = LaminaProcess(
        tmp_path_factory.mktemp("lamina-data"),
        "--account-concurrency",
        "50",
        "--min-unreserved-concurrency",
        "10",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def endpoint(lamina: LaminaProcess) -> str:
    return lamina.endpoint


@pytest.fixture(scope="session")
def lambda_client(endpoint: str) -> Any:
    return client_for(endpoint)


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")
    return f"{base}-{uuid.uuid4().hex[:8]}"


CreateFunction = Callable[..., dict[str, Any]]


@pytest.fixture
def create_function(lambda_client: Any, unique_name: str) -> Iterator[CreateFunction]:
    """Create a function (waiting until Active); every function made is deleted afterwards."""
    made: list[str] = []

    def create(
        module: str | None = None,
        *,
        zip_bytes: bytes | None = None,
        name: str | None = None,
        handler: str | None = None,
        runtime: str = PYTHON_RUNTIME,
        **kwargs: Any,
    ) -> dict[str, Any]:
        fname = name or f"{unique_name}-{len(made)}"
        code = zip_bytes if zip_bytes is not None else function_zip(module or "echo")
        cfg = lambda_client.create_function(
            FunctionName=fname,
            Runtime=runtime,
            Role=ROLE,
            Handler=handler or f"{module or 'echo'}.handler",
            Code={"ZipFile": code},
            **kwargs,
        )
        made.append(fname)
        lambda_client.get_waiter("function_active_v2").wait(
            FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
        )
        return dict(cfg)

    yield create
    for fname in made:
        with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
            lambda_client.delete_function(FunctionName=fname)


def wait_for(check: Callable[[], Any], timeout_s: float = 60.0, what: str = "condition") -> Any:
    """What `check` returns once it is truthy; fails the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def probe_function(create_function: CreateFunction, **kwargs: Any) -> str:
    """A function of tests/functions/snapshot_probe.py (it reports its environment): its name."""
    cfg = create_function(
        zip_bytes=function_zip("snapshot_probe"), handler="snapshot_probe.handler", **kwargs
    )
    return str(cfg["FunctionName"])


def deploy(
    client: Any, name: str, module: str, *, code: bytes | None = None, **kwargs: Any
) -> None:
    """Create `name` through `client` (of a server a test runs itself, without the
    create_function fixture) with handler <module>.handler, from tests/functions/<module>.py or
    the zip `code`, and wait until it is Active."""
    client.create_function(
        FunctionName=name,
        Runtime=PYTHON_RUNTIME,
        Role=ROLE,
        Handler=f"{module}.handler",
        Code={"ZipFile": function_zip(module) if code is None else code},
        **kwargs,
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 300}
    )


def invoke_json(
    client: Any, name: str, payload: Any = None, **kwargs: Any
) -> tuple[dict[str, Any], Any]:
    """Invoke and decode the JSON payload; returns (response metadata, decoded payload)."""
    resp = client.invoke(FunctionName=name, Payload=json.dumps(payload or {}).encode(), **kwargs)
    body = resp["Payload"].read()
    return resp, json.loads(body) if body else None


@pytest.fixture(scope="session")
def aws_cli(endpoint: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the AWS CLI (the `awscli` package) against the server."""
    aws = Path(sys.executable).parent / "aws"

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_PAGER": "",
        }
        proc = subprocess.run(
            [str(aws), "--endpoint-url", endpoint, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    return run


# Fixtures of the event source tests (mappings made and cleaned up, the logs client).
from tests.integration.event_sources import logs, mappings  # noqa: E402, F401
