"""The SQLite job ledger: schema, state machine and queries."""

from enrich.ledger.ledger import (
    KINDS,
    Attempt,
    DraftRecord,
    EnqueueCounts,
    EnqueueItem,
    Job,
    LeaseLost,
    Ledger,
    owner_id,
)
from enrich.ledger.states import JobStatus, check_transition, sources_of

__all__ = [
    "KINDS",
    "Attempt",
    "DraftRecord",
    "EnqueueCounts",
    "EnqueueItem",
    "Job",
    "JobStatus",
    "LeaseLost",
    "Ledger",
    "check_transition",
    "owner_id",
    "sources_of",
]
