"""placeholder: `enrich sandbox llm`."""

import click


@click.command("llm")
def llm_command() -> None:
    """Not built yet."""
    raise click.ClickException("not built yet")
