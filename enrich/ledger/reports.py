"""Reads for ``enrich report`` and ``enrich estimate``: what attempts cost, what still waits.

The ``attempts`` table is the truth about spend (every try is a row, retries and 429s
included), so both commands add it up here rather than trusting counters kept elsewhere.
"""

from __future__ import annotations

import math
from typing import Any

from enrich.ledger.ledger import Ledger

_OUTCOME_SQL = """
SELECT COUNT(*) AS attempts,
       COUNT(DISTINCT job_id) AS jobs,
       SUM(outcome IN ('ok', 'flagged')) AS drafted,
       SUM(outcome = 'flagged') AS flagged,
       SUM(outcome = 'retry') AS failed,
       SUM(outcome = 'dead') AS dead,
       SUM(outcome = 'rate_limited') AS rate_limited,
       SUM(http_status = 429) AS http_429,
       SUM(outcome = 'lost') AS lost,
       COALESCE(SUM(cost_usd), 0) AS cost_usd,
       COALESCE(SUM(tokens_in), 0) AS tokens_in,
       COALESCE(SUM(tokens_out), 0) AS tokens_out,
       COALESCE(SUM(tokens_cached), 0) AS tokens_cached,
       AVG(latency_ms) FILTER (WHERE outcome IN ('ok', 'flagged')) AS mean_latency_ms
FROM attempts
"""


def _scope(run_id: int | None) -> tuple[str, tuple[Any, ...]]:
    return ("run_id = ?", (run_id,)) if run_id is not None else ("1 = 1", ())


def attempt_outcomes(ledger: Ledger, run_id: int | None = None) -> dict[str, Any]:
    """Attempts of one run (every run if None) counted by outcome, with tokens and cost.

    Sums are None when there are no attempts (SQL SUM of nothing); the caller decides.
    """
    where, args = _scope(run_id)
    return dict(ledger.conn.execute(f"{_OUTCOME_SQL} WHERE {where}", args).fetchone())


def p95_latency_ms(ledger: Ledger, run_id: int | None = None) -> float | None:
    """The 95th-percentile latency of successful calls (nearest rank), None if none."""
    where, args = _scope(run_id)
    n = ledger.conn.execute(
        f"SELECT COUNT(*) FROM attempts WHERE {where} AND latency_ms IS NOT NULL "
        f"AND outcome IN ('ok', 'flagged')", args).fetchone()[0]
    if not n:
        return None
    offset = max(0, math.ceil(0.95 * n) - 1)
    row = ledger.conn.execute(
        f"SELECT latency_ms FROM attempts WHERE {where} AND latency_ms IS NOT NULL "
        f"AND outcome IN ('ok', 'flagged') ORDER BY latency_ms LIMIT 1 OFFSET ?",
        (*args, offset)).fetchone()
    return float(row[0])


def run_usage(ledger: Ledger, run_id: int) -> tuple[int, int, int, float]:
    """``(jobs, tokens_in, tokens_out, cost_usd)`` one run's attempts measured."""
    row = ledger.conn.execute(
        "SELECT COUNT(DISTINCT job_id), COALESCE(SUM(tokens_in), 0), "
        "COALESCE(SUM(tokens_out), 0), COALESCE(SUM(cost_usd), 0) FROM attempts "
        "WHERE run_id = ?", (run_id,)).fetchone()
    return int(row[0]), int(row[1]), int(row[2]), float(row[3])


def waiting_product_jobs(ledger: Ledger) -> list[tuple[int, str]]:
    """``(job_id, source_id)`` of every product job a run would still draft, by id.

    Pending and failed (due for a retry) ones. Payloads are left out: an estimate samples
    a few hundred jobs of a queue that can hold half a million, and reads only theirs.
    """
    return [(int(r[0]), str(r[1])) for r in ledger.conn.execute(
        "SELECT id, source_id FROM jobs WHERE kind = 'product' "
        "AND status IN ('pending', 'failed') ORDER BY id")]


def run_call_usage(ledger: Ledger, run_id: int) -> tuple[int, int, int, float]:
    """Like ``run_usage``, counting only the jobs whose attempts called a model (tokens in):
    an invoice read from its embedded XML is drafted with no call, and must not dilute the
    per-call usage an estimate extrapolates from."""
    row = ledger.conn.execute(
        "SELECT COUNT(DISTINCT job_id), COALESCE(SUM(tokens_in), 0), "
        "COALESCE(SUM(tokens_out), 0), COALESCE(SUM(cost_usd), 0) FROM attempts "
        "WHERE run_id = ? AND tokens_in > 0", (run_id,)).fetchone()
    return int(row[0]), int(row[1]), int(row[2]), float(row[3])
