"""Create/UpdateEventSourceMapping bodies to MappingConfig changes, with the model's constraints
(ranges, enums, patterns) answered as Lambda answers them."""

from __future__ import annotations

import re
from typing import Any

from lamina.errors import InvalidParameterValueException, ValidationException
from lamina.sources.filters import validate_criteria

ARN_RE = re.compile(
    r"arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?"
    r"-[a-z]+-\d{1})?:(\d{12})?:(.*)"
)
POSITIONS = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")
RESPONSE_TYPES = ("ReportBatchItemFailures",)
ACCESS_TYPES = (
    "BASIC_AUTH",
    "VPC_SUBNET",
    "VPC_SECURITY_GROUP",
    "SASL_SCRAM_512_AUTH",
    "SASL_SCRAM_256_AUTH",
    "VIRTUAL_HOST",
    "CLIENT_CERTIFICATE_TLS_AUTH",
    "SERVER_ROOT_CA_CERTIFICATE",
    "OAUTHBEARER_AUTH",
    "OAUTHBEARER_SCOPE",
    "OAUTHBEARER_AUDIENCE",
    "OAUTHBEARER_LOGICAL_CLUSTER",
    "OAUTHBEARER_IDENTITY_POOL",
    "IAM_AUTH",
    "IAM_OAUTHBEARER_AUTH",
)
# Echoed, not acted upon.
EXTRA_MEMBERS = (
    "Tags",
    "KMSKeyArn",
    "MetricsConfig",
    "LoggingConfig",
    "ProvisionedPollerConfig",
    "AmazonManagedKafkaEventSourceConfig",
    "SelfManagedKafkaEventSourceConfig",
    "DocumentDBEventSourceConfig",
)
CREATE_ONLY = (
    "EventSourceArn",
    "StartingPosition",
    "StartingPositionTimestamp",
    "Queues",
    "Topics",
    "SelfManagedEventSource",
    "Tags",
)


def _invalid(value: Any, member: str, constraint: str) -> ValidationException:
    shown = "null" if value is None else f"'{value}'"
    return ValidationException(
        f"1 validation error detected: Value {shown} at '{member}' failed to satisfy "
        f"constraint: {constraint}"
    )


def _int(value: Any, member: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(value, member, "Member must be an integer")
    if value < low:
        raise _invalid(value, member, f"Member must have value greater than or equal to {low}")
    if value > high:
        raise _invalid(value, member, f"Member must have value less than or equal to {high}")
    return value


def _bool(value: Any, member: str) -> bool:
    if not isinstance(value, bool):
        raise _invalid(value, member, "Member must be a boolean")
    return value


def _strings(value: Any, member: str, low: int, high: int) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _invalid(value, member, "Member must be a list of non-empty strings")
    if not low <= len(value) <= high:
        raise _invalid(
            value,
            member,
            f"Member must have length less than or equal to {high}"
            if len(value) > high
            else f"Member must have length greater than or equal to {low}",
        )
    return tuple(value)


def parse_changes(body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """The MappingConfig fields a request sets (`function_name` is left for the caller)."""
    out: dict[str, Any] = {}
    present = {k: v for k, v in body.items() if v is not None}
    if not creating:
        present = {k: v for k, v in present.items() if k not in CREATE_ONLY}
    if "FunctionName" in present:
        name = present["FunctionName"]
        if not isinstance(name, str) or not 1 <= len(name) <= 256:
            raise _invalid(
                name, "functionName", "Member must have length less than or equal to 256"
            )
        out["function_name"] = name
    if "EventSourceArn" in present:
        arn = present["EventSourceArn"]
        if not isinstance(arn, str) or not ARN_RE.fullmatch(arn):
            raise _invalid(
                arn,
                "eventSourceArn",
                "Member must satisfy regular expression pattern: " + ARN_RE.pattern,
            )
        out["event_source_arn"] = arn
    if "Enabled" in present:
        out["enabled"] = _bool(present["Enabled"], "enabled")
    if "BatchSize" in present:
        out["batch_size"] = _int(present["BatchSize"], "batchSize", 1, 10_000)
    if "MaximumBatchingWindowInSeconds" in present:
        out["max_batching_window_s"] = _int(
            present["MaximumBatchingWindowInSeconds"], "maximumBatchingWindowInSeconds", 0, 300
        )
    if "FilterCriteria" in present:
        out["filters"] = validate_criteria(present["FilterCriteria"])
    if "FunctionResponseTypes" in present:
        types = _strings(present["FunctionResponseTypes"], "functionResponseTypes", 0, 1)
        for t in types:
            if t not in RESPONSE_TYPES:
                raise _invalid(
                    list(types),
                    "functionResponseTypes",
                    "Member must satisfy constraint: [Member must satisfy enum value set: "
                    "[ReportBatchItemFailures]]",
                )
        out["function_response_types"] = types
    if "ScalingConfig" in present:
        scaling = present["ScalingConfig"]
        if not isinstance(scaling, dict):
            raise _invalid(scaling, "scalingConfig", "Member must be a structure")
        limit = scaling.get("MaximumConcurrency")
        out["max_concurrency"] = (
            None if limit is None else _int(limit, "scalingConfig.maximumConcurrency", 2, 1000)
        )
    if "StartingPosition" in present:
        position = present["StartingPosition"]
        if position not in POSITIONS:
            raise _invalid(
                position,
                "startingPosition",
                "Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]",
            )
        out["starting_position"] = position
    if "StartingPositionTimestamp" in present:
        stamp = present["StartingPositionTimestamp"]
        if isinstance(stamp, bool) or not isinstance(stamp, int | float):
            raise InvalidParameterValueException("StartingPositionTimestamp must be a timestamp.")
        out["starting_position_timestamp"] = float(stamp)
    if "ParallelizationFactor" in present:
        out["parallelization_factor"] = _int(
            present["ParallelizationFactor"], "parallelizationFactor", 1, 10
        )
    if "MaximumRecordAgeInSeconds" in present:
        age = _int(present["MaximumRecordAgeInSeconds"], "maximumRecordAgeInSeconds", -1, 604_800)
        if 0 <= age < 60:
            raise InvalidParameterValueException(
                "MaximumRecordAgeInSeconds must be -1 or between 60 and 604800."
            )
        out["max_record_age_s"] = age
    if "MaximumRetryAttempts" in present:
        out["max_retry_attempts"] = _int(
            present["MaximumRetryAttempts"], "maximumRetryAttempts", -1, 10_000
        )
    if "BisectBatchOnFunctionError" in present:
        out["bisect_on_error"] = _bool(
            present["BisectBatchOnFunctionError"], "bisectBatchOnFunctionError"
        )
    if "TumblingWindowInSeconds" in present:
        out["tumbling_window_s"] = _int(
            present["TumblingWindowInSeconds"], "tumblingWindowInSeconds", 0, 900
        )
    if "DestinationConfig" in present:
        out["on_failure"] = _on_failure(present["DestinationConfig"])
    if "Queues" in present:
        out["queues"] = _strings(present["Queues"], "queues", 1, 1)
    if "Topics" in present:
        out["topics"] = _strings(present["Topics"], "topics", 1, 1)
    if "SourceAccessConfigurations" in present:
        out["source_access"] = _access(present["SourceAccessConfigurations"])
    if "SelfManagedEventSource" in present:
        out["endpoints"] = _endpoints(present["SelfManagedEventSource"])
    extra = {k: present[k] for k in EXTRA_MEMBERS if k in present}
    if extra:
        out["extra"] = extra
    return out


def _on_failure(value: Any) -> str | None:
    if not isinstance(value, dict):
        raise _invalid(value, "destinationConfig", "Member must be a structure")
    failure = value.get("OnFailure") or {}
    if not isinstance(failure, dict):
        raise _invalid(failure, "destinationConfig.onFailure", "Member must be a structure")
    arn = failure.get("Destination")
    if arn is None or arn == "":
        return None
    if not isinstance(arn, str) or not ARN_RE.fullmatch(arn):
        raise InvalidParameterValueException(f"The provided destination {arn} is invalid.")
    return arn


def _access(value: Any) -> tuple[dict[str, str], ...]:
    if not isinstance(value, list) or len(value) > 23:
        raise _invalid(
            value, "sourceAccessConfigurations", "Member must have length less than or equal to 23"
        )
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise _invalid(item, "sourceAccessConfigurations", "Member must be a structure")
        kind, uri = item.get("Type"), item.get("URI")
        if kind not in ACCESS_TYPES:
            raise _invalid(
                kind,
                "sourceAccessConfigurations.member.type",
                "Member must satisfy enum value set: [" + ", ".join(ACCESS_TYPES) + "]",
            )
        if not isinstance(uri, str) or not 1 <= len(uri) <= 200:
            raise _invalid(
                uri,
                "sourceAccessConfigurations.member.uRI",
                "Member must have length between 1 and 200",
            )
        out.append({"Type": kind, "URI": uri})
    return tuple(out)


def _endpoints(value: Any) -> dict[str, tuple[str, ...]]:
    endpoints = value.get("Endpoints") if isinstance(value, dict) else None
    if not isinstance(endpoints, dict) or not 1 <= len(endpoints) <= 2:
        raise _invalid(
            endpoints,
            "selfManagedEventSource.endpoints",
            "Member must have length between 1 and 2",
        )
    out: dict[str, tuple[str, ...]] = {}
    for key, servers in endpoints.items():
        if not isinstance(key, str):
            raise _invalid(key, "selfManagedEventSource.endpoints", "Member keys must be strings")
        out[key] = _strings(servers, "selfManagedEventSource.endpoints.member", 1, 10)
    return out
