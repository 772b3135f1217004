"""The SQLite job ledger: schema, state machine and queries.

The names below load on first use (PEP 562): a page reader process needs only
``enrich.ledger.codec`` (the ledger's JSON spelling), and loading the ledger itself would
bring sqlite_utils with it, a tenth of a second of CPU for every reader.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from enrich.ledger.rows import ProductRow
    from enrich.ledger.states import JobStatus, check_transition, sources_of

_HOMES = {
    **dict.fromkeys(("KINDS", "Attempt", "DraftRecord", "EnqueueCounts", "EnqueueItem", "Job",
                     "LeaseLost", "Ledger", "owner_id"), "enrich.ledger.ledger"),
    "ProductRow": "enrich.ledger.rows",
    **dict.fromkeys(("JobStatus", "check_transition", "sources_of"), "enrich.ledger.states"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # looked up once
    return value


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
    "ProductRow",
    "check_transition",
    "owner_id",
    "sources_of",
]
