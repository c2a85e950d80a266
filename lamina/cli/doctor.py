"""`lamina doctor`: what this host can enforce for environments, and which runtimes it can run."""

from __future__ import annotations

import click


@click.command()
def doctor() -> None:
    """Show which sandbox guarantees hold on this host and which runtimes it can run (and why
    the others cannot)."""
    from lamina.runtime.runtimes import catalog, notes
    from lamina.sandbox.host import probe

    click.echo("Sandbox guarantees (what `lamina server --sandbox auto` would give):")
    for name, state in probe().guarantees().items():
        click.echo(f"  {name}: {state}")
    runtimes = catalog()
    details = notes()
    click.echo("Runtimes this host can run:")
    for rid, why in runtimes.items():
        if why is None:
            click.echo(f"  {rid}: {details.get(rid, 'available')}")
    click.echo("Runtimes this host cannot run:")
    by_reason: dict[str, list[str]] = {}
    for rid, why in runtimes.items():
        if why is not None:
            by_reason.setdefault(why, []).append(rid)  # shared reasons print once
    for why, rids in by_reason.items():
        click.echo(f"  {', '.join(rids)}: {why}")
