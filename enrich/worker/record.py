"""The one way an answer becomes a draft, for live runs and batch results alike.

Live mode (``runner.Worker``) and batch mode (``batch.py``) get their answers differently but
must record them identically: the same guards, the same flags, the same draft and attempt
columns, the same duplicate index. Only the ledger call that commits them differs
(``Ledger.complete`` for a leased job, ``ledger.batches.ingest`` for a submitted one).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from enrich.config import Settings
from enrich.guards.draft import GuardResult, check_draft
from enrich.guards.duplicates import DUPLICATE_FIELDS, DuplicateIndex
from enrich.guards.sync_rules import SyncRules
from enrich.invoices import jobs as invoice_jobs
from enrich.ledger import Attempt, DraftRecord, Ledger
from enrich.missing import BOILERPLATE_META, DraftRules, Rules
from enrich.providers import LLMResult


@dataclass
class Recorded:
    """What to commit for one answer: the draft, its attempt, and the guards' verdict
    (``guard`` is None for an invoice: its checks are the invoice checks, not the guards)."""

    draft: DraftRecord
    attempt: Attempt
    guard: GuardResult | None

    @property
    def flagged(self) -> bool:
        return bool(self.draft.flags)


def record_answer(settings: Settings, *, source_id: str, snapshot: dict[str, Any],
                  expected: tuple[str, ...], template_name: str | None,
                  template_hash: str | None, result: LLMResult, started: float,
                  mode: str, duplicates: DuplicateIndex | None = None,
                  kind: str = "product", payload: dict[str, Any] | None = None,
                  sync_rules: SyncRules | None = None,
                  input_flags: Iterable[Mapping[str, Any]] | None = None) -> Recorded:
    """Check ``result`` against its source and build the draft and attempt to commit.

    A product draft goes through the guards (with sync's rules and the product's input
    flags); an invoice through the invoice checks. ``mode`` (live or batch) is kept in the
    draft's params, so a report can tell them apart.
    """
    llm = settings.llm
    guard: GuardResult | None = None
    if kind == "invoice":
        fields, flags = invoice_jobs.check(result.fields, payload or {})
    else:
        guard = check_draft(result.fields, snapshot, limits=settings.guards,
                            duplicates=duplicates, expected=expected, source_id=source_id,
                            sync_rules=sync_rules, input_flags=input_flags)
        fields, flags = guard.fields, guard.flag_dicts()
    usage = result.usage
    attempt = Attempt(started, "flagged" if flags else "ok", http_status=result.http_status,
                      latency_ms=result.latency_ms, tokens_in=usage.input_tokens,
                      tokens_out=usage.output_tokens, tokens_cached=usage.cached_tokens,
                      cost_usd=result.cost_usd)
    draft = DraftRecord(
        fields=fields, template_name=template_name, template_hash=template_hash,
        provider=result.provider, model=result.model,
        params={"temperature": llm.temperature,
                # What this request asked for (right-sized per template), and what the answer
                # used: enrich.ledger.usage learns the next requests' limit from them.
                "max_output_tokens": getattr(result, "max_output_tokens",
                                             llm.max_output_tokens),
                "mode": mode, "repaired": result.repaired,
                "cache_write_tokens": usage.cache_write_tokens,
                "fields": list(expected),
                "answer_tokens": getattr(result, "answer_tokens", usage.output_tokens),
                "estimated_in": getattr(result, "prompt_estimate", None),
                **({"source": snapshot.get("text_source") or "text_layer"}
                   if kind == "invoice" else {})},
        flags=flags)
    return Recorded(draft, attempt, guard)


def draft_rules(ledger: Ledger, settings: Settings) -> DraftRules:
    """Sync's missing-field rules and its last boilerplate set: a draft they would call
    missing is flagged (guard ``sync_rules``) instead of queued again after publish."""
    return DraftRules(Rules.from_settings(settings),
                      frozenset(json.loads(ledger.get_meta(BOILERPLATE_META) or "[]")))


def remember(duplicates: DuplicateIndex | None, job_id: int, source_id: str,
             guard: GuardResult | None) -> None:
    """Add a committed draft's texts to the duplicate index (after the commit, never before:
    a draft that was discarded must not make the next one look like a copy)."""
    if duplicates is None or guard is None:
        return
    for name in DUPLICATE_FIELDS:
        text = guard.fields.get(name)
        if isinstance(text, str):
            duplicates.add(job_id, source_id, text, field=name)
