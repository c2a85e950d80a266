"""Typed records of the registry. Frozen where the thing is immutable: a configuration snapshot."""

from __future__ import annotations

import datetime as _dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

LATEST = "$LATEST"


def is_version_number(qualifier: str) -> bool:
    """A published version's qualifier: digits only (alias names may not be all digits)."""
    return qualifier.isascii() and qualifier.isdigit()


def qualifier_kind(qualifier: str | None) -> Literal["latest", "version", "alias"]:
    """What a qualifier names by its form alone: None and `$LATEST` -> "latest", digits ->
    "version", anything else -> "alias" (whether it exists is the registry's question)."""
    if qualifier is None or qualifier == LATEST:
        return "latest"
    return "version" if is_version_number(qualifier) else "alias"


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
    # Hot reloading: the code is this host folder, read live (control/hot_reload.py).
    local_path: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerRef:
    """A layer version a function uses: its ARN and the content it adds under /opt.

    The content is kept with the function, so that deleting the layer version later does not
    take anything away from the functions (and published versions) that already use it."""

    arn: str
    code: CodeRef


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
    layers: tuple[LayerRef, ...] = ()
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

    def settled(self) -> FunctionConfig:
        """The record once a create or update has finished: Active, Successful, no reasons."""
        return self.with_revision(
            state="Active",
            state_reason=None,
            state_reason_code=None,
            last_update_status="Successful",
            last_update_status_reason=None,
            last_update_status_reason_code=None,
        )

    def published_as(self, number: str, description: str | None) -> FunctionConfig:
        """The immutable snapshot PublishVersion makes of this ($LATEST) configuration."""
        return replace(
            self.settled(),
            version=number,
            description=self.description if description is None else description,
            last_modified=now_lambda_timestamp(),
        )

    def publish_key(self) -> tuple[object, ...]:
        """What PublishVersion compares: code and configuration, not identity, state or times.

        When $LATEST's key equals the newest version's, publishing returns that version.
        """
        return tuple(
            repr(getattr(self, f.name)) for f in fields(self) if f.name not in _NOT_PUBLISHED
        )

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


# Fields PublishVersion does not compare (see FunctionConfig.publish_key).
_NOT_PUBLISHED = frozenset(
    {
        "version",
        "description",
        "last_modified",
        "revision_id",
        "state",
        "state_reason",
        "state_reason_code",
        "last_update_status",
        "last_update_status_reason",
        "last_update_status_reason_code",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Alias:
    """A named pointer to a published version (or $LATEST), optionally splitting traffic.

    `weights` maps at most one other published version to the share of invocations (0.0-1.0)
    it receives; the rest go to `function_version`. Replaced as a whole on every change.
    """

    name: str
    function_name: str
    region: str
    account_id: str
    function_version: str
    description: str = ""
    weights: Mapping[str, float] = field(default_factory=dict)
    revision_id: str = field(default_factory=new_revision_id)

    @property
    def arn(self) -> str:
        return f"{function_arn(self.region, self.account_id, self.function_name)}:{self.name}"

    @property
    def versions(self) -> tuple[str, ...]:
        """Every version the alias may run: its primary first, then the weighted one."""
        return (self.function_version, *self.weights)

    def choose(self, draw: float) -> str:
        """The version one invocation runs, for a uniform `draw` in [0, 1)."""
        total = 0.0
        for version, weight in self.weights.items():
            total += weight
            if draw < total:
                return version
        return self.function_version


@dataclass(slots=True, kw_only=True)
class FunctionRecord:
    """A function: `$LATEST`, its published versions and aliases, and function-wide settings.

    `versions` holds the published versions in ascending order; `last_version` is the highest
    number ever published (numbers are never reused, even after a version is deleted).
    """

    latest: FunctionConfig
    reserved_concurrency: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    versions: dict[str, FunctionConfig] = field(default_factory=dict)
    aliases: dict[str, Alias] = field(default_factory=dict)
    last_version: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.latest.region, self.latest.name)

    def all_versions(self) -> list[FunctionConfig]:
        """$LATEST, then the published versions in ascending order."""
        return [self.latest, *self.versions.values()]

    def aliases_of(self, version: str) -> list[str]:
        """Names of the aliases that may run `version` (as primary or weighted)."""
        return sorted(a.name for a in self.aliases.values() if version in a.versions)


@dataclass(frozen=True, slots=True)
class Target:
    """What a call that names a function (and maybe a qualifier) runs: see Registry.target.

    `config` is the version that runs (for a weighted alias, the one chosen for this call);
    `alias` the alias it was reached through, if any; `qualifier` what the caller named
    (None: unqualified, which runs $LATEST).
    """

    config: FunctionConfig
    alias: Alias | None
    qualifier: str | None

    @property
    def invoked_arn(self) -> str:
        """The ARN as the caller named it: what `context.invoked_function_arn` reports."""
        if self.qualifier is None:
            return self.config.arn
        return f"{self.config.arn}:{self.qualifier}"

    @property
    def version(self) -> str:
        """The version that runs (`X-Amz-Executed-Version`)."""
        return self.config.version


def function_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account_id}:function:{name}"
