"""Queries for invoice jobs: what has been added (by file hash) and the drafts to export."""

from __future__ import annotations

from typing import Any

from enrich.ledger.codec import loads
from enrich.ledger.ledger import Ledger


def known_hashes(ledger: Ledger) -> dict[str, str]:
    """sha256 → source id of every invoice job that is not superseded (dedupe on add)."""
    rows = ledger.conn.execute(
        "SELECT input_hash, source_id FROM jobs WHERE kind = 'invoice' "
        "AND status != 'superseded'").fetchall()
    return {h: s for h, s in rows}


def invoice_drafts(ledger: Ledger, statuses: tuple[str, ...] | None = None
                   ) -> list[dict[str, Any]]:
    """Invoice jobs with their draft (edited fields win), oldest first; ``None``: any status."""
    where = "j.kind = 'invoice'"
    args: list[Any] = []
    if statuses is not None:
        where += f" AND j.status IN ({','.join('?' * len(statuses))})"
        args += list(statuses)
    rows = ledger.conn.execute(
        f"SELECT j.id AS job_id, j.source_id, j.input_hash, j.status, j.payload, d.fields, "
        f"d.edited_fields, d.flags, d.params, d.provider, d.model, d.cost_usd "
        f"FROM jobs j JOIN drafts d ON d.job_id = j.id WHERE {where} ORDER BY j.id",
        args).fetchall()
    out = []
    for r in rows:
        row = dict(r)
        for key in ("payload", "fields", "edited_fields", "flags", "params"):
            row[key] = loads(row[key])
        out.append(row)
    return out


def invoice_cost(ledger: Ledger) -> float:
    """Every attempt's cost on invoice jobs: what extraction has cost so far."""
    return float(ledger.conn.execute(
        "SELECT COALESCE(SUM(a.cost_usd), 0) FROM attempts a JOIN jobs j ON j.id = a.job_id "
        "WHERE j.kind = 'invoice'").fetchone()[0])
