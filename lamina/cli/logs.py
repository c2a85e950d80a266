"""`lamina logs NAME [--follow]`: a function's log group, read through the CloudWatch Logs API."""

from __future__ import annotations

import time

import click

from lamina.cli.client import api_errors, client, endpoint_option


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
    start = int((time.time() - since) * 1000)
    seen: set[str] = set()
    while True:
        kwargs = {"logGroupName": group, "startTime": start}
        newest = start
        while True:
            page = cw.filter_log_events(**kwargs)
            for event in page["events"]:
                if event["eventId"] in seen:
                    continue
                seen.add(event["eventId"])
                newest = max(newest, event["timestamp"])
                click.echo(event["message"])
            if "nextToken" not in page:
                break
            kwargs["nextToken"] = page["nextToken"]
        if not follow:
            return
        start = newest
        try:
            time.sleep(0.5)
        except KeyboardInterrupt:
            return
