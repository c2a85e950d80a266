"""`lamina status`: environments, templates and start counters per function version."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import click

from lamina.cli.client import endpoint_option

COLUMNS = (
    ("environments", "ENVS"),
    ("busy", "BUSY"),
    ("idle", "IDLE"),
    ("provisioned", "PROV"),
    ("invocations", "INVOKES"),
    ("cold_starts", "COLD"),
    ("snapshot_starts", "FORKED"),
    ("warm_starts", "WARM"),
    ("throttles", "THROTTLED"),
    ("evictions", "EVICTED"),
    ("spares", "SPARE"),  # initialised ahead of need, not counted in ENVS
)


def fetch(endpoint: str, function: str | None) -> dict[str, Any]:
    url = f"{endpoint.rstrip('/')}/lamina/status"
    if function:
        url += "?" + urllib.parse.urlencode({"FunctionName": function})
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            doc: dict[str, Any] = json.loads(resp.read())
    except (urllib.error.URLError, OSError) as exc:
        raise click.ClickException(
            f"cannot reach Lamina at {endpoint} (is `lamina server` running?): {exc}"
        ) from exc
    return doc


@click.command()
@click.argument("function", required=False)
@endpoint_option
@click.option("--json", "as_json", is_flag=True, help="Print the status document as JSON.")
def status(function: str | None, endpoint: str, as_json: bool) -> None:
    """Pools per function version: environments, cold/forked/warm starts, throttles."""
    doc = fetch(endpoint, function)
    if as_json:
        click.echo(json.dumps(doc, indent=1))
        return
    host = doc["Host"]
    click.echo(
        f"sandbox: {doc['Sandbox']}   snapshot starts: {'on' if doc['SnapshotStarts'] else 'off'}"
        f"   host memory available: {host['AvailableMemoryMB']} MB"
        f" (floor {host['MinAvailableMemoryMB']} MB)"
    )
    rows = [
        [f"{f['FunctionName']}:{f['Version']}", *(str(f[k]) for k, _ in COLUMNS)]
        for f in doc["Functions"]
    ]
    totals = doc["Totals"]
    rows.append(["(all)", *(str(totals[k]) for k, _ in COLUMNS)])
    header = ["FUNCTION:VERSION", *(title for _, title in COLUMNS)]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    for f in doc["Functions"]:
        for version, why in f["template_refusals"].items():
            click.echo(f"no snapshot starts for {version}: {why}")
