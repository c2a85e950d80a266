"""What the runtime layer needs to know to start an environment: its own type, not the registry's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvironmentSpec:
    key: tuple[object, ...]  # environments are shared only between invocations of equal keys
    function_name: str
    version: str
    region: str
    account_id: str
    runtime: str
    handler: str
    task_root: Path
    # The function's layers merged into one tree: read-only at /opt in a sandbox with its own
    # filesystem view; elsewhere the runtime finds it through _LAMINA_OPT_DIR. None: no layers.
    opt_dir: Path | None = None
    memory_mb: int
    timeout_s: int
    ephemeral_mb: int
    variables: Mapping[str, str] = field(default_factory=dict)
    log_group: str
    log_format: str = "Text"
    log_level: str | None = None
    api_endpoint: str = ""  # Lamina's own endpoint, so that an SDK inside reaches it
    network: str = "host"  # host | isolated (an empty network namespace: Runtime API only)

    @property
    def group(self) -> tuple[str, str, str]:
        """The function version the environment belongs to (what an update retires)."""
        return (self.region, self.function_name, self.version)


class ResponseStream(Protocol):
    """Where a response in the Runtime API's streaming mode goes as it arrives."""

    def start(self, content_type: str) -> None: ...
    def write(self, chunk: bytes) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Invocation:
    request_id: str
    payload: bytes
    invoked_arn: str
    trace_id: str
    client_context: str | None = None  # raw JSON, already base64-decoded
    cognito_identity: str | None = None
    tenant_id: str | None = None
    # Set by callers that can pass a streamed response on (function URLs in RESPONSE_STREAM
    # mode): its chunks go there instead of into Outcome.payload.
    stream: ResponseStream | None = None


@dataclass(slots=True, kw_only=True)
class Outcome:
    """How an invocation ended, from the environment's side. Function errors are outcomes too."""

    status: str  # success | error | timeout | crash | init_error
    payload: bytes
    content_type: str = "application/json"
    function_error: str | None = None  # "Unhandled" when the function failed
    error_type: str | None = None
    duration_ms: float = 0.0
    init_duration_ms: float | None = None  # set on the first invocation of an environment
    init_failed: bool = False  # the Init phase failed: the error is the Init phase's
    max_memory_mb: int = 0
    log_stream: str = ""
    init_lines: list[tuple[int, str]] = field(default_factory=list)  # output before the event
    log_lines: list[tuple[int, str]] = field(default_factory=list)  # (epoch ms, text)


def endpoint_inside(endpoint: str) -> str:
    """Lamina's endpoint as an SDK inside an environment reaches it (AWS_ENDPOINT_URL). The
    environment shares the host's network, so the server's own address works, except a
    wildcard listen address, which becomes the loopback address of its family."""
    for wildcard, loopback in (("//0.0.0.0:", "//127.0.0.1:"), ("//[::]:", "//[::1]:")):
        if wildcard in endpoint:
            return endpoint.replace(wildcard, loopback, 1)
    return endpoint
