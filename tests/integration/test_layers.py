"""Layers: the layer-version API as boto3 and the AWS CLI see it, and what functions see under /opt.

Every test publishes its own layers (unique names) against the shared server; the functions run
in real environments, so order, precedence and paths are observed from inside the runtime.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import signal
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (
    PYTHON_RUNTIME,
    ROLE,
    CreateFunction,
    client_for,
    invoke_json,
    make_zip,
)
from tests.integration.lamina_process import LaminaProcess
from tests.integration.test_custom_runtime import vendored_ric

REGION = "us-east-1"
ACCOUNT = "000000000000"
LAMBDA_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000")
PY_DIR = f"python{sys.version_info[0]}.{sys.version_info[1]}"

PROBE = """import os, subprocess, sys

def handler(event, context):
    out = {"path": sys.path, "env": {k: os.environ.get(k) for k in ("PATH", "LD_LIBRARY_PATH", "_LAMINA_OPT_DIR", "LAMBDA_TASK_ROOT")}}
    for module in event.get("import", []):
        out[module] = __import__(module).VALUE
    if event.get("run"):
        out["run"] = subprocess.run([event["run"]], capture_output=True, text=True).stdout.strip()
    if event.get("read"):
        opt = os.environ.get("_LAMINA_OPT_DIR", "/opt")
        with open(os.path.join(opt, event["read"])) as f:
            out["read"] = f.read()
    return out
"""


def probe_zip(**extra: str) -> bytes:
    return make_zip({"probe.py": PROBE, **extra})


@pytest.fixture
def layer_name() -> Iterator[str]:
    yield f"layer-{uuid.uuid4().hex[:10]}"


Publish = Callable[..., dict[str, Any]]


@pytest.fixture
def publish(lambda_client: Any) -> Iterator[Publish]:
    """Publish a layer version from a dict of files; every version made is deleted afterwards."""
    made: list[tuple[str, int]] = []

    def run(name: str, files: dict[str, str | bytes], **kwargs: Any) -> dict[str, Any]:
        executable = kwargs.pop("executable", ())
        resp = lambda_client.publish_layer_version(
            LayerName=name, Content={"ZipFile": make_zip(files, executable=executable)}, **kwargs
        )
        made.append((name, resp["Version"]))
        return dict(resp)

    yield run
    for name, version in made:
        lambda_client.delete_layer_version(LayerName=name, VersionNumber=version)


def layer_arn(name: str, version: int | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}"
    return arn if version is None else f"{arn}:{version}"


# -- the layer-version API -----------------------------------------------------------------------


def test_publish_response_and_numbering(
    lambda_client: Any, publish: Publish, layer_name: str
) -> None:
    files = {"python/shared.py": "VALUE = 1\n"}
    zipped = make_zip(files)
    first = publish(
        layer_name,
        files,
        Description="first",
        CompatibleRuntimes=[PYTHON_RUNTIME, "provided.al2023"],
        CompatibleArchitectures=["x86_64"],
        LicenseInfo="MIT",
    )
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert first["Version"] == 1
    assert first["LayerArn"] == layer_arn(layer_name)
    assert first["LayerVersionArn"] == layer_arn(layer_name, 1)
    assert first["Description"] == "first"
    assert first["CompatibleRuntimes"] == [PYTHON_RUNTIME, "provided.al2023"]
    assert first["CompatibleArchitectures"] == ["x86_64"]
    assert first["LicenseInfo"] == "MIT"
    assert LAMBDA_TIMESTAMP.fullmatch(first["CreatedDate"])
    content = first["Content"]
    assert content["CodeSize"] == len(zipped)
    assert content["CodeSha256"] == base64.b64encode(hashlib.sha256(zipped).digest()).decode()
    with urllib.request.urlopen(content["Location"], timeout=30) as r:
        assert r.read() == zipped

    second = publish(layer_name, {"python/shared.py": "VALUE = 2\n"})
    assert second["Version"] == 2
    assert second["Description"] == ""
    assert "CompatibleRuntimes" not in second and "LicenseInfo" not in second

    got = lambda_client.get_layer_version(LayerName=layer_name, VersionNumber=1)
    assert {k: got[k] for k in ("LayerVersionArn", "Version", "Description", "LicenseInfo")} == {
        "LayerVersionArn": layer_arn(layer_name, 1),
        "Version": 1,
        "Description": "first",
        "LicenseInfo": "MIT",
    }
    by_arn = lambda_client.get_layer_version_by_arn(Arn=layer_arn(layer_name, 2))
    assert (
        by_arn["Version"] == 2
        and by_arn["Content"]["CodeSha256"] == second["Content"]["CodeSha256"]
    )
    # a layer ARN works as the LayerName too
    assert (
        lambda_client.get_layer_version(LayerName=layer_arn(layer_name), VersionNumber=2)["Version"]
        == 2
    )


def test_missing_versions_and_bad_input(
    lambda_client: Any, publish: Publish, layer_name: str
) -> None:
    publish(layer_name, {"a.txt": "a"})
    exc = lambda_client.exceptions
    with pytest.raises(
        exc.ResourceNotFoundException, match=r"The resource you requested does not exist\."
    ):
        lambda_client.get_layer_version(LayerName=layer_name, VersionNumber=7)
    with pytest.raises(exc.ResourceNotFoundException):
        lambda_client.get_layer_version(LayerName="no-such-layer-xyz", VersionNumber=1)
    with pytest.raises(exc.ResourceNotFoundException):
        lambda_client.get_layer_version_by_arn(Arn=layer_arn(layer_name, 9))
    with pytest.raises(
        exc.InvalidParameterValueException, match="Layer Version Cannot be less than 1"
    ):
        lambda_client.get_layer_version(LayerName=layer_name, VersionNumber=0)
    with pytest.raises(exc.ClientError, match="ValidationException"):
        lambda_client.get_layer_version_by_arn(Arn=layer_arn(layer_name))  # no version
    with pytest.raises(exc.ClientError, match=r"ValidationException.*compatibleRuntimes"):
        lambda_client.publish_layer_version(
            LayerName=layer_name,
            Content={"ZipFile": make_zip({"a": "a"})},
            CompatibleRuntimes=["python2.8"],
        )
    with pytest.raises(exc.ClientError, match="2 validation errors detected"):
        lambda_client.publish_layer_version(
            LayerName=layer_name,
            Content={"ZipFile": make_zip({"a": "a"})},
            CompatibleRuntimes=["cobol"],
            CompatibleArchitectures=["sparc"],
        )
    with pytest.raises(exc.InvalidParameterValueException, match="Could not unzip"):
        lambda_client.publish_layer_version(LayerName=layer_name, Content={"ZipFile": b"not a zip"})
    # the refused publishes used no version number
    assert (
        lambda_client.list_layer_versions(LayerName=layer_name)["LayerVersions"][0]["Version"] == 1
    )


def test_list_filters_and_pagination(lambda_client: Any, publish: Publish) -> None:
    prefix = f"list-{uuid.uuid4().hex[:8]}"
    py = f"{prefix}-py"
    publish(py, {"a": "1"}, CompatibleRuntimes=[PYTHON_RUNTIME], CompatibleArchitectures=["x86_64"])
    publish(
        py, {"a": "2"}, CompatibleRuntimes=["provided.al2023"], CompatibleArchitectures=["arm64"]
    )
    publish(py, {"a": "3"}, CompatibleRuntimes=[PYTHON_RUNTIME], CompatibleArchitectures=["arm64"])
    other = f"{prefix}-other"
    publish(other, {"b": "1"}, CompatibleRuntimes=["provided.al2023"])

    def mine(layers: list[dict[str, Any]]) -> dict[str, int]:
        return {
            item["LayerName"]: item["LatestMatchingVersion"]["Version"]
            for item in layers
            if item["LayerName"].startswith(prefix)
        }

    assert mine(lambda_client.list_layers()["Layers"]) == {py: 3, other: 1}
    by_runtime = lambda_client.list_layers(CompatibleRuntime="provided.al2023")["Layers"]
    assert mine(by_runtime) == {py: 2, other: 1}
    assert mine(lambda_client.list_layers(CompatibleArchitecture="x86_64")["Layers"]) == {py: 1}
    both = lambda_client.list_layers(
        CompatibleRuntime=PYTHON_RUNTIME, CompatibleArchitecture="arm64"
    )
    assert mine(both["Layers"]) == {py: 3}
    item = next(i for i in both["Layers"] if i["LayerName"] == py)
    assert item["LayerArn"] == layer_arn(py)
    assert item["LatestMatchingVersion"]["LayerVersionArn"] == layer_arn(py, 3)

    versions = lambda_client.list_layer_versions(LayerName=py)["LayerVersions"]
    assert [v["Version"] for v in versions] == [3, 2, 1]  # newest first
    assert "Content" not in versions[0]
    filtered = lambda_client.list_layer_versions(LayerName=py, CompatibleRuntime=PYTHON_RUNTIME)
    assert [v["Version"] for v in filtered["LayerVersions"]] == [3, 1]
    assert lambda_client.list_layer_versions(LayerName="never-published-x")["LayerVersions"] == []

    page = lambda_client.list_layer_versions(LayerName=py, MaxItems=2)
    assert [v["Version"] for v in page["LayerVersions"]] == [3, 2] and page["NextMarker"]
    rest = lambda_client.list_layer_versions(LayerName=py, MaxItems=2, Marker=page["NextMarker"])
    assert [v["Version"] for v in rest["LayerVersions"]] == [1] and "NextMarker" not in rest
    pages = lambda_client.get_paginator("list_layers").paginate(PaginationConfig={"PageSize": 1})
    names = [i["LayerName"] for p in pages for i in p["Layers"]]
    assert len(names) == len(set(names))
    assert {py, other} <= set(names)
    with pytest.raises(lambda_client.exceptions.ClientError, match="ValidationException"):
        lambda_client.list_layers(CompatibleRuntime="cobol")
    with pytest.raises(lambda_client.exceptions.ClientError, match="maxItems"):
        lambda_client.list_layers(MaxItems=51)


def test_delete_is_idempotent_and_numbers_are_not_reused(
    lambda_client: Any, publish: Publish, layer_name: str
) -> None:
    publish(layer_name, {"a": "1"})
    publish(layer_name, {"a": "2"})
    resp = lambda_client.delete_layer_version(LayerName=layer_name, VersionNumber=2)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    lambda_client.delete_layer_version(LayerName=layer_name, VersionNumber=2)  # again: no error
    lambda_client.delete_layer_version(LayerName=layer_name, VersionNumber=99)
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.get_layer_version(LayerName=layer_name, VersionNumber=2)
    assert [
        v["Version"]
        for v in lambda_client.list_layer_versions(LayerName=layer_name)["LayerVersions"]
    ] == [1]
    assert publish(layer_name, {"a": "3"})["Version"] == 3
    lambda_client.delete_layer_version(LayerName=layer_name, VersionNumber=1)
    lambda_client.delete_layer_version(LayerName=layer_name, VersionNumber=3)
    listed = [i["LayerName"] for i in lambda_client.list_layers()["Layers"]]
    assert layer_name not in listed  # a layer with no live version is not listed
    assert publish(layer_name, {"a": "4"})["Version"] == 4


# -- functions with layers -----------------------------------------------------------------------


def test_layers_merge_in_order_under_opt(
    lambda_client: Any, publish: Publish, create_function: CreateFunction, layer_name: str
) -> None:
    base = publish(
        f"{layer_name}-base",
        {
            "python/common.py": "VALUE = 'base'\n",
            "python/only_base.py": "VALUE = 'base only'\n",
            f"python/lib/{PY_DIR}/site-packages/sitepkg.py": "VALUE = 'site-packages'\n",
            "data/config.txt": "from base",
            "bin/layer-tool": "#!/bin/sh\necho tool from base\n",
        },
        executable=("bin/layer-tool",),
    )
    top = publish(
        f"{layer_name}-top",
        {
            "python/common.py": "VALUE = 'top'\n",
            "data/config.txt": "from top",
            "lib/libfake.so": "not really a library",
        },
    )
    cfg = create_function(
        zip_bytes=probe_zip(**{"shadowed.py": "VALUE = 'task root'\n"}),
        handler="probe.handler",
        Layers=[base["LayerVersionArn"], top["LayerVersionArn"]],
    )
    assert cfg["Layers"] == [
        {"Arn": base["LayerVersionArn"], "CodeSize": base["Content"]["CodeSize"]},
        {"Arn": top["LayerVersionArn"], "CodeSize": top["Content"]["CodeSize"]},
    ]
    got = lambda_client.get_function_configuration(FunctionName=cfg["FunctionName"])
    assert got["Layers"] == cfg["Layers"]

    _, out = invoke_json(
        lambda_client,
        cfg["FunctionName"],
        {
            "import": ["common", "only_base", "sitepkg", "shadowed"],
            "run": "layer-tool",
            "read": "data/config.txt",
        },
    )
    assert out["common"] == "top"  # the later layer wins
    assert out["only_base"] == "base only"
    assert out["sitepkg"] == "site-packages"
    assert out["shadowed"] == "task root"
    assert out["read"] == "from top"
    assert out["run"] == "tool from base"  # /opt/bin is on PATH
    opt = out["env"]["_LAMINA_OPT_DIR"]
    if out["env"]["LAMBDA_TASK_ROOT"] == "/var/task":  # a sandbox with its own filesystem view
        assert opt == "/opt"
    path = out["path"]
    task_root = path.index(out["env"]["LAMBDA_TASK_ROOT"])
    site = path.index(f"{opt}/python/lib/{PY_DIR}/site-packages")
    assert task_root < site < path.index(f"{opt}/python")  # as on Lambda: task root, then layers
    assert out["env"]["PATH"].split(":")[-1] == f"{opt}/bin"
    assert out["env"]["LD_LIBRARY_PATH"].split(":")[-1] == f"{opt}/lib"


def test_layer_changes_retire_warm_environments(
    lambda_client: Any, publish: Publish, create_function: CreateFunction, layer_name: str
) -> None:
    one = publish(layer_name, {"python/which.py": "VALUE = 'one'\n"})
    two = publish(layer_name, {"python/which.py": "VALUE = 'two'\n"})
    cfg = create_function(
        zip_bytes=probe_zip(), handler="probe.handler", Layers=[one["LayerVersionArn"]]
    )
    name = cfg["FunctionName"]
    assert invoke_json(lambda_client, name, {"import": ["which"]})[1]["which"] == "one"
    lambda_client.update_function_configuration(FunctionName=name, Layers=[two["LayerVersionArn"]])
    lambda_client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1}
    )
    assert invoke_json(lambda_client, name, {"import": ["which"]})[1]["which"] == "two"
    lambda_client.update_function_configuration(FunctionName=name, Layers=[])
    lambda_client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1}
    )
    assert "Layers" not in lambda_client.get_function_configuration(FunctionName=name)
    resp, out = invoke_json(lambda_client, name, {"import": ["which"]})
    assert resp.get("FunctionError") == "Unhandled" and out["errorType"] == "ModuleNotFoundError"


def test_deleted_layer_version_keeps_working_for_its_functions(
    lambda_client: Any, create_function: CreateFunction, layer_name: str
) -> None:
    v1 = lambda_client.publish_layer_version(
        LayerName=layer_name, Content={"ZipFile": make_zip({"python/kept.py": "VALUE = 'kept'\n"})}
    )
    cfg = create_function(
        zip_bytes=probe_zip(), handler="probe.handler", Layers=[v1["LayerVersionArn"]]
    )
    lambda_client.delete_layer_version(LayerName=layer_name, VersionNumber=1)
    # a new environment (the configuration changed) still gets the deleted version's content
    lambda_client.update_function_configuration(FunctionName=cfg["FunctionName"], MemorySize=256)
    lambda_client.get_waiter("function_updated_v2").wait(
        FunctionName=cfg["FunctionName"], WaiterConfig={"Delay": 0.1}
    )
    assert (
        invoke_json(lambda_client, cfg["FunctionName"], {"import": ["kept"]})[1]["kept"] == "kept"
    )
    assert (
        lambda_client.get_function_configuration(FunctionName=cfg["FunctionName"])["Layers"][0][
            "Arn"
        ]
        == v1["LayerVersionArn"]
    )
    # but no function can start using it now
    with pytest.raises(
        lambda_client.exceptions.InvalidParameterValueException, match="does not exist"
    ):
        lambda_client.create_function(
            FunctionName=f"{cfg['FunctionName']}-x",
            Runtime=PYTHON_RUNTIME,
            Role=ROLE,
            Handler="probe.handler",
            Code={"ZipFile": probe_zip()},
            Layers=[v1["LayerVersionArn"]],
        )


def test_function_layer_rules(lambda_client: Any, publish: Publish, layer_name: str) -> None:
    a1 = publish(layer_name, {"a": "1"})["LayerVersionArn"]
    a2 = publish(layer_name, {"a": "2"})["LayerVersionArn"]
    others = [publish(f"{layer_name}-{i}", {"b": str(i)})["LayerVersionArn"] for i in range(5)]
    exc = lambda_client.exceptions

    def create(layers: list[str]) -> None:
        lambda_client.create_function(
            FunctionName=f"rules-{uuid.uuid4().hex[:8]}",
            Runtime=PYTHON_RUNTIME,
            Role=ROLE,
            Handler="probe.handler",
            Code={"ZipFile": probe_zip()},
            Layers=layers,
        )

    with pytest.raises(
        exc.InvalidParameterValueException, match=r"Cannot reference more than 5 layers\."
    ):
        create([a1, *others])
    with pytest.raises(
        exc.InvalidParameterValueException, match="Two different versions of the same layer"
    ):
        create([a1, a2])
    with pytest.raises(
        exc.InvalidParameterValueException, match=f"Layer version {re.escape(a1)}9 does not exist."
    ):
        create([a1 + "9"])
    with pytest.raises(
        exc.InvalidParameterValueException, match="expected to be in region us-east-1"
    ):
        create([a1.replace("us-east-1", "eu-west-1")])
    with pytest.raises(exc.ClientError, match="ValidationException"):
        create(["not-an-arn"])
    assert not [
        f
        for f in lambda_client.list_functions()["Functions"]
        if f["FunctionName"].startswith("rules-")
    ]


def test_bootstrap_from_a_layer(
    lambda_client: Any, publish: Publish, create_function: CreateFunction, layer_name: str
) -> None:
    """provided.al2023 with no bootstrap in the package: the runtime comes from a layer (the
    official awslambdaric, with a bootstrap that finds it next to itself, /opt on Lambda)."""
    bootstrap = (
        "#!/bin/sh\n"
        'opt=$(dirname "$0")\n'
        "cd $LAMBDA_TASK_ROOT\n"
        "export PYTHONPATH=$LAMBDA_TASK_ROOT:$opt/python\n"
        "exec python3 -m awslambdaric app.handler\n"
    )
    files: dict[str, str | bytes] = {f"python/{k}": v for k, v in vendored_ric().items()}
    files["bootstrap"] = bootstrap
    ric = publish(
        layer_name, files, executable=("bootstrap",), CompatibleRuntimes=["provided.al2023"]
    )
    app = "def handler(event, context):\n    return {'from': 'layer runtime', 'event': event}\n"
    cfg = create_function(
        zip_bytes=make_zip({"app.py": app}),
        handler="app.handler",
        runtime="provided.al2023",
        Layers=[ric["LayerVersionArn"]],
    )
    resp, out = invoke_json(lambda_client, cfg["FunctionName"], {"n": 1})
    assert "FunctionError" not in resp, out
    assert out == {"from": "layer runtime", "event": {"n": 1}}


def test_code_and_layers_over_250_mb_are_refused(
    lambda_client: Any, publish: Publish, create_function: CreateFunction, layer_name: str
) -> None:
    big = b"\0" * (140 * 1024 * 1024)  # compresses to a few hundred KB
    layer = publish(layer_name, {"big.bin": big})
    small = create_function(zip_bytes=probe_zip(), handler="probe.handler")
    with pytest.raises(
        lambda_client.exceptions.InvalidParameterValueException,
        match=r"Function code combined with layers exceeds the maximum allowed size of 262144000 bytes",
    ):
        lambda_client.create_function(
            FunctionName=f"{small['FunctionName']}-big",
            Runtime=PYTHON_RUNTIME,
            Role=ROLE,
            Handler="probe.handler",
            Code={"ZipFile": probe_zip(**{"big.bin": big})},  # type: ignore[arg-type]
            Layers=[layer["LayerVersionArn"]],
        )
    lambda_client.update_function_code(
        FunctionName=small["FunctionName"], ZipFile=make_zip({"probe.py": PROBE, "big.bin": big})
    )
    lambda_client.get_waiter("function_updated_v2").wait(
        FunctionName=small["FunctionName"], WaiterConfig={"Delay": 0.1}
    )
    with pytest.raises(
        lambda_client.exceptions.InvalidParameterValueException, match="combined with layers"
    ):
        lambda_client.update_function_configuration(
            FunctionName=small["FunctionName"], Layers=[layer["LayerVersionArn"]]
        )


def test_aws_cli(
    aws_cli: Callable[..., Any], tmp_path: Path, layer_name: str, lambda_client: Any
) -> None:
    archive = tmp_path / "layer.zip"
    archive.write_bytes(make_zip({"python/cli_layer.py": "VALUE = 'cli'\n"}))
    try:
        out = json.loads(
            aws_cli(
                "lambda",
                "publish-layer-version",
                "--layer-name",
                layer_name,
                "--zip-file",
                f"fileb://{archive}",
                "--compatible-runtimes",
                PYTHON_RUNTIME,
                "--description",
                "from the CLI",
            ).stdout
        )
        assert out["Version"] == 1 and out["Description"] == "from the CLI"
        listed = json.loads(
            aws_cli("lambda", "list-layer-versions", "--layer-name", layer_name).stdout
        )
        assert [v["Version"] for v in listed["LayerVersions"]] == [1]
        got = json.loads(
            aws_cli("lambda", "get-layer-version-by-arn", "--arn", out["LayerVersionArn"]).stdout
        )
        assert got["Content"]["CodeSha256"] == out["Content"]["CodeSha256"]
        layers = json.loads(
            aws_cli("lambda", "list-layers", "--compatible-runtime", PYTHON_RUNTIME).stdout
        )
        assert layer_name in [i["LayerName"] for i in layers["Layers"]]
        missing = aws_cli(
            "lambda",
            "get-layer-version",
            "--layer-name",
            layer_name,
            "--version-number",
            "5",
            check=False,
        )
        assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr
    finally:
        aws_cli(
            "lambda", "delete-layer-version", "--layer-name", layer_name, "--version-number", "1"
        )


def test_layers_survive_a_restart(tmp_path: Path) -> None:
    """Versions, tombstones (numbers are not reused) and functions' layers are kept; a merged
    /opt tree that went missing is built again when an environment needs it."""
    server = LaminaProcess(tmp_path / "data")
    server.start()
    try:
        client = client_for(server.endpoint)
        for n in (1, 2):
            client.publish_layer_version(
                LayerName="kept",
                Content={"ZipFile": make_zip({"python/kept.py": f"VALUE = {n}\n"})},
                CompatibleRuntimes=[PYTHON_RUNTIME],
            )
        client.delete_layer_version(LayerName="kept", VersionNumber=2)
        client.create_function(
            FunctionName="uses-kept",
            Runtime=PYTHON_RUNTIME,
            Role=ROLE,
            Handler="probe.handler",
            Code={"ZipFile": probe_zip()},
            Layers=[layer_arn("kept", 1)],
        )
        client.get_waiter("function_active_v2").wait(FunctionName="uses-kept")
        layer_size = client.get_layer_version(LayerName="kept", VersionNumber=1)["Content"][
            "CodeSize"
        ]
        usage = client.get_account_settings()["AccountUsage"]
        assert usage["TotalCodeSize"] == len(probe_zip()) + layer_size  # v2 was deleted
        assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        for tree in (tmp_path / "data" / "code" / "opt").iterdir():
            shutil.rmtree(tree)  # lost: rebuilt on demand

        server.start()
        client = client_for(server.endpoint)
        listed = client.list_layer_versions(LayerName="kept")["LayerVersions"]
        assert [v["Version"] for v in listed] == [1]
        assert listed[0]["CompatibleRuntimes"] == [PYTHON_RUNTIME]
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.get_layer_version(LayerName="kept", VersionNumber=2)
        again = client.publish_layer_version(
            LayerName="kept", Content={"ZipFile": make_zip({"python/kept.py": "VALUE = 3\n"})}
        )
        assert again["Version"] == 3
        cfg = client.get_function_configuration(FunctionName="uses-kept")
        assert [layer["Arn"] for layer in cfg["Layers"]] == [layer_arn("kept", 1)]
        assert invoke_json(client, "uses-kept", {"import": ["kept"]})[1]["kept"] == 1
    finally:
        server.stop()


@pytest.mark.skipif(shutil.which("node") is None, reason="no node on this host")
def test_node_modules_from_layers(
    lambda_client: Any, publish: Publish, create_function: CreateFunction, layer_name: str
) -> None:
    """nodejsNN.x: require() finds nodejs/nodeNN/node_modules before nodejs/node_modules."""
    import subprocess

    major = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
    major = major.strip().lstrip("v").split(".")[0]
    runtime = f"nodejs{major}.x"
    if runtime not in lambda_client.meta.service_model.shape_for("Runtime").enum:
        pytest.skip(f"{runtime} is not a Lambda runtime id")
    layer = publish(
        layer_name,
        {
            "nodejs/node_modules/greet/index.js": "module.exports = () => 'generic';\n",
            "nodejs/node_modules/only/index.js": "module.exports = 'only generic';\n",
            f"nodejs/node{major}/node_modules/greet/index.js": "module.exports = () => 'versioned';\n",
        },
    )
    app = (
        "exports.handler = async () => ({greet: require('greet')(), only: require('only'),"
        " nodePath: process.env.NODE_PATH});\n"
    )
    try:
        cfg = create_function(
            zip_bytes=make_zip({"index.js": app}),
            handler="index.handler",
            runtime=runtime,
            Layers=[layer["LayerVersionArn"]],
        )
    except lambda_client.exceptions.InvalidParameterValueException as exc:
        pytest.skip(f"{runtime} does not run here: {exc}")
    resp, out = invoke_json(lambda_client, cfg["FunctionName"])
    assert "FunctionError" not in resp, out
    assert out["greet"] == "versioned" and out["only"] == "only generic"
    opt = out["nodePath"].split(":")[0].split("/nodejs/")[0]
    assert out["nodePath"].startswith(
        f"{opt}/nodejs/node{major}/node_modules:{opt}/nodejs/node_modules"
    )
