"""The ``products`` table as sync reads it: last decisions, boilerplate counts, stored snapshots.

Sync writes products through ``Ledger.upsert_products`` and jobs through ``enqueue_many`` and
``set_status`` (so the state machine sees every status change); this module holds the reads
sync decides with, each named for the question it answers. Rows come back as plain data, not
as sync's ``Record``: the ledger sits below the code that builds records.

Boilerplate is counted here, in SQL over the whole catalog (``json_each`` over each
product's ``fingerprints`` column, the snapshot's own kept beside it), because the same
supplier text on N products only shows once every product has been seen; a sync that
fetched only the changed products still counts against all of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from enrich.ledger.ledger import Ledger, _loads, _placeholders
from enrich.ledger.states import SUPERSEDABLE


@dataclass(frozen=True)
class ProductState:
    """What the ledger last recorded for a product: enough to tell whether a sync changes it."""

    content_hash: str
    state: str
    missing: tuple[str, ...]
    reason: str | None
    date_modified_gmt: str | None
    stock_status: str | None = None
    total_sales: int | None = None
    #: The product's input problems as stored (``enrich.ledger.inputs``).
    input_flags: tuple[dict[str, str], ...] = ()


def product_states(ledger: Ledger, source_ids: Sequence[str]) -> dict[str, ProductState]:
    """source id -> its stored state, for the products of one page (absent ones are new)."""
    if not source_ids:
        return {}
    rows = ledger.conn.execute(
        f"SELECT source_id, content_hash, state, missing, reason, date_modified_gmt, "
        f"stock_status, total_sales, input_flags "
        f"FROM products WHERE source_id IN ({_placeholders(source_ids)})",
        list(source_ids)).fetchall()
    return {r[0]: ProductState(r[1], r[2], tuple(json.loads(r[3]) if r[3] else ()), r[4], r[5],
                               r[6], r[7], tuple(_loads(r[8]) or ()) if r[8] != "[]" else ())
            for r in rows}


def open_product_jobs(ledger: Ledger, source_id: str,
                      input_hash: str | None = None) -> list[int]:
    """Ids of the product's jobs that may still be superseded (optionally of one input)."""
    statuses = [s.value for s in SUPERSEDABLE]
    sql = (f"SELECT id FROM jobs WHERE kind = 'product' AND source_id = ? "
           f"AND status IN ({_placeholders(statuses)})")
    args: list[Any] = [source_id, *statuses]
    if input_hash is not None:
        sql += " AND input_hash = ?"
        args.append(input_hash)
    return [r[0] for r in ledger.conn.execute(sql, args)]


def shared_fingerprints(ledger: Ledger, min_products: int) -> frozenset[str]:
    """Text fingerprints found on at least ``min_products`` valid products: the boilerplate.

    A field that still holds the text enrich published there is not counted: enrich's own
    copy on many products is not supplier boilerplate (``published_values``)."""
    rows = ledger.conn.execute(
        "SELECT j.value FROM products p, json_each(p.fingerprints) j "
        "WHERE p.state != 'invalid' AND NOT EXISTS (SELECT 1 FROM published_values v "
        "WHERE v.source_id = p.source_id AND v.field = j.key AND v.fingerprint = j.value) "
        "GROUP BY j.value "
        "HAVING COUNT(DISTINCT p.source_id) >= ?", (min_products,)).fetchall()
    return frozenset(r[0] for r in rows)


def products_queued_since(ledger: Ledger, since: float) -> tuple[int, int]:
    """(products with a job queued, products with a job superseded) since ``since``, each
    product counted once however often a sync touched its jobs on the way."""
    row = ledger.conn.execute(
        "SELECT COUNT(DISTINCT CASE WHEN status IN ('pending', 'needs_data', 'invalid') "
        "THEN source_id END), COUNT(DISTINCT CASE WHEN status = 'superseded' THEN source_id "
        "END) FROM jobs WHERE kind = 'product' AND updated_at >= ?", (since,)).fetchone()
    return int(row[0]), int(row[1])


def count_by_state(ledger: Ledger) -> dict[str, int]:
    """Products by sync state (complete, needs_work, ...); states with none are absent."""
    return {state: n for state, n in ledger.conn.execute(
        "SELECT state, COUNT(*) FROM products GROUP BY state")}


_ROW_COLUMNS = ("source_id, parent_id, type, sku, name, status, snapshot, content_hash, "
                "date_modified_gmt, state, missing, reason, stock_status, total_sales")

#: A checked field holds a text that entered the boilerplate set and is not yet missing, or
#: one that left the set and is missing. Parameters: fields, entering, leaving (JSON arrays).
_BOILERPLATE_MAY_FLIP = (
    "EXISTS (SELECT 1 FROM json_each(products.fingerprints) j "
    "WHERE j.key IN (SELECT value FROM json_each(?)) AND ("
    " (j.value IN (SELECT value FROM json_each(?)) AND NOT EXISTS "
    "   (SELECT 1 FROM json_each(products.missing) m WHERE m.value = j.key))"
    " OR (j.value IN (SELECT value FROM json_each(?)) AND EXISTS "
    "   (SELECT 1 FROM json_each(products.missing) m WHERE m.value = j.key))))")


def valid_products(ledger: Ledger, *, chunk: int = 500) -> Iterator[list[dict[str, Any]]]:
    """Every stored product that is not ``invalid``, in source-id order, ``chunk`` at a time.

    Each row has the columns of ``upsert_products`` with ``snapshot`` and ``missing`` decoded.
    """
    return _chunks(ledger, "", (), chunk)


def products_boilerplate_may_flip(ledger: Ledger, fields: Iterable[str],
                                  entering: Iterable[str], leaving: Iterable[str], *,
                                  chunk: int = 500) -> Iterator[list[dict[str, Any]]]:
    """The valid products whose verdict a change of the boilerplate set can flip.

    ``entering`` are fingerprints that became boilerplate, ``leaving`` ones that stopped
    being it; only ``fields`` (those the rules check) count. Rows as ``valid_products``.
    """
    args = (json.dumps(list(fields)), json.dumps(sorted(entering)), json.dumps(sorted(leaving)))
    return _chunks(ledger, f" AND {_BOILERPLATE_MAY_FLIP}", args, chunk)


def _chunks(ledger: Ledger, where: str, args: tuple[str, ...],
            chunk: int) -> Iterator[list[dict[str, Any]]]:
    # Keyset paging: each chunk is a fresh short read, so writes between chunks are safe.
    last = ""
    while True:
        rows = ledger.conn.execute(
            f"SELECT {_ROW_COLUMNS} FROM products WHERE source_id > ? AND state != 'invalid'"
            f"{where} ORDER BY source_id LIMIT ?", (last, *args, chunk)).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        yield [_stored(r) for r in rows]


def _stored(row: Any) -> dict[str, Any]:
    data = dict(row)
    data["snapshot"] = _loads(data["snapshot"])
    data["missing"] = list(json.loads(data["missing"]) if data["missing"] else [])
    return data


__all__ = [
    "ProductState",
    "count_by_state",
    "open_product_jobs",
    "product_states",
    "products_boilerplate_may_flip",
    "products_queued_since",
    "shared_fingerprints",
    "valid_products",
]
