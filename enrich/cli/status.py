"""`enrich status`."""

from __future__ import annotations

import click
from rich.table import Table

from enrich.app import App
from enrich.cli.options import json_option
from enrich.cli.render import console, echo_json, money, when
from enrich.status import ledger_status


@click.command("status")
@json_option
@click.pass_obj
def status_command(app: App, as_json: bool) -> None:
    """Jobs by kind and status, pending jobs per priority tier, the oldest pending job, the
    last run, and cost so far."""
    data = ledger_status(app.ledger, app.settings)
    if as_json:
        echo_json(data)
        return
    table = Table(title=f"ledger {app.db_path}")
    table.add_column("status")
    kinds = list(data["jobs"])
    for kind in kinds:
        table.add_column(kind, justify="right")
    statuses = list(next(iter(data["jobs"].values())))
    for status in statuses:
        values = [data["jobs"][k][status] for k in kinds]
        if any(values):
            table.add_row(status, *(f"{v:,}" for v in values))
    if table.row_count == 0:
        console.print(f"ledger {app.db_path}: no jobs yet (run `enrich sync`).")
    else:
        console.print(table)
    tiers = data["pending_by_tier"]
    if any(tiers.values()):
        console.print("pending by tier (the worker takes them in this order): " + " · ".join(
            f"{name} {n:,}" for name, n in tiers.items()))
    oldest = data["oldest_pending"]
    if oldest:
        console.print(f"oldest pending: job {oldest['id']} ({oldest['kind']} "
                      f"{oldest['source_id']}), queued {when(oldest['created_at'])}")
    run = data["last_run"]
    if run:
        console.print(f"last run: #{run['id']} {run['kind']} started {when(run['started_at'])}, "
                      f"{run['exit_reason'] or 'still running (or killed)'}")
    console.print(f"cost so far: {money(data['cost_usd'])}")


COMMANDS = [status_command]
