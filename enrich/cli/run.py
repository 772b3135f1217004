"""`enrich run`, `enrich estimate`, `enrich report`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.table import Table

from enrich.app import App
from enrich.cli.options import json_option
from enrich.cli.render import console, echo_json, money, render_run, when
from enrich.errors import ConfigError, UsageError
from enrich.estimate import estimate_cost
from enrich.ledger.locks import AlreadyRunning
from enrich.report import run_report
from enrich.worker import RunResult, parse_until, run_jobs
from enrich.worker.batch import submit_batches
from enrich.worker.progress import BarProgress, LogProgress
from enrich.worker.runner import ProgressCallback


@contextmanager
def _drafting_progress() -> Iterator[ProgressCallback]:
    """A bar for a person at a terminal, log lines for cron and pipes."""
    if sys.stderr.isatty():
        with BarProgress() as bar:
            yield bar
    else:
        yield LogProgress()


def _execute(app: App, *, limit: int | None, until: float | None,
             concurrency: int | None, kind: str = "product") -> RunResult:
    ledger, settings = app.ledger, app.settings
    with _drafting_progress() as progress:
        return asyncio.run(run_jobs(ledger, settings, app.secrets, limit=limit, until=until,
                                    concurrency=concurrency, on_progress=progress, kind=kind))


def draft_and_render(app: App, *, limit: int | None, until_text: str | None, kind: str,
                     concurrency: int | None) -> None:
    """Run the worker for one kind and render how it ended (`run` and `invoices run`)."""
    until = parse_until(until_text) if until_text else None
    result = _execute(app, limit=limit, until=until, concurrency=concurrency, kind=kind)
    render_run(result)
    if result.exit_reason == "fatal":  # a key, quota, model or template: the setup is wrong
        raise ConfigError(f"run #{result.run_id} stopped: {result.message}",
                          result.hint or "Fix the cause and run again.")
    if not result.ok:
        sys.exit(1)


@click.command("run")
@click.option("--limit", type=click.IntRange(min=1), help="Draft at most N jobs (sample first).")
@click.option("--until", "until_text", metavar="HH:MM", help="Stop cleanly at this local time.")
@click.option("--kind", type=click.Choice(["product", "invoice"]), default="product",
              show_default=True, help="Which jobs to draft (invoice = `enrich invoices run`).")
@click.option("--concurrency", type=click.IntRange(min=1, max=512),
              help="Requests in flight (default: [llm] concurrency).")
@click.option("--mode", type=click.Choice(["live", "batch"]),
              help="live: one request per job now; batch: submit to the provider's batch "
                   "API at half price, collect with `enrich batches poll` (default: [llm] "
                   "mode).")
@click.pass_obj
def run_command(app: App, limit: int | None, until_text: str | None, kind: str,
                concurrency: int | None, mode: str | None) -> None:
    """Draft pending jobs with the configured model, within the RPM/TPM limits and budget.

    Safe to stop at any moment (Ctrl-C, SIGTERM, even kill -9): run it again and it continues
    where it stopped; nothing is drafted twice. In batch mode it submits the pending jobs and
    returns; the drafts arrive with `enrich batches poll`.
    """
    if (mode or app.settings.llm.mode) == "batch":
        if kind != "product":
            raise UsageError("batch mode submits product jobs only",
                             "Draft invoices live: `enrich invoices run` (or `--mode live`).")
        _submit(app, limit)
        return
    draft_and_render(app, limit=limit, until_text=until_text, kind=kind,
                     concurrency=concurrency)


def _submit(app: App, limit: int | None) -> None:
    try:
        summary = asyncio.run(submit_batches(app.ledger, app.settings, app.secrets,
                                             limit=limit, on_event=console.print))
    except AlreadyRunning as busy:
        console.print(f"enrich batches: {busy}; this one has nothing to do.")
        return
    console.print(f"submitted {summary.jobs:,} job(s) in {len(summary.batches)} batch(es)"
                  + (f"; {summary.dead} could not be rendered (dead)" if summary.dead else "")
                  + ". Collect them with `enrich batches poll` (e.g. tomorrow's nightly).")
    if summary.dead:
        sys.exit(1)


@click.command("estimate")
@click.option("--sample", type=click.IntRange(min=1),
              help="Draft N jobs for real and extrapolate from their measured usage.")
@json_option
@click.pass_obj
def estimate_command(app: App, sample: int | None, as_json: bool) -> None:
    """What drafting every waiting job will cost, live and in batch mode."""
    settings = app.settings
    if sample:
        ledger = app.ledger  # opened before the bar, as a run does
        with _drafting_progress() as progress:
            estimate = estimate_cost(ledger, settings, app.secrets, sample=sample,
                                     on_progress=progress)
    else:
        estimate = estimate_cost(app.ledger, settings, app.secrets)
    if as_json:
        echo_json(estimate.as_dict())
        return
    console.print(f"{estimate.jobs:,} waiting job(s), {estimate.provider}/{estimate.model}, "
                  f"from {estimate.method} ({estimate.sampled:,} job(s)"
                  + (f", {estimate.skipped} unrenderable" if estimate.skipped else "") + ")")
    console.print(f"  priced from {estimate.basis}")
    console.print(f"  tokens: ~{estimate.input_tokens:,} in (~{estimate.cached_tokens:,} from "
                  f"the cache), ~{estimate.output_tokens:,} out"
                  + (f" (incl. {estimate.retry_buffer:.0%} for retries and repairs)"
                     if estimate.retry_buffer else " (retries and repairs as measured)"))
    console.print(f"  cost: live {money(estimate.cost_live_usd)}, "
                  f"batch mode {money(estimate.cost_batch_usd)}")
    if estimate.cost_live_usd > settings.llm.budget_usd:
        console.print(f"  [yellow]over the per-run budget of {money(settings.llm.budget_usd)}"
                      f"[/yellow]: a run will stop there; raise [llm] budget_usd or run "
                      f"over several nights.")


@click.command("report")
@click.option("--run", "run_id", type=int, help="One run (default: the recent ones).")
@json_option
@click.pass_obj
def report_command(app: App, run_id: int | None, as_json: bool) -> None:
    """Drafted, flagged, failed, dead, retries, 429s, cost, tokens and latency, by run."""
    data = run_report(app.ledger, run_id)
    if as_json:
        echo_json(data)
        return
    table = Table(title="drafting runs")
    columns = ("run", "started", "exit", "jobs", "drafted", "flagged", "failed", "dead",
               "retries", "429s", "tokens in/out/cached", "cost", "estimate",
               "mean ms", "p95 ms")
    for name in columns:
        table.add_column(name, justify="right" if name not in ("started", "exit") else "left")
    for r in [*data["runs"], {**data["total"], "id": "all", "started_at": None,
                              "exit_reason": ""}]:
        table.add_row(str(r["id"]), when(r["started_at"]), r["exit_reason"] or "",
                      f"{r['jobs']:,}", f"{r['drafted']:,}", f"{r['flagged']:,}",
                      f"{r['failed']:,}", f"{r['dead']:,}", f"{r['retries']:,}",
                      f"{r['http_429']:,}",
                      f"{r['tokens_in']:,}/{r['tokens_out']:,}/{r['tokens_cached']:,}",
                      money(r["cost_usd"]), _vs_estimate(r),
                      str(r["mean_latency_ms"] or "-"),
                      str(r["p95_latency_ms"] or "-"))
    console.print(table)
    saved = data["batch"]
    if saved["batches"]:
        console.print(f"batch mode: {saved['batches']} batch(es), {saved['drafted']:,} "
                      f"drafted for {money(saved['cost_usd'])}; the same usage live costs "
                      f"{money(saved['live_cost_usd'])}: saved {money(saved['saved_usd'])}")


def _vs_estimate(row: dict[str, Any]) -> str:
    """The estimate recorded when the run started, and actual/estimate."""
    estimated = row.get("estimate_usd")
    if estimated is None:
        return "-"
    ratio = row.get("actual_vs_estimate")
    return money(estimated) + (f" ({ratio:.2f}x)" if ratio is not None else "")


COMMANDS = [run_command, estimate_command, report_command]
