"""What drafting waiting jobs will cost: from what drafts really used, else from the schema.

One function for ``enrich estimate`` and for the worker, which records its estimate when a
run starts so ``enrich report`` can set it beside what the run cost.

With recorded drafts of the same model (``enrich.ledger.usage``), each sampled job is
priced from its group's history, the group being its template and field set (or, failing
that, any template writing the same fields):

* input: enrich's own prompt estimate of the job, times the ratio of the tokens the
  provider billed to enrich's estimate over the recorded drafts (every attempt counted, so
  retries and repairs are in it), with the group's share served from the prompt cache (a
  prefix is written once per group, unless its last draft is recent enough for the
  prefix to be cached still, then read);
* output: the group's mean billed output tokens per drafted job.

Without a recorded group the output is the schema's figure (``estimate_output_tokens``),
and ``RETRY_BUFFER`` is added for retries and repairs nobody has measured yet.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from enrich.errors import EnrichError
from enrich.ledger import Ledger
from enrich.ledger.reports import waiting_product_jobs
from enrich.ledger.usage import RecordedUsage, recorded_usage
from enrich.prompts import PromptBook
from enrich.providers import Provider, Usage, estimate_output_tokens, estimate_prompt_tokens

#: Extra spend allowed for retries and repairs when nothing has been measured.
RETRY_BUFFER = 0.10
#: Prompts rendered at most (evenly spread over the queue), then scaled up.
RENDER_SAMPLE = 400
#: Recorded drafts a group needs before its history replaces the schema figure.
MIN_GROUP = 5
#: A prefix read or written this recently is still cached (Anthropic's 5 minutes, which a
#: read renews), so a run starting now writes it again only if the last draft is older.
CACHE_WARM_S = 300.0

Group = tuple[str, tuple[str, ...]]


@dataclass
class QueueFigures:
    """Estimated usage and cost of ``jobs`` waiting jobs."""

    jobs: int
    rendered: int
    skipped: int  # sampled jobs that could not be rendered (they would fail, not cost)
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    cost_usd: float
    cost_batch_usd: float
    recorded: int  # drafts whose usage priced the estimate (0: schema-based only)
    basis: str  # one line: where the figures come from


class _History:
    """Recorded drafts by group, with the model-wide input ratio."""

    def __init__(self, rows: Sequence[RecordedUsage]) -> None:
        self.by_group: dict[Group, list[RecordedUsage]] = {}
        self.by_fields: dict[tuple[str, ...], list[RecordedUsage]] = {}
        for row in rows:
            self.by_group.setdefault((row.template, row.fields), []).append(row)
            self.by_fields.setdefault(row.fields, []).append(row)
        known = [r for r in rows if r.estimated_in]
        estimated = sum(r.estimated_in or 0 for r in known)
        self.input_ratio = sum(r.tokens_in for r in known) / estimated if estimated else None
        self.used: set[int] = set()

    def group(self, key: Group) -> list[RecordedUsage] | None:
        found = self.by_group.get(key)
        if found is None or len(found) < MIN_GROUP:
            found = self.by_fields.get(key[1])
        return found if found is not None and len(found) >= MIN_GROUP else None


def estimate_waiting(ledger: Ledger, provider: Provider, prompts: PromptBook,
                     default_fields: Sequence[str], max_output_tokens: int, *,
                     jobs: int | None = None, sample: int = RENDER_SAMPLE) -> QueueFigures:
    """Usage and cost of the waiting product jobs (the first ``jobs`` of them if given)."""
    waiting = waiting_product_jobs(ledger)
    if jobs is not None:
        waiting = waiting[:max(0, jobs)]
    step = max(1, len(waiting) // sample) if waiting else 1
    chosen = waiting[::step][:sample]
    history = _History(recorded_usage(ledger, provider.name, provider.model))
    measured = Usage()
    guessed = Usage()
    rendered = skipped = priced = 0
    writes: dict[Group, int] = {}  # one cache write per group's prefix
    for job_id, source_id in chosen:
        product = ledger.get_product(source_id)
        if product is None:
            skipped += 1
            continue
        fields = ledger.get_job(job_id).payload.get("fields") or list(default_fields)
        try:
            prompt = prompts.render_product(product["snapshot"], fields, source_id=source_id)
        except EnrichError:
            skipped += 1
            continue
        rendered += 1
        schema = prompt.output_model.model_json_schema()
        tokens_in = estimate_prompt_tokens(prompt.system, prompt.user, schema)
        group = history.group((prompt.template_name, prompt.fields))
        if group is None:
            guessed += Usage(tokens_in, estimate_output_tokens(schema, max_output_tokens))
            continue
        priced += 1
        history.used.update(id(r) for r in group)
        billed_in = sum(r.tokens_in for r in group)
        ratio = history.input_ratio or 1.0
        real_in = tokens_in * ratio
        # A prefix is written to the cache once and read by every later request, so the
        # sample's writes count as reads here; one write per group is added below.
        from_cache = sum(r.tokens_cached + r.cache_write_tokens for r in group)
        if time.time() - max(r.created_at for r in group) > CACHE_WARM_S:
            writes[(prompt.template_name, prompt.fields)] = max(
                r.cache_write_tokens for r in group)
        measured += Usage(
            input_tokens=round(real_in),
            output_tokens=round(sum(r.tokens_out for r in group) / len(group)),
            cached_tokens=round(real_in * from_cache / billed_in) if billed_in else 0)
    scale = len(waiting) / rendered if rendered else 0.0
    buffer = 1 + RETRY_BUFFER
    written = sum(writes.values()) if waiting else 0
    cached = round(measured.cached_tokens * scale)
    total = Usage(
        input_tokens=round((measured.input_tokens + guessed.input_tokens * buffer) * scale),
        output_tokens=round((measured.output_tokens + guessed.output_tokens * buffer) * scale),
        cached_tokens=max(0, cached - written), cache_write_tokens=min(written, cached))
    used = len(history.used)
    if priced and priced == rendered:
        basis = (f"recorded usage of {used:,} {provider.model} draft(s) of the same "
                 f"template and fields")
    elif priced:
        basis = (f"recorded usage of {used:,} {provider.model} draft(s) for {priced} of "
                 f"{rendered} sampled job(s), the output schema for the rest (+"
                 f"{RETRY_BUFFER:.0%} for retries)")
    else:
        basis = (f"the output schema's limits (no recorded {provider.model} drafts of these "
                 f"templates yet; +{RETRY_BUFFER:.0%} for retries)")
    return QueueFigures(
        jobs=len(waiting), rendered=rendered, skipped=skipped,
        input_tokens=total.input_tokens, output_tokens=total.output_tokens,
        cached_tokens=total.cached_tokens, cache_write_tokens=total.cache_write_tokens,
        cost_usd=round(provider.cost(total), 6),
        cost_batch_usd=round(provider.cost(total, batch=True), 6), recorded=used,
        basis=basis)
