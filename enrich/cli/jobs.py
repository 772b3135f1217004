"""`enrich jobs list | show | retry | prioritize`."""

from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from enrich.app import App
from enrich.cli.options import json_option
from enrich.cli.render import console, echo_json, untrusted, when
from enrich.errors import UsageError
from enrich.ledger import KINDS, JobStatus
from enrich.priority import URGENT, prioritize
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


def _split(values: tuple[str, ...]) -> list[str]:
    """``--sku A,B --sku C`` -> [A, B, C]: a pasted list and repeated options both work."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@jobs.command("prioritize")
@click.option("--sku", "skus", multiple=True,
              help="Products with these SKUs (comma-separated, or repeat the option).")
@click.option("--category", "categories", multiple=True,
              help="Products in this category, by name, any case (repeat for more).")
@click.option("--product", "products", multiple=True,
              help="Products (or variations) with these store ids (comma-separated).")
@click.option("--tier", default=URGENT, show_default=True,
              help="The tier to pin them to: urgent (before everything), a [sync] priority "
                   "tier, or rest (after everything).")
@click.option("--clear", is_flag=True,
              help="Remove their pin, so the [sync] priority rules decide again.")
@json_option
@click.pass_obj
def prioritize_command(app: App, skus: tuple[str, ...], categories: tuple[str, ...],
                       products: tuple[str, ...], tier: str, clear: bool,
                       as_json: bool) -> None:
    """Put products first (or last) in the queue, whatever the [sync] priority rules say;
    the pin stays through every later sync until --clear."""
    done = prioritize(app.ledger, app.settings, skus=_split(skus), categories=categories,
                      source_ids=_split(products), tier=None if clear else tier)
    if as_json:
        echo_json({"tier": done.tier, "products": done.products,
                   "jobs_renumbered": done.jobs_renumbered})
        return
    what = "unpinned" if done.tier is None else f"pinned to tier {done.tier}"
    click.echo(f"{len(done.products):,} product(s) {what}; {done.jobs_renumbered:,} waiting "
               f"job(s) moved in the queue")


COMMANDS = [jobs]
