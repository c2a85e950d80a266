"""Lambda's event filtering rules, one by one, against records shaped as Lambda filters them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lamina.errors import InvalidParameterValueException
from lamina.sources.filters import compile_filters, validate_criteria

RECORD = {
    "body": {
        "kind": "order",
        "city": "Seattle",
        "amount": 42,
        "tags": ["red", "blue"],
        "nested": {"flag": True, "none": None},
        "file": "report-2024.csv",
    },
    "attributes": {"ApproximateReceiveCount": "1"},
}


def matches(pattern: dict[str, Any], record: Any = RECORD) -> bool:
    return compile_filters([json.dumps(pattern)]).matches(record)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"body": {"kind": ["order"]}}, True),
        ({"body": {"kind": ["refund"]}}, False),
        ({"body": {"amount": [42]}}, True),
        ({"body": {"amount": ["42"]}}, False),
        ({"body": {"tags": ["blue"]}}, True),
        ({"body": {"nested": {"flag": [True]}}}, True),
        ({"body": {"nested": {"none": [None]}}}, True),
        ({"body": {"city": [{"prefix": "Sea"}]}}, True),
        ({"body": {"city": [{"prefix": "sea"}]}}, False),
        ({"body": {"city": [{"prefix": {"equals-ignore-case": "sea"}}]}}, True),
        ({"body": {"file": [{"suffix": ".csv"}]}}, True),
        ({"body": {"file": [{"suffix": ".json"}]}}, False),
        ({"body": {"city": [{"equals-ignore-case": "SEATTLE"}]}}, True),
        ({"body": {"city": [{"anything-but": ["Boston", "Denver"]}]}}, True),
        ({"body": {"city": [{"anything-but": "Seattle"}]}}, False),
        ({"body": {"city": [{"anything-but": {"prefix": "Bos"}}]}}, True),
        ({"body": {"city": [{"anything-but": {"prefix": "Sea"}}]}}, False),
        ({"body": {"amount": [{"numeric": [">", 10, "<=", 42]}]}}, True),
        ({"body": {"amount": [{"numeric": [">", 42]}]}}, False),
        ({"body": {"amount": [{"numeric": ["=", 42]}]}}, True),
        ({"body": {"city": [{"exists": True}]}}, True),
        ({"body": {"missing": [{"exists": False}]}}, True),
        ({"body": {"city": [{"exists": False}]}}, False),
        ({"body": {"file": [{"wildcard": "report-*.csv"}]}}, True),
        ({"body": {"file": [{"wildcard": "*.json"}]}}, False),
        ({"body": {"$or": [{"kind": ["refund"]}, {"amount": [42]}]}}, True),
        ({"body": {"$or": [{"kind": ["refund"]}, {"amount": [1]}]}}, False),
        ({"body": {"kind": ["order"], "city": ["Boston"]}}, False),
        ({"body": {"kind": ["refund", "order"]}}, True),
        ({"attributes": {"ApproximateReceiveCount": ["1"]}}, True),
        ({"body": {"missing": ["x"]}}, False),
    ],
)
def test_rules(pattern: dict[str, Any], expected: bool) -> None:
    assert matches(pattern) is expected


def test_filters_are_or_and_none_pass_everything() -> None:
    either = compile_filters(
        [json.dumps({"body": {"kind": ["refund"]}}), json.dumps({"body": {"kind": ["order"]}})]
    )
    assert either.matches(RECORD)
    assert compile_filters([]).matches(RECORD)


def test_a_plain_text_body_matches_only_as_text() -> None:
    assert matches({"body": ["hello"]}, {"body": "hello"})
    assert not matches({"body": {"kind": ["order"]}}, {"body": "hello"})


@pytest.mark.parametrize(
    "criteria",
    [
        {"Filters": [{"Pattern": "not json"}]},
        {"Filters": [{"Pattern": "[]"}]},
        {"Filters": [{"Pattern": '{"body": "order"}'}]},
        {"Filters": [{"Pattern": '{"body": {"x": [{"bogus": 1}]}}'}]},
        {"Filters": [{"Pattern": '{"body": {"x": [{"numeric": [">"]}]}}'}]},
        {"Filters": [{"Pattern": '{"body": {"x": [{"wildcard": "a**b"}]}}'}]},
        {"Filters": [{"Pattern": '{"body": {"x": []}}'}]},
        {"Filters": [{}]},
        {"Filters": "x"},
        {"Filters": [{"Pattern": '{"a": [1]}'}] * 11},
    ],
)
def test_invalid_criteria_are_refused(criteria: Any) -> None:
    with pytest.raises(InvalidParameterValueException):
        validate_criteria(criteria)


def test_valid_criteria_are_kept_as_given() -> None:
    text = '{"body": {"kind": ["order"]}}'
    assert validate_criteria({"Filters": [{"Pattern": text}]}) == (text,)
    assert validate_criteria({}) == ()
    assert validate_criteria(None) == ()
