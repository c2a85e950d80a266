"""The client-side parts of `lamina deploy -t`: intrinsic functions, ordering, traffic-shift plans."""

from __future__ import annotations

from typing import Any

import click
import pytest

from lamina.cli.sam.apply import deploy_order
from lamina.cli.sam.intrinsics import Resolver, references
from lamina.cli.sam.shift import steps


def resolver() -> Resolver:
    r = Resolver(
        parameters={"Stage": "dev", "AWS::Region": "us-east-1"},
        conditions={"IsDev": {"Fn::Equals": [{"Ref": "Stage"}, "dev"]}},
        mappings={"Sizes": {"dev": {"Memory": 256}}},
    )
    r.refs["Fn"] = "stack-Fn"
    r.attrs[("Fn", "Arn")] = "arn:aws:lambda:us-east-1:000000000000:function:stack-Fn"
    return r


def test_intrinsics() -> None:
    r = resolver()
    assert r.resolve({"Ref": "Fn"}) == "stack-Fn"
    assert r.resolve({"Fn::GetAtt": ["Fn", "Arn"]}).endswith(":function:stack-Fn")
    assert r.resolve({"Fn::GetAtt": "Fn.Arn"}).endswith(":function:stack-Fn")
    assert r.resolve({"Fn::Sub": "${Fn}-${Stage}-${AWS::Region}-${!Literal}"}) == (
        "stack-Fn-dev-us-east-1-${Literal}"
    )
    assert r.resolve({"Fn::Sub": ["${A}/${Fn.Arn}", {"A": "x"}]}).startswith("x/arn:aws:lambda")
    assert r.resolve({"Fn::Join": ["-", ["a", {"Ref": "Stage"}]]}) == "a-dev"
    assert r.resolve({"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}) == "b"
    assert r.resolve({"Fn::If": ["IsDev", 1, 2]}) == 1
    assert r.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Memory"]}) == 256
    # AWS::NoValue drops the member (and the list item)
    assert r.resolve({"A": {"Ref": "AWS::NoValue"}, "B": [1, {"Ref": "AWS::NoValue"}]}) == {
        "B": [1]
    }
    with pytest.raises(click.ClickException, match="cannot resolve Ref Missing"):
        r.resolve({"Ref": "Missing"})
    r.skipped.add("Api")
    assert r.resolve({"Fn::GetAtt": ["Api", "RootResourceId"]}) == "<Api: not deployed>"


def test_references_anddeploy_order() -> None:
    assert set(references({"Fn::Sub": ["${A}-${B.Arn}-${C}", {"C": {"Ref": "D"}}]})) == {
        "A",
        "B",
        "D",
    }
    resources: dict[str, Any] = {
        "Alias": {"Properties": {"FunctionVersion": {"Fn::GetAtt": ["Version", "Version"]}}},
        "Version": {"Properties": {"FunctionName": {"Ref": "Fn"}}},
        "Fn": {"Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]}}},
        "Role": {},
        "Late": {"DependsOn": "Alias"},
    }
    order = deploy_order(resources)
    assert order.index("Role") < order.index("Fn") < order.index("Version") < order.index("Alias")
    assert order.index("Alias") < order.index("Late")
    with pytest.raises(click.ClickException, match="circular"):
        deploy_order({"A": {"DependsOn": "B"}, "B": {"DependsOn": "A"}})


def test_traffic_shift_plans() -> None:
    assert steps("CodeDeployDefault.LambdaCanary10Percent5Minutes") == [(0.1, 300.0)]
    assert steps("CodeDeployDefault.LambdaLinear25PercentEvery1Minute") == [
        (0.25, 60.0),
        (0.5, 60.0),
        (0.75, 60.0),
    ]
    assert len(steps("Linear10PercentEvery2Minutes")) == 9
    assert steps("CodeDeployDefault.LambdaAllAtOnce") == []
