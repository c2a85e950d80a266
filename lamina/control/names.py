"""Function identifiers as Lambda accepts them: a name, `name:qualifier`, a partial ARN or a full ARN."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lamina.errors import (
    InvalidParameterValueException,
    ResourceNotFoundException,
    ValidationException,
)

NAME_RE = re.compile(r"[a-zA-Z0-9\-_]{1,64}")
QUALIFIER_RE = re.compile(r"\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9\-_$]{1,128}")
_FULL_RE = re.compile(
    r"(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:(?P<region>[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9\-_.]+)"
    r"(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9\-_]+))?"
)


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """A parsed function identifier. `region`/`account_id` are set only when an ARN named them."""

    name: str
    qualifier: str | None
    region: str | None
    account_id: str | None


def parse_function_ref(value: str, *, allow_qualifier: bool = True) -> FunctionRef:
    """Parse any form Lambda accepts for FunctionName; raise InvalidParameterValueException otherwise."""
    m = _FULL_RE.fullmatch(value)
    if m is not None and len(m["name"]) > 64 and len(value) <= 256:
        raise InvalidParameterValueException(
            f"1 validation error detected: Value '{value}' at 'functionName' failed to satisfy "
            "constraint: Member must have length less than or equal to 64"
        )
    if m is None or not NAME_RE.fullmatch(m["name"]) or len(value) > 256:
        raise InvalidParameterValueException(
            f"1 validation error detected: Value '{value}' at 'functionName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: "
            r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?"
            r"([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
        )
    if m["qualifier"] is not None and not allow_qualifier:
        raise InvalidParameterValueException(
            "This operation is permitted on Lambda functions only. Aliases and versions do not "
            "support this operation. Please specify either a function name or an unqualified "
            "function ARN."
        )
    return FunctionRef(m["name"], m["qualifier"], m["region"], m["account"])


def merge_qualifier(ref: FunctionRef, qualifier: str | None) -> str | None:
    """Combine a qualifier from the name with the Qualifier parameter, as Lambda does."""
    if qualifier is not None and ref.qualifier is not None and qualifier != ref.qualifier:
        raise InvalidParameterValueException(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    return qualifier if qualifier is not None else ref.qualifier


def check_scope(ref: FunctionRef, region: str, account_id: str) -> None:
    """An ARN from another region or account names no function of ours."""
    if ref.region is not None and ref.region != region:
        raise ResourceNotFoundException(
            f"Functions from '{ref.region}' are not reachable in this region ('{region}')"
        )
    if ref.account_id is not None and ref.account_id != account_id:
        raise ResourceNotFoundException(
            f"Function not found: arn:aws:lambda:{region}:{ref.account_id}:function:{ref.name}"
        )


def check_qualifier(qualifier: str) -> None:
    """A Qualifier outside Lambda's pattern is a ValidationException (it names nothing)."""
    if len(qualifier) > 128 or not QUALIFIER_RE.fullmatch(qualifier):
        raise ValidationException(
            f"1 validation error detected: Value '{qualifier}' at 'qualifier' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: "
            r"(|[a-zA-Z0-9$_-]+)"
        )
