"""`lamina deploy -t`: a SAM template with two functions, a layer and an alias, deployed, changed
and deployed again, through the real CLI against the real server."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.integration.conftest import PYTHON_RUNTIME, client_for, invoke_json, make_zip

TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  Greeting:
    Type: String
    Default: hello
Globals:
  Function:
    Runtime: {runtime}
    Timeout: 7
    MemorySize: 256
    Layers: [!Ref Shared]
    Environment:
      Variables:
        STAGE: test
Resources:
  Shared:
    Type: AWS::Serverless::LayerVersion
    Properties:
      LayerName: {stack}-shared
      ContentUri: layer/
      CompatibleRuntimes: [{runtime}]
  Greeter:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: greeter/
      Handler: app.handler
      AutoPublishAlias: live
      DeploymentPreference:
        Type: Linear50PercentEvery1Minute
      Environment:
        Variables:
          GREETING: !Ref Greeting
      Events:
        Hourly:
          Type: Schedule
          Properties:
            Schedule: rate(1 hour)
        Web:
          Type: Api
          Properties:
            Path: /hi
            Method: get
  Counter:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: {stack}-counter
      CodeUri: counter/
      Handler: app.handler
      MemorySize: {counter_memory}
      AutoPublishAlias: live
      FunctionUrlConfig:
        AuthType: NONE
Outputs:
  GreeterArn:
    Value: !GetAtt Greeter.Arn
  CounterAlias:
    Value: !Ref CounterAliaslive
"""

GREETER = """\
import contextlib
import os
import shared

def handler(event, context):
    return {{"code": "{code}", "greeting": os.environ["GREETING"], "stage": os.environ["STAGE"],
            "layer": shared.VALUE, "version": context.function_version}}
"""

COUNTER = """\
import shared

def handler(event, context):
    return {"counter": shared.VALUE, "version": context.function_version}
"""


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, str]:
    stack = f"sam{uuid.uuid4().hex[:8]}"
    (tmp_path / "layer" / "python").mkdir(parents=True)
    (tmp_path / "layer" / "python" / "shared.py").write_text("VALUE = 'layer one'\n")
    for name, code in (("greeter", GREETER.format(code="v1")), ("counter", COUNTER)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "app.py").write_text(code)
    write_template(tmp_path, stack, counter_memory=512)
    return tmp_path, stack


def write_template(root: Path, stack: str, *, counter_memory: int) -> None:
    text = TEMPLATE.format(runtime=PYTHON_RUNTIME, stack=stack, counter_memory=counter_memory)
    (root / "template.yaml").write_text(text)


def deploy(endpoint: str, root: Path, stack: str, *extra: str, ok: bool = True) -> str:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lamina",
            "deploy",
            "-t",
            str(root / "template.yaml"),
            "--stack-name",
            stack,
            "--traffic-shift-scale",
            "0",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LAMINA_ENDPOINT": endpoint},
    )
    out = proc.stdout + proc.stderr
    assert (proc.returncode == 0) == ok, out
    return out


def versions(lambda_client: Any, name: str) -> list[str]:
    listed = lambda_client.list_versions_by_function(FunctionName=name)["Versions"]
    return [v["Version"] for v in listed if v["Version"] != "$LATEST"]


def test_deploy_change_redeploy(
    lambda_client: Any, endpoint: str, project: tuple[Path, str]
) -> None:
    root, stack = project
    greeter, counter = f"{stack}-Greeter", f"{stack}-counter"
    try:
        out = deploy(endpoint, root, stack)
        assert f"+ layer {stack}-shared:1 published" in out
        assert f"+ function {greeter} created" in out
        assert f"+ function {counter} created" in out
        assert f"+ alias {greeter}:live -> version 1" in out
        assert f"+ alias {counter}:live -> version 1" in out
        # every SAM event is accounted for, the ones Lamina cannot honour say so
        assert "Greeter.Web (Api): not supported: API Gateway is not emulated" in out
        assert "Greeter.Hourly (Schedule): " in out
        assert f"GreeterArn = arn:aws:lambda:us-east-1:000000000000:function:{greeter}" in out
        assert (
            f"CounterAlias = arn:aws:lambda:us-east-1:000000000000:function:{counter}:live" in out
        )

        cfg = lambda_client.get_function_configuration(FunctionName=greeter)
        assert (cfg["Timeout"], cfg["MemorySize"]) == (7, 256)  # from Globals
        assert cfg["Environment"]["Variables"] == {"STAGE": "test", "GREETING": "hello"}
        layer_arn = f"arn:aws:lambda:us-east-1:000000000000:layer:{stack}-shared:1"
        assert [layer["Arn"] for layer in cfg["Layers"]] == [layer_arn]
        assert lambda_client.get_function_configuration(FunctionName=counter)["MemorySize"] == 512
        # FunctionUrlConfig: a URL for the alias, served by Lamina
        url = lambda_client.get_function_url_config(FunctionName=counter, Qualifier="live")[
            "FunctionUrl"
        ]
        assert f"+ function URL {url}" in out
        url_id = str(urlparse(url).hostname).split(".")[0]
        with urllib.request.urlopen(f"{endpoint}/lambda-url/{url_id}/", timeout=60) as r:
            assert json.loads(r.read()) == {"counter": "layer one", "version": "1"}
        _, body = invoke_json(lambda_client, greeter, Qualifier="live")
        assert body == {
            "code": "v1",
            "greeting": "hello",
            "stage": "test",
            "layer": "layer one",
            "version": "1",
        }

        # the same template again: nothing changes, no version is published
        out = deploy(endpoint, root, stack)
        assert f"= layer {stack}-shared:1 unchanged" in out
        assert f"= function {greeter} unchanged" in out
        assert f"= function {counter} unchanged" in out
        assert f"= alias {greeter}:live -> version 1 unchanged" in out
        assert f"= function URL {url} unchanged" in out
        assert versions(lambda_client, greeter) == ["1"]
        assert versions(lambda_client, counter) == ["1"]

        # new code for one function, new memory for the other, a new parameter value
        (root / "greeter" / "app.py").write_text(GREETER.format(code="v2"))
        write_template(root, stack, counter_memory=1024)
        out = deploy(endpoint, root, stack, "--parameter-overrides", "Greeting=bonjour")
        assert f"~ function {greeter}: code; Environment" in out
        assert "bonjour" in out
        assert f"~ function {counter}: MemorySize 512 -> 1024" in out
        assert f"+ version {greeter}:2 published" in out
        assert f"+ version {counter}:2 published" in out
        # the alias moves as the deployment preference says: half, then all
        assert f"~ alias {greeter}:live: version 1 -> 2 (Linear50PercentEvery1Minute)" in out
        assert "alias live: 50% to version 2, 50% to version 1" in out
        assert "alias live: 100% to version 2" in out
        assert lambda_client.get_alias(FunctionName=greeter, Name="live")["FunctionVersion"] == "2"
        _, body = invoke_json(lambda_client, greeter, Qualifier="live")
        assert (body["code"], body["greeting"], body["version"]) == ("v2", "bonjour", "2")
        _, body = invoke_json(lambda_client, counter, Qualifier="live")
        assert body == {"counter": "layer one", "version": "2"}
        assert lambda_client.get_function_configuration(FunctionName=counter)["MemorySize"] == 1024
    finally:
        for name in (greeter, counter):
            with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
                lambda_client.delete_function(FunctionName=name)
        for v in lambda_client.list_layer_versions(LayerName=f"{stack}-shared")["LayerVersions"]:
            lambda_client.delete_layer_version(
                LayerName=f"{stack}-shared", VersionNumber=v["Version"]
            )


def write_one_function_template(root: Path, code_uri: str) -> None:
    """root/template.yaml: one Python function (app.handler) whose code is at `code_uri`."""
    (root / "template.yaml").write_text(
        textwrap.dedent(
            f"""\
            Transform: AWS::Serverless-2016-10-31
            Resources:
              Fn:
                Type: AWS::Serverless::Function
                Properties:
                  CodeUri: {code_uri}
                  Handler: app.handler
                  Runtime: {PYTHON_RUNTIME}
            """
        )
    )


def test_template_errors_are_clear(endpoint: str, tmp_path: Path) -> None:
    write_one_function_template(tmp_path, "s3://bucket/key.zip")
    out = deploy(endpoint, tmp_path, "broken", ok=False)
    assert "code at s3://bucket/key.zip: NoSuchBucket" in out
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n"
        "    Properties:\n      InlineCode: x\n"
    )
    out = deploy(endpoint, tmp_path, "broken", ok=False)
    assert "invalid SAM template" in out or "Error" in out


def test_code_at_an_s3_location_is_read_from_lamina(
    endpoint: str, tmp_path: Path, lambda_client: Any
) -> None:
    """A packaged template (`CodeUri: s3://bucket/key`, as `sam package` writes) deploys from
    Lamina's own S3 API."""
    s3 = client_for(endpoint, "s3")
    bucket = f"sam-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    code = "def handler(event, context):\n    return {'from': 's3'}\n"
    s3.put_object(Bucket=bucket, Key="pkg/app.zip", Body=make_zip({"app.py": code}))
    stack = f"s3code-{uuid.uuid4().hex[:6]}"
    write_one_function_template(tmp_path, f"s3://{bucket}/pkg/app.zip")
    deploy(endpoint, tmp_path, stack)
    name = f"{stack}-Fn"
    try:
        _, body = invoke_json(lambda_client, name)
        assert body == {"from": "s3"}
    finally:
        lambda_client.delete_function(FunctionName=name)
        s3.delete_object(Bucket=bucket, Key="pkg/app.zip")
        s3.delete_bucket(Bucket=bucket)


CANARY = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: {name}
      CodeUri: fn/
      Handler: app.handler
      Runtime: {runtime}
      AutoPublishAlias: live
      DeploymentPreference:
        Type: Canary10Percent30Minutes
"""


def test_canary_shift_sends_part_of_the_traffic_to_the_new_version(
    lambda_client: Any, endpoint: str, tmp_path: Path
) -> None:
    """While the canary holds, the alias routes about 10% to the new version; a deploy that was
    cut short in the middle is completed by the next one."""
    name = f"canary-{uuid.uuid4().hex[:8]}"
    (tmp_path / "fn").mkdir()
    code = "def handler(event, context):\n    return {{'code': '{v}'}}\n"
    (tmp_path / "fn" / "app.py").write_text(code.format(v="old"))
    (tmp_path / "template.yaml").write_text(CANARY.format(name=name, runtime=PYTHON_RUNTIME))
    try:
        deploy(endpoint, tmp_path, "canary")
        (tmp_path / "fn" / "app.py").write_text(code.format(v="new"))
        # 30 minutes x 0.05: the canary step holds 90 s, longer than the sampling below
        cmd = [sys.executable, "-m", "lamina", "deploy", "-t", str(tmp_path / "template.yaml")]
        cmd += ["--stack-name", "canary", "--traffic-shift-scale", "0.05"]
        shifting = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "LAMINA_ENDPOINT": endpoint},
        )
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                alias = lambda_client.get_alias(FunctionName=name, Name="live")
                if alias.get("RoutingConfig", {}).get("AdditionalVersionWeights"):
                    break
                time.sleep(0.1)
            assert alias["FunctionVersion"] == "1"
            assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.1}
            seen = {"old": 0, "new": 0}
            for _ in range(80):
                resp, body = invoke_json(lambda_client, name, Qualifier="live")
                seen[body["code"]] += 1
                version = resp["ResponseMetadata"]["HTTPHeaders"]["x-amz-executed-version"]
                assert version == ("2" if body["code"] == "new" else "1")
            assert seen["old"] > seen["new"] > 0, seen  # P(no new in 80) = 0.9^80 < 0.03%
        finally:
            shifting.kill()  # cut short in the middle of the shift
            shifting.wait()
        out = deploy(endpoint, tmp_path, "canary")  # the next deploy completes it
        assert f"= version {name}:2 (nothing changed, none published)" in out
        assert f"~ alias {name}:live: version 1 -> 2 (Canary10Percent30Minutes)" in out
        assert "alias live: 10% to version 2, 90% to version 1 (holding 0 s)" in out
        alias = lambda_client.get_alias(FunctionName=name, Name="live")
        assert alias["FunctionVersion"] == "2"
        assert not alias.get("RoutingConfig", {}).get("AdditionalVersionWeights")
        assert invoke_json(lambda_client, name, Qualifier="live")[1] == {"code": "new"}
    finally:
        with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
            lambda_client.delete_function(FunctionName=name)
