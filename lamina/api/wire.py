"""Domain objects to Lambda's wire shapes (PascalCase members, absent rather than null)."""

from __future__ import annotations

import hashlib
from typing import Any

from lamina.control.model import Alias, FunctionConfig


def alias_configuration(alias: Alias) -> dict[str, Any]:
    out: dict[str, Any] = {
        "AliasArn": alias.arn,
        "Name": alias.name,
        "FunctionVersion": alias.function_version,
        "Description": alias.description,
        "RevisionId": alias.revision_id,
    }
    if alias.weights:
        out["RoutingConfig"] = {"AdditionalVersionWeights": dict(alias.weights)}
    return out


def function_configuration(
    cfg: FunctionConfig, *, qualified: bool = False, arn: str | None = None
) -> dict[str, Any]:
    """FunctionConfiguration; `qualified` ends FunctionArn with the version (a published
    version's ARN always is), `arn` overrides it (GetFunction through an alias)."""
    if arn is None:
        arn = cfg.qualified_arn if qualified or cfg.version != "$LATEST" else cfg.arn
    out: dict[str, Any] = {
        "FunctionName": cfg.name,
        "FunctionArn": arn,
        "Runtime": cfg.runtime,
        "Role": cfg.role,
        "Handler": cfg.handler,
        "CodeSize": cfg.code.size,
        "Description": cfg.description,
        "Timeout": cfg.timeout_s,
        "MemorySize": cfg.memory_mb,
        "LastModified": cfg.last_modified,
        "CodeSha256": cfg.code.sha256_b64,
        "Version": cfg.version,
        "TracingConfig": {"Mode": cfg.tracing_mode},
        "RevisionId": cfg.revision_id,
        "State": cfg.state,
        "PackageType": cfg.package_type,
        "Architectures": list(cfg.architectures),
        "EphemeralStorage": {"Size": cfg.ephemeral_mb},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "RuntimeVersionConfig": {
            "RuntimeVersionArn": (
                f"arn:aws:lambda:{cfg.region}::runtime:"
                + hashlib.sha256(cfg.runtime.encode()).hexdigest()
            )
        },
        "LoggingConfig": _logging(cfg),
    }
    if cfg.environment is not None:
        out["Environment"] = {"Variables": dict(cfg.environment)}
    if cfg.layers:
        out["Layers"] = [{"Arn": ref.arn, "CodeSize": ref.code.size} for ref in cfg.layers]
    if cfg.dead_letter_target:
        out["DeadLetterConfig"] = {"TargetArn": cfg.dead_letter_target}
    for key, value in (
        ("StateReason", cfg.state_reason),
        ("StateReasonCode", cfg.state_reason_code),
        ("LastUpdateStatus", cfg.last_update_status),
        ("LastUpdateStatusReason", cfg.last_update_status_reason),
        ("LastUpdateStatusReasonCode", cfg.last_update_status_reason_code),
    ):
        if value is not None:
            out[key] = value
    for key, value in cfg.extra.items():
        if key == "ImageConfig":  # the output member wraps the input one
            out.setdefault("ImageConfigResponse", {"ImageConfig": value})
        elif key == "SnapStart" and isinstance(value, dict):
            out["SnapStart"] = {
                "ApplyOn": value.get("ApplyOn", "None"),
                "OptimizationStatus": "Off",
            }
        elif key not in _NOT_IN_CONFIGURATION:
            out.setdefault(key, value)
    return out


# Stored request members that FunctionConfiguration does not carry (GetFunctionCodeSigningConfig
# reports the code signing config).
_NOT_IN_CONFIGURATION = frozenset({"CodeSigningConfigArn", "Tags"})


def _logging(cfg: FunctionConfig) -> dict[str, str]:
    out = {"LogFormat": cfg.log_format, "LogGroup": cfg.effective_log_group}
    if cfg.application_log_level:
        out["ApplicationLogLevel"] = cfg.application_log_level
    if cfg.system_log_level:
        out["SystemLogLevel"] = cfg.system_log_level
    return out
