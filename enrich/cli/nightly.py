"""`enrich nightly`: the cron entry point: sync, draft until the morning, report."""

from __future__ import annotations

import sys

import click

from enrich.app import App
from enrich.cli.batches import render_poll
from enrich.cli.render import console, render_run, when
from enrich.cli.sync import SyncLog, render_summary
from enrich.errors import ConfigError
from enrich.ledger.locks import AlreadyRunning
from enrich.nightly import nightly
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
    try:
        night = nightly(app, until=until_text, limit=limit, on_sync_progress=SyncLog(),
                        on_synced=render_summary, on_progress=LogProgress())
    except AlreadyRunning as busy:
        console.print(f"enrich nightly: {busy}; this one has nothing to do.")
        return
    if night.batch is not None:
        render_poll(night.batch.poll)
        sent = night.batch.submit
        flight = night.batch.in_flight
        console.print(f"submitted {sent.jobs:,} job(s) in {len(sent.batches)} batch(es); in "
                      f"flight now: {flight['batches']} batch(es), {flight['jobs']:,} job(s)"
                      + (f", oldest submitted {when(flight['oldest_submitted_at'])}"
                         if flight["oldest_submitted_at"] else "")
                      + ". The next nightly collects them.")
        if not night.ok:
            sys.exit(1)
        return
    result = night.run
    assert result is not None
    render_run(result)
    if result.exit_reason == "fatal":  # a key, quota, model or template: the setup is wrong
        raise ConfigError(f"run #{result.run_id} stopped: {result.message}",
                          result.hint or "Fix the cause and run again.")
    console.print("next: `enrich review export --out review.html`, then `enrich publish`.")
    if not night.ok:
        sys.exit(1)


COMMANDS = [nightly_command]
