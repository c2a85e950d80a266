"""Pure rules of versions and aliases: routing choice, weights' shapes, pages and markers."""

from __future__ import annotations

import pytest

from lamina.control import aliases as rules
from lamina.control.model import Alias, is_version_number, qualifier_kind
from lamina.control.paging import page
from lamina.errors import InvalidParameterValueException, ValidationException


def alias(weights: dict[str, float]) -> Alias:
    return Alias(
        name="live",
        function_name="f",
        region="us-east-1",
        account_id="000000000000",
        function_version="1",
        weights=weights,
    )


def test_choose_follows_the_draw() -> None:
    split = alias({"2": 0.25})
    assert split.choose(0.0) == "2"
    assert split.choose(0.2499) == "2"
    assert split.choose(0.25) == "1"
    assert split.choose(0.9999) == "1"
    assert alias({"2": 0.0}).choose(0.0) == "1"
    assert alias({"2": 1.0}).choose(0.9999999) == "2"
    assert alias({}).choose(0.0) == "1"
    assert split.versions == ("1", "2")
    assert split.arn == "arn:aws:lambda:us-east-1:000000000000:function:f:live"


def test_weights_shapes() -> None:
    assert rules.routing_weights(None) == {}
    assert rules.routing_weights({}) == {}
    assert rules.routing_weights({"AdditionalVersionWeights": {"2": 1}}) == {"2": 1.0}
    for bad in (
        {"2": 1.01},
        {"2": -0.5},
        {"2": True},
        {"2": "0.5"},
        {"x": 0.5},
        {"2": float("nan")},
    ):
        with pytest.raises(ValidationException):
            rules.routing_weights({"AdditionalVersionWeights": bad})
    with pytest.raises(InvalidParameterValueException):
        rules.routing_weights({"AdditionalVersionWeights": {"2": 0.1, "3": 0.1}})


def test_names_and_versions() -> None:
    assert rules.alias_name("live-1_a") == "live-1_a"
    for bad in ("", "123", "a.b", "x" * 129, None):
        with pytest.raises(ValidationException):
            rules.alias_name(bad)
    assert rules.function_version("$LATEST") == "$LATEST"
    assert rules.function_version("12") == "12"
    for bad in ("latest", "1a", "", None):
        with pytest.raises(ValidationException):
            rules.function_version(bad)
    assert is_version_number("10")
    assert not is_version_number("$LATEST")
    assert not is_version_number("live")
    kinds = [qualifier_kind(q) for q in (None, "$LATEST", "3", "live", "v1")]
    assert kinds == ["latest", "latest", "version", "alias", "alias"]
    assert not is_version_number("\u0661")  # ARABIC-INDIC DIGIT ONE: a digit, not ASCII


def test_pages_and_markers() -> None:
    items = [(f"{i:03d}", i) for i in range(7)]
    first, marker = page(items, None, 3)
    assert first == [0, 1, 2] and marker is not None
    second, marker = page(items, marker, 3)
    assert second == [3, 4, 5] and marker is not None
    third, marker = page(items, marker, 3)
    assert third == [6] and marker is None
    exact, marker = page(items[:3], None, 3)
    assert exact == [0, 1, 2] and marker is None  # no marker when nothing follows
    assert page(items, None, None)[0] == list(range(7))
    with pytest.raises(InvalidParameterValueException):
        page(items, "%%%", 3)
