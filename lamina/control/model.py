"""Typed records of the registry. Frozen where the thing is immutable: a configuration snapshot."""

from __future__ import annotations

import datetime as _dt
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

LATEST = "$LATEST"


def now_lambda_timestamp() -> str:
    """Lambda's `Timestamp` string: ISO-8601 with milliseconds and +0000."""
    t = _dt.datetime.now(_dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}+0000"


def new_revision_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeRef:
    """A deployment package in the code store, addressed by the SHA-256 of its zip."""

    sha256_b64: str
    sha256_hex: str
    size: int
    unzipped_size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionConfig:
    """One version's configuration: `$LATEST` (replaced on every change) or a published one."""

    name: str
    region: str
    account_id: str
    version: str = LATEST
    runtime: str
    handler: str
    role: str
    code: CodeRef
    description: str = ""
    timeout_s: int = 3
    memory_mb: int = 128
    ephemeral_mb: int = 512
    environment: dict[str, str] | None = None
    architectures: tuple[str, ...] = ("x86_64",)
    package_type: str = "Zip"
    layers: tuple[str, ...] = ()
    tracing_mode: str = "PassThrough"
    dead_letter_target: str | None = None
    log_format: str = "Text"
    log_group: str | None = None
    application_log_level: str | None = None
    system_log_level: str | None = None
    # Members Lamina stores and echoes but does not act on (VpcConfig, KMSKeyArn, SnapStart, ...).
    extra: dict[str, Any] = field(default_factory=dict)
    last_modified: str = field(default_factory=now_lambda_timestamp)
    revision_id: str = field(default_factory=new_revision_id)
    state: str = "Pending"
    state_reason: str | None = "The function is being created."
    state_reason_code: str | None = "Creating"
    last_update_status: str | None = None
    last_update_status_reason: str | None = None
    last_update_status_reason_code: str | None = None

    @property
    def arn(self) -> str:
        return function_arn(self.region, self.account_id, self.name)

    @property
    def qualified_arn(self) -> str:
        return f"{self.arn}:{self.version}"

    @property
    def effective_log_group(self) -> str:
        return self.log_group or f"/aws/lambda/{self.name}"

    def with_revision(self, **changes: Any) -> FunctionConfig:
        """A copy with `changes` and a new RevisionId (every change of the record gets one)."""
        return replace(self, revision_id=new_revision_id(), **changes)

    def execution_key(self) -> tuple[object, ...]:
        """What an execution environment depends on: a change here retires the environments."""
        env = tuple(sorted((self.environment or {}).items()))
        return (
            self.region,
            self.name,
            self.version,
            self.runtime,
            self.handler,
            self.code.sha256_hex,
            self.timeout_s,
            self.memory_mb,
            self.ephemeral_mb,
            env,
            self.layers,
            self.log_format,
            self.log_group,
            self.application_log_level,
            self.role,
        )


@dataclass(slots=True, kw_only=True)
class FunctionRecord:
    """A function: its `$LATEST` configuration plus what belongs to the function as a whole."""

    latest: FunctionConfig
    reserved_concurrency: int | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.latest.region, self.latest.name)


def function_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account_id}:function:{name}"
