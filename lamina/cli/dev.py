"""`lamina dev`: functions whose code is read live from a local folder (hot reloading).

The server does the work (see docs/development.md): this command only points functions at their
folders with LocalStack's convention, `Code: {"S3Bucket": "hot-reload", "S3Key": <folder>}`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from lamina.cli.client import api_errors, client, endpoint_option

HOT_RELOAD_BUCKET = "hot-reload"
DEFAULT_ROLE = "arn:aws:iam::000000000000:role/lamina"


def hot_code(folder: Path) -> dict[str, str]:
    return {"S3Bucket": HOT_RELOAD_BUCKET, "S3Key": str(folder.resolve())}


@click.command()
@click.argument("name", required=False)
@click.argument(
    "folder", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "-t",
    "--template",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Deploy a SAM template with every CodeUri folder read live.",
)
@click.option(
    "--stack-name", help="With -t: names what the template creates [default: its folder]."
)
@click.option("--parameter-overrides", "overrides", multiple=True, metavar="KEY=VALUE")
@click.option("--handler", default="app.handler", show_default=True)
@click.option(
    "--runtime", default=f"python{sys.version_info[0]}.{sys.version_info[1]}", show_default=True
)
@click.option("--memory", type=int, help="Memory in MB (128-10240).")
@click.option("--timeout", type=int, help="Timeout in seconds (1-900).")
@click.option("--env", "env_pairs", multiple=True, metavar="KEY=VALUE")
@click.option(
    "--layer", "layers", multiple=True, metavar="ARN", help="Layer version ARN (repeatable)."
)
@click.option("--role", default=DEFAULT_ROLE, show_default=True)
@click.option("--description")
@endpoint_option
@api_errors
def dev(
    name: str | None,
    folder: Path | None,
    template: Path | None,
    stack_name: str | None,
    overrides: tuple[str, ...],
    handler: str,
    runtime: str,
    memory: int | None,
    timeout: int | None,
    env_pairs: tuple[str, ...],
    layers: tuple[str, ...],
    role: str,
    description: str | None,
    endpoint: str,
) -> None:
    """Create or update function NAME with its code read live from FOLDER: an edit takes effect
    on the next invocation, without a redeploy. With -t, every function of a SAM template."""
    from lamina.cli.functions import _parse_env

    if template is not None:
        from lamina.cli.sam.command import deploy_template

        deploy_template(
            template,
            stack=stack_name,
            overrides=_parse_env(overrides, "--parameter-overrides"),
            endpoint=endpoint,
            shift_scale=0.0,
            hot_reload=True,
        )
        return
    if name is None or folder is None:
        raise click.UsageError("give NAME and FOLDER, or -t TEMPLATE")
    lam = client("lambda", endpoint)
    config: dict[str, Any] = {"Handler": handler, "Runtime": runtime, "Role": role}
    if memory is not None:
        config["MemorySize"] = memory
    if timeout is not None:
        config["Timeout"] = timeout
    if env_pairs:
        config["Environment"] = {"Variables": _parse_env(env_pairs)}
    if description is not None:
        config["Description"] = description
    if layers:
        config["Layers"] = list(layers)
    code = hot_code(folder)
    try:
        lam.get_function_configuration(FunctionName=name)
        exists = True
    except lam.exceptions.ResourceNotFoundException:
        exists = False
    if exists:
        lam.update_function_code(FunctionName=name, **code)
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2})
        cfg = lam.update_function_configuration(FunctionName=name, **config)
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2})
    else:
        cfg = lam.create_function(FunctionName=name, Code=code, **config)
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2})
    click.echo(f"{cfg['FunctionArn']} now runs the code in {code['S3Key']}")
    click.echo("edits take effect on the next invocation; `lamina deploy` packages it again")
