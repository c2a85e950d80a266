"""`lamina`: the command group and `lamina server`."""

from __future__ import annotations

import contextlib
import signal
import sys
from pathlib import Path

import click

from lamina.cli.buckets import buckets
from lamina.cli.dev import dev
from lamina.cli.doctor import doctor
from lamina.cli.functions import delete, deploy, functions, invoke
from lamina.cli.logs import logs
from lamina.cli.schedules import schedules
from lamina.cli.status import status
from lamina.config import DEFAULT_PORT, Settings, default_data_dir


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lamina")
def cli() -> None:
    """Lamina: AWS Lambda on your own machine."""


@cli.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="LAMINA_HOST",
    help="Address to listen on.",
)
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=int,
    envvar="LAMINA_PORT",
    help="Port to listen on (0 picks a free one).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    envvar="LAMINA_DATA_DIR",
    help="Where the database, code and logs live.  [default: ~/.local/share/lamina]",
)
@click.option("--account-id", default="000000000000", show_default=True, envvar="LAMINA_ACCOUNT_ID")
@click.option(
    "--region",
    default="us-east-1",
    show_default=True,
    envvar="LAMINA_REGION",
    help="Region of requests that are not signed.",
)
@click.option(
    "--account-concurrency",
    default=1000,
    show_default=True,
    type=click.IntRange(1),
    envvar="LAMINA_ACCOUNT_CONCURRENCY",
    help="Concurrent executions allowed in the account.",
)
@click.option(
    "--min-unreserved-concurrency",
    default=100,
    show_default=True,
    type=click.IntRange(0),
    envvar="LAMINA_MIN_UNRESERVED_CONCURRENCY",
    help="Unreserved concurrency that reservations may not eat into.",
)
@click.option(
    "--idle-timeout",
    default=600.0,
    show_default=True,
    type=click.FloatRange(0.1),
    envvar="LAMINA_IDLE_TIMEOUT",
    help="Seconds an idle environment stays warm.",
)
@click.option(
    "--snapshot-starts",
    default="on",
    show_default=True,
    envvar="LAMINA_SNAPSHOT_STARTS",
    type=click.Choice(["on", "off"]),
    help="Cold starts fork a template of the function version that did Init once.",
)
@click.option(
    "--template-idle-timeout",
    default=None,
    type=click.FloatRange(0.1),
    envvar="LAMINA_TEMPLATE_IDLE_TIMEOUT",
    help="Seconds an unused template is kept [default: the larger of --idle-timeout and 600].",
)
@click.option(
    "--spare-environments",
    default=1,
    show_default=True,
    type=click.IntRange(0, 8),
    envvar="LAMINA_SPARE_ENVIRONMENTS",
    help="Per function version that scaled out from its template, environments forked ahead "
    "of need (proactively initialised; their Init Duration is still reported).",
)
@click.option(
    "--min-available-mb",
    default=256,
    show_default=True,
    type=click.IntRange(0),
    envvar="LAMINA_MIN_AVAILABLE_MB",
    help="Below this much available host memory, evict idle environments and throttle new ones.",
)
@click.option(
    "--freeze-delay",
    default=0.1,
    show_default=True,
    type=click.FloatRange(0.0),
    envvar="LAMINA_FREEZE_DELAY",
    help="Seconds an idle environment runs on before it is frozen (0: as soon as it has "
    "answered; environments in steady use skip the freeze/thaw pair).",
)
@click.option(
    "--async-retry-base",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0.0),
    envvar="LAMINA_ASYNC_RETRY_BASE",
    help="Seconds before retrying a failed Event invocation, times the attempt (Lambda: 60, 120).",
)
@click.option(
    "--async-concurrency",
    default=32,
    show_default=True,
    type=click.IntRange(1),
    envvar="LAMINA_ASYNC_CONCURRENCY",
    help="Event invocations the asynchronous worker runs at once.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    envvar="LAMINA_LOG_LEVEL",
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--sandbox",
    default="auto",
    show_default=True,
    envvar="LAMINA_SANDBOX",
    type=click.Choice(["auto", "linux", "unshare", "process"]),
    help="How environments are isolated (see `lamina doctor`).",
)
def server(
    host: str,
    port: int,
    data_dir: Path | None,
    account_id: str,
    region: str,
    account_concurrency: int,
    min_unreserved_concurrency: int,
    idle_timeout: float,
    snapshot_starts: str,
    template_idle_timeout: float | None,
    spare_environments: int,
    min_available_mb: int,
    freeze_delay: float,
    async_retry_base: float,
    async_concurrency: int,
    log_level: str,
    sandbox: str,
) -> None:
    """Run the Lamina server (API, database, environments) in this process."""
    from lamina.server import serve  # the server's imports are not needed by other commands

    if not (account_id.isdigit() and len(account_id) == 12):
        raise click.BadParameter("must be 12 digits", param_hint="--account-id")
    # uvicorn handles SIGINT/SIGTERM itself (a complete shutdown: every environment is stopped),
    # then raises the signal again for the default disposition; after that, exit quietly with 0.
    signal.signal(signal.SIGTERM, _exit_quietly)
    with contextlib.suppress(KeyboardInterrupt):
        serve(
            Settings(
                host=host,
                port=port,
                data_dir=data_dir or default_data_dir(),
                account_id=account_id,
                region=region,
                account_concurrency=account_concurrency,
                min_unreserved_concurrency=min_unreserved_concurrency,
                idle_timeout_s=idle_timeout,
                snapshot_starts=snapshot_starts == "on",
                template_idle_timeout_s=template_idle_timeout,
                spare_environments=spare_environments,
                min_available_mb=min_available_mb,
                freeze_delay_s=freeze_delay,
                async_retry_base_s=async_retry_base,
                async_concurrency=async_concurrency,
                log_level=log_level,
                sandbox=sandbox,
            )
        )


def _exit_quietly(signum: int, frame: object) -> None:
    sys.exit(0)


cli.add_command(functions)
cli.add_command(deploy)
cli.add_command(invoke)
cli.add_command(delete)
cli.add_command(logs)
cli.add_command(doctor)
cli.add_command(buckets)
cli.add_command(schedules)
cli.add_command(status)
cli.add_command(dev)


def main() -> None:
    cli(prog_name="lamina")
