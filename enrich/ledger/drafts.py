"""Reads of drafts: a draft joined with its job and the sync snapshot of its product.

Review and publish both need the same record (what was generated, what the reviewer
changed, what the store held when it was synced); ``DraftView`` is that record, read by one
query, so the two never drift apart in what they call a draft. Everything here only reads:
a draft's status changes through ``Ledger.review`` / ``Ledger.move``, the state machine's
one gate.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from enrich.ledger.codec import loads
from enrich.ledger.ledger import Ledger


def categories_of(snapshot: dict[str, Any] | None) -> list[str]:
    """Category names from a snapshot (REST objects or plain strings)."""
    out: list[str] = []
    for cat in (snapshot or {}).get("categories") or []:
        name = cat.get("name") if isinstance(cat, dict) else cat
        if name:
            out.append(str(name))
    return out


@dataclass
class DraftView:
    """One draft with its job and, for a product, the store's snapshot from the last sync.

    ``product`` holds the ``products`` row (``source_id``, ``name``, ``sku``, ``type``,
    ``snapshot``, ``missing``, ``content_hash``, ``date_modified_gmt``, ``parent_id``), or
    None for an invoice or a product sync never saw.
    """

    job_id: int
    draft_id: int
    draft_created_at: float
    kind: str
    source_id: str
    status: str
    payload: dict[str, Any]
    fields: dict[str, Any]
    edited_fields: dict[str, Any] | None
    flags: list[dict[str, str]]
    template_name: str | None
    template_hash: str | None
    provider: str | None
    model: str | None
    reviewer_note: str | None
    reviewed_at: float | None
    cost_usd: float
    product: dict[str, Any] | None = None

    @property
    def snapshot(self) -> dict[str, Any]:
        return (self.product or {}).get("snapshot") or {}

    @property
    def name(self) -> str:
        product = self.product or {}
        return str(product.get("name") or self.snapshot.get("name") or
                   self.payload.get("name") or f"{self.kind} {self.source_id}")

    @property
    def sku(self) -> str:
        return str((self.product or {}).get("sku") or self.snapshot.get("sku") or "")

    @property
    def categories(self) -> list[str]:
        source = self.payload.get("source")
        return (categories_of(self.snapshot) or
                categories_of(source if isinstance(source, dict) else None) or
                categories_of(self.payload))

    @property
    def product_type(self) -> str | None:
        return (self.product or {}).get("type")

    @property
    def is_variation(self) -> bool:
        return self.product_type == "variation"

    @property
    def parent_id(self) -> str | None:
        """The variable product a variation belongs to (None for anything else)."""
        return (self.product or {}).get("parent_id") if self.is_variation else None

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    @property
    def effective_fields(self) -> dict[str, Any]:
        """What a publish would write: the reviewer's edit over the generated fields."""
        return {**self.fields, **(self.edited_fields or {})}

    def source(self) -> dict[str, Any]:
        """The data the draft was written from: the job's ``source``, else the snapshot."""
        source = self.payload.get("source")
        if isinstance(source, dict) and source:
            return source
        return self.snapshot

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> DraftView:
        """A row of ``DRAFT_VIEW_SQL`` (or a query selecting the same aliases)."""
        product = None
        if row["p_id"] is not None:
            product = {"source_id": row["p_id"], "name": row["p_name"], "sku": row["p_sku"],
                       "type": row["p_type"], "snapshot": loads(row["p_snapshot"]) or {},
                       "missing": loads(row["p_missing"]) or [],
                       "content_hash": row["p_hash"], "date_modified_gmt": row["p_modified"],
                       "parent_id": row["p_parent"]}
        return cls(
            job_id=row["job_id"], draft_id=row["draft_id"],
            draft_created_at=row["draft_created_at"], kind=row["kind"],
            source_id=row["source_id"], status=row["status"],
            payload=loads(row["payload"]) or {}, fields=loads(row["fields"]) or {},
            edited_fields=loads(row["edited_fields"]), flags=loads(row["flags"]) or [],
            template_name=row["template_name"], template_hash=row["template_hash"],
            provider=row["provider"], model=row["model"], reviewer_note=row["reviewer_note"],
            reviewed_at=row["reviewed_at"], cost_usd=row["cost_usd"] or 0.0, product=product)


#: What ``DraftView.from_row`` reads; a query of its own (publish's approved drafts) can
#: select these and add columns of its own.
DRAFT_VIEW_COLUMNS = """
j.id AS job_id, j.kind, j.source_id, j.status, j.payload,
d.id AS draft_id, d.created_at AS draft_created_at, d.fields, d.edited_fields,
d.flags, d.template_name, d.template_hash, d.provider, d.model, d.reviewer_note,
d.reviewed_at, d.cost_usd,
p.name AS p_name, p.sku AS p_sku, p.type AS p_type, p.snapshot AS p_snapshot,
p.missing AS p_missing, p.content_hash AS p_hash,
p.date_modified_gmt AS p_modified, p.source_id AS p_id, p.parent_id AS p_parent
"""

#: The job, its draft and its product's snapshot (``j``, ``d``, ``p``).
DRAFT_VIEW_FROM = """
FROM jobs j
JOIN drafts d ON d.job_id = j.id
LEFT JOIN products p ON p.source_id = j.source_id AND j.kind = 'product'
"""

#: Every draft view; add a WHERE on ``j``/``d``/``p``.
DRAFT_VIEW_SQL = f"SELECT {DRAFT_VIEW_COLUMNS} {DRAFT_VIEW_FROM}"


def draft_views(ledger: Ledger, *, statuses: Sequence[str] = ("drafted",),
                flagged_only: bool = False, job_ids: Sequence[int] | None = None,
                kind: str | None = None) -> list[DraftView]:
    """Drafts whose job is in one of ``statuses`` (any status if empty), by job id."""
    where: list[str] = []
    args: list[Any] = []
    if statuses:
        where.append(f"j.status IN ({','.join('?' * len(statuses))})")
        args += list(statuses)
    if flagged_only:
        where.append("d.flagged = 1")
    if kind is not None:
        where.append("j.kind = ?")
        args.append(kind)
    if job_ids is not None:
        if not job_ids:
            return []
        where.append(f"j.id IN ({','.join('?' * len(job_ids))})")
        args += [int(i) for i in job_ids]
    sql = DRAFT_VIEW_SQL + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY j.id"
    return [DraftView.from_row(row) for row in ledger.conn.execute(sql, args)]


def draft_view(ledger: Ledger, job_id: int) -> DraftView | None:
    """One job's draft, whatever the job's status (None if it has no draft)."""
    row = ledger.conn.execute(DRAFT_VIEW_SQL + " WHERE j.id = ?", (int(job_id),)).fetchone()
    return None if row is None else DraftView.from_row(row)


def flags_by_guard(ledger: Ledger, *, statuses: Sequence[str] = ("drafted",)) -> dict[str, int]:
    """How many drafts each guard flagged (a draft counts once per guard), most first."""
    marks = ",".join("?" * len(statuses))
    rows = ledger.conn.execute(
        f"SELECT json_extract(f.value, '$.guard') AS guard, COUNT(DISTINCT d.id) "
        f"FROM drafts d JOIN jobs j ON j.id = d.job_id, json_each(d.flags) f "
        f"WHERE j.status IN ({marks}) AND d.flagged = 1 GROUP BY guard "
        f"ORDER BY 2 DESC, 1", list(statuses)).fetchall()
    return {str(guard): int(n) for guard, n in rows}


def drafted_job_ids(ledger: Ledger, *, unflagged: bool = False) -> list[int]:
    """Jobs waiting for review (``drafted``), optionally only those no guard flagged."""
    sql = ("SELECT j.id FROM jobs j JOIN drafts d ON d.job_id = j.id "
           "WHERE j.status = 'drafted'" + (" AND d.flagged = 0" if unflagged else "") +
           " ORDER BY j.id")
    return [int(r[0]) for r in ledger.conn.execute(sql)]


def newer_job_for(ledger: Ledger, kind: str, source_id: str, job_id: int) -> int | None:
    """The job that superseded ``job_id`` (same source, newer input), if there is one."""
    row = ledger.conn.execute(
        "SELECT id FROM jobs WHERE kind = ? AND source_id = ? AND id != ? "
        "AND status != 'superseded' ORDER BY id DESC LIMIT 1",
        (kind, source_id, job_id)).fetchone()
    return None if row is None else int(row[0])


def live_product_fields(ledger: Ledger, *, batch: int = 2000
                        ) -> Iterator[list[tuple[int, str, dict[str, Any]]]]:
    """``(job_id, source_id, fields)`` of every product draft that may still be published.

    Drafted, approved and published ones, in draft order, the reviewer's edit laid over the
    generated fields; rejected and superseded drafts are left out (their text will never
    reach the store). Read in chunks of ``batch`` so a whole catalog never sits in memory.
    """
    cursor = ledger.conn.execute(
        "SELECT d.job_id, d.source_id, d.fields, d.edited_fields FROM drafts d "
        "JOIN jobs j ON j.id = d.job_id WHERE d.kind = 'product' "
        "AND j.status IN ('drafted', 'approved', 'published') ORDER BY d.id")
    while True:
        chunk = cursor.fetchmany(batch)
        if not chunk:
            return
        out: list[tuple[int, str, dict[str, Any]]] = []
        for job_id, source_id, fields_json, edited_json in chunk:
            values = loads(fields_json or "{}")
            values.update(loads(edited_json or "null") or {})
            out.append((job_id, str(source_id), values))
        yield out
