"""What drafts really used, per template, model and field set: for sizing and estimates.

The worker sizes each request's ``max_tokens`` from the output tokens recent drafts of the
same template and fields needed (``recent_output_tokens``), and ``enrich estimate`` prices
the queue from what drafted jobs really cost, every attempt included
(``recorded_usage``). Both read only live-mode drafts of the one model asked about: another
model writes at another length.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from enrich.ledger.codec import loads
from enrich.ledger.ledger import Ledger


@dataclass(frozen=True)
class RecordedUsage:
    """One drafted job: its draft's answer and everything its attempts were billed."""

    template: str
    fields: tuple[str, ...]
    answer_tokens: int  # output tokens of the answer that was drafted (older drafts: of the
    #                     attempt, repairs included)
    repaired: bool
    tokens_in: int  # every attempt of the job: retries, repairs and cut-off answers
    tokens_out: int
    tokens_cached: int
    cache_write_tokens: int
    cost_usd: float
    estimated_in: int | None  # enrich's prompt estimate when it was sent (None: older drafts)
    created_at: float = 0.0


_SQL = """
SELECT d.template_name, d.fields, d.params, d.tokens_out, d.created_at,
       COALESCE(SUM(a.tokens_in), 0), COALESCE(SUM(a.tokens_out), 0),
       COALESCE(SUM(a.tokens_cached), 0), COALESCE(SUM(a.cost_usd), 0)
FROM drafts d LEFT JOIN attempts a ON a.job_id = d.job_id
WHERE d.kind = 'product' AND d.model = ? AND d.provider = ?
  AND COALESCE(json_extract(d.params, '$.mode'), 'live') = 'live'
GROUP BY d.id ORDER BY d.id DESC LIMIT ?
"""


def _fields(params: dict[str, Any], drafted: str) -> tuple[str, ...]:
    listed = params.get("fields")
    if isinstance(listed, list):
        return tuple(str(f) for f in listed)
    try:  # drafts written before the params named their fields
        return tuple(sorted(json.loads(drafted)))
    except (TypeError, ValueError):
        return ()


def recorded_usage(ledger: Ledger, provider: str, model: str, *,
                   limit: int = 2000) -> list[RecordedUsage]:
    """The ``limit`` most recent live drafts of ``provider``/``model``, newest first."""
    found = []
    for (template, drafted, raw_params, answer, created, t_in, t_out, cached,
         cost) in ledger.conn.execute(_SQL, (model, provider, limit)):
        params = loads(raw_params) or {}
        estimated = params.get("estimated_in")
        answer = params.get("answer_tokens", answer)  # the final answer alone, when recorded
        found.append(RecordedUsage(
            template=str(template or ""), fields=_fields(params, drafted),
            answer_tokens=int(answer or 0), repaired=bool(params.get("repaired")),
            tokens_in=int(t_in), tokens_out=int(t_out), tokens_cached=int(cached),
            cache_write_tokens=int(params.get("cache_write_tokens") or 0),
            cost_usd=float(cost), created_at=float(created or 0),
            estimated_in=int(estimated) if isinstance(estimated, int | float) else None))
    return found


def recent_output_tokens(ledger: Ledger, provider: str, model: str, *,
                         limit: int = 2000) -> dict[tuple[str, tuple[str, ...]], list[int]]:
    """Output tokens of recent answers that needed no repair, by (template, fields),
    oldest first: what the worker sizes ``max_tokens`` from."""
    grouped: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for row in reversed(recorded_usage(ledger, provider, model, limit=limit)):
        if not row.repaired and row.answer_tokens > 0:
            grouped.setdefault((row.template, row.fields), []).append(row.answer_tokens)
    return grouped
