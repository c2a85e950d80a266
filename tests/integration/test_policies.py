"""Resource-based policies: AddPermission / GetPolicy / RemovePermission on functions, versions
and aliases, and the layer-version counterparts, through boto3 and the AWS CLI. Policies are
stored and returned, not enforced (Lamina does not authenticate requests yet)."""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (
    PYTHON_RUNTIME,
    ROLE,
    CreateFunction,
    client_for,
    function_zip,
    make_zip,
)
from tests.integration.lamina_process import LaminaProcess
from tests.integration.test_aws_cli import AwsCli, aws_json

ACCOUNT = "000000000000"
NO_POLICY = "The resource you requested does not exist."


def policy_of(client: Any, name: str, **kwargs: Any) -> tuple[dict[str, Any], str]:
    got = client.get_policy(FunctionName=name, **kwargs)
    return json.loads(got["Policy"]), got["RevisionId"]


def test_function_policy_as_lambda_builds_it(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    cfg = create_function()
    name, arn = cfg["FunctionName"], cfg["FunctionArn"]
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException, match=NO_POLICY):
        lambda_client.get_policy(FunctionName=name)
    added = lambda_client.add_permission(
        FunctionName=name,
        StatementId="s3-invoke",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        SourceArn="arn:aws:s3:::my-bucket",
        SourceAccount="123456789012",
    )
    s3_statement = {
        "Sid": "s3-invoke",
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": arn,
        "Condition": {
            "StringEquals": {"AWS:SourceAccount": "123456789012"},
            "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::my-bucket"},
        },
    }
    assert json.loads(added["Statement"]) == s3_statement
    lambda_client.add_permission(
        FunctionName=arn,
        StatementId="xaccount",
        Action="lambda:GetFunction",
        Principal="123456789012",
    )
    lambda_client.add_permission(
        FunctionName=name,
        StatementId="url",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )
    lambda_client.add_permission(
        FunctionName=name,
        StatementId="org",
        Action="lambda:*",
        Principal="*",
        PrincipalOrgID="o-abcdefghij",
        EventSourceToken="token.1",
    )
    policy, revision = policy_of(lambda_client, name)
    assert policy["Version"] == "2012-10-17" and policy["Id"] == "default"
    assert policy["Statement"] == [
        s3_statement,
        {
            "Sid": "xaccount",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "lambda:GetFunction",
            "Resource": arn,
        },
        {
            "Sid": "url",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "lambda:InvokeFunctionUrl",
            "Resource": arn,
            "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
        },
        {
            "Sid": "org",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "lambda:*",
            "Resource": arn,
            "Condition": {
                "StringEquals": {
                    "lambda:EventSourceToken": "token.1",
                    "aws:PrincipalOrgID": "o-abcdefghij",
                }
            },
        },
    ]
    with pytest.raises(lambda_client.exceptions.ResourceConflictException) as info:
        lambda_client.add_permission(
            FunctionName=name, StatementId="url", Action="lambda:InvokeFunction", Principal="*"
        )
    assert info.value.response["Error"]["Message"] == (
        "The statement id (url) provided already exists. Please provide a new statement id, "
        "or remove the existing statement."
    )
    with pytest.raises(lambda_client.exceptions.PreconditionFailedException):
        lambda_client.remove_permission(FunctionName=name, StatementId="url", RevisionId="stale")
    with pytest.raises(lambda_client.exceptions.PreconditionFailedException):
        lambda_client.add_permission(
            FunctionName=name,
            StatementId="late",
            Action="lambda:InvokeFunction",
            Principal="*",
            RevisionId="stale",
        )
    lambda_client.remove_permission(FunctionName=name, StatementId="url", RevisionId=revision)
    policy, second = policy_of(lambda_client, name)
    assert second != revision
    assert [s["Sid"] for s in policy["Statement"]] == ["s3-invoke", "xaccount", "org"]
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.remove_permission(FunctionName=name, StatementId="url")
    for sid in ("s3-invoke", "xaccount", "org"):
        lambda_client.remove_permission(FunctionName=name, StatementId=sid)
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException, match=NO_POLICY):
        lambda_client.get_policy(FunctionName=name)


def test_policies_per_qualifier(lambda_client: Any, create_function: CreateFunction) -> None:
    cfg = create_function(Publish=True)
    name = cfg["FunctionName"]
    arn = cfg["FunctionArn"].rsplit(":", 1)[0]  # the published version's ARN is qualified
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    # Without a policy yet, a RevisionId must be the one of what the policy is attached to.
    alias_revision = lambda_client.get_alias(FunctionName=name, Name="live")["RevisionId"]
    lambda_client.add_permission(
        FunctionName=name,
        Qualifier="live",
        StatementId="a",
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        RevisionId=alias_revision,
    )
    lambda_client.add_permission(
        FunctionName=f"{name}:1", StatementId="v", Action="lambda:InvokeFunction", Principal="*"
    )
    alias_policy, _ = policy_of(lambda_client, name, Qualifier="live")
    assert [s["Resource"] for s in alias_policy["Statement"]] == [f"{arn}:live"]
    version_policy, _ = policy_of(lambda_client, f"{arn}:1")
    assert [s["Resource"] for s in version_policy["Statement"]] == [f"{arn}:1"]
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.get_policy(FunctionName=name)  # the unqualified function has none
    for qualifier in ("7", "nope"):
        with pytest.raises(
            lambda_client.exceptions.ResourceNotFoundException, match="Function not found"
        ):
            lambda_client.add_permission(
                FunctionName=name,
                Qualifier=qualifier,
                StatementId="x",
                Action="lambda:InvokeFunction",
                Principal="*",
            )
    # A deleted alias or version takes its policy along; a new one starts without.
    lambda_client.delete_alias(FunctionName=name, Name="live")
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.get_policy(FunctionName=name, Qualifier="live")


def test_bad_input_and_missing_functions(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    name = create_function()["FunctionName"]

    def code_of(**kwargs: Any) -> str:
        args = {
            "FunctionName": name,
            "StatementId": "ok",
            "Action": "lambda:InvokeFunction",
            "Principal": "*",
            **kwargs,
        }
        with pytest.raises(lambda_client.exceptions.ClientError) as info:
            lambda_client.add_permission(**args)
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 404)
        return str(info.value.response["Error"]["Code"])

    assert code_of(StatementId="has space") == "ValidationException"
    assert code_of(Action="invoke") == "ValidationException"
    assert code_of(SourceAccount="12") == "ValidationException"
    assert code_of(PrincipalOrgID="org-abcdefghijk") == "ValidationException"
    assert code_of(FunctionUrlAuthType="MAYBE") == "ValidationException"
    assert code_of(FunctionName="missing-fn-xyz") == "ResourceNotFoundException"
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.get_policy(FunctionName="missing-fn-xyz")


@pytest.fixture
def layer(lambda_client: Any) -> Any:
    name = f"policy-{uuid.uuid4().hex[:8]}"
    lambda_client.publish_layer_version(
        LayerName=name, Content={"ZipFile": make_zip({"python/m.py": "VALUE = 1\n"})}
    )
    yield name
    lambda_client.delete_layer_version(LayerName=name, VersionNumber=1)


def test_layer_version_policy(lambda_client: Any, layer: str) -> None:
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:{layer}:1"
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.get_layer_version_policy(LayerName=layer, VersionNumber=1)
    added = lambda_client.add_layer_version_permission(
        LayerName=layer,
        VersionNumber=1,
        StatementId="org",
        Action="lambda:GetLayerVersion",
        Principal="*",
        OrganizationId="o-abcdefghij",
    )
    assert json.loads(added["Statement"]) == {
        "Sid": "org",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "lambda:GetLayerVersion",
        "Resource": arn,
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}},
    }
    second = lambda_client.add_layer_version_permission(
        LayerName=layer,
        VersionNumber=1,
        StatementId="acct",
        Action="lambda:GetLayerVersion",
        Principal="123456789012",
        RevisionId=added["RevisionId"],
    )
    got = lambda_client.get_layer_version_policy(LayerName=layer, VersionNumber=1)
    assert got["RevisionId"] == second["RevisionId"] != added["RevisionId"]
    policy = json.loads(got["Policy"])
    assert policy["Id"] == "default" and policy["Version"] == "2012-10-17"
    assert policy["Statement"][1]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    with pytest.raises(lambda_client.exceptions.ResourceConflictException):
        lambda_client.add_layer_version_permission(
            LayerName=layer,
            VersionNumber=1,
            StatementId="org",
            Action="lambda:GetLayerVersion",
            Principal="*",
        )
    with pytest.raises(lambda_client.exceptions.PreconditionFailedException):
        lambda_client.remove_layer_version_permission(
            LayerName=layer, VersionNumber=1, StatementId="org", RevisionId=added["RevisionId"]
        )
    with pytest.raises(lambda_client.exceptions.ClientError) as info:
        lambda_client.add_layer_version_permission(
            LayerName=layer,
            VersionNumber=1,
            StatementId="x",
            Action="lambda:InvokeFunction",
            Principal="*",
        )
    assert info.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.add_layer_version_permission(
            LayerName=layer,
            VersionNumber=2,
            StatementId="x",
            Action="lambda:GetLayerVersion",
            Principal="*",
        )
    lambda_client.remove_layer_version_permission(
        LayerName=layer, VersionNumber=1, StatementId="org"
    )
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.remove_layer_version_permission(
            LayerName=layer, VersionNumber=1, StatementId="org"
        )
    lambda_client.remove_layer_version_permission(
        LayerName=layer, VersionNumber=1, StatementId="acct"
    )
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.get_layer_version_policy(LayerName=layer, VersionNumber=1)


def test_add_permission_through_the_cli(aws_cli: AwsCli, create_function: CreateFunction) -> None:
    name = create_function()["FunctionName"]
    added = aws_json(
        aws_cli,
        "lambda",
        "add-permission",
        "--function-name",
        name,
        "--statement-id",
        "sns",
        "--action",
        "lambda:InvokeFunction",
        "--principal",
        "sns.amazonaws.com",
        "--source-arn",
        "arn:aws:sns:us-east-1:123456789012:topic",
    )
    assert json.loads(added["Statement"])["Principal"] == {"Service": "sns.amazonaws.com"}
    got = aws_json(aws_cli, "lambda", "get-policy", "--function-name", name)
    assert [s["Sid"] for s in json.loads(got["Policy"])["Statement"]] == ["sns"]
    aws_cli("lambda", "remove-permission", "--function-name", name, "--statement-id", "sns")
    missing = aws_cli("lambda", "get-policy", "--function-name", name, check=False)
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr


def test_policies_and_tags_survive_a_restart_and_go_with_the_function(tmp_path: Path) -> None:
    server = LaminaProcess(tmp_path / "data")
    server.start()
    try:
        client = client_for(server.endpoint)
        client.create_function(
            FunctionName="kept",
            Runtime=PYTHON_RUNTIME,
            Role=ROLE,
            Handler="echo.handler",
            Code={"ZipFile": function_zip("echo")},
            Tags={"team": "core"},
        )
        client.get_waiter("function_active_v2").wait(FunctionName="kept")
        client.add_permission(
            FunctionName="kept", StatementId="a", Action="lambda:InvokeFunction", Principal="*"
        )
        client.publish_layer_version(
            LayerName="kept-layer", Content={"ZipFile": make_zip({"python/m.py": "VALUE = 1\n"})}
        )
        client.add_layer_version_permission(
            LayerName="kept-layer",
            VersionNumber=1,
            StatementId="all",
            Action="lambda:GetLayerVersion",
            Principal="*",
        )
        before = client.get_policy(FunctionName="kept")
        assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)

        server.start()
        client = client_for(server.endpoint)
        after = client.get_policy(FunctionName="kept")
        assert (after["Policy"], after["RevisionId"]) == (before["Policy"], before["RevisionId"])
        arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:kept"
        assert client.list_tags(Resource=arn)["Tags"] == {"team": "core"}
        layer_policy = client.get_layer_version_policy(LayerName="kept-layer", VersionNumber=1)
        assert [s["Sid"] for s in json.loads(layer_policy["Policy"])["Statement"]] == ["all"]

        client.delete_function(FunctionName="kept")
        client.create_function(
            FunctionName="kept",
            Runtime=PYTHON_RUNTIME,
            Role=ROLE,
            Handler="echo.handler",
            Code={"ZipFile": function_zip("echo")},
        )
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.get_policy(FunctionName="kept")
        assert client.list_tags(Resource=arn)["Tags"] == {}
    finally:
        server.stop(signal.SIGTERM)
