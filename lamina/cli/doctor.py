"""`lamina doctor`: what this host can enforce for environments, and which runtimes it can run."""

from __future__ import annotations

import click


@click.command()
def doctor() -> None:
    """Show which sandbox guarantees hold on this host and which runtimes it can run."""
    from lamina.runtime.runtimes import catalog
    from lamina.sandbox.host import probe

    click.echo("Sandbox guarantees (what `lamina server --sandbox auto` would give):")
    for name, state in probe().guarantees().items():
        click.echo(f"  {name}: {state}")
    click.echo("Runtimes:")
    for rid, why in catalog().items():
        if why is None:
            click.echo(f"  {rid}: available")
    unavailable = [rid for rid, why in catalog().items() if why is not None]
    click.echo(f"  not available here: {', '.join(unavailable)}")
