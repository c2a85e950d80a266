"""`lamina buckets ...`: host folders as buckets, and the functions their object events go to."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from lamina.cli.client import api_errors, endpoint_option, lamina_request

BASE = "/lamina/v1/buckets"
EVENT_CHOICES = [
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
]


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _function_arn(function: str, endpoint: str) -> str:
    """A function name becomes its ARN (a given ARN is kept as it is)."""
    if function.startswith("arn:"):
        return function
    from lamina.cli.client import client

    name, _, qualifier = function.partition(":")
    arn = str(
        client("lambda", endpoint).get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    )
    return f"{arn}:{qualifier}" if qualifier else arn


@click.group()
def buckets() -> None:
    """Folders on this host as buckets: files created or deleted there invoke functions."""


@buckets.command("create")
@click.argument("name")
@click.option(
    "--path",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder the bucket stands for (created if missing).",
)
@endpoint_option
def create(name: str, path: Path, endpoint: str) -> None:
    """Create bucket NAME for a folder (files already there are not events)."""
    path.mkdir(parents=True, exist_ok=True)
    out = lamina_request(endpoint, "PUT", f"{BASE}/{name}", {"Path": str(path.resolve())})
    click.echo(f"{out['Name']}  {out['Path']}  {out['Arn']}")


@buckets.command("list")
@endpoint_option
def list_buckets(endpoint: str) -> None:
    """List buckets and their folders."""
    rows = lamina_request(endpoint, "GET", BASE)["Buckets"]
    if not rows:
        click.echo("no buckets")
        return
    width = max(len(b["Name"]) for b in rows)
    for b in rows:
        click.echo(f"{b['Name']:<{width}}  {b['Path']}")


@buckets.command("show")
@click.argument("name")
@endpoint_option
def show(name: str, endpoint: str) -> None:
    """A bucket and its notification configuration, as JSON."""
    bucket = lamina_request(endpoint, "GET", f"{BASE}/{name}")
    bucket["NotificationConfiguration"] = lamina_request(
        endpoint, "GET", f"{BASE}/{name}/notification"
    )
    click.echo(json.dumps(bucket, indent=2))


@buckets.command("delete")
@click.argument("name")
@endpoint_option
def delete(name: str, endpoint: str) -> None:
    """Delete a bucket (its folder and files are left alone)."""
    lamina_request(endpoint, "DELETE", f"{BASE}/{name}")
    click.echo(f"deleted bucket {name}")


@buckets.command("notify")
@click.argument("name")
@click.argument("function")
@click.option(
    "--event",
    "events",
    multiple=True,
    type=click.Choice(EVENT_CHOICES),
    help="Event types to send (repeatable).  [default: s3:ObjectCreated:*]",
)
@click.option("--prefix", default="", help="Only keys that start with this.")
@click.option("--suffix", default="", help="Only keys that end with this (e.g. .csv).")
@click.option("--id", "config_id", default=None, help="The configuration's Id (replaces one).")
@endpoint_option
@api_errors
def notify(
    name: str,
    function: str,
    events: tuple[str, ...],
    prefix: str,
    suffix: str,
    config_id: str | None,
    endpoint: str,
) -> None:
    """Send bucket NAME's object events to FUNCTION (a name, name:qualifier or ARN)."""
    current = lamina_request(endpoint, "GET", f"{BASE}/{name}/notification")
    configs: list[dict[str, Any]] = current["LambdaFunctionConfigurations"]
    new: dict[str, Any] = {
        "LambdaFunctionArn": _function_arn(function, endpoint),
        "Events": list(events or ["s3:ObjectCreated:*"]),
    }
    rules = [{"Name": n, "Value": v} for n, v in (("prefix", prefix), ("suffix", suffix)) if v]
    if rules:
        new["Filter"] = {"Key": {"FilterRules": rules}}
    if config_id:
        new["Id"] = config_id
        configs = [c for c in configs if c.get("Id") != config_id]
    configs.append(new)
    out = lamina_request(
        endpoint, "PUT", f"{BASE}/{name}/notification", {"LambdaFunctionConfigurations": configs}
    )
    added = out["LambdaFunctionConfigurations"][-1]
    click.echo(
        f"{name}: {', '.join(added['Events'])} -> {added['LambdaFunctionArn']} (Id {added['Id']})"
    )


@buckets.command("unnotify")
@click.argument("name")
@click.argument("config_id")
@endpoint_option
def unnotify(name: str, config_id: str, endpoint: str) -> None:
    """Remove the notification configuration CONFIG_ID from bucket NAME."""
    current = lamina_request(endpoint, "GET", f"{BASE}/{name}/notification")
    configs = current["LambdaFunctionConfigurations"]
    kept = [c for c in configs if c.get("Id") != config_id]
    if len(kept) == len(configs):
        raise click.ClickException(f"bucket {name} has no configuration {config_id}")
    lamina_request(
        endpoint, "PUT", f"{BASE}/{name}/notification", {"LambdaFunctionConfigurations": kept}
    )
    click.echo(f"{name}: removed {config_id}")
