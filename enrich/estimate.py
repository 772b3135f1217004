"""`enrich estimate`: what drafting the queue will cost, before anything is spent.

Rendering every prompt of a 500,000-product queue would take minutes, so the estimate renders
an evenly spread sample of the waiting jobs (all of them when there are few), counts its
tokens with the provider's estimator, and scales up. The tokens are priced from what the
ledger recorded for drafts of the same model, template and fields when it has some (the
estimate says so, with the sample size), from the output schema when it has none
(``enrich.worker.estimating``). ``--sample N`` first drafts N jobs for real, so the rest is
priced from their measured usage, output length and cache hits included; with invoices
waiting, N invoices are drafted too and the waiting ones that need a model call are
extrapolated from the sample's usage per call.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any

from enrich.config import Secrets, Settings
from enrich.errors import ConfigError, RunStopped
from enrich.invoices import jobs as invoice_jobs
from enrich.ledger import Job, Ledger
from enrich.ledger.reports import run_call_usage, run_usage, waiting_product_jobs
from enrich.prompts import PromptBook
from enrich.providers import Provider, make_provider
from enrich.worker import run_jobs
from enrich.worker.estimating import RENDER_SAMPLE, RETRY_BUFFER, estimate_waiting
from enrich.worker.runner import ProgressCallback


@dataclass
class Estimate:
    jobs: int
    method: str  # "rendered prompts" | "measured sample"
    sampled: int
    skipped: int  # sampled jobs that could not be rendered (they would fail, not cost)
    input_tokens: int
    output_tokens: int
    cost_live_usd: float
    cost_batch_usd: float
    retry_buffer: float
    provider: str
    model: str
    invoice_jobs: int = 0  # waiting invoice jobs (included in jobs and the tokens)
    invoice_embedded: int = 0  # of which read from their embedded XML: no call, no cost
    recorded: int = 0  # drafts whose recorded usage priced it (0: the schema's figures)
    basis: str = ""  # where the figures come from, in one line
    cached_tokens: int = 0  # of input_tokens, expected from the prompt cache

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate_queue(ledger: Ledger, provider: Provider, prompts: PromptBook,
                   default_fields: list[str], max_output_tokens: int,
                   sample: int = RENDER_SAMPLE) -> Estimate:
    """Token and cost estimate for every waiting product job, from rendered prompts priced
    by the ledger's recorded usage of this model when it has some (``basis`` says which,
    with the sample size), by the output schema when it has none."""
    figures = estimate_waiting(ledger, provider, prompts, default_fields, max_output_tokens,
                               sample=sample)
    return Estimate(
        jobs=figures.jobs,
        method="recorded usage" if figures.recorded else "rendered prompts",
        sampled=figures.rendered, skipped=figures.skipped,
        input_tokens=figures.input_tokens, output_tokens=figures.output_tokens,
        cost_live_usd=figures.cost_usd, cost_batch_usd=figures.cost_batch_usd,
        retry_buffer=0.0 if figures.recorded else RETRY_BUFFER, provider=provider.name,
        model=provider.model, recorded=figures.recorded, basis=figures.basis,
        cached_tokens=figures.cached_tokens)


def estimate_cost(ledger: Ledger, settings: Settings, secrets: Secrets, *,
                  sample: int | None = None,
                  on_progress: ProgressCallback | None = None) -> Estimate:
    """What drafting every waiting job will cost with the configured model.

    Without ``sample``, from rendered prompts (nothing is spent). With it, ``sample`` jobs
    are drafted for real (they stay drafted) and the rest extrapolated from their measured
    usage; a sample that drafted nothing raises rather than extrapolate a $0 that would
    look like a price.
    """
    if not sample:
        provider = make_provider(settings.llm, secrets)
        estimate = estimate_queue(ledger, provider, PromptBook.from_settings(settings),
                                  list(settings.sync.fields), settings.llm.max_output_tokens)
        return _with_invoices(estimate, ledger, settings, provider)
    provider = make_provider(settings.llm, secrets)
    invoices = _waiting_invoices(ledger)
    if waiting_product_jobs(ledger) or not invoices:
        _sample_run(ledger, settings, secrets, sample, "product", on_progress)
        # The sample's drafts are now recorded usage: the rest is priced from them.
        estimate = estimate_queue(ledger, provider, PromptBook.from_settings(settings),
                                  list(settings.sync.fields), settings.llm.max_output_tokens)
    else:
        estimate = Estimate(jobs=0, method="measured sample", sampled=0, skipped=0,
                            input_tokens=0, output_tokens=0, cost_live_usd=0.0,
                            cost_batch_usd=0.0, retry_buffer=RETRY_BUFFER,
                            provider=provider.name, model=provider.model)
    if invoices:
        run_id = _sample_run(ledger, settings, secrets, sample, "invoice", on_progress)
        estimate = _invoices_from_run(estimate, ledger, settings, provider, run_id)
    return estimate


def _sample_run(ledger: Ledger, settings: Settings, secrets: Secrets, sample: int, kind: str,
                on_progress: ProgressCallback | None) -> int:
    """Draft ``sample`` jobs of ``kind`` for real; the run's id, or why it measured nothing."""
    result = asyncio.run(run_jobs(ledger, settings, secrets, limit=sample,
                                  on_progress=on_progress, kind=kind))
    if result.exit_reason == "fatal":
        raise ConfigError(f"estimate --sample: run #{result.run_id} stopped: "
                          f"{result.message}", result.hint or "Fix the cause and run again.")
    if result.stats.drafted == 0:
        raise RunStopped(
            f"estimate --sample: run #{result.run_id} drafted none of the {sample:,} "
            f"{kind} job(s) it tried, so there is no measured usage to extrapolate from "
            f"({result.message})",
            "See `enrich jobs list --status failed` for why, or run `enrich estimate` "
            "without --sample to estimate from the rendered prompts.")
    return result.run_id


def _waiting_invoices(ledger: Ledger) -> list[Job]:
    return [job for status in ("pending", "failed")
            for job in ledger.list_jobs(kind="invoice", status=status)]


def _invoices_from_run(estimate: Estimate, ledger: Ledger, settings: Settings,
                       provider: Provider, run_id: int) -> Estimate:
    """Add the waiting invoices at the sample's measured usage per model call.

    Invoices read from their embedded XML cost nothing, in the sample as in the queue, so
    the per-call usage is over the sampled jobs that called the model, and it is multiplied
    by the waiting invoices that will (a sample of embedded-XML invoices only measured no
    call: those are estimated from their rendered prompts instead).
    """
    waiting = _waiting_invoices(ledger)
    embedded = sum(invoice_jobs.embedded_invoice(j, settings) is not None for j in waiting)
    measured, tokens_in, tokens_out, cost = run_call_usage(ledger, run_id)
    sampled, _, _, _ = run_usage(ledger, run_id)
    if not measured:
        estimate = _with_invoices(estimate, ledger, settings, provider)
        estimate.sampled += sampled
        return estimate
    calls = len(waiting) - embedded
    scale = calls / measured * (1 + RETRY_BUFFER)
    add_in, add_out = round(tokens_in * scale), round(tokens_out * scale)
    list_price = provider.estimate_cost(add_in, add_out)
    batch_ratio = (provider.estimate_cost(add_in, add_out, batch=True) / list_price
                   if list_price else 1.0)
    live = cost * scale
    estimate.jobs += len(waiting)
    estimate.sampled += sampled
    estimate.invoice_jobs = len(waiting)
    estimate.invoice_embedded = embedded
    estimate.input_tokens += add_in
    estimate.output_tokens += add_out
    estimate.cost_live_usd = round(estimate.cost_live_usd + live, 6)
    estimate.cost_batch_usd = round(estimate.cost_batch_usd + live * batch_ratio, 6)
    return estimate


def _with_invoices(estimate: Estimate, ledger: Ledger, settings: Settings,
                   provider: Provider) -> Estimate:
    """Add the waiting invoice jobs: each one's rendered prompt, so pages × tokens."""
    waiting = _waiting_invoices(ledger)
    if not waiting:
        return estimate
    calls, embedded, tokens_in, tokens_out = invoice_jobs.estimate_tokens(waiting, settings)
    add_in = round(tokens_in * (1 + RETRY_BUFFER))
    add_out = round(tokens_out * (1 + RETRY_BUFFER))
    estimate.jobs += len(waiting)
    estimate.sampled += calls + embedded
    estimate.invoice_jobs = len(waiting)
    estimate.invoice_embedded = embedded
    estimate.input_tokens += add_in
    estimate.output_tokens += add_out
    estimate.cost_live_usd = round(estimate.cost_live_usd
                                   + provider.estimate_cost(add_in, add_out), 6)
    estimate.cost_batch_usd = round(estimate.cost_batch_usd
                                    + provider.estimate_cost(add_in, add_out, batch=True), 6)
    return estimate
