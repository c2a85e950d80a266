"""Aliases (issue 6): CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases, invoking
through an alias, and the validation AWS applies to names, versions and routing weights."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import CreateFunction, client_for
from tests.integration.test_versions import arn, make, run, update_code


def published(lambda_client: Any, create_function: CreateFunction, count: int) -> str:
    """A function with versions 1..count, each tagged v<n>."""
    name = make(create_function, "v1")
    lambda_client.publish_version(FunctionName=name)
    for n in range(2, count + 1):
        update_code(lambda_client, name, f"v{n}")
        lambda_client.publish_version(FunctionName=name)
    return name


def test_alias_lifecycle(lambda_client: Any, create_function: CreateFunction) -> None:
    name = published(lambda_client, create_function, 2)
    created = lambda_client.create_alias(
        FunctionName=name, Name="live", FunctionVersion="1", Description="production"
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["AliasArn"] == arn(name) + ":live"
    assert (created["Name"], created["FunctionVersion"], created["Description"]) == (
        "live",
        "1",
        "production",
    )
    assert "RoutingConfig" not in created
    got = lambda_client.get_alias(FunctionName=arn(name), Name="live")
    assert got["RevisionId"] == created["RevisionId"]

    resp, body = run(lambda_client, name, Qualifier="live")
    assert (resp["ExecutedVersion"], body["tag"]) == ("1", "v1")
    assert body["arn"] == arn(name) + ":live"
    assert body["version"] == "1"
    # GetFunction names the alias; GetFunctionConfiguration the version it points at.
    fn = lambda_client.get_function(FunctionName=f"{name}:live")["Configuration"]
    assert (fn["FunctionArn"], fn["Version"]) == (arn(name) + ":live", "1")
    cfg = lambda_client.get_function_configuration(FunctionName=name, Qualifier="live")
    assert (cfg["FunctionArn"], cfg["Version"]) == (arn(name) + ":1", "1")

    with pytest.raises(lambda_client.exceptions.PreconditionFailedException):
        lambda_client.update_alias(
            FunctionName=name, Name="live", FunctionVersion="2", RevisionId="0" * 36
        )
    updated = lambda_client.update_alias(
        FunctionName=name, Name="live", FunctionVersion="2", RevisionId=created["RevisionId"]
    )
    assert updated["FunctionVersion"] == "2"
    assert updated["Description"] == "production"  # kept: not given
    assert updated["RevisionId"] != created["RevisionId"]
    assert run(lambda_client, f"{name}:live")[0]["ExecutedVersion"] == "2"
    assert run(lambda_client, arn(name) + ":live")[1]["tag"] == "v2"

    lambda_client.delete_alias(FunctionName=name, Name="live")
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException) as err:
        lambda_client.get_alias(FunctionName=name, Name="live")
    assert f"Cannot find alias arn: {arn(name)}:live" in str(err.value)
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.invoke(FunctionName=name, Qualifier="live")
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.delete_alias(FunctionName=name, Name="live")


def test_alias_to_latest_follows_updates(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    name = make(create_function, "a")
    lambda_client.create_alias(FunctionName=name, Name="edge", FunctionVersion="$LATEST")
    assert run(lambda_client, name, Qualifier="edge")[1]["tag"] == "a"
    update_code(lambda_client, name, "b")
    resp, body = run(lambda_client, name, Qualifier="edge")
    assert (resp["ExecutedVersion"], body["tag"]) == ("$LATEST", "b")


def test_alias_errors(lambda_client: Any, create_function: CreateFunction) -> None:
    name = published(lambda_client, create_function, 1)
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    with pytest.raises(lambda_client.exceptions.ResourceConflictException) as err:
        lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    assert f"Alias already exists: {arn(name)}:live" in str(err.value)
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException) as err:
        lambda_client.create_alias(FunctionName=name, Name="next", FunctionVersion="9")
    assert f"Function not found: {arn(name)}:9" in str(err.value)
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.create_alias(FunctionName=name + "-gone", Name="x", FunctionVersion="1")
    for bad_name in ("2024", "bad.name"):
        with pytest.raises(lambda_client.exceptions.ClientError) as err:
            lambda_client.create_alias(FunctionName=name, Name=bad_name, FunctionVersion="1")
        assert err.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(lambda_client.exceptions.ClientError) as err:
        lambda_client.create_alias(FunctionName=name, Name="x", FunctionVersion="latest")
    assert err.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException) as err:
        lambda_client.update_alias(FunctionName=name, Name="ghost", FunctionVersion="1")
    assert f"Alias not found: {arn(name)}:ghost" in str(err.value)
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.update_alias(FunctionName=name, Name="live", FunctionVersion="5")
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException):
        lambda_client.get_alias(FunctionName=name + ":1", Name="live")


def test_list_aliases(lambda_client: Any, create_function: CreateFunction) -> None:
    name = published(lambda_client, create_function, 2)
    for alias, version in (("a", "1"), ("b", "2"), ("c", "1"), ("d", "$LATEST"), ("e", "2")):
        lambda_client.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)
    first = lambda_client.list_aliases(FunctionName=name, MaxItems=2)
    assert [a["Name"] for a in first["Aliases"]] == ["a", "b"]
    rest = lambda_client.list_aliases(FunctionName=name, Marker=first["NextMarker"])
    assert [a["Name"] for a in rest["Aliases"]] == ["c", "d", "e"]
    assert "NextMarker" not in rest
    only1 = lambda_client.list_aliases(FunctionName=name, FunctionVersion="1")["Aliases"]
    assert [a["Name"] for a in only1] == ["a", "c"]
    latest = lambda_client.list_aliases(FunctionName=name, FunctionVersion="$LATEST")["Aliases"]
    assert [a["AliasArn"] for a in latest] == [arn(name) + ":d"]
    paginator = lambda_client.get_paginator("list_aliases")
    names = [
        a["Name"]
        for page in paginator.paginate(FunctionName=name, PaginationConfig={"PageSize": 2})
        for a in page["Aliases"]
    ]
    assert names == ["a", "b", "c", "d", "e"]


# -- Weighted routing -------------------------------------------------------------------------


def test_weighted_alias_splits_invocations(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    """Version 2 gets weight 0.3: over N calls its count is Binomial(N, 0.3).

    The bounds are 6 standard deviations either side of the mean (a false failure has a
    probability of about 2e-9), so the test checks the split without being able to flake.
    """
    name = published(lambda_client, create_function, 2)
    weight, calls = 0.3, 400
    alias = lambda_client.create_alias(
        FunctionName=name,
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": weight}},
    )
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": weight}}
    counts = {"1": 0, "2": 0}
    for _ in range(calls):
        resp, body = run(lambda_client, name, Qualifier="canary")
        version = resp["ExecutedVersion"]
        counts[version] += 1
        # The version that ran is the one reported, and the function saw the alias ARN.
        assert body["version"] == version
        assert body["tag"] == f"v{version}"
        assert body["arn"] == arn(name) + ":canary"
    mean = calls * weight
    sd = (calls * weight * (1 - weight)) ** 0.5
    assert mean - 6 * sd <= counts["2"] <= mean + 6 * sd, counts
    assert counts["1"] + counts["2"] == calls

    # Weight 0 never runs the additional version; removing the split leaves the primary.
    lambda_client.update_alias(
        FunctionName=name, Name="canary", RoutingConfig={"AdditionalVersionWeights": {"2": 0.0}}
    )
    assert {
        run(lambda_client, name, Qualifier="canary")[0]["ExecutedVersion"] for _ in range(20)
    } == {"1"}
    # Weight 1 always runs it.
    lambda_client.update_alias(
        FunctionName=name, Name="canary", RoutingConfig={"AdditionalVersionWeights": {"2": 1.0}}
    )
    assert {
        run(lambda_client, name, Qualifier="canary")[0]["ExecutedVersion"] for _ in range(20)
    } == {"2"}
    cleared = lambda_client.update_alias(
        FunctionName=name, Name="canary", RoutingConfig={"AdditionalVersionWeights": {}}
    )
    assert "RoutingConfig" not in cleared
    assert run(lambda_client, name, Qualifier="canary")[0]["ExecutedVersion"] == "1"
    # GetFunctionConfiguration through a weighted alias shows the primary version.
    lambda_client.update_alias(
        FunctionName=name, Name="canary", RoutingConfig={"AdditionalVersionWeights": {"2": 1.0}}
    )
    cfg = lambda_client.get_function_configuration(FunctionName=name, Qualifier="canary")
    assert cfg["Version"] == "1"


def test_routing_validation(
    lambda_client: Any, create_function: CreateFunction, endpoint: str
) -> None:
    name = published(lambda_client, create_function, 3)
    lambda_client.update_function_configuration(
        FunctionName=name, Role="arn:aws:iam::000000000000:role/other-role"
    )
    lambda_client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 200}
    )
    lambda_client.publish_version(FunctionName=name)  # version 4 runs with another role

    def create(version: str, weights: dict[str, float], client: Any = lambda_client) -> None:
        client.create_alias(
            FunctionName=name,
            Name="split",
            FunctionVersion=version,
            RoutingConfig={"AdditionalVersionWeights": weights},
        )

    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException) as err:
        create("1", {"2": 0.1, "3": 0.1})
    assert "AdditionalVersionWeights cannot be greater than 1" in str(err.value)
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException) as err:
        create("1", {"1": 0.5})
    assert "Function version 1 is already included in routing configuration" in str(err.value)
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException) as err:
        create("$LATEST", {"1": 0.5})
    assert "$LATEST is not supported for an alias pointing to more than 1 version" in str(err.value)
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        create("1", {"8": 0.5})
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException) as err:
        create("1", {"4": 0.5})
    assert "same execution role" in str(err.value)
    unchecked = client_for(endpoint, parameter_validation=False)
    for weights in ({"2": 1.5}, {"2": -0.1}, {"latest": 0.5}):
        with pytest.raises(unchecked.exceptions.ClientError) as err:
            create("1", weights, unchecked)
        assert err.value.response["Error"]["Code"] == "ValidationException"
    # Updates are checked against the alias as it would become.
    lambda_client.create_alias(
        FunctionName=name,
        Name="split",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    )
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException):
        lambda_client.update_alias(FunctionName=name, Name="split", FunctionVersion="2")
    with pytest.raises(lambda_client.exceptions.ResourceConflictException) as err:
        lambda_client.delete_function(FunctionName=name, Qualifier="2")
    assert "[split]" in str(err.value)
    assert lambda_client.get_alias(FunctionName=name, Name="split")["FunctionVersion"] == "1"
