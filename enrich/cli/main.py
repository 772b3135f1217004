"""The ``enrich`` command: parse, call the library, render. No SQL or HTTP here."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from enrich import __version__
from enrich.app import App
from enrich.config import (
    ENV_ANTHROPIC_KEY,
    ENV_DEBUG,
    ENV_OPENAI_KEY,
    ENV_WOO_KEY,
    ENV_WOO_SECRET,
)
from enrich.errors import EnrichError

SECRET_ENV_VARS = (ENV_WOO_KEY, ENV_WOO_SECRET, ENV_OPENAI_KEY, ENV_ANTHROPIC_KEY)


class EnrichGroup(click.Group):
    """Renders an EnrichError as one line plus what to do, with its exit code; anything
    else as one line too (a bug), with its traceback under ENRICH_DEBUG=1."""

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
        except (click.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise
        except Exception as exc:
            # A bug, not the user's data or settings: one line for the cron mail instead of a
            # traceback, with no secret in it, and the way to get the traceback.
            if os.environ.get(ENV_DEBUG) == "1":
                raise
            click.secho(f"error: unexpected {_scrub(f'{type(exc).__name__}: {exc}')}",
                        fg="red", err=True)
            click.echo(f"  what to do: enrich did not expect this (a bug, or a ledger changed "
                       f"by another program); run the command again with {ENV_DEBUG}=1 to see "
                       "the traceback, and report it with that.", err=True)
            sys.exit(1)


def _scrub(text: str) -> str:
    """Remove the values of the secret environment variables from a message."""
    for name in SECRET_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text


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
        batches,
        demo,
        init,
        invoices,
        jobs,
        nightly,
        publish,
        review,
        run,
        sandbox,
        status,
        sync,
    )

    for module in (init, status, jobs, sync, run, batches, invoices, nightly, review, publish,
                   sandbox, demo):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    cli()
