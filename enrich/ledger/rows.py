"""Rows the ledger writes, as plain tuples: importable without the ledger's SQLite machinery.

A page reader process (``enrich.page_reader``) builds records that end up as these rows,
and importing ``enrich.ledger.ledger`` (sqlite-utils and its dependencies) would add ~75 ms
to each reader's start-up for nothing it uses.
"""

from __future__ import annotations

from typing import NamedTuple


class ProductRow(NamedTuple):
    """One product as ``upsert_products`` writes it: the ``products`` columns, the JSON ones
    already spelled as the ledger stores them (``codec.dumps``).

    Sync writes every product it reads this way: a row of plain values, where a dict
    would be looked up key by key and its JSON spelled again."""

    source_id: str
    parent_id: str | None
    type: str | None
    sku: str | None
    name: str | None
    status: str | None
    snapshot: str
    content_hash: str
    date_modified_gmt: str | None
    state: str
    missing: str | None
    reason: str | None
    stock_status: str | None
    total_sales: int | None
    fingerprints: str | None
    #: None keeps the flags stored (``enrich.ledger.inputs``).
    input_flags: str | None


__all__ = ["ProductRow"]
