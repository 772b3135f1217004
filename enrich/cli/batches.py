"""`enrich batches list | poll | cancel ID`: provider batches (batch mode)."""

from __future__ import annotations

import asyncio
from typing import Any

import click
from rich.table import Table

from enrich.app import App
from enrich.cli.options import json_option
from enrich.cli.render import console, echo_json, money, when
from enrich.ledger.locks import AlreadyRunning
from enrich.worker.batch import PollSummary, batch_overview, cancel_batch, poll_batches


def render_batches(rows: list[dict[str, Any]]) -> None:
    table = Table(title="batches")
    for name in ("id", "provider", "model", "provider id", "state", "status", "jobs",
                 "submitted", "drafted", "failed", "requeued", "cost"):
        table.add_column(name, justify="right" if name in ("id", "jobs", "drafted", "failed",
                                                            "requeued", "cost") else "left")
    for r in rows:
        table.add_row(str(r["id"]), r["provider"], r["model"], r["provider_batch_id"] or "-",
                      r["state"], r["provider_status"] or "-", f"{r['jobs']:,}",
                      when(r["submitted_at"]), f"{r['drafted']:,}", f"{r['failed']:,}",
                      f"{r['requeued']:,}", money(r["cost_usd"]))
    console.print(table)


def render_poll(summary: PollSummary) -> None:
    s = summary
    rec = s.reconciled
    if rec.get("recorded") or rec.get("abandoned") or rec.get("waiting"):
        console.print(f"reconciled: {rec['recorded']} batch(es) found at the provider, "
                      f"{rec['abandoned']} never sent (jobs back to pending), "
                      f"{rec['waiting']} still undecided")
    console.print(f"polled {s.checked} batch(es), collected {s.collected}: {s.drafted:,} "
                  f"drafted ({s.flagged:,} flagged), {s.failed:,} failed, {s.dead:,} dead, "
                  f"{s.requeued:,} back to pending (expired or canceled), {s.discarded:,} "
                  f"discarded; cost {money(s.cost_usd)} (live price {money(s.live_cost_usd)})")
    for b in s.in_flight:
        console.print(f"  in flight: batch {b['id']} ({b['provider_batch_id']}, {b['jobs']:,} "
                      f"job(s), {b['provider_status']}), submitted {when(b['submitted_at'])}")


@click.group("batches")
def batches_group() -> None:
    """Provider batches of batch mode ([llm] mode = "batch"): list, poll, cancel.

    `enrich run --mode batch` submits pending jobs; `enrich batches poll` collects the
    batches that ended and drafts their results through the same guards as a live run.
    """


@batches_group.command("list")
@json_option
@click.pass_obj
def list_command(app: App, as_json: bool) -> None:
    """Batches (newest first), what is in flight, and what batch mode saved."""
    data = batch_overview(app.ledger)
    if as_json:
        echo_json(data)
        return
    render_batches(data["batches"])
    flight, saved = data["in_flight"], data["savings"]
    console.print(f"in flight: {flight['batches']} batch(es), {flight['jobs']:,} job(s)"
                  + (f", oldest submitted {when(flight['oldest_submitted_at'])}"
                     if flight["oldest_submitted_at"] else ""))
    console.print(f"batch mode cost {money(saved['cost_usd'])} for what costs "
                  f"{money(saved['live_cost_usd'])} live: saved {money(saved['saved_usd'])}")


@batches_group.command("poll")
@json_option
@click.pass_obj
def poll_command(app: App, as_json: bool) -> None:
    """Collect every batch that ended; safe to stop and run again (nothing twice)."""
    try:
        summary = asyncio.run(poll_batches(app.ledger, app.settings, app.secrets))
    except AlreadyRunning as busy:
        console.print(f"enrich batches: {busy}; this one has nothing to do.")
        return
    if as_json:
        echo_json(summary.as_dict())
        return
    render_poll(summary)


@batches_group.command("cancel")
@click.argument("batch_id")
@json_option
@click.pass_obj
def cancel_command(app: App, batch_id: str, as_json: bool) -> None:
    """Cancel a submitted batch (local or provider id); the next poll requeues its jobs."""
    row = asyncio.run(cancel_batch(app.ledger, app.settings, app.secrets, batch_id))
    if as_json:
        echo_json(row.as_dict())
        return
    console.print(f"batch {row.id} ({row.provider_batch_id}): cancel requested, provider says "
                  f"{row.provider_status}; `enrich batches poll` requeues what did not run.")


COMMANDS = [batches_group]
