"""The one way an answer becomes a draft, for live runs and batch results alike.

Live mode (``runner.Worker``) and batch mode (``batch.py``) get their answers differently but
must record them identically: the same guards, the same flags, the same draft and attempt
columns, the same duplicate index. Only the ledger call that commits them differs
(``Ledger.complete`` for a leased job, ``ledger.batches.ingest`` for a submitted one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from enrich.config import Settings
from enrich.guards import GuardResult, check_draft
from enrich.guards.duplicates import DUPLICATE_FIELDS, DuplicateIndex
from enrich.ledger import Attempt, DraftRecord
from enrich.providers import LLMResult


@dataclass
class Recorded:
    """What to commit for one answer: the draft, its attempt, and the guards' verdict."""

    draft: DraftRecord
    attempt: Attempt
    guard: GuardResult

    @property
    def flagged(self) -> bool:
        return bool(self.draft.flags)


def record_answer(settings: Settings, *, source_id: str, snapshot: dict[str, Any],
                  expected: tuple[str, ...], template_name: str | None,
                  template_hash: str | None, result: LLMResult, started: float,
                  mode: str, duplicates: DuplicateIndex | None = None) -> Recorded:
    """Guard ``result`` against its product and build the draft and attempt to commit.

    ``mode`` (live or batch) is kept in the draft's params, so a report can tell them apart.
    """
    llm = settings.llm
    guard = check_draft(result.fields, snapshot, limits=settings.guards,
                        duplicates=duplicates, expected=expected, source_id=source_id)
    flags = guard.flag_dicts()
    usage = result.usage
    attempt = Attempt(started, "flagged" if flags else "ok", http_status=result.http_status,
                      latency_ms=result.latency_ms, tokens_in=usage.input_tokens,
                      tokens_out=usage.output_tokens, tokens_cached=usage.cached_tokens,
                      cost_usd=result.cost_usd)
    draft = DraftRecord(
        fields=guard.fields, template_name=template_name, template_hash=template_hash,
        provider=result.provider, model=result.model,
        params={"temperature": llm.temperature, "max_output_tokens": llm.max_output_tokens,
                "mode": mode, "repaired": result.repaired,
                "cache_write_tokens": usage.cache_write_tokens},
        flags=flags)
    return Recorded(draft, attempt, guard)


def remember(duplicates: DuplicateIndex | None, job_id: int, source_id: str,
             guard: GuardResult) -> None:
    """Add a committed draft's texts to the duplicate index (after the commit, never before:
    a draft that was discarded must not make the next one look like a copy)."""
    if duplicates is None:
        return
    for name in DUPLICATE_FIELDS:
        text = guard.fields.get(name)
        if isinstance(text, str):
            duplicates.add(job_id, source_id, text, field=name)
