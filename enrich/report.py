"""`enrich report`: what runs did and cost, from the attempts table (the ledger is the truth)."""

from __future__ import annotations

from typing import Any

from enrich.ledger import Ledger
from enrich.ledger.batches import savings as batch_savings
from enrich.ledger.reports import attempt_outcomes, p95_latency_ms


def _figures(ledger: Ledger, run_id: int | None) -> dict[str, Any]:
    row = attempt_outcomes(ledger, run_id)
    data = {k: (v or 0) for k, v in row.items() if k != "mean_latency_ms"}
    # Every attempt beyond a job's first is a retry (429s included: they are re-sent).
    data["retries"] = max(0, data["attempts"] - data["jobs"])
    data["cost_usd"] = round(float(data["cost_usd"]), 6)
    mean = row["mean_latency_ms"]
    data["mean_latency_ms"] = None if mean is None else round(float(mean), 1)
    p95 = p95_latency_ms(ledger, run_id)
    data["p95_latency_ms"] = None if p95 is None else round(p95, 1)
    return data


def run_report(ledger: Ledger, run_id: int | None = None, *, limit: int = 20) -> dict[str, Any]:
    """Figures per drafting run (newest first, or the one asked for) and in total."""
    runs = [ledger.get_run(run_id)] if run_id is not None else ledger.list_runs("run", limit)
    result: dict[str, Any] = {"runs": []}
    for run in runs:
        entry = {k: run[k] for k in ("id", "kind", "started_at", "finished_at", "exit_reason")}
        entry["model"] = run["params"].get("model")
        entry.update(_figures(ledger, run["id"]))
        # The estimate the worker recorded when the run started, for the jobs it could take.
        estimated = run["params"].get("estimate_usd")
        entry["estimate_usd"] = estimated
        entry["estimate_basis"] = run["params"].get("estimate_basis")
        entry["actual_vs_estimate"] = (round(entry["cost_usd"] / estimated, 3)
                                       if estimated else None)
        result["runs"].append(entry)
    result["total"] = _figures(ledger, None)
    result["batch"] = batch_savings(ledger)  # batch mode: its cost and the live price of it
    return result
