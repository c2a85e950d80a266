"""Function identifiers (lamina/control/names.py): every form Lambda accepts, and what it refuses."""

from __future__ import annotations

import pytest

from lamina.control.names import (
    FunctionRef,
    check_scope,
    merge_qualifier,
    parse_function_ref,
)
from lamina.errors import InvalidParameterValueException, ResourceNotFoundException

ACCOUNT = "000000000000"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("my-fn", FunctionRef("my-fn", None, None, None)),
        ("My_Fn-2", FunctionRef("My_Fn-2", None, None, None)),
        ("a", FunctionRef("a", None, None, None)),
        ("x" * 64, FunctionRef("x" * 64, None, None, None)),
        ("my-fn:$LATEST", FunctionRef("my-fn", "$LATEST", None, None)),
        ("my-fn:prod", FunctionRef("my-fn", "prod", None, None)),
        ("my-fn:7", FunctionRef("my-fn", "7", None, None)),
        ("123456789012:function:my-fn", FunctionRef("my-fn", None, None, "123456789012")),
        (
            "123456789012:function:my-fn:live",
            FunctionRef("my-fn", "live", None, "123456789012"),
        ),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:my-fn",
            FunctionRef("my-fn", None, "us-east-1", "123456789012"),
        ),
        (
            "arn:aws:lambda:eu-west-3:123456789012:function:my-fn:$LATEST",
            FunctionRef("my-fn", "$LATEST", "eu-west-3", "123456789012"),
        ),
        (
            "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f",
            FunctionRef("f", None, "us-gov-west-1", "123456789012"),
        ),
        # A bare 12-digit string is a (valid) function name, not an account id.
        ("123456789012", FunctionRef("123456789012", None, None, None)),
    ],
)
def test_accepted_forms(value: str, expected: FunctionRef) -> None:
    assert parse_function_ref(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x" * 65,
        "has space",
        "dot.name",
        "slash/name",
        "my-fn:a:b",
        "my-fn:",
        ":my-fn",
        "arn:aws:s3:::bucket",
        "arn:aws:lambda:us-east-1:123:function:f",  # account is not 12 digits
        "arn:aws:lambda:nowhere:123456789012:function:f",  # not a region
        "my-fn:bad.qualifier",
        "ü",
    ],
)
def test_refused_forms(value: str) -> None:
    with pytest.raises(InvalidParameterValueException) as err:
        parse_function_ref(value)
    assert err.value.status == 400
    assert "functionName" in err.value.message


def test_name_too_long_says_so() -> None:
    """AWS words a 65-char name as a length violation, not as a pattern mismatch."""
    with pytest.raises(InvalidParameterValueException) as err:
        parse_function_ref("x" * 65)
    assert "Member must have length less than or equal to 64" in err.value.message


def test_overlong_arn_refused() -> None:
    with pytest.raises(InvalidParameterValueException):
        parse_function_ref("arn:aws:lambda:us-east-1:123456789012:function:" + "f" * 300)


def test_qualifier_not_allowed_where_refused() -> None:
    assert parse_function_ref("f", allow_qualifier=False).qualifier is None
    for value in ("f:1", "f:$LATEST", "arn:aws:lambda:us-east-1:123456789012:function:f:live"):
        with pytest.raises(InvalidParameterValueException):
            parse_function_ref(value, allow_qualifier=False)


def test_merge_qualifier() -> None:
    plain = parse_function_ref("f")
    qualified = parse_function_ref("f:live")
    assert merge_qualifier(plain, None) is None
    assert merge_qualifier(plain, "$LATEST") == "$LATEST"
    assert merge_qualifier(qualified, None) == "live"
    assert merge_qualifier(qualified, "live") == "live"
    with pytest.raises(InvalidParameterValueException) as err:
        merge_qualifier(qualified, "other")
    assert err.value.message == (
        "The derived qualifier from the function name does not match the specified qualifier."
    )


def test_scope_same_region_and_account() -> None:
    check_scope(parse_function_ref("f"), "us-east-1", ACCOUNT)
    check_scope(
        parse_function_ref(f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f"), "us-east-1", ACCOUNT
    )
    check_scope(parse_function_ref(f"{ACCOUNT}:function:f"), "us-east-1", ACCOUNT)


def test_scope_other_region_is_not_found() -> None:
    ref = parse_function_ref(f"arn:aws:lambda:ap-southeast-1:{ACCOUNT}:function:f")
    with pytest.raises(ResourceNotFoundException) as err:
        check_scope(ref, "us-east-1", ACCOUNT)
    assert err.value.status == 404
    assert err.value.message == (
        "Functions from 'ap-southeast-1' are not reachable in this region ('us-east-1')"
    )


def test_scope_other_account_is_not_found() -> None:
    ref = parse_function_ref("111111111111:function:f")
    with pytest.raises(ResourceNotFoundException) as err:
        check_scope(ref, "us-east-1", ACCOUNT)
    assert "111111111111" in err.value.message
