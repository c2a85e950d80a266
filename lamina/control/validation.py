"""Lambda's limits and rules for function configuration, as pure checks that raise LambdaErrors.

Messages follow AWS's wording (`1 validation error detected: ...`) so that what users search for
matches; the type is the modelled InvalidParameterValueException so that boto3 raises it by name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from lamina.errors import InvalidParameterValueException

MEMORY_MB = (128, 10240)
TIMEOUT_S = (1, 900)
EPHEMERAL_MB = (512, 10240)
ENV_MAX_BYTES = 4096
DESCRIPTION_MAX = 256
HANDLER_MAX = 128
MAX_LAYERS = 5
MAX_TAGS = 50

ROLE_RE = re.compile(r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-/]+")
HANDLER_RE = re.compile(r"[^\s]+")
ENV_KEY_RE = re.compile(r"[a-zA-Z]([a-zA-Z0-9_])+")
ARCHITECTURES = ("x86_64", "arm64")

# Keys Lambda sets itself; CreateFunction/UpdateFunctionConfiguration refuse them.
RESERVED_ENV_KEYS = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


def constraint_error(value: object, member: str, constraint: str) -> InvalidParameterValueException:
    return InvalidParameterValueException(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: {constraint}"
    )


def int_in_range(value: Any, member: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise constraint_error(value, member, "Member must be an integer")
    if value < low:
        raise constraint_error(
            value, member, f"Member must have value greater than or equal to {low}"
        )
    if value > high:
        raise constraint_error(
            value, member, f"Member must have value less than or equal to {high}"
        )
    return value


def string(value: Any, member: str, *, max_len: int, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str):
        raise constraint_error(value, member, "Member must be a string")
    if len(value) > max_len:
        raise constraint_error(
            value, member, f"Member must have length less than or equal to {max_len}"
        )
    if pattern is not None and not pattern.fullmatch(value):
        raise constraint_error(
            value, member, f"Member must satisfy regular expression pattern: {pattern.pattern}"
        )
    return value


def memory_mb(value: Any) -> int:
    return int_in_range(value, "memorySize", *MEMORY_MB)


def timeout_s(value: Any) -> int:
    return int_in_range(value, "timeout", *TIMEOUT_S)


def ephemeral_mb(value: Any) -> int:
    if not isinstance(value, Mapping) or "Size" not in value:
        raise constraint_error(value, "ephemeralStorage.size", "Member must not be null")
    return int_in_range(value["Size"], "ephemeralStorage.size", *EPHEMERAL_MB)


def role(value: Any) -> str:
    return string(value, "role", max_len=10000, pattern=ROLE_RE)


def description(value: Any) -> str:
    return string(value, "description", max_len=DESCRIPTION_MAX)


def handler(value: Any, runtime: str) -> str:
    text = string(value, "handler", max_len=HANDLER_MAX, pattern=HANDLER_RE)
    if runtime.startswith(("python", "nodejs")) and "." not in text:
        raise InvalidParameterValueException(
            f"Handler '{text}' is not valid for runtime {runtime}: expected 'module.function'."
        )
    return text


def architectures(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) != 1 or value[0] not in ARCHITECTURES:
        raise constraint_error(
            value,
            "architectures",
            "Member must satisfy enum value set: [x86_64, arm64] and have length 1",
        )
    return (value[0],)


def environment(value: Any) -> dict[str, str] | None:
    """Validate `Environment`: key pattern, reserved keys and Lambda's 4 KB total."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise constraint_error(value, "environment", "Member must be a structure")
    variables = value.get("Variables") or {}
    if not isinstance(variables, Mapping):
        raise constraint_error(variables, "environment.variables", "Member must be a map")
    for key, val in variables.items():
        if not isinstance(key, str) or not ENV_KEY_RE.fullmatch(key):
            raise constraint_error(
                key,
                "environment.variables",
                "Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+",
            )
        if not isinstance(val, str):
            raise constraint_error(val, f"environment.variables.{key}", "Member must be a string")
    reserved = sorted(k for k in variables if k in RESERVED_ENV_KEYS)
    if reserved:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided contains reserved keys that are currently not supported "
            f"for modification. Reserved keys used in this request: {', '.join(reserved)}"
        )
    measured = json.dumps(dict(variables), separators=(",", ":"))
    if len(measured.encode()) > ENV_MAX_BYTES:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided exceeded the 4KB limit. "
            f"String measured: {measured[:256]}..."
        )
    return dict(variables)


def layers(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise constraint_error(value, "layers", "Member must be a list of layer version ARNs")
    if len(value) > MAX_LAYERS:
        raise InvalidParameterValueException(f"Cannot reference more than {MAX_LAYERS} layers.")
    return tuple(value)


def tracing_mode(value: Any) -> str:
    """`TracingConfig`: a structure whose Mode is Active or PassThrough (the default)."""
    if value is None:
        return "PassThrough"
    if not isinstance(value, Mapping):
        raise constraint_error(value, "tracingConfig", "Member must be a structure")
    mode = value.get("Mode", "PassThrough")
    if mode not in ("Active", "PassThrough"):
        raise constraint_error(
            mode, "tracingConfig.mode", "Member must satisfy enum value set: [Active, PassThrough]"
        )
    return str(mode)


def dead_letter_target(value: Any) -> str | None:
    """`DeadLetterConfig`: an empty or absent TargetArn clears it."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise constraint_error(value, "deadLetterConfig", "Member must be a structure")
    target = value.get("TargetArn")
    if target is None or target == "":
        return None
    return string(target, "deadLetterConfig.targetArn", max_len=1024)


def tags(value: Any) -> dict[str, str]:
    """`Tags`: at most 50, keys 1-128 and values 0-256 characters."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise constraint_error(value, "tags", "Member must be a map")
    if len(value) > MAX_TAGS:
        raise InvalidParameterValueException("Number of tags exceeds resource tag limit.")
    for key, val in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 128:
            raise constraint_error(key, "tags", "Map keys must have length between 1 and 128")
        if key.lower().startswith("aws:"):
            raise InvalidParameterValueException(
                f"Invalid tag key {key}: keys starting with 'aws:' are reserved for AWS use."
            )
        string(val, f"tags.{key}", max_len=256)
    return dict(value)


def tag_keys(value: Any) -> list[str]:
    """UntagResource's `tagKeys`: 1-128 characters each (no more than the resource may hold)."""
    for key in value:
        if not 1 <= len(key) <= 128:
            raise constraint_error(key, "tagKeys", "Member must have length between 1 and 128")
    return list(value)


def runtime(value: Any, available: Mapping[str, str | None]) -> str:
    """`available` maps every runtime id Lamina knows to None (runnable) or why it is not."""
    if not isinstance(value, str) or value not in available:
        raise InvalidParameterValueException(
            f"Value {value} at 'runtime' failed to satisfy constraint: Member must satisfy enum "
            f"value set: [{', '.join(sorted(available))}] or be a valid ARN"
        )
    missing = available[value]
    if missing is not None:
        runnable = sorted(k for k, v in available.items() if v is None)
        raise InvalidParameterValueException(
            f"The runtime parameter of {value} is not supported on this Lamina host: {missing}. "
            f"This host can run: {', '.join(runnable)}."
        )
    return value


def logging_config(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise constraint_error(value, "loggingConfig", "Member must be a structure")
    out: dict[str, str] = {}
    fmt = value.get("LogFormat", "Text")
    if fmt not in ("Text", "JSON"):
        raise constraint_error(
            fmt, "loggingConfig.logFormat", "Member must satisfy enum value set: [Text, JSON]"
        )
    out["LogFormat"] = fmt
    for key in ("LogGroup", "ApplicationLogLevel", "SystemLogLevel"):
        if key in value:
            out[key] = string(value[key], f"loggingConfig.{key[0].lower()}{key[1:]}", max_len=512)
    if fmt == "Text" and ("ApplicationLogLevel" in out or "SystemLogLevel" in out):
        raise InvalidParameterValueException(
            "To set ApplicationLogLevel or SystemLogLevel you must use the JSON LogFormat."
        )
    return out
