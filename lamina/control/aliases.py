"""Lambda's rules for aliases, as pure checks: names, target versions and routing weights.

Shape errors (pattern, range) are ValidationExceptions as on AWS; rules that need the function's
versions (the target exists, the weighted version is another published one) are checked by
`check_routing` against the record.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from lamina.control.model import LATEST, FunctionRecord, function_arn
from lamina.errors import (
    InvalidParameterValueException,
    ResourceNotFoundException,
    ValidationException,
)

ALIAS_NAME_RE = re.compile(r"(?!^[0-9]+$)([a-zA-Z0-9-_]+)")
FUNCTION_VERSION_RE = re.compile(r"(\$LATEST|[0-9]+)")
NAME_MAX = 128
MAX_WEIGHTED_VERSIONS = 1


def _invalid(value: object, member: str, constraint: str) -> ValidationException:
    return ValidationException(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: {constraint}"
    )


def alias_name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid(value, "name", "Member must not be null")
    if len(value) > NAME_MAX:
        raise _invalid(value, "name", f"Member must have length less than or equal to {NAME_MAX}")
    if not ALIAS_NAME_RE.fullmatch(value):
        raise _invalid(
            value,
            "name",
            f"Member must satisfy regular expression pattern: {ALIAS_NAME_RE.pattern}",
        )
    return value


def function_version(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid(value, "functionVersion", "Member must not be null")
    if not FUNCTION_VERSION_RE.fullmatch(value):
        raise _invalid(
            value,
            "functionVersion",
            f"Member must satisfy regular expression pattern: {FUNCTION_VERSION_RE.pattern}",
        )
    return value


def routing_weights(value: Any) -> dict[str, float]:
    """`RoutingConfig` -> {version: weight}; an absent or empty map means no split."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _invalid(value, "routingConfig", "Member must be a structure")
    raw = value.get("AdditionalVersionWeights")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _invalid(raw, "routingConfig.additionalVersionWeights", "Member must be a map")
    shown = "{" + ", ".join(f"{k}={v}" for k, v in raw.items()) + "}"
    out: dict[str, float] = {}
    for version, weight in raw.items():
        if not isinstance(version, str) or not re.fullmatch(r"[0-9]+", version):
            raise _invalid(
                shown,
                "routingConfig.additionalVersionWeights",
                "Map keys must satisfy constraint: [Member must have length less than or equal "
                "to 1024, Member must have length greater than or equal to 1, Member must "
                "satisfy regular expression pattern: [0-9]+]",
            )
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not math.isfinite(weight)
            or not 0.0 <= weight <= 1.0
        ):
            raise _invalid(
                shown,
                "routingConfig.additionalVersionWeights",
                "Map value must satisfy constraint: [Member must have value less than or equal "
                "to 1.0, Member must have value greater than or equal to 0.0, Member must not "
                "be null]",
            )
        out[version] = float(weight)
    if len(out) > MAX_WEIGHTED_VERSIONS:
        raise InvalidParameterValueException(
            f"Number of items in AdditionalVersionWeights cannot be greater than "
            f"{MAX_WEIGHTED_VERSIONS}"
        )
    return out


def version_not_found(record: FunctionRecord, version: str) -> ResourceNotFoundException:
    cfg = record.latest
    arn = function_arn(cfg.region, cfg.account_id, cfg.name)
    return ResourceNotFoundException(f"Function not found: {arn}:{version}")


def check_target(record: FunctionRecord, version: str) -> None:
    """The alias's version must be $LATEST or a published version of this function."""
    if version != LATEST and version not in record.versions:
        raise version_not_found(record, version)


def check_routing(record: FunctionRecord, primary: str, weights: Mapping[str, float]) -> None:
    """The rules AWS applies to a split: published versions only, distinct, compatible."""
    if not weights:
        return
    if primary == LATEST:
        raise InvalidParameterValueException(
            "$LATEST is not supported for an alias pointing to more than 1 version"
        )
    for version in weights:
        if version == primary:
            raise InvalidParameterValueException(
                f"Invalid function version {version}. Function version {version} is already "
                "included in routing configuration."
            )
        check_target(record, version)
        main, other = record.versions[primary], record.versions[version]
        if main.role != other.role:
            raise InvalidParameterValueException(
                f"The function versions {primary} and {version} of an alias must have the same "
                "execution role."
            )
        if main.dead_letter_target != other.dead_letter_target:
            raise InvalidParameterValueException(
                f"The function versions {primary} and {version} of an alias must have the same "
                "dead-letter queue configuration."
            )
