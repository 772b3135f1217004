"""`enrich demo`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from enrich.demo import run_demo


@click.command("demo")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the demo's config, ledger, review page and store state "
                   "(default: a new temporary folder, kept so you can explore it).")
def demo_command(directory: Path | None) -> None:
    """The whole flow on this machine: sandbox store, offline model, review page, publish.

    Touches no real shop and calls no paid API.
    """
    folder = directory or Path(tempfile.mkdtemp(prefix="enrich-demo-"))
    click.echo(f"enrich demo in {folder}")
    run_demo(folder, echo=click.echo)


COMMANDS = [demo_command]
