"""Read-only queries the review needs: a draft joined with its job and the store's snapshot.

Reads go straight to ``ledger.conn`` (SELECT only); every write goes through ``Ledger``
methods so the state machine stays the one gate for status changes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from enrich.ledger import Ledger

#: ``meta`` key prefix under which each export of the review page is recorded.
EXPORTS_META_PREFIX = "review_export:"

#: Where each SEO plugin keeps a field in ``meta_data`` (WooCommerce REST v3 shape).
SEO_META_KEYS: dict[str, tuple[str, ...]] = {
    "seo_title": ("_yoast_wpseo_title", "rank_math_title", "_seopress_titles_title"),
    "meta_description": ("_yoast_wpseo_metadesc", "rank_math_description",
                         "_seopress_titles_desc"),
    "focus_keyword": ("_yoast_wpseo_focuskw", "rank_math_focus_keyword",
                      "_seopress_analysis_target_kw"),
}


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def current_text(snapshot: dict[str, Any] | None, name: str) -> str:
    """The store's current text for a draft field, from the sync snapshot ('' if none).

    Sync may store SEO fields flat (``seo_title``) or leave them in ``meta_data`` under the
    plugin's key; both are read so the page shows what a publish would replace.
    """
    if not snapshot:
        return ""
    value = snapshot.get(name)
    if isinstance(value, str):
        return value
    if value is not None and not isinstance(value, dict | list):
        return str(value)
    seo = snapshot.get("seo")
    if isinstance(seo, dict) and isinstance(seo.get(name), str):
        return str(seo[name])
    for key in SEO_META_KEYS.get(name, ()):
        for meta in snapshot.get("meta_data") or []:
            if isinstance(meta, dict) and meta.get("key") == key and meta.get("value"):
                return str(meta["value"])
    if name == "image_alt":
        images = snapshot.get("images") or []
        if images and isinstance(images[0], dict):
            return str(images[0].get("alt") or "")
    return ""


def categories_of(snapshot: dict[str, Any] | None) -> list[str]:
    """Category names from a snapshot (REST objects or plain strings)."""
    out: list[str] = []
    for cat in (snapshot or {}).get("categories") or []:
        name = cat.get("name") if isinstance(cat, dict) else cat
        if name:
            out.append(str(name))
    return out


@dataclass
class ReviewItem:
    """One draft as the reviewer sees it: the job, the draft and the store's snapshot."""

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
    extra: dict[str, Any] = field(default_factory=dict)

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


_ITEM_SQL = """
SELECT j.id AS job_id, j.kind, j.source_id, j.status, j.payload,
       d.id AS draft_id, d.created_at AS draft_created_at, d.fields, d.edited_fields,
       d.flags, d.template_name, d.template_hash, d.provider, d.model, d.reviewer_note,
       d.reviewed_at, d.cost_usd,
       p.name AS p_name, p.sku AS p_sku, p.type AS p_type, p.snapshot AS p_snapshot,
       p.missing AS p_missing, p.date_modified_gmt AS p_modified, p.source_id AS p_id
FROM jobs j
JOIN drafts d ON d.job_id = j.id
LEFT JOIN products p ON p.source_id = j.source_id AND j.kind = 'product'
"""


def _item(row: Any) -> ReviewItem:
    product = None
    if row["p_id"] is not None:
        product = {"source_id": row["p_id"], "name": row["p_name"], "sku": row["p_sku"],
                   "type": row["p_type"], "snapshot": _loads(row["p_snapshot"]) or {},
                   "missing": _loads(row["p_missing"]) or [],
                   "date_modified_gmt": row["p_modified"]}
    return ReviewItem(
        job_id=row["job_id"], draft_id=row["draft_id"],
        draft_created_at=row["draft_created_at"], kind=row["kind"],
        source_id=row["source_id"], status=row["status"],
        payload=_loads(row["payload"]) or {}, fields=_loads(row["fields"]) or {},
        edited_fields=_loads(row["edited_fields"]), flags=_loads(row["flags"]) or [],
        template_name=row["template_name"], template_hash=row["template_hash"],
        provider=row["provider"], model=row["model"], reviewer_note=row["reviewer_note"],
        reviewed_at=row["reviewed_at"], cost_usd=row["cost_usd"] or 0.0, product=product)


def review_items(ledger: Ledger, *, statuses: Sequence[str] = ("drafted",),
                 flagged_only: bool = False, job_ids: Sequence[int] | None = None,
                 kind: str | None = None) -> list[ReviewItem]:
    """Drafts whose job is in one of ``statuses`` (all reviewable ones if empty), by job id."""
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
    sql = _ITEM_SQL + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY j.id"
    return [_item(row) for row in ledger.conn.execute(sql, args)]


def review_item(ledger: Ledger, job_id: int) -> ReviewItem | None:
    """One job's draft as a ReviewItem, whatever its status (None if it has no draft)."""
    row = ledger.conn.execute(_ITEM_SQL + " WHERE j.id = ?", (int(job_id),)).fetchone()
    return None if row is None else _item(row)


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
