"""`enrich init`."""

from __future__ import annotations

from pathlib import Path

import click

from enrich.scaffold import init_project


@click.command("init")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Where to write the files.")
@click.option("--force", is_flag=True, help="Overwrite an existing config.toml and prompts/.")
def init_command(directory: Path, force: bool) -> None:
    """Write config.toml (from config.example.toml) and an editable copy of prompts/."""
    written = init_project(directory, force=force)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo("Next: set WOO_CONSUMER_KEY / WOO_CONSUMER_SECRET (and your model's API key) "
               "in the environment, edit config.toml, then run `enrich sync`.")


COMMANDS = [init_command]
