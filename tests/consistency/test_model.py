"""Lamina's wire shapes against botocore's Lambda model (data/lambda/2015-03-31/service-2.json).

botocore silently drops response keys its model does not know, so a misspelt member would go
unnoticed by every boto3 test; here the raw JSON Lamina sends is checked against the model.
"""

from __future__ import annotations

import base64
import inspect
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.loaders import Loader
from botocore.model import ServiceModel, Shape, StructureShape

from lamina import errors as lamina_errors
from tests.integration.conftest import PYTHON_RUNTIME, ROLE, function_zip
from tests.integration.lamina_process import LaminaProcess
from tests.integration.rawhttp import raw, raw_json

MODEL = ServiceModel(Loader().load_service_model("lambda", "service-2"), "lambda")

ERROR_CLASSES = [
    cls
    for _, cls in inspect.getmembers(lamina_errors, inspect.isclass)
    if issubclass(cls, lamina_errors.LambdaError) and cls is not lamina_errors.LambdaError
]
MODELLED_ERRORS = [cls for cls in ERROR_CLASSES if cls.__name__ in MODEL.shape_names]


def test_the_model_is_the_one_the_reference_describes() -> None:
    assert MODEL.metadata["protocol"] == "rest-json"
    assert MODEL.metadata["apiVersion"] == "2015-03-31"
    assert len(MODELLED_ERRORS) >= 10


@pytest.mark.parametrize("cls", MODELLED_ERRORS, ids=lambda c: c.__name__)
def test_error_status_and_members_follow_the_model(cls: type[lamina_errors.LambdaError]) -> None:
    shape = MODEL.shape_for(cls.__name__)
    assert shape.metadata.get("exception") is True
    assert cls.status == shape.metadata["error"]["httpStatusCode"]
    assert cls.message_key in shape.members, f"{cls.__name__}: message member casing"
    assert "Type" in shape.members
    assert cls.fault == ("Service" if cls.status >= 500 else "User")


def test_throttle_members_follow_the_model() -> None:
    shape = MODEL.shape_for("TooManyRequestsException")
    error = lamina_errors.TooManyRequestsException("ConcurrentInvocationLimitExceeded")
    assert set(error.body()) <= set(shape.members)
    assert error.body()["Reason"] in MODEL.shape_for("ThrottleReason").enum
    retry = shape.members["retryAfterSeconds"]
    assert retry.serialization == {"location": "header", "name": "Retry-After"}
    assert set(error.headers()) == {"Retry-After"}


def test_unmodelled_errors_are_the_known_ones() -> None:
    unmodelled = {cls.__name__ for cls in ERROR_CLASSES} - {c.__name__ for c in MODELLED_ERRORS}
    # Both are real AWS codes that botocore's Lambda model does not list.
    assert unmodelled <= {"ValidationException", "AccessDeniedException"}


# -- raw responses ------------------------------------------------------------------------------

# Values AWS itself sends although the model's enum lacks them (recorded from AWS, see
# ../shared/reference/lambda-api.md section 3.4); botocore does not check output enums.
AWS_OUTSIDE_ENUM = {("LastUpdateStatusReasonCode", "Creating")}

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "double": (int, float),
    "float": (int, float),
    "timestamp": (str, int, float),
    "blob": (str,),
}


def model_violations(value: Any, shape: Shape, path: str = "") -> list[str]:
    """Keys the model does not know and values of the wrong JSON type, as paths."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected an object for {shape.name}"]
        assert isinstance(shape, StructureShape)
        out: list[str] = []
        for key, item in value.items():
            member = shape.members.get(key)
            if member is None:
                out.append(f"{path}.{key}: not a member of {shape.name}")
            elif member.serialization.get("location") is None:
                out.extend(model_violations(item, member, f"{path}.{key}"))
        return out
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [
            v
            for i, item in enumerate(value)
            for v in model_violations(item, shape.member, f"{path}[{i}]")
        ]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected a map"]
        return [
            v
            for k, item in value.items()
            for v in model_violations(item, shape.value, f"{path}{{{k}}}")
        ]
    expected = _PY_TYPES.get(kind, (object,))
    if (kind != "boolean" and isinstance(value, bool)) or not isinstance(value, expected):
        return [f"{path}: {value!r} is not a {kind}"]
    enum = getattr(shape, "enum", None)
    if enum and value not in enum and (shape.name, value) not in AWS_OUTSIDE_ENUM:
        return [f"{path}: {value!r} not in the enum of {shape.name}"]
    return []


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = LaminaProcess(tmp_path_factory.mktemp("model-data"))
    server.start()
    yield server.endpoint
    server.stop(signal.SIGTERM)


def call(endpoint: str, operation: str, data: Any = None, **params: str) -> Any:
    """Send `operation` as botocore would route it; check the status and the body shape."""
    op = MODEL.operation_model(operation)
    path = op.http["requestUri"].split("?")[0]
    for key, value in params.items():
        path = path.replace("{" + key + "}", value)
    if "?" in op.http["requestUri"] or params.get("_query"):
        path += params.get("_query", "")
    status, headers, body = raw_json(endpoint, op.http["method"], path, data)
    expected_status = op.http.get("responseCode", 200)
    if operation == "DeleteFunction":
        assert status in (200, 204)  # AWS itself answers 204
    else:
        assert status == expected_status, (operation, status, body)
    assert headers.get("x-amzn-requestid")
    if op.output_shape is not None and body is not None:
        problems = model_violations(body, op.output_shape, operation)
        assert not problems, problems
    return body


def test_layer_responses_are_model_members(endpoint: str) -> None:
    zipped = base64.b64encode(function_zip("echo")).decode()
    body = {
        "Content": {"ZipFile": zipped},
        "Description": "model",
        "CompatibleRuntimes": [PYTHON_RUNTIME],
        "CompatibleArchitectures": ["x86_64", "arm64"],
        "LicenseInfo": "MIT",
    }
    published = call(endpoint, "PublishLayerVersion", body, LayerName="model-layer")
    number = str(published["Version"])
    call(endpoint, "GetLayerVersion", LayerName="model-layer", VersionNumber=number)
    arn = published["LayerVersionArn"].replace(":", "%3A")
    call(endpoint, "GetLayerVersionByArn", _query=f"?find=LayerVersion&Arn={arn}")
    call(endpoint, "ListLayers", _query="?CompatibleRuntime=" + PYTHON_RUNTIME)
    call(endpoint, "ListLayerVersions", LayerName="model-layer", _query="?MaxItems=1")
    call(endpoint, "DeleteLayerVersion", LayerName="model-layer", VersionNumber=number)


def test_function_responses_are_model_members(endpoint: str) -> None:
    name = "model-check"
    layer = call(
        endpoint,
        "PublishLayerVersion",
        {"Content": {"ZipFile": base64.b64encode(function_zip("echo")).decode()}},
        LayerName="model-check-layer",
    )
    create = {
        "FunctionName": name,
        "Runtime": PYTHON_RUNTIME,
        "Role": ROLE,
        "Handler": "echo.handler",
        "Code": {"ZipFile": base64.b64encode(function_zip("echo")).decode()},
        "Description": "every member",
        "Timeout": 10,
        "MemorySize": 256,
        "EphemeralStorage": {"Size": 1024},
        "Environment": {"Variables": {"KEY": "value"}},
        "Architectures": ["x86_64"],
        "TracingConfig": {"Mode": "Active"},
        "DeadLetterConfig": {"TargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq"},
        "LoggingConfig": {"LogFormat": "JSON", "ApplicationLogLevel": "INFO"},
        "Layers": [layer["LayerVersionArn"]],
        "Tags": {"team": "core"},
        # Stored and echoed without acting on them.
        "VpcConfig": {"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"]},
        "KMSKeyArn": "arn:aws:kms:us-east-1:000000000000:key/k",
        "FileSystemConfigs": [
            {
                "Arn": "arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/fsap-1",
                "LocalMountPath": "/mnt/efs",
            }
        ],
        "ImageConfig": {"Command": ["app.handler"]},
        "CodeSigningConfigArn": (
            "arn:aws:lambda:us-east-1:000000000000:code-signing-config:csc-0123456789abcdefg"
        ),
        "SnapStart": {"ApplyOn": "None"},
        "TenancyConfig": {"TenantIsolationMode": "PER_TENANT"},
        "DurableConfig": {"RetentionPeriodInDays": 7, "ExecutionTimeout": 60},
        "AcceleratorConfig": {"AcceleratorMemorySize": 1},
    }
    created = call(endpoint, "CreateFunction", create)
    assert created["State"] == "Pending"
    assert created["ImageConfigResponse"] == {"ImageConfig": {"Command": ["app.handler"]}}
    assert created["SnapStart"] == {"ApplyOn": "None", "OptimizationStatus": "Off"}
    assert created["VpcConfig"]["SubnetIds"] == ["subnet-1"]
    call(endpoint, "GetFunction", FunctionName=name)
    call(endpoint, "GetFunctionConfiguration", FunctionName=name)
    call(endpoint, "GetFunction", FunctionName=name, _query="?Qualifier=%24LATEST")
    call(
        endpoint,
        "UpdateFunctionConfiguration",
        {"Description": "changed", "Environment": {"Variables": {}}},
        FunctionName=name,
    )
    call(
        endpoint,
        "UpdateFunctionCode",
        {"ZipFile": base64.b64encode(function_zip("echo")).decode()},
        FunctionName=name,
    )
    call(endpoint, "PutFunctionConcurrency", {"ReservedConcurrentExecutions": 1}, FunctionName=name)
    call(endpoint, "GetFunctionConcurrency", FunctionName=name)
    got = call(endpoint, "GetFunction", FunctionName=name)
    assert got["Concurrency"] == {"ReservedConcurrentExecutions": 1}
    assert got["Tags"] == {"team": "core"}
    call(endpoint, "GetAccountSettings")
    call(endpoint, "DeleteFunctionConcurrency", FunctionName=name)
    call(endpoint, "GetFunctionConcurrency", FunctionName=name)
    call(
        endpoint,
        "CreateFunction",
        {**{k: create[k] for k in ("Runtime", "Role", "Handler", "Code")}, "FunctionName": "m2"},
    )
    listed = call(endpoint, "ListFunctions", _query="?MaxItems=1")
    assert listed["NextMarker"]
    call(endpoint, "ListFunctions")
    call(endpoint, "DeleteFunction", FunctionName=name)
    call(endpoint, "DeleteFunction", FunctionName="m2")


def test_version_and_alias_responses_are_model_members(endpoint: str) -> None:
    name = "model-versions"
    call(
        endpoint,
        "CreateFunction",
        {
            "FunctionName": name,
            "Runtime": PYTHON_RUNTIME,
            "Role": ROLE,
            "Handler": "echo.handler",
            "Code": {"ZipFile": base64.b64encode(function_zip("echo")).decode()},
            "Publish": True,
        },
    )
    call(endpoint, "UpdateFunctionConfiguration", {"Timeout": 9}, FunctionName=name)
    v2 = call(endpoint, "PublishVersion", {"Description": "two"}, FunctionName=name)
    assert v2["Version"] == "2"
    call(endpoint, "ListVersionsByFunction", FunctionName=name)
    call(endpoint, "ListVersionsByFunction", FunctionName=name, _query="?MaxItems=1")
    call(endpoint, "GetFunctionConfiguration", FunctionName=name, _query="?Qualifier=2")
    alias = call(
        endpoint,
        "CreateAlias",
        {
            "Name": "live",
            "FunctionVersion": "1",
            "Description": "d",
            "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.5}},
        },
        FunctionName=name,
    )
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    call(endpoint, "GetAlias", FunctionName=name, Name="live")
    call(endpoint, "GetFunction", FunctionName=name, _query="?Qualifier=live")
    call(
        endpoint,
        "UpdateAlias",
        {"FunctionVersion": "2", "RoutingConfig": {}},
        FunctionName=name,
        Name="live",
    )
    call(endpoint, "ListAliases", FunctionName=name)
    call(endpoint, "ListAliases", FunctionName=name, _query="?FunctionVersion=2&MaxItems=1")
    call(endpoint, "ListFunctions", _query="?FunctionVersion=ALL")
    call(endpoint, "DeleteAlias", FunctionName=name, Name="live")
    call(endpoint, "DeleteFunction", FunctionName=name, _query="?Qualifier=1")
    call(endpoint, "DeleteFunction", FunctionName=name)


def test_error_bodies_are_model_members(endpoint: str) -> None:
    cases = [
        ("GET", "/2015-03-31/functions/missing", None),
        ("GET", "/2015-03-31/functions/missing/aliases/live", None),
        ("POST", "/2015-03-31/functions/missing/versions", None),
        ("POST", "/2015-03-31/functions", b"{"),
        ("POST", "/2015-03-31/functions", b'{"FunctionName": "x", "Timeout": 0}'),
        ("GET", "/2015-03-31/functions/a%20b", None),
    ]
    for method, path, body in cases:
        status, headers, out = raw(endpoint, method, path, body)
        code = headers["x-amzn-errortype"]
        shape = MODEL.shape_for(code)
        assert status == shape.metadata["error"]["httpStatusCode"], (path, code)
        problems = model_violations(json.loads(out), shape, code)
        assert not problems, problems


def test_routes_cover_the_tier1_operations(endpoint: str) -> None:
    """Each operation's method and path reaches an operation (never 'no operation matches')."""
    for operation in (
        "CreateFunction",
        "GetFunction",
        "GetFunctionConfiguration",
        "UpdateFunctionCode",
        "UpdateFunctionConfiguration",
        "DeleteFunction",
        "ListFunctions",
        "Invoke",
        "PutFunctionConcurrency",
        "GetFunctionConcurrency",
        "DeleteFunctionConcurrency",
        "GetAccountSettings",
        "PublishVersion",
        "ListVersionsByFunction",
        "CreateAlias",
        "GetAlias",
        "UpdateAlias",
        "DeleteAlias",
        "ListAliases",
    ):
        http = MODEL.operation_model(operation).http
        path = http["requestUri"].replace("{FunctionName}", "no-such-fn")
        path = path.replace("{Name}", "live")
        status, headers, _ = raw(endpoint, http["method"], path, b"{}")
        assert headers.get("x-amzn-errortype") != "UnknownOperationException", operation
        assert status < 500, operation


def test_model_file_is_where_the_reference_says() -> None:
    import botocore

    folder = Path(botocore.__file__).parent / "data" / "lambda" / "2015-03-31"
    assert (folder / "service-2.json.gz").exists() or (folder / "service-2.json").exists()
