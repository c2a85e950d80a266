"""Python functions can `import boto3` as on Lambda, and boto3 inside a function reaches Lamina.

Runs under the server's default sandbox (the strongest the host offers), so the SDK must be
visible inside the environment's own filesystem view.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lamina.runtime.runtimes import PYTHON_IDS, python_interpreter
from lamina.runtime.sdk import sdk_for
from tests.integration.conftest import PYTHON_RUNTIME, CreateFunction, invoke_json, make_zip

SDK_RUNTIMES = [
    rid
    for rid in PYTHON_IDS
    if python_interpreter(rid) is not None and sdk_for(rid.removeprefix("python")) is not None
]


def test_a_function_invokes_another_through_boto3(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    target = create_function("echo")["FunctionName"]
    caller = create_function("chain", Timeout=60)["FunctionName"]
    resp, body = invoke_json(
        lambda_client, caller, {"target": target, "payload": {"hello": "from a function"}}
    )
    assert "FunctionError" not in resp, body
    assert body["status"] == 200 and body["function_error"] is None
    assert body["payload"]["event"] == {"hello": "from a function"}
    assert body["region"] == "us-east-1"
    assert body["endpoint"].startswith("http://127.0.0.1:")
    assert body["boto3_loaded_at_init"] is False  # the cold start does not pay for it


@pytest.mark.parametrize("runtime", SDK_RUNTIMES or [PYTHON_RUNTIME])
def test_boto3_is_importable_in_every_python_runtime(
    lambda_client: Any, create_function: CreateFunction, runtime: str
) -> None:
    code = make_zip(
        {
            "app.py": (
                "import os, sys\n"
                "def handler(event, context):\n"
                "    import boto3, botocore\n"
                "    return {'boto3': boto3.__version__, 'root': os.environ['LAMBDA_TASK_ROOT'],\n"
                "            'path': sys.path, 'python': list(sys.version_info[:2])}\n"
            )
        }
    )
    name = create_function(zip_bytes=code, handler="app.handler", runtime=runtime, Timeout=120)[
        "FunctionName"
    ]
    resp, body = invoke_json(lambda_client, name, {})
    assert "FunctionError" not in resp, body
    assert f"python{body['python'][0]}.{body['python'][1]}" == runtime
    assert body["boto3"]
    # the task root and the layer paths come first, as on Lambda
    assert body["path"][0] == body["root"]
    assert body["path"][1].endswith(f"/python/lib/{runtime}/site-packages")


def test_a_packaged_boto3_wins(lambda_client: Any, create_function: CreateFunction) -> None:
    code = make_zip(
        {
            "boto3/__init__.py": "__version__ = 'packaged'\n",
            "app.py": "import boto3\ndef handler(event, context):\n    return boto3.__version__\n",
        }
    )
    name = create_function(zip_bytes=code, handler="app.handler")["FunctionName"]
    resp, body = invoke_json(lambda_client, name, {})
    assert "FunctionError" not in resp and body == "packaged"


def test_lamina_itself_is_not_importable(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    """Only the SDK's own modules are offered, not the rest of Lamina's install (not even with
    the interpreter Lamina runs on: runtimes start without `site`)."""
    code = make_zip(
        {
            "app.py": (
                "def handler(event, context):\n"
                "    try:\n"
                "        import sqlalchemy\n"
                "    except ImportError as exc:\n"
                "        return str(exc)\n"
                "    return 'imported'\n"
            )
        }
    )
    for runtime in {PYTHON_RUNTIME, *SDK_RUNTIMES[:1]}:
        name = create_function(zip_bytes=code, handler="app.handler", runtime=runtime)[
            "FunctionName"
        ]
        resp, body = invoke_json(lambda_client, name, {})
        assert "FunctionError" not in resp, body
        assert "sqlalchemy" in json.dumps(body) and body != "imported", runtime


def test_exit_and_quit_are_builtins_as_with_site(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    code = make_zip({"app.py": "def handler(event, context):\n    exit(3)\n"})
    name = create_function(zip_bytes=code, handler="app.handler")["FunctionName"]
    resp, body = invoke_json(lambda_client, name, {})
    assert resp["FunctionError"] == "Unhandled", body
    assert "exit status 3" in body["errorMessage"], body
