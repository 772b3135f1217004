"""`enrich jobs list | show | retry`."""

from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from enrich.app import App
from enrich.cli.options import json_option
from enrich.cli.render import console, echo_json, untrusted, when
from enrich.errors import UsageError
from enrich.ledger import KINDS, JobStatus
from enrich.status import job_detail

_LIST_KEYS = ("id", "kind", "source_id", "status", "attempts", "last_error", "priority",
              "next_attempt_at", "updated_at")


@click.group("jobs")
def jobs() -> None:
    """Inspect jobs and put failed or dead ones back in the queue."""


@jobs.command("list")
@click.option("--status", type=click.Choice([s.value for s in JobStatus]),
              help="Only jobs in this status.")
@click.option("--kind", type=click.Choice(KINDS), help="Only product or invoice jobs.")
@click.option("--limit", type=int, default=None, help="At most this many rows.")
@json_option
@click.pass_obj
def list_command(app: App, status: str | None, kind: str | None, limit: int | None,
                 as_json: bool) -> None:
    """List jobs (ids are job ids, used by every other command)."""
    rows = app.ledger.list_jobs(status=status, kind=kind, limit=limit)
    if as_json:
        echo_json([{k: getattr(job, k) for k in _LIST_KEYS} for job in rows])
        return
    table = Table()
    for name in ("id", "kind", "source", "status", "tries", "updated", "last error"):
        table.add_column(name, overflow="fold")
    for job in rows:
        table.add_row(str(job.id), job.kind, untrusted(job.source_id), job.status,
                      str(job.attempts), when(job.updated_at),
                      untrusted((job.last_error or "")[:120]))
    console.print(table)
    console.print(f"{len(rows):,} job(s)")


@jobs.command("show")
@click.argument("job_id", type=int)
@json_option
@click.pass_obj
def show_command(app: App, job_id: int, as_json: bool) -> None:
    """One job with every attempt and its draft."""
    data = job_detail(app.ledger, job_id)
    if as_json:
        echo_json(data)
        return
    console.print(Text.assemble((f"job {data['id']}", "bold"), f" {data['kind']} ",
                                untrusted(data["source_id"]),
                                f": {data['status']} after {data['attempts']} attempt(s)"))
    if data["last_error"]:
        console.print(Text.assemble("last error: ", untrusted(data["last_error"])))
    table = Table(title="attempts")
    for name in ("started", "outcome", "error", "http", "latency ms", "tokens in/out/cached",
                 "cost"):
        table.add_column(name, overflow="fold")
    for a in data["attempts_log"]:
        error = f"{a['error_class']}: {a['error']}" if a["error_class"] else ""
        latency = f"{a['latency_ms']:.0f}" if a["latency_ms"] is not None else ""
        table.add_row(when(a["started_at"]), a["outcome"], untrusted(error),
                      str(a["http_status"] or ""),
                      latency, f"{a['tokens_in']}/{a['tokens_out']}/{a['tokens_cached']}",
                      f"${a['cost_usd']:.6f}")
    console.print(table)
    draft = data["draft"]
    if draft:
        console.print(untrusted(
            f"draft {draft['id']} by {draft['provider']}/{draft['model']} "
            f"(template {draft['template_name']} {str(draft['template_hash'])[:12]})"))
        # Draft text is model output and flags quote it: printed as text, never as markup.
        for name, value in (draft["edited_fields"] or draft["fields"]).items():
            console.print(Text.assemble("  ", untrusted(name, "bold"), ": ", untrusted(value)),
                          highlight=False)
        for flag in draft["flags"]:
            console.print(Text.assemble("  ", untrusted(f"flag {flag.get('guard')}", "yellow"),
                                        ": ", untrusted(flag.get("detail"))), highlight=False)


@jobs.command("retry")
@click.argument("job_ids", nargs=-1, type=int)
@click.option("--failed", is_flag=True, help="Every failed job.")
@click.option("--dead", is_flag=True, help="Every dead job (attempts start again from 0).")
@click.pass_obj
def retry_command(app: App, job_ids: tuple[int, ...], failed: bool, dead: bool) -> None:
    """Put jobs back in the queue: the given ids, or all --failed / --dead ones."""
    if not (job_ids or failed or dead):
        raise UsageError("say which jobs to retry: job ids, --failed or --dead",
                         "See them with `enrich jobs list --status failed` (or dead).")
    statuses = [s for s, on in (("failed", failed), ("dead", dead)) if on]
    n = app.ledger.retry(job_ids=job_ids, statuses=statuses)
    click.echo(f"{n} job(s) back to pending")


COMMANDS = [jobs]
