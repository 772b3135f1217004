"""placeholder: `enrich sandbox store`."""

import click


@click.command("store")
def store_command() -> None:
    """Not built yet."""
    raise click.ClickException("not built yet")
