"""Versions and aliases through the AWS CLI, and kept across a restart of the server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import PYTHON_RUNTIME, ROLE, client_for
from tests.integration.lamina_process import LaminaProcess
from tests.integration.test_aws_cli import AwsCli, aws_json
from tests.integration.test_versions import WAIT, arn, tagged_zip


def test_versions_and_aliases_through_the_cli(
    aws_cli: AwsCli, tmp_path: Path, lambda_client: Any
) -> None:
    name = f"cli-versions-{uuid.uuid4().hex[:8]}"
    one, two = tmp_path / "one.zip", tmp_path / "two.zip"
    one.write_bytes(tagged_zip("one"))
    two.write_bytes(tagged_zip("two"))
    try:
        created = aws_json(
            aws_cli,
            "lambda",
            "create-function",
            "--function-name",
            name,
            "--runtime",
            PYTHON_RUNTIME,
            "--role",
            ROLE,
            "--handler",
            "tagged.handler",
            "--zip-file",
            f"fileb://{one}",
            "--publish",
        )
        assert created["Version"] == "1"
        aws_cli("lambda", "wait", "function-active-v2", "--function-name", name)
        aws_json(
            aws_cli,
            "lambda",
            "update-function-code",
            "--function-name",
            name,
            "--zip-file",
            f"fileb://{two}",
        )
        lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=WAIT)
        v2 = aws_json(
            aws_cli, "lambda", "publish-version", "--function-name", name, "--description", "two"
        )
        assert (v2["Version"], v2["Description"]) == ("2", "two")
        versions = aws_json(aws_cli, "lambda", "list-versions-by-function", "--function-name", name)
        assert [v["Version"] for v in versions["Versions"]] == ["$LATEST", "1", "2"]

        alias = aws_json(
            aws_cli,
            "lambda",
            "create-alias",
            "--function-name",
            name,
            "--name",
            "live",
            "--function-version",
            "1",
        )
        assert alias["AliasArn"] == arn(name) + ":live"
        out = tmp_path / "out.json"
        meta = aws_json(
            aws_cli,
            "lambda",
            "invoke",
            "--function-name",
            f"{name}:live",
            "--payload",
            "{}",
            str(out),
        )
        assert meta["ExecutedVersion"] == "1"
        assert json.loads(out.read_text())["tag"] == "one"

        weighted = aws_json(
            aws_cli,
            "lambda",
            "update-alias",
            "--function-name",
            name,
            "--name",
            "live",
            "--routing-config",
            "AdditionalVersionWeights={2=0.25}",
        )
        assert weighted["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.25}}
        listed = aws_json(
            aws_cli, "lambda", "list-aliases", "--function-name", name, "--function-version", "2"
        )
        assert [a["Name"] for a in listed["Aliases"]] == ["live"]
        got = aws_json(
            aws_cli,
            "lambda",
            "get-function-configuration",
            "--function-name",
            name,
            "--qualifier",
            "2",
        )
        assert got["FunctionArn"] == arn(name) + ":2"

        failed = aws_cli(
            "lambda", "delete-function", "--function-name", name, "--qualifier", "2", check=False
        )
        assert failed.returncode != 0
        assert "ResourceConflictException" in failed.stderr
        aws_cli("lambda", "delete-alias", "--function-name", name, "--name", "live")
        aws_cli("lambda", "delete-function", "--function-name", name, "--qualifier", "2")
        versions = aws_json(aws_cli, "lambda", "list-versions-by-function", "--function-name", name)
        assert [v["Version"] for v in versions["Versions"]] == ["$LATEST", "1"]
    finally:
        aws_cli("lambda", "delete-function", "--function-name", name, check=False)


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[LaminaProcess]:
    server = LaminaProcess(tmp_path / "data")
    server.start()
    yield server
    server.stop()


def test_versions_and_aliases_survive_a_restart(private_server: LaminaProcess) -> None:
    client = client_for(private_server.endpoint)
    name = "kept"
    client.create_function(
        FunctionName=name,
        Runtime=PYTHON_RUNTIME,
        Role=ROLE,
        Handler="tagged.handler",
        Code={"ZipFile": tagged_zip("one")},
        Publish=True,
    )
    client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=WAIT)
    client.update_function_code(FunctionName=name, ZipFile=tagged_zip("two"), Publish=True)
    client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=WAIT)
    client.delete_function(FunctionName=name, Qualifier="1")
    client.update_function_code(FunctionName=name, ZipFile=tagged_zip("three"))
    client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=WAIT)
    client.create_alias(
        FunctionName=name, Name="live", FunctionVersion="2", Description="kept alias"
    )
    before_alias = client.get_alias(FunctionName=name, Name="live")
    before_v2 = client.get_function_configuration(FunctionName=name, Qualifier="2")

    private_server.stop()
    private_server.start()
    client = client_for(private_server.endpoint)

    versions = client.list_versions_by_function(FunctionName=name)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "2"]
    after_v2 = client.get_function_configuration(FunctionName=name, Qualifier="2")
    assert after_v2 == {**after_v2, **{k: before_v2[k] for k in ("RevisionId", "CodeSha256")}}
    after_alias = client.get_alias(FunctionName=name, Name="live")
    del before_alias["ResponseMetadata"], after_alias["ResponseMetadata"]
    assert after_alias == before_alias
    resp = client.invoke(FunctionName=name, Qualifier="live", Payload=b"{}")
    assert resp["ExecutedVersion"] == "2"
    assert json.loads(resp["Payload"].read())["tag"] == "two"
    latest = json.loads(client.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    assert latest["tag"] == "three"
    # Numbers are never reused, also after a restart: the next version is 3.
    assert client.publish_version(FunctionName=name)["Version"] == "3"
