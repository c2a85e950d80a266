"""Settings: one frozen dataclass. CLI flags map 1:1 onto its fields (flags > environment > defaults)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 9009


def default_data_dir() -> Path:
    """Where state lives when no --data-dir is given: $LAMINA_DATA_DIR or ~/.local/share/lamina."""
    env = os.environ.get("LAMINA_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "lamina"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = field(default_factory=default_data_dir)
    account_id: str = "000000000000"
    region: str = "us-east-1"
    # Concurrency: the account limit and the floor of unreserved concurrency that
    # PutFunctionConcurrency may not go below (AWS: 1,000 and 100).
    account_concurrency: int = 1000
    min_unreserved_concurrency: int = 100
    # How long an idle environment stays warm before it is stopped.
    idle_timeout_s: float = 600.0
    # The Init phase limit (AWS: 10 s).
    init_timeout_s: float = 10.0
    # How long an idle environment runs on before it is frozen (0: as soon as its runtime waits
    # for the next event). Environments in steady use skip the freeze/thaw pair (two cgroup
    # writes per call); one idle longer than this is frozen, as Lambda freezes between calls.
    freeze_delay_s: float = 0.1
    # Snapshot starts: cold starts fork a template of the function version that did Init once
    # (docs/snapshot-starts.md). How long an unused template is kept (None: max(idle, 600 s)).
    snapshot_starts: bool = field(
        default_factory=lambda: os.environ.get("LAMINA_SNAPSHOT_STARTS", "on") != "off"
    )
    template_idle_timeout_s: float | None = None
    # Spare environments: per template that has forked, this many environments are forked ahead
    # of need (proactive initialisation, as Lambda may do), so a scale-out takes one at once.
    spare_environments: int = field(
        default_factory=lambda: int(os.environ.get("LAMINA_SPARE_ENVIRONMENTS", "1"))
    )
    # Memory pressure: below this much available host memory (MB), idle environments are
    # evicted and new ones refused with a throttle (0: never).
    min_available_mb: int = field(
        default_factory=lambda: int(os.environ.get("LAMINA_MIN_AVAILABLE_MB", "256"))
    )
    log_level: str = "info"
    # How environments are isolated: auto (the strongest the host allows), linux, process (none).
    sandbox: str = field(default_factory=lambda: os.environ.get("LAMINA_SANDBOX", "auto"))
    # Asynchronous invocation: the retry delay base after a function error (Lambda waits about
    # 1 then 2 minutes: base x attempt), and how many events the worker runs at once.
    async_retry_base_s: float = field(
        default_factory=lambda: float(os.environ.get("LAMINA_ASYNC_RETRY_BASE", "60"))
    )
    # Hot reloading (code read live from a host folder): on, off, or auto (on for loopback hosts).
    hot_reload: str = field(default_factory=lambda: os.environ.get("LAMINA_HOT_RELOAD", "auto"))
    async_concurrency: int = field(
        default_factory=lambda: int(os.environ.get("LAMINA_ASYNC_CONCURRENCY", "32"))
    )
    # Amazon MQ broker names to AMQP URLs for RabbitMQ event source mappings that name a broker
    # ARN: "NAME=amqp://host:5672,OTHER=amqps://host:5671" (unlisted names: amqp://127.0.0.1:5672).
    mq_brokers: str = field(default_factory=lambda: os.environ.get("LAMINA_MQ_BROKERS", ""))

    # Scheduled rules: a test-only speed-up of rate schedules (60: `rate(1 minute)` runs every
    # second). Cron schedules always follow the real clock.
    schedule_time_scale: float = field(
        default_factory=lambda: float(os.environ.get("LAMINA_SCHEDULE_TIME_SCALE", "1"))
    )

    # Object events: how long a changed file must stay unchanged before it counts as complete.
    object_settle_s: float = field(
        default_factory=lambda: float(os.environ.get("LAMINA_OBJECT_SETTLE", "1.0"))
    )

    @property
    def db_path(self) -> Path:
        return self.data_dir / "lamina.db"

    @property
    def code_dir(self) -> Path:
        return self.data_dir / "code"

    @property
    def unreserved_floor(self) -> int:
        return min(self.min_unreserved_concurrency, self.account_concurrency)
