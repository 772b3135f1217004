"""The ``enrich`` command: parse, call the library, render. No SQL or HTTP here."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from enrich import __version__
from enrich.app import App
from enrich.config import ENV_DEBUG
from enrich.errors import EnrichError


class EnrichGroup(click.Group):
    """Renders an EnrichError as one line plus what to do, with its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EnrichError as exc:
            if os.environ.get(ENV_DEBUG) == "1":
                raise
            click.secho(f"error: {exc.message}", fg="red", err=True)
            if exc.hint:
                click.echo(f"  what to do: {exc.hint}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=EnrichGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file (default: $ENRICH_CONFIG or ./config.toml).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Ledger file (default: [ledger] path, or $ENRICH_DB).")
@click.version_option(__version__, prog_name="enrich")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, db_path: Path | None) -> None:
    """Fill the gaps in a WooCommerce catalog overnight, safely.

    sync pulls products with missing copy into a local ledger, run drafts the copy with an
    LLM, review shows the drafts to a person, publish writes back only what was approved.
    """
    app = App(config_path, db_path)
    ctx.obj = app
    ctx.call_on_close(app.close)


def _register() -> None:
    from enrich.cli import (
        demo,
        init,
        jobs,
        nightly,
        publish,
        review,
        run,
        sandbox,
        status,
        sync,
    )

    for module in (init, status, jobs, sync, run, nightly, review, publish, sandbox, demo):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    cli()
