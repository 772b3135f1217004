"""`enrich nightly`: the cron entry point: sync, draft until the morning, report."""

from __future__ import annotations

import asyncio
import sys

import click

from enrich.app import App
from enrich.cli.render import console
from enrich.cli.run import _summarise
from enrich.cli.sync import SyncLog, render_summary
from enrich.errors import ConfigError
from enrich.ledger.locks import AlreadyRunning, hold_nightly
from enrich.sync import sync
from enrich.worker import parse_until, run_jobs
from enrich.worker.progress import LogProgress


@click.command("nightly")
@click.option("--until", "until_text", metavar="HH:MM",
              help="Stop drafting at this local time (default: [nightly] until).")
@click.option("--limit", type=click.IntRange(min=1),
              help="Draft at most N jobs (default: [nightly] limit).")
@click.pass_obj
def nightly_command(app: App, until_text: str | None, limit: int | None) -> None:
    """Incremental sync, then draft until [nightly] until (or --limit), then a summary.

    Meant for cron: log lines instead of bars, one exit code (0 ok, 1 something needs a look,
    2 configuration). It never publishes: publishing waits for a person's approval. One at a
    time per ledger: a second one says "already running" and exits 0.
    """
    settings = app.settings
    # Parsed before the sync: a bad --until is refused before any work, and a sync that
    # runs past the deadline leaves no time to draft instead of a whole extra day.
    until = parse_until(until_text or settings.nightly.until)
    try:
        night = hold_nightly(app.db_path)  # the kernel releases it however we end
    except AlreadyRunning as busy:
        console.print(f"enrich nightly: {busy}; this one has nothing to do.")
        return
    with night:
        _night(app, until, limit)


def _night(app: App, until: float, limit: int | None) -> None:
    settings = app.settings
    with app.woo_client() as client:
        summary = sync(app.ledger, client, settings, progress=SyncLog())
    render_summary(summary)
    result = asyncio.run(run_jobs(app.ledger, settings, app.secrets, until=until,
                                  limit=limit or settings.nightly.limit,
                                  on_progress=LogProgress()))
    _summarise(result)
    if result.exit_reason == "fatal":  # a key, quota, model or template: the setup is wrong
        raise ConfigError(f"run #{result.run_id} stopped: {result.message}",
                          result.hint or "Fix the cause and run again.")
    console.print("next: `enrich review export --out review.html`, then `enrich publish`.")
    if not result.ok or summary.invalid:
        sys.exit(1)


COMMANDS = [nightly_command]
