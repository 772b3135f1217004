"""`enrich estimate`: what drafting the queue will cost, before anything is spent.

Rendering every prompt of a 500,000-product queue would take minutes, so the estimate renders
an evenly spread sample of the waiting jobs (all of them when there are few), counts its
tokens with the provider's estimator, and scales up. The tokens are priced from what the
ledger recorded for drafts of the same model, template and fields when it has some (the
estimate says so, with the sample size), from the output schema when it has none
(``enrich.worker.estimating``). ``--sample N`` first drafts N jobs for real, so the rest is
priced from their measured usage, output length and cache hits included.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any

from enrich.config import Secrets, Settings
from enrich.errors import ConfigError, RunStopped
from enrich.ledger import Ledger
from enrich.ledger.reports import run_usage, waiting_product_jobs
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


def estimate_from_run(ledger: Ledger, provider: Provider, run_id: int) -> Estimate:
    """Extrapolate the remaining queue from what a real (sample) run measured."""
    measured_jobs, tokens_in, tokens_out, cost = run_usage(ledger, run_id)
    waiting = len(waiting_product_jobs(ledger))
    per_job = 1 / measured_jobs if measured_jobs else 0.0
    total_in = round(tokens_in * per_job * waiting * (1 + RETRY_BUFFER))
    total_out = round(tokens_out * per_job * waiting * (1 + RETRY_BUFFER))
    live = float(cost) * per_job * waiting * (1 + RETRY_BUFFER)
    list_price = provider.estimate_cost(total_in, total_out)
    batch_ratio = (provider.estimate_cost(total_in, total_out, batch=True) / list_price
                   if list_price else 1.0)
    return Estimate(
        jobs=waiting, method="measured sample", sampled=measured_jobs, skipped=0,
        input_tokens=total_in, output_tokens=total_out, cost_live_usd=round(live, 6),
        cost_batch_usd=round(live * batch_ratio, 6), retry_buffer=RETRY_BUFFER,
        provider=provider.name, model=provider.model)


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
        return estimate_queue(ledger, make_provider(settings.llm, secrets),
                              PromptBook.from_settings(settings), list(settings.sync.fields),
                              settings.llm.max_output_tokens)
    result = asyncio.run(run_jobs(ledger, settings, secrets, limit=sample,
                                  on_progress=on_progress))
    if result.exit_reason == "fatal":
        raise ConfigError(f"estimate --sample: run #{result.run_id} stopped: "
                          f"{result.message}", result.hint or "Fix the cause and run again.")
    if result.stats.drafted == 0:
        raise RunStopped(
            f"estimate --sample: run #{result.run_id} drafted none of the {sample:,} "
            f"job(s) it tried, so there is no measured usage to extrapolate from "
            f"({result.message})",
            "See `enrich jobs list --status failed` for why, or run `enrich estimate` "
            "without --sample to estimate from the rendered prompts.")
    # The sample's drafts are now recorded usage: the rest is priced from them.
    return estimate_queue(ledger, make_provider(settings.llm, secrets),
                          PromptBook.from_settings(settings), list(settings.sync.fields),
                          settings.llm.max_output_tokens)
