"""`enrich publish` and `enrich rollback`: parse, call enrich.publish, render."""

from __future__ import annotations

import sys
import time
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from enrich.app import App
from enrich.cli.options import json_option
from enrich.cli.render import console, echo_json
from enrich.errors import UsageError
from enrich.publish import (
    CommandReport,
    PublishReport,
    RollbackReport,
    plan_publish,
    publish,
    rollback,
)


class ReadLog:
    """A line on stderr every ``every`` products or ``seconds`` seconds while a dry run
    reads approved products back from the store, so a long read is visibly alive."""

    def __init__(self, *, every: int = 1_000, seconds: float = 30.0) -> None:
        self.every = every
        self.seconds = seconds
        self._last_n = 0
        self._last_at = time.monotonic()

    def __call__(self, read: int) -> None:
        now = time.monotonic()
        if read - self._last_n < self.every and now - self._last_at < self.seconds:
            return
        self._last_n, self._last_at = read, now
        click.echo(f"{time.strftime('%H:%M:%S')} publish plan: {read:,} approved product(s) "
                   "read back from the store", err=True)


def _short(value: Any, width: int = 60) -> str:
    if value is None:
        return "(none)"
    text = str(value).replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


#: Products shown in a table; the rest are counted (``--json`` has every one).
TABLE_ROWS = 200


def _changes_table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title, show_lines=False)
    for name in ("product", "job", "what", "field", "old", "new"):
        table.add_column(name, overflow="fold")
    if len(rows) > TABLE_ROWS:
        table.caption = f"first {TABLE_ROWS} of {len(rows)} products; --json lists all"
    for row in rows[:TABLE_ROWS]:
        changes = row["changes"] or [{"field": "", "old": None, "new": None}]
        for i, change in enumerate(changes):
            cells = [f"{row['source_id']} {_short(row.get('name'), 30)}" if i == 0 else "",
                     str(row["job_id"]) if i == 0 else "",
                     (row.get("outcome") or row["action"]) if i == 0 else "",
                     change["field"], _short(change["old"]), _short(change["new"])]
            # Product text is untrusted: Text() shows it as is, never as rich markup.
            table.add_row(*(Text(cell) for cell in cells))
    return table


def _print_problems(rows: list[dict[str, Any]]) -> None:
    """One line per product that ended in conflict or error, with the reason."""
    for row in rows:
        ended = row.get("outcome") or row["action"]
        if row["reason"] and ended in ("conflict", "error"):
            console.print(Text(f"{row['source_id']} {ended}: {row['reason']}", style="yellow"))


def _render_report(report: CommandReport, command: str, nothing: str,
                   notes: list[Text]) -> None:
    """The table of changes, the problems, ``notes`` and the counts, for either command."""
    rows = [i.as_dict() for i in report.items]
    head = f"{command} plan (dry run: nothing written)" if report.dry_run \
        else f"{command} run #{report.run_id}"
    if rows:
        console.print(_changes_table(head, rows))
    else:
        console.print(f"{head}: {nothing}", highlight=False)
    _print_problems(rows)
    for note in notes:
        console.print(note)
    console.print(", ".join(f"{k}: {v}" for k, v in report.counts().items()),
                  highlight=False)


def _render_publish(report: PublishReport) -> None:
    _render_report(report, "publish", "no approved drafts to publish (approve drafts first: "
                   "`enrich review export` or `enrich review approve`).", [])
    if report.dry_run and report.pending_recovery:
        console.print(f"{report.pending_recovery} write(s) of an interrupted run will be "
                      "checked against the store first.")


@click.command("publish")
@click.option("--dry-run", is_flag=True,
              help="Print what would change (old -> new) and the conflicts; write nothing.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Publish at most N approved drafts.")
@json_option
@click.pass_obj
def publish_command(app: App, dry_run: bool, limit: int | None, as_json: bool) -> None:
    """Write approved drafts to the store in batches; never over a product edited there.

    Each product is read back first and compared with the sync snapshot: one changed in
    the store since becomes a conflict and is not written. The previous values are saved
    before each batch, so `enrich rollback` can put them back. Safe to re-run after a
    crash; a second run writes nothing. Exit 1 when something approved was not published.
    """
    settings = app.settings
    with app.woo_client() as store:
        if dry_run:
            report = plan_publish(app.ledger, store, settings, limit=limit,
                                  on_read=ReadLog())
        else:
            def progress(batch_no: int, size: int) -> None:
                if not as_json:
                    console.print(f"batch {batch_no}: sending {size} product(s)",
                                  highlight=False)
            report = publish(app.ledger, store, settings, limit=limit, on_batch=progress)
    if as_json:
        echo_json(report.as_dict())
    else:
        _render_publish(report)
    if not report.dry_run and not report.ok:
        sys.exit(1)


def _render_rollback(report: RollbackReport) -> None:
    notes = [Text("no published write to undo for product(s): " + ", ".join(report.not_found),
                  style="yellow")] if report.not_found else []
    _render_report(report, "rollback", "nothing published to roll back.", notes)


@click.command("rollback")
@click.option("--run", "run_id", type=int, default=None,
              help="Undo everything this publish run wrote.")
@click.option("--product", "products", multiple=True,
              help="Undo the last publish of this product id (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show what would be restored; write nothing.")
@json_option
@click.pass_obj
def rollback_command(app: App, run_id: int | None, products: tuple[str, ...],
                     dry_run: bool, as_json: bool) -> None:
    """Restore the values a publish replaced (new SEO keys are deleted again).

    A product edited in the store after the publish is not rolled back: it is reported,
    and the person's edit is kept. Exit 1 when something could not be rolled back.
    """
    if (run_id is None) == (not products):
        which = "not both" if products else "one of them"
        raise UsageError(f"give either --run ID or --product ID (one or more), {which}",
                         "See `enrich rollback --help`.")
    settings = app.settings
    with app.woo_client() as store:
        report = rollback(app.ledger, store, settings, run_id=run_id,
                          source_ids=list(products) or None, dry_run=dry_run)
    if as_json:
        echo_json(report.as_dict())
    else:
        _render_rollback(report)
    if not report.dry_run and not report.ok:
        sys.exit(1)


COMMANDS = [publish_command, rollback_command]
