"""`enrich sync`: parse, call ``enrich.sync.sync``, render the summary."""

from __future__ import annotations

import time
from dataclasses import asdict

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from enrich.app import App
from enrich.cli.options import json_option
from enrich.cli.render import console, echo_json
from enrich.sync import SyncProgress, SyncSummary, sync


@click.command("sync")
@click.option("--full", is_flag=True,
              help="Read every product, not only those modified since the last sync.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Stop after this many products (the incremental cursor is not moved).")
@click.option("--dry-run", is_flag=True,
              help="Report what would be queued; runs on a temporary copy of the ledger, "
                   "which is not written.")
@json_option
@click.pass_obj
def sync_command(app: App, full: bool, limit: int | None, dry_run: bool, as_json: bool) -> None:
    """Read the store's products into the ledger and queue those with missing copy."""
    settings = app.settings
    with app.woo_client() as client:  # settings and keys checked before a ledger is made
        ledger = app.ledger
        if as_json:
            summary = sync(ledger, client, settings, full=full, limit=limit, dry_run=dry_run)
            echo_json(asdict(summary))
            return
        if not console.is_terminal:  # cron or a pipe: no bar, so log lines
            summary = sync(ledger, client, settings, full=full, limit=limit, dry_run=dry_run,
                           progress=SyncLog())
            render_summary(summary, settings.store.auth)
            return
        with Progress(TextColumn("[bold]sync[/bold] {task.description}"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                      transient=True) as bar:
            task = bar.add_task("reading products", total=None)

            def on_page(p: SyncProgress) -> None:
                bar.update(task, completed=p.read, total=p.total,
                           description=f"page {p.pages}")

            summary = sync(ledger, client, settings, full=full, limit=limit,
                           dry_run=dry_run, progress=on_page)
    render_summary(summary, settings.store.auth)


class SyncLog:
    """Progress for cron and pipes, where a bar shows nothing: a line on stderr every
    ``every_pages`` pages or ``seconds`` seconds, so a long sync is visibly alive."""

    def __init__(self, *, every_pages: int = 50, seconds: float = 30.0) -> None:
        self.every_pages = every_pages
        self.seconds = seconds
        self._last_page = 0
        self._last_at = time.monotonic()

    def __call__(self, p: SyncProgress) -> None:
        now = time.monotonic()
        if p.pages - self._last_page < self.every_pages and now - self._last_at < self.seconds:
            return
        self._last_page, self._last_at = p.pages, now
        of = f" of {p.total:,}" if p.total else ""
        click.echo(f"{time.strftime('%H:%M:%S')} sync: page {p.pages:,}, {p.read:,}{of} "
                   "products read", err=True)


def render_summary(summary: SyncSummary, configured_auth: str | None = None) -> None:
    mode = "dry run: nothing written. " if summary.dry_run else ""
    since = (f"modified after {summary.modified_after} (GMT)" if summary.modified_after
             else "full catalog")
    console.print(f"{mode}{summary.store}: {since}, {summary.pages} page(s), "
                  f"{summary.elapsed_s:.1f} s")
    table = Table(show_header=False, box=None)
    table.add_column("what")
    table.add_column("n", justify="right")
    rows = [("scanned", summary.scanned), ("complete", summary.complete),
            ("needs work", summary.needs_work)]
    rows += [(f"  {f}", n) for f, n in sorted(summary.needs_work_by_field.items())]
    rows += [("needs data", summary.needs_data), ("invalid", summary.invalid),
             ("queued", summary.queued), ("superseded", summary.superseded),
             ("unchanged", summary.unchanged)]
    if summary.skipped_status:
        rows.append(("skipped (status not in store.statuses)", summary.skipped_status))
    if summary.reevaluated:
        rows.append(("re-evaluated (boilerplate or rules changed)", summary.reevaluated))
    for what, n in rows:
        table.add_row(what, f"{n:,}")
    console.print(table)
    if summary.skipped_fields:
        console.print(f"not checked: {', '.join(summary.skipped_fields)} "
                      "(store.seo_plugin = \"none\": no SEO plugin to hold them)")
    for example in summary.invalid_examples[:5]:
        console.print(f"[red]invalid[/red] {escape(example)}", highlight=False)
    if summary.invalid or summary.needs_data:
        console.print("fix these in the store, then sync again; list them with "
                      "`enrich jobs list --status invalid` / `--status needs_data`.")
    if summary.auth == "query" and configured_auth == "auto":
        console.print("auth: the store did not see the Authorization header, so the keys went "
                      "in the query string (store.auth = \"query\" makes that explicit).")
    if summary.missed:
        console.print(f"{summary.missed:,} product(s) listed when paging began were not received "
                      "(deleted while syncing?); the next sync reads that range again.")
    if summary.limit_reached:
        console.print(f"stopped at --limit; the next sync starts again from "
                      f"{summary.modified_after or 'the beginning'}.")
    if summary.catalog:
        parts = ", ".join(f"{state} {n:,}" for state, n in summary.catalog.items())
        console.print(f"catalog in the ledger: {parts}")


COMMANDS = [sync_command]
