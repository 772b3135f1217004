"""`enrich report`: what runs did and cost, from the attempts table (the ledger is the truth)."""

from __future__ import annotations

import math
from typing import Any

from enrich.ledger import Ledger

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


def _p95(ledger: Ledger, where: str, args: tuple[Any, ...]) -> float | None:
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


def _figures(ledger: Ledger, where: str, args: tuple[Any, ...]) -> dict[str, Any]:
    row = dict(ledger.conn.execute(f"{_OUTCOME_SQL} WHERE {where}", args).fetchone())
    data = {k: (v or 0) for k, v in row.items() if k != "mean_latency_ms"}
    # Every attempt beyond a job's first is a retry (429s included: they are re-sent).
    data["retries"] = max(0, data["attempts"] - data["jobs"])
    data["cost_usd"] = round(float(data["cost_usd"]), 6)
    mean = row["mean_latency_ms"]
    data["mean_latency_ms"] = None if mean is None else round(float(mean), 1)
    p95 = _p95(ledger, where, args)
    data["p95_latency_ms"] = None if p95 is None else round(p95, 1)
    return data


def run_report(ledger: Ledger, run_id: int | None = None, *, limit: int = 20) -> dict[str, Any]:
    """Figures per drafting run (newest first, or the one asked for) and in total."""
    runs = [ledger.get_run(run_id)] if run_id is not None else ledger.list_runs("run", limit)
    result: dict[str, Any] = {"runs": []}
    for run in runs:
        entry = {k: run[k] for k in ("id", "kind", "started_at", "finished_at", "exit_reason")}
        entry["model"] = run["params"].get("model")
        entry.update(_figures(ledger, "run_id = ?", (run["id"],)))
        result["runs"].append(entry)
    result["total"] = _figures(ledger, "1 = 1", ())
    return result
