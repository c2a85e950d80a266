"""`lamina schedules ...`: run a function on a schedule (EventBridge rules, through its API)."""

from __future__ import annotations

import uuid

import click

from lamina.cli.client import api_errors, client, endpoint_option


@click.group()
def schedules() -> None:
    """Scheduled rules: rate(...) or cron(...) expressions that invoke functions."""


@schedules.command("create")
@click.argument("name")
@click.option("--function", "function", required=True, help="Function name or ARN to invoke.")
@click.option(
    "--expression",
    required=True,
    help="rate(5 minutes) or cron(0 12 ? * MON-FRI *): six fields, UTC, as EventBridge.",
)
@click.option("--input", "input_json", default=None, help="JSON to send instead of the event.")
@click.option("--disabled", is_flag=True, help="Create the rule disabled.")
@endpoint_option
@api_errors
def create(
    name: str, function: str, expression: str, input_json: str | None, disabled: bool, endpoint: str
) -> None:
    """Create or update rule NAME that invokes FUNCTION on a schedule."""
    arn = function
    if not function.startswith("arn:"):
        fn, _, qualifier = function.partition(":")
        cfg = client("lambda", endpoint).get_function(FunctionName=fn)["Configuration"]
        arn = cfg["FunctionArn"] + (f":{qualifier}" if qualifier else "")
    events = client("events", endpoint)
    rule_arn = events.put_rule(
        Name=name, ScheduleExpression=expression, State="DISABLED" if disabled else "ENABLED"
    )["RuleArn"]
    target = {"Id": uuid.uuid5(uuid.NAMESPACE_URL, arn).hex[:16], "Arn": arn}
    if input_json is not None:
        target["Input"] = input_json
    failed = events.put_targets(Rule=name, Targets=[target])
    if failed["FailedEntryCount"]:
        raise click.ClickException(failed["FailedEntries"][0]["ErrorMessage"])
    click.echo(f"{rule_arn}  {expression} -> {arn}")


@schedules.command("list")
@endpoint_option
@api_errors
def list_rules(endpoint: str) -> None:
    """List scheduled rules: name, state, expression, targets."""
    events = client("events", endpoint)
    rows = [r for p in events.get_paginator("list_rules").paginate() for r in p["Rules"]]
    if not rows:
        click.echo("no rules")
        return
    width = max(len(r["Name"]) for r in rows)
    for r in rows:
        targets = events.list_targets_by_rule(Rule=r["Name"])["Targets"]
        arns = ", ".join(t["Arn"].rsplit(":function:", 1)[-1] for t in targets) or "-"
        click.echo(
            f"{r['Name']:<{width}}  {r['State']:<8}  {r.get('ScheduleExpression', '-'):<28}  {arns}"
        )


@schedules.command("delete")
@click.argument("name")
@endpoint_option
@api_errors
def delete(name: str, endpoint: str) -> None:
    """Delete rule NAME and its targets."""
    events = client("events", endpoint)
    targets = events.list_targets_by_rule(Rule=name)["Targets"]
    if targets:
        events.remove_targets(Rule=name, Ids=[t["Id"] for t in targets])
    events.delete_rule(Name=name)
    click.echo(f"deleted rule {name}")
