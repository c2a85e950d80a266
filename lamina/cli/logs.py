"""`lamina logs NAME [--follow]`: a function's log group, read through the CloudWatch Logs API."""

from __future__ import annotations

import time
from typing import Any

import click

from lamina.cli.client import api_errors, client, endpoint_option

MAX_TIMEOUT_S = 900  # Lambda's longest function timeout
INIT_S = 10  # and its Init phase limit


def _lookback_ms(endpoint: str, name: str) -> int:
    """How far back a new event's timestamp can be when it is stored.

    An invocation's lines are stored when it ends, stamped with when they were written, so an
    event may arrive up to the function's timeout (plus its Init phase) late. Following by
    timestamp alone would miss the early lines of a long call that ends after a short one.
    """
    timeout_s = MAX_TIMEOUT_S
    if not name.startswith("/"):
        try:
            timeout_s = int(
                client("lambda", endpoint).get_function_configuration(FunctionName=name)["Timeout"]
            )
        except Exception:  # a log group without a function: assume the worst
            timeout_s = MAX_TIMEOUT_S
    return (timeout_s + INIT_S + 5) * 1000


@click.command()
@click.argument("name")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events.")
@click.option(
    "--since", default=3600.0, show_default=True, type=float, help="Seconds of history to show."
)
@endpoint_option
@api_errors
def logs(name: str, follow: bool, since: float, endpoint: str) -> None:
    """Print the logs of function NAME."""
    cw = client("logs", endpoint)
    group = name if name.startswith("/") else f"/aws/lambda/{name}"
    first_start = start = int((time.time() - since) * 1000)
    lookback_ms = _lookback_ms(endpoint, name) if follow else 0
    seen: dict[str, int] = {}  # event id -> timestamp, of events already printed
    while True:
        kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start}
        while True:
            page = cw.filter_log_events(**kwargs)
            for event in page["events"]:
                if event["eventId"] in seen:
                    continue
                seen[event["eventId"]] = event["timestamp"]
                click.echo(event["message"])
            if "nextToken" not in page:
                break
            kwargs["nextToken"] = page["nextToken"]
        if not follow:
            return
        start = max(first_start, int(time.time() * 1000) - lookback_ms)
        seen = {k: ts for k, ts in seen.items() if ts >= start}
        try:
            time.sleep(0.5)
        except KeyboardInterrupt:
            return
