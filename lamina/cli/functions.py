"""`lamina functions list`, `lamina deploy`, `lamina invoke`, `lamina delete`."""

from __future__ import annotations

import io
import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import click

from lamina.cli.client import api_errors, client, endpoint_option

DEFAULT_ROLE = "arn:aws:iam::000000000000:role/lamina"


def pack(path: Path) -> bytes:
    """A folder becomes a zip (executable bits kept); a .zip file is taken as it is."""
    if path.is_file():
        return path.read_bytes()
    if not path.is_dir():
        raise click.ClickException(f"{path} is neither a folder nor a zip file")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", ".git"))
            for name in sorted(files):
                full = Path(root) / name
                info = zipfile.ZipInfo(str(full.relative_to(path)))
                info.external_attr = (full.stat().st_mode & 0o777 | 0o100000) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, full.read_bytes())
    return buf.getvalue()


@click.group()
def functions() -> None:
    """Inspect functions."""


@functions.command("list")
@endpoint_option
@api_errors
def list_functions(endpoint: str) -> None:
    """List functions: name, runtime, memory, timeout, last modified."""
    lam = client("lambda", endpoint)
    rows = []
    for page in lam.get_paginator("list_functions").paginate():
        rows.extend(page["Functions"])
    if not rows:
        click.echo("no functions")
        return
    width = max(len(f["FunctionName"]) for f in rows)
    for f in rows:
        click.echo(
            f"{f['FunctionName']:<{width}}  {f.get('Runtime', '-'):<16} {f['MemorySize']:>6} MB "
            f"{f['Timeout']:>4} s  {f['LastModified']}"
        )


def _parse_env(pairs: tuple[str, ...], hint: str = "--env") -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=hint)
        env[key] = value
    return env


@click.command()
@click.argument("name", required=False)
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-t",
    "--template",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Deploy an AWS SAM (or CloudFormation) template instead of one function.",
)
@click.option(
    "--stack-name", help="With -t: names what the template creates [default: its folder]."
)
@click.option(
    "--parameter-overrides",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="With -t: a template parameter (repeatable).",
)
@click.option(
    "--traffic-shift-scale",
    type=click.FloatRange(0.0),
    default=1.0,
    show_default=True,
    help="With -t: multiplies the waits of Canary/Linear deployment preferences (0: no waits).",
)
@click.option("--handler", default="app.handler", show_default=True)
@click.option(
    "--runtime", default=f"python{sys.version_info[0]}.{sys.version_info[1]}", show_default=True
)
@click.option("--memory", type=int, help="Memory in MB (128-10240).")
@click.option("--timeout", type=int, help="Timeout in seconds (1-900).")
@click.option(
    "--env",
    "env_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Environment variable (repeatable).",
)
@click.option("--role", default=DEFAULT_ROLE, show_default=True)
@click.option("--description")
@click.option("--publish", is_flag=True, help="Publish a version of what was deployed.")
@click.option(
    "--alias",
    metavar="ALIAS",
    help="Publish a version and point ALIAS at it (created if missing).",
)
@endpoint_option
@api_errors
def deploy(
    name: str | None,
    path: Path | None,
    template: Path | None,
    stack_name: str | None,
    overrides: tuple[str, ...],
    traffic_shift_scale: float,
    handler: str,
    runtime: str,
    memory: int | None,
    timeout: int | None,
    env_pairs: tuple[str, ...],
    role: str,
    description: str | None,
    publish: bool,
    alias: str | None,
    endpoint: str,
) -> None:
    """Create or update function NAME from PATH (a folder or a zip), or, with -t, everything an
    AWS SAM template describes.

    With --publish or --alias the result is also published as a version (an unchanged
    function keeps its newest version), and --alias moves that alias to it.
    """
    if template is not None:
        from lamina.cli.sam.command import deploy_template

        deploy_template(
            template,
            stack=stack_name,
            overrides=_parse_env(overrides, "--parameter-overrides"),
            endpoint=endpoint,
            shift_scale=traffic_shift_scale,
        )
        return
    if name is None or path is None:
        raise click.UsageError("give NAME and PATH, or -t TEMPLATE")
    lam = client("lambda", endpoint)
    code = pack(path)
    config: dict[str, Any] = {"Handler": handler, "Runtime": runtime, "Role": role}
    if memory is not None:
        config["MemorySize"] = memory
    if timeout is not None:
        config["Timeout"] = timeout
    if env_pairs:
        config["Environment"] = {"Variables": _parse_env(env_pairs)}
    if description is not None:
        config["Description"] = description
    try:
        lam.get_function_configuration(FunctionName=name)
        exists = True
    except lam.exceptions.ResourceNotFoundException:
        exists = False
    if exists:
        lam.update_function_code(FunctionName=name, ZipFile=code)
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2})
        cfg = lam.update_function_configuration(FunctionName=name, **config)
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2})
        verb = "updated"
    else:
        cfg = lam.create_function(FunctionName=name, Code={"ZipFile": code}, **config)
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2})
        verb = "created"
    click.echo(f"{verb} {cfg['FunctionArn']} ({len(code)} bytes, sha256 {cfg['CodeSha256']})")
    if publish or alias:
        version = lam.publish_version(FunctionName=name)["Version"]
        click.echo(f"published version {version}")
        if alias:
            _point_alias(lam, name, alias, version)
            click.echo(f"alias {alias} -> {version}")


def _point_alias(lam: Any, name: str, alias: str, version: str) -> None:
    try:
        lam.update_alias(FunctionName=name, Name=alias, FunctionVersion=version)
    except lam.exceptions.ResourceNotFoundException:
        lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)


@click.command()
@click.argument("name")
@click.option(
    "--payload", default="{}", show_default=True, help="JSON, or @file to read it from a file."
)
@click.option("--qualifier")
@click.option(
    "--async", "is_async", is_flag=True, help="Invoke asynchronously (InvocationType=Event)."
)
@click.option("--log", "show_log", is_flag=True, help="Print the invocation's log tail to stderr.")
@endpoint_option
@api_errors
def invoke(
    name: str, payload: str, qualifier: str | None, is_async: bool, show_log: bool, endpoint: str
) -> None:
    """Invoke function NAME and print its result."""
    import base64

    try:
        data = Path(payload[1:]).read_bytes() if payload.startswith("@") else payload.encode()
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read {payload[1:]}: {exc.strerror}", param_hint="--payload"
        ) from exc
    try:
        json.loads(data)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--payload") from exc
    lam = client("lambda", endpoint)
    kwargs: dict[str, Any] = {"FunctionName": name, "Payload": data}
    if qualifier:
        kwargs["Qualifier"] = qualifier
    if is_async:
        lam.invoke(InvocationType="Event", **kwargs)
        click.echo("accepted (InvocationType=Event)")
        return
    resp = lam.invoke(LogType="Tail" if show_log else "None", **kwargs)
    if show_log and resp.get("LogResult"):
        click.echo(base64.b64decode(resp["LogResult"]).decode(errors="replace"), err=True, nl=False)
    body = resp["Payload"].read().decode(errors="replace")
    click.echo(body)
    if resp.get("FunctionError"):
        raise click.ClickException(f"{name} failed: {_describe_error(body)}")


def _describe_error(body: str) -> str:
    """`Type: message` from a function error document (the first line of the message)."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return body.strip().splitlines()[0] if body.strip() else "unhandled error"
    message = str(doc.get("errorMessage") or "").strip()
    first = message.splitlines()[0] if message else ""
    error_type = doc.get("errorType") or "Unhandled"
    return f"{error_type}: {first}" if first else str(error_type)


@click.command()
@click.argument("name")
@endpoint_option
@api_errors
def delete(name: str, endpoint: str) -> None:
    """Delete function NAME."""
    client("lambda", endpoint).delete_function(FunctionName=name)
    click.echo(f"deleted {name}")
