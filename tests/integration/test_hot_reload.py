"""Hot reloading: a function's code read live from a host folder (LocalStack's `hot-reload` bucket
convention, and `lamina dev`); an edit is seen by the very next invocation."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import PYTHON_RUNTIME, ROLE, invoke_json, make_zip

APP = """\
import helper
CALLS = 0

def handler(event, context):
    global CALLS
    CALLS += 1
    return {{"code": "{version}", "helper": helper.VALUE, "calls_in_this_environment": CALLS}}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    # the full sandbox runs functions as an unprivileged user: the folder must be readable
    for p in (tmp_path, src):
        p.chmod(0o755)
    write(src / "app.py", APP.format(version="v1"))
    write(src / "helper.py", "VALUE = 'helper 1'\n")
    return src


def write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o644)


@pytest.fixture
def name(lambda_client: Any) -> Iterator[str]:
    fname = f"hot-{uuid.uuid4().hex[:8]}"
    yield fname
    with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.delete_function(FunctionName=fname)


def test_edits_take_effect_on_the_next_invocation(
    lambda_client: Any, folder: Path, name: str
) -> None:
    cfg = lambda_client.create_function(
        FunctionName=name,
        Runtime=PYTHON_RUNTIME,
        Role=ROLE,
        Handler="app.handler",
        Code={"S3Bucket": "hot-reload", "S3Key": str(folder)},
    )
    assert cfg["CodeSha256"] == "hot-reloading-hash-not-available" and cfg["CodeSize"] == 0
    lambda_client.get_waiter("function_active_v2").wait(FunctionName=name)
    got = lambda_client.get_function(FunctionName=name)
    assert got["Code"]["Location"] == f"file://{folder}"

    assert invoke_json(lambda_client, name)[1] == {
        "code": "v1",
        "helper": "helper 1",
        "calls_in_this_environment": 1,
    }
    assert invoke_json(lambda_client, name)[1]["calls_in_this_environment"] == 2  # warm
    write(folder / "app.py", APP.format(version="v2"))
    out = invoke_json(lambda_client, name)[1]
    assert out == {"code": "v2", "helper": "helper 1", "calls_in_this_environment": 1}
    write(folder / "helper.py", "VALUE = 'helper 2'\n")  # a module the handler imports
    assert invoke_json(lambda_client, name)[1]["helper"] == "helper 2"
    (folder / "new_module.py").write_text("X = 1\n")
    (folder / "new_module.py").chmod(0o644)
    assert invoke_json(lambda_client, name)[1]["calls_in_this_environment"] == 1

    # a zip ends hot reloading: later edits of the folder no longer matter
    lambda_client.update_function_code(
        FunctionName=name,
        ZipFile=make_zip({"app.py": APP.format(version="zip"), "helper.py": "VALUE = 'z'\n"}),
    )
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert invoke_json(lambda_client, name)[1]["code"] == "zip"
    write(folder / "app.py", APP.format(version="v3"))
    assert invoke_json(lambda_client, name)[1]["code"] == "zip"
    # and the bucket starts it again
    lambda_client.update_function_code(FunctionName=name, S3Bucket="hot-reload", S3Key=str(folder))
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert invoke_json(lambda_client, name)[1]["code"] == "v3"


def test_bad_folders_are_refused(lambda_client: Any, folder: Path, lamina: Any) -> None:
    def create(key: str) -> None:
        lambda_client.create_function(
            FunctionName=f"hot-bad-{uuid.uuid4().hex[:6]}",
            Runtime=PYTHON_RUNTIME,
            Role=ROLE,
            Handler="app.handler",
            Code={"S3Bucket": "hot-reload", "S3Key": key},
        )

    exc = lambda_client.exceptions.InvalidParameterValueException
    with pytest.raises(exc, match="absolute path"):
        create("relative/src")
    with pytest.raises(exc, match="is not a folder"):
        create(str(folder / "missing"))
    with pytest.raises(exc, match="Lamina's own data"):
        create(str(lamina.data_dir))
    with pytest.raises(exc, match="S3"):
        create_other = lambda_client.create_function  # another bucket is read through S3: none here
        create_other(
            FunctionName="hot-bad-s3",
            Runtime=PYTHON_RUNTIME,
            Role=ROLE,
            Handler="app.handler",
            Code={"S3Bucket": "some-bucket", "S3Key": "code.zip"},
        )


def test_lamina_dev(lambda_client: Any, endpoint: str, folder: Path, name: str) -> None:
    def lamina(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "lamina", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "LAMINA_ENDPOINT": endpoint},
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    out = lamina("dev", name, str(folder), "--handler", "app.handler", "--memory", "256")
    assert f"now runs the code in {folder}" in out
    assert invoke_json(lambda_client, name)[1]["code"] == "v1"
    write(folder / "app.py", APP.format(version="v2"))
    assert invoke_json(lambda_client, name)[1]["code"] == "v2"
    assert lambda_client.get_function_configuration(FunctionName=name)["MemorySize"] == 256
    lamina("dev", name, str(folder), "--env", "MODE=dev")  # again: an update, still live
    write(folder / "app.py", APP.format(version="v3"))
    assert invoke_json(lambda_client, name)[1]["code"] == "v3"


def test_lamina_dev_with_a_template(lambda_client: Any, endpoint: str, folder: Path) -> None:
    """`lamina dev -t`: a SAM function's CodeUri folder is read live."""
    root = folder.parent
    fname = f"hot-sam-{uuid.uuid4().hex[:6]}"
    (root / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        f"      FunctionName: {fname}\n"
        "      CodeUri: src/\n"
        "      Handler: app.handler\n"
        f"      Runtime: {PYTHON_RUNTIME}\n"
    )
    env = {**os.environ, "LAMINA_ENDPOINT": endpoint}
    cmd = [sys.executable, "-m", "lamina", "dev", "-t", str(root / "template.yaml")]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"+ function {fname} created" in proc.stdout
        assert invoke_json(lambda_client, fname)[1]["code"] == "v1"
        write(folder / "app.py", APP.format(version="v2"))
        assert invoke_json(lambda_client, fname)[1]["code"] == "v2"
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        assert f"= function {fname} unchanged" in again.stdout, again.stdout + again.stderr
        # a plain deploy packages the folder: a zip again, no longer live
        cmd[3] = "deploy"
        plain = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        assert f"~ function {fname}: code" in plain.stdout, plain.stdout + plain.stderr
        write(folder / "app.py", APP.format(version="v3"))
        assert invoke_json(lambda_client, fname)[1]["code"] == "v2"
    finally:
        with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
            lambda_client.delete_function(FunctionName=fname)
