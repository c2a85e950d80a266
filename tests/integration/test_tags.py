"""Tags on functions: TagResource, UntagResource, ListTags and CreateFunction's Tags, as boto3
sees them (Terraform calls ListTags right after CreateFunction)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import CreateFunction

ACCOUNT = "000000000000"


def test_tags_round_trip(lambda_client: Any, create_function: CreateFunction) -> None:
    cfg = create_function(Tags={"team": "core", "empty": ""})
    arn = cfg["FunctionArn"]
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {"team": "core", "empty": ""}
    lambda_client.tag_resource(Resource=arn, Tags={"team": "edge", "stage": "dev"})
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {
        "team": "edge",
        "empty": "",
        "stage": "dev",
    }
    got = lambda_client.get_function(FunctionName=cfg["FunctionName"])
    assert got["Tags"] == {"team": "edge", "empty": "", "stage": "dev"}
    assert "Tags" not in got["Configuration"]
    lambda_client.untag_resource(Resource=arn, TagKeys=["team", "stage", "never-set"])
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {"empty": ""}
    lambda_client.untag_resource(Resource=arn, TagKeys=["empty"])
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {}
    assert "Tags" not in lambda_client.get_function(FunctionName=cfg["FunctionName"])


def test_tags_go_with_the_function(lambda_client: Any, create_function: CreateFunction) -> None:
    cfg = create_function(Tags={"a": "1"})
    lambda_client.delete_function(FunctionName=cfg["FunctionName"])
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.list_tags(Resource=cfg["FunctionArn"])
    again = create_function(name=cfg["FunctionName"])
    assert lambda_client.list_tags(Resource=again["FunctionArn"])["Tags"] == {}


def test_tag_limits(lambda_client: Any, create_function: CreateFunction) -> None:
    cfg = create_function()
    arn = cfg["FunctionArn"]
    bad = lambda_client.exceptions.InvalidParameterValueException
    with pytest.raises(bad, match="aws:"):
        lambda_client.tag_resource(Resource=arn, Tags={"aws:owner": "x"})
    with pytest.raises(bad):
        lambda_client.tag_resource(Resource=arn, Tags={"k" * 129: "x"})
    with pytest.raises(bad):
        lambda_client.tag_resource(Resource=arn, Tags={"k": "v" * 257})
    lambda_client.tag_resource(Resource=arn, Tags={f"k{i}": "v" for i in range(40)})
    with pytest.raises(bad, match="Number of tags exceeds resource tag limit"):
        lambda_client.tag_resource(Resource=arn, Tags={f"n{i}": "v" for i in range(11)})
    assert len(lambda_client.list_tags(Resource=arn)["Tags"]) == 40  # nothing was applied
    lambda_client.tag_resource(Resource=arn, Tags={f"n{i}": "v" for i in range(10)})
    assert len(lambda_client.list_tags(Resource=arn)["Tags"]) == 50
    with pytest.raises(bad, match="aws:"):
        create_function(Tags={"AWS:x": "1"})


def test_tags_refuse_versions_aliases_and_other_resources(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    cfg = create_function()
    arn = cfg["FunctionArn"]
    for qualified in (f"{arn}:$LATEST", f"{arn}:1", f"{arn}:live"):
        with pytest.raises(
            lambda_client.exceptions.InvalidParameterValueException, match="function ARN"
        ):
            lambda_client.list_tags(Resource=qualified)
        with pytest.raises(lambda_client.exceptions.InvalidParameterValueException):
            lambda_client.tag_resource(Resource=qualified, Tags={"a": "b"})
    err = lambda_client.exceptions.ClientError
    with pytest.raises(err) as info:
        lambda_client.list_tags(Resource=cfg["FunctionName"])  # a name is not an ARN
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.list_tags(Resource=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:nope-xyz")
