"""The `lamina deploy -t template.yaml` entry point."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from lamina.cli.client import client
from lamina.cli.sam.apply import Deployment
from lamina.cli.sam.template import load


def default_stack_name(template: Path) -> str:
    folder = template.resolve().parent.name
    name = re.sub(r"[^a-zA-Z0-9-]", "-", folder).strip("-")
    return name[:32] or "lamina"


def deploy_template(
    template: Path,
    *,
    stack: str | None,
    overrides: dict[str, str],
    endpoint: str,
    shift_scale: float,
    hot_reload: bool = False,
) -> None:
    stack = stack or default_stack_name(template)
    if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9-]{0,127}", stack):
        raise click.BadParameter(
            "letters, digits and hyphens, starting with a letter", param_hint="--stack-name"
        )
    lam = client("lambda", endpoint)
    region = lam.meta.region_name
    account_id = os.environ.get("LAMINA_ACCOUNT_ID", "000000000000")
    tpl = load(template, region=region, account_id=account_id, stack=stack, parameters=overrides)
    click.echo(f"Deploying {template} as stack {stack} to {endpoint}")
    deployment = Deployment(
        tpl,
        clients=lambda service: lam if service == "lambda" else client(service, endpoint),
        stack=stack,
        region=region,
        account_id=account_id,
        shift_scale=shift_scale,
        hot_reload=hot_reload,
        endpoint=endpoint,
    )
    deployment.set_parameters(overrides)
    deployment.run()
    click.echo(f"Stack {stack} deployed.")
