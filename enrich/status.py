"""What `enrich status` reports: a stable shape that scripts and monitoring can rely on."""

from __future__ import annotations

from typing import Any

from enrich.config import Settings
from enrich.ledger import Ledger
from enrich.priority import pending_by_tier


def ledger_status(ledger: Ledger, settings: Settings | None = None) -> dict[str, Any]:
    """``{"jobs": {kind: {status: n}}, "cost_usd", "last_run", "oldest_pending",
    "pending_by_tier": {tier: n}}`` (tiers top first, named by ``settings``' [sync] priority).
    """
    return {
        "jobs": ledger.counts(),
        "cost_usd": round(ledger.total_cost(), 6),
        "last_run": ledger.last_run(),
        "oldest_pending": ledger.oldest_pending(),
        "pending_by_tier": pending_by_tier(ledger, settings or Settings()),
    }


def job_detail(ledger: Ledger, job_id: int) -> dict[str, Any]:
    """A job with its attempts and its draft, as `jobs show` prints it."""
    data = ledger.get_job(job_id).as_dict()
    data["attempts_log"] = ledger.attempts_for(job_id)
    data["draft"] = ledger.draft_for(job_id)
    return data
