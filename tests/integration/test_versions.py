"""Versions (issue 6): PublishVersion, ListVersionsByFunction, qualifiers on reads, invokes and
deletes, Publish=true on create and code updates, ListFunctions with FunctionVersion=ALL."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.integration.conftest import (
    CreateFunction,
    invoke_json,
    make_zip,
)
from tests.integration.test_layers import (  # noqa: F401  (fixtures)
    Publish,
    layer_name,
    probe_zip,
    publish,
)
from tests.integration.test_lifecycle import environment_pids, wait_until

ACCOUNT = "000000000000"
REGION = "us-east-1"
WAIT = {"Delay": 0.1, "MaxAttempts": 200}


def arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def tagged_zip(tag: str) -> bytes:
    """A function that says which code it is, and which version ran it."""
    return make_zip(
        {
            "tagged.py": (
                "import os, uuid\n"
                f"TAG = {tag!r}\n"
                "INSTANCE = uuid.uuid4().hex  # one per execution environment\n"
                "def handler(event, context):\n"
                "    return {'tag': TAG, 'version': context.function_version,\n"
                "            'arn': context.invoked_function_arn, 'pid': INSTANCE,\n"
                "            'env': os.environ.get('COLOUR'),\n"
                "            'stream': context.log_stream_name}\n"
            )
        }
    )


def settle(lambda_client: Any, name: str) -> None:
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=WAIT)


def make(create_function: CreateFunction, tag: str = "v1", **kwargs: Any) -> str:
    cfg = create_function(zip_bytes=tagged_zip(tag), handler="tagged.handler", **kwargs)
    return str(cfg["FunctionName"])


def update_code(lambda_client: Any, name: str, tag: str, **kwargs: Any) -> dict[str, Any]:
    out = lambda_client.update_function_code(FunctionName=name, ZipFile=tagged_zip(tag), **kwargs)
    settle(lambda_client, name)
    return dict(out)


def run(lambda_client: Any, name: str, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    return invoke_json(lambda_client, name, {}, **kwargs)


# -- PublishVersion ---------------------------------------------------------------------------


def test_publish_snapshots_latest(lambda_client: Any, create_function: CreateFunction) -> None:
    name = make(create_function, Description="the function")
    latest = lambda_client.get_function_configuration(FunctionName=name)
    usage = lambda_client.get_account_settings()["AccountUsage"]["TotalCodeSize"]
    v1 = lambda_client.publish_version(FunctionName=name, Description="first")
    # Every version's package counts towards the account's code size, as on AWS.
    after = lambda_client.get_account_settings()["AccountUsage"]["TotalCodeSize"]
    assert after == usage + v1["CodeSize"]
    # Publishing is a change of the function: $LATEST gets a new RevisionId.
    bumped = lambda_client.get_function_configuration(FunctionName=name)["RevisionId"]
    assert bumped != latest["RevisionId"]
    assert v1["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert v1["Version"] == "1"
    assert v1["FunctionArn"] == arn(name) + ":1"
    assert v1["Description"] == "first"
    assert v1["State"] == "Active"
    assert v1["LastUpdateStatus"] == "Successful"
    assert v1["CodeSha256"] == latest["CodeSha256"]
    assert v1["RevisionId"] != latest["RevisionId"]

    # Nothing changed since version 1: publishing returns it.
    again = lambda_client.publish_version(FunctionName=name, Description="ignored")
    assert again["Version"] == "1"
    assert again["RevisionId"] == v1["RevisionId"]

    # A configuration change makes the next publish a new version; $LATEST stays mutable.
    lambda_client.update_function_configuration(FunctionName=name, MemorySize=256)
    settle(lambda_client, name)
    v2 = lambda_client.publish_version(FunctionName=name)
    assert v2["Version"] == "2"
    assert v2["MemorySize"] == 256
    assert v2["Description"] == "the function"  # $LATEST's, when none is given
    got = lambda_client.get_function_configuration(FunctionName=name, Qualifier="1")
    assert got["MemorySize"] == 128
    assert got["Version"] == "1"
    assert got["FunctionArn"] == arn(name) + ":1"
    assert got["RevisionId"] == v1["RevisionId"]


def test_publish_preconditions(lambda_client: Any, create_function: CreateFunction) -> None:
    name = make(create_function)
    cfg = lambda_client.get_function_configuration(FunctionName=name)
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException) as err:
        lambda_client.publish_version(FunctionName=name, CodeSha256="bm90IHRoZSBzaGE=")
    assert "is different from current CodeSHA256 in $LATEST" in str(err.value)
    with pytest.raises(lambda_client.exceptions.PreconditionFailedException):
        lambda_client.publish_version(FunctionName=name, RevisionId="0" * 36)
    v1 = lambda_client.publish_version(
        FunctionName=name, CodeSha256=cfg["CodeSha256"], RevisionId=cfg["RevisionId"]
    )
    assert v1["Version"] == "1"
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.publish_version(FunctionName=name + "-missing")
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException):
        lambda_client.publish_version(FunctionName=name + ":1")


def test_version_numbers_are_never_reused(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    name = make(create_function)
    lambda_client.publish_version(FunctionName=name)
    update_code(lambda_client, name, "v2")
    assert lambda_client.publish_version(FunctionName=name)["Version"] == "2"
    lambda_client.delete_function(FunctionName=name, Qualifier="2")
    update_code(lambda_client, name, "v3")
    assert lambda_client.publish_version(FunctionName=name)["Version"] == "3"
    versions = lambda_client.list_versions_by_function(FunctionName=name)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "3"]


def test_create_and_update_code_with_publish(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    cfg = create_function(zip_bytes=tagged_zip("one"), handler="tagged.handler", Publish=True)
    name = cfg["FunctionName"]
    assert cfg["Version"] == "1"
    assert cfg["FunctionArn"] == arn(name) + ":1"
    out = lambda_client.update_function_code(
        FunctionName=name, ZipFile=tagged_zip("two"), Publish=True
    )
    assert out["Version"] == "2"
    assert out["FunctionArn"] == arn(name) + ":2"
    settle(lambda_client, name)
    assert run(lambda_client, name, Qualifier="1")[1]["tag"] == "one"
    assert run(lambda_client, name, Qualifier="2")[1]["tag"] == "two"
    assert run(lambda_client, name)[1]["tag"] == "two"


# -- ListVersionsByFunction and ListFunctions(FunctionVersion=ALL) ----------------------------


def test_list_versions_pages(lambda_client: Any, create_function: CreateFunction) -> None:
    name = make(create_function)
    for i in range(4):
        lambda_client.update_function_configuration(FunctionName=name, Timeout=10 + i)
        settle(lambda_client, name)
        lambda_client.publish_version(FunctionName=name)
    first = lambda_client.list_versions_by_function(FunctionName=name, MaxItems=2)
    assert [v["Version"] for v in first["Versions"]] == ["$LATEST", "1"]
    assert first["Versions"][0]["FunctionArn"] == arn(name) + ":$LATEST"
    assert first["Versions"][1]["FunctionArn"] == arn(name) + ":1"
    assert "State" not in first["Versions"][1]  # list entries leave the states out, as AWS
    second = lambda_client.list_versions_by_function(
        FunctionName=name, MaxItems=2, Marker=first["NextMarker"]
    )
    assert [v["Version"] for v in second["Versions"]] == ["2", "3"]
    third = lambda_client.list_versions_by_function(
        FunctionName=name, MaxItems=2, Marker=second["NextMarker"]
    )
    assert [v["Version"] for v in third["Versions"]] == ["4"]
    assert "NextMarker" not in third
    paginator = lambda_client.get_paginator("list_versions_by_function")
    seen = [
        v["Version"]
        for page in paginator.paginate(FunctionName=name, PaginationConfig={"PageSize": 3})
        for v in page["Versions"]
    ]
    assert seen == ["$LATEST", "1", "2", "3", "4"]
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.list_versions_by_function(FunctionName=name + "-missing")


def test_list_functions_all_versions(lambda_client: Any, create_function: CreateFunction) -> None:
    name = make(create_function)
    lambda_client.publish_version(FunctionName=name)
    paginator = lambda_client.get_paginator("list_functions")
    everything = [
        f
        for page in paginator.paginate(FunctionVersion="ALL", PaginationConfig={"PageSize": 7})
        for f in page["Functions"]
    ]
    mine = [f for f in everything if f["FunctionName"] == name]
    assert [f["Version"] for f in mine] == ["$LATEST", "1"]
    assert [f["FunctionArn"] for f in mine] == [arn(name) + ":$LATEST", arn(name) + ":1"]
    assert len({f["FunctionArn"] for f in everything}) == len(everything)
    plain = [
        f for page in paginator.paginate() for f in page["Functions"] if f["FunctionName"] == name
    ]
    assert [f["FunctionArn"] for f in plain] == [arn(name)]
    with pytest.raises(lambda_client.exceptions.ClientError) as err:
        lambda_client.list_functions(FunctionVersion="SOME")
    assert err.value.response["Error"]["Code"] == "ValidationException"


# -- Qualifiers --------------------------------------------------------------------------------


def test_qualified_reads_and_invokes(lambda_client: Any, create_function: CreateFunction) -> None:
    name = make(create_function, "old")
    lambda_client.publish_version(FunctionName=name)
    update_code(lambda_client, name, "new")

    for ident, qualifier in (
        (name, "1"),
        (name + ":1", None),
        (arn(name) + ":1", None),
        (f"{ACCOUNT}:function:{name}:1", None),
        (arn(name), "1"),
    ):
        kwargs = {"Qualifier": qualifier} if qualifier else {}
        got = lambda_client.get_function(FunctionName=ident, **kwargs)
        assert got["Configuration"]["Version"] == "1", ident
        assert got["Configuration"]["FunctionArn"] == arn(name) + ":1"
        resp, body = run(lambda_client, ident, **kwargs)
        assert resp["ExecutedVersion"] == "1"
        assert body["tag"] == "old"
        assert body["version"] == "1"
        assert body["arn"] == arn(name) + ":1"

    resp, body = run(lambda_client, name)
    assert (resp["ExecutedVersion"], body["tag"], body["version"]) == ("$LATEST", "new", "$LATEST")
    assert body["arn"] == arn(name)
    resp, body = run(lambda_client, name, Qualifier="$LATEST")
    assert body["arn"] == arn(name) + ":$LATEST"
    # The log names the version that ran, in START and in the stream name.
    resp, body = run(lambda_client, name, Qualifier="1", LogType="Tail")
    assert "Version: 1\n" in base64.b64decode(resp["LogResult"]).decode()
    assert "[1]" in body["stream"]

    # The code of a version is its own: GetFunction's Location serves version 1's zip.
    v1 = lambda_client.get_function(FunctionName=name, Qualifier="1")
    latest = lambda_client.get_function(FunctionName=name)
    assert v1["Code"]["Location"] != latest["Code"]["Location"]


def test_qualifier_errors(lambda_client: Any, create_function: CreateFunction) -> None:
    name = make(create_function)
    lambda_client.publish_version(FunctionName=name)
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException) as err:
        lambda_client.get_function(FunctionName=name, Qualifier="7")
    assert str(err.value).endswith(f"Function not found: {arn(name)}:7")
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.get_function_configuration(FunctionName=name, Qualifier="nosuchalias")
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.invoke(FunctionName=name, Qualifier="7")
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.invoke(FunctionName=f"{name}:nosuchalias")
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException) as err:
        lambda_client.get_function(FunctionName=name + ":1", Qualifier="2")
    assert "does not match the specified qualifier" in str(err.value)
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException):
        lambda_client.invoke(FunctionName=arn(name) + ":1", Qualifier="$LATEST")


# -- DeleteFunction with a qualifier ----------------------------------------------------------


def test_delete_versions(lambda_client: Any, create_function: CreateFunction) -> None:
    name = make(create_function, "one")
    lambda_client.publish_version(FunctionName=name)
    update_code(lambda_client, name, "two")
    lambda_client.publish_version(FunctionName=name)
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")

    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException) as err:
        lambda_client.delete_function(FunctionName=name, Qualifier="$LATEST")
    assert "$LATEST version cannot be deleted" in str(err.value)
    with pytest.raises(lambda_client.exceptions.ResourceConflictException) as err:
        lambda_client.delete_function(FunctionName=name, Qualifier="1")
    assert "the following aliases reference it: [live]" in str(err.value)
    with pytest.raises(lambda_client.exceptions.ResourceConflictException):
        lambda_client.delete_function(FunctionName=name, Qualifier="live")

    assert run(lambda_client, name, Qualifier="2")[1]["tag"] == "two"
    lambda_client.delete_function(FunctionName=arn(name) + ":2")
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.invoke(FunctionName=name, Qualifier="2")
    lambda_client.delete_function(FunctionName=name, Qualifier="2")  # gone already: fine
    assert run(lambda_client, name, Qualifier="live")[1]["tag"] == "one"

    lambda_client.delete_function(FunctionName=name)
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.get_function(FunctionName=name, Qualifier="1")
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.get_alias(FunctionName=name, Name="live")


# -- Execution environments per version -------------------------------------------------------


def test_environments_are_per_version(lambda_client: Any, create_function: CreateFunction) -> None:
    name = make(create_function, "first", Environment={"Variables": {"COLOUR": "red"}})
    lambda_client.publish_version(FunctionName=name)
    v1 = run(lambda_client, name, Qualifier="1")[1]
    latest = run(lambda_client, name)[1]
    assert v1["pid"] != latest["pid"]  # one environment each

    update_code(lambda_client, name, "second")
    lambda_client.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"COLOUR": "blue"}}
    )
    settle(lambda_client, name)
    # Updating $LATEST retired only $LATEST's environment: version 1's stays warm.
    again = run(lambda_client, name, Qualifier="1")[1]
    assert (again["tag"], again["env"], again["pid"]) == ("first", "red", v1["pid"])
    now = run(lambda_client, name)[1]
    assert (now["tag"], now["env"]) == ("second", "blue")
    assert now["pid"] != latest["pid"]

    # Deleting version 1 retires its environment: a new version 2 runs in a new one.
    lambda_client.publish_version(FunctionName=name)
    v2 = run(lambda_client, name, Qualifier="2")[1]
    assert v2["tag"] == "second"
    assert json.dumps(v2["version"]) == '"2"'


def test_updates_and_deletes_retire_only_their_version(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    name = make(create_function, "one")
    lambda_client.publish_version(FunctionName=name)
    update_code(lambda_client, name, "two")
    lambda_client.publish_version(FunctionName=name)
    streams = {q: run(lambda_client, name, Qualifier=q)[1]["stream"] for q in ("$LATEST", "1", "2")}
    assert "[1]" in streams["1"] and "[2]" in streams["2"] and "[$LATEST]" in streams["$LATEST"]
    assert all(environment_pids(s) for s in streams.values())

    lambda_client.update_function_configuration(FunctionName=name, Timeout=9)
    settle(lambda_client, name)
    assert wait_until(lambda: not environment_pids(streams["$LATEST"]))
    assert environment_pids(streams["1"]) and environment_pids(streams["2"])

    lambda_client.delete_function(FunctionName=name, Qualifier="1")
    assert wait_until(lambda: not environment_pids(streams["1"]))
    assert environment_pids(streams["2"])
    assert run(lambda_client, name, Qualifier="2")[1]["stream"] == streams["2"]  # still warm

    lambda_client.delete_function(FunctionName=name)
    assert wait_until(lambda: not environment_pids(streams["2"]))


def test_reserved_concurrency_is_per_function(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    name = make(create_function)
    lambda_client.publish_version(FunctionName=name)
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException) as err:
        lambda_client.put_function_concurrency(
            FunctionName=f"{name}:1", ReservedConcurrentExecutions=1
        )
    assert "Aliases and versions do not support this operation" in str(err.value)
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    for qualifier in ("$LATEST", "1", "live"):
        with pytest.raises(lambda_client.exceptions.TooManyRequestsException):
            lambda_client.invoke(FunctionName=name, Qualifier=qualifier, Payload=b"{}")
    lambda_client.delete_function_concurrency(FunctionName=name)
    assert run(lambda_client, name, Qualifier="live")[0]["ExecutedVersion"] == "1"


def test_a_version_keeps_its_layers(
    lambda_client: Any,
    create_function: CreateFunction,
    publish: Publish,  # noqa: F811
    layer_name: str,  # noqa: F811
) -> None:
    """A published version runs with the layers it was published with, whatever $LATEST does."""
    one = publish(layer_name, {"python/which.py": "VALUE = 'one'\n"})
    two = publish(layer_name, {"python/which.py": "VALUE = 'two'\n"})
    cfg = create_function(
        zip_bytes=probe_zip(), handler="probe.handler", Layers=[one["LayerVersionArn"]]
    )
    name = cfg["FunctionName"]
    v1 = lambda_client.publish_version(FunctionName=name)
    assert [layer["Arn"] for layer in v1["Layers"]] == [one["LayerVersionArn"]]
    lambda_client.update_function_configuration(FunctionName=name, Layers=[two["LayerVersionArn"]])
    settle(lambda_client, name)
    assert invoke_json(lambda_client, name, {"import": ["which"]})[1]["which"] == "two"
    resp, out = invoke_json(lambda_client, name, {"import": ["which"]}, Qualifier="1")
    assert (resp["ExecutedVersion"], out["which"]) == ("1", "one")
    # Changing the layers is a change: the next publish is a new version.
    assert lambda_client.publish_version(FunctionName=name)["Version"] == "2"
