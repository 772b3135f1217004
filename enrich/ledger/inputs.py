"""The ``products.input_flags`` column: problems of each product's own data, as sync found them.

Sync writes a product's own flags with its row (``with_catalog_flags``), then finds duplicate
SKUs over the whole ledger in one SQL pass (``mark_duplicate_skus``): a SKU on two products
only shows once both have been seen, and an incremental sync fetches only one of them. The
worker reads a product's flags (``product_input_flags``) to copy them onto its draft.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from enrich.ledger.codec import dumps
from enrich.ledger.ledger import Ledger, _loads

DUPLICATE_SKU = "duplicate_sku"


def with_catalog_flags(own: Sequence[Mapping[str, str]],
                       stored: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """A product's own flags, as sync found them, plus the ``duplicate_sku`` flag it has in
    the ledger (``stored``): that one is a catalog fact, found after the stream, and stays
    until ``mark_duplicate_skus`` decides again."""
    flags = [dict(f) for f in own]
    if stored:
        flags += [dict(f) for f in stored if f.get("flag") == DUPLICATE_SKU]
    return flags


def mark_duplicate_skus(ledger: Ledger) -> list[tuple[str, list[str]]]:
    """Flag every product whose SKU another product has too; returns (sku, source ids).

    Compared as the store compares them (case and surrounding spaces ignored). Products
    whose SKU stopped being shared lose the flag.
    """
    # Ids in source-id order (Python's order of str is SQLite's of UTF-8), sorted here for
    # the few shared SKUs rather than in SQL for every product.
    groups = [(sku, sorted(ids.split(","))) for sku, ids in ledger.conn.execute(
        "SELECT lower(trim(sku)), group_concat(source_id) FROM products "
        "WHERE trim(coalesce(sku, '')) != '' GROUP BY 1 HAVING COUNT(*) > 1 ORDER BY 1")]
    wanted: dict[str, dict[str, str]] = {}
    for sku, ids in groups:
        for sid in ids:
            others = ", ".join(i for i in ids if i != sid)
            wanted[sid] = {"flag": DUPLICATE_SKU, "field": "sku",
                           "detail": f"The SKU “{sku}” is also on product {others}. Give each "
                                     "product its own SKU in the store."}
    stale = [r[0] for r in ledger.conn.execute(
        "SELECT source_id FROM products WHERE input_flags LIKE ?", (f"%{DUPLICATE_SKU}%",))]
    touched = sorted(set(stale) | set(wanted))
    if not touched:
        return groups
    current = dict(ledger.conn.execute(
        f"SELECT source_id, input_flags FROM products WHERE source_id IN "
        f"({','.join('?' * len(touched))})", touched).fetchall())
    updates: list[tuple[str, str]] = []
    for sid in touched:
        own = [f for f in (_loads(current.get(sid)) or []) if f.get("flag") != DUPLICATE_SKU]
        new = own + ([wanted[sid]] if sid in wanted else [])
        text = dumps(new)
        if text != current.get(sid):
            updates.append((text, sid))
    if updates:
        ledger._write(lambda c: c.executemany(
            "UPDATE products SET input_flags = ? WHERE source_id = ?", updates))
    return groups


def product_input_flags(ledger: Ledger, source_id: str) -> list[dict[str, Any]]:
    """The product's input flags, or none when it is not in the ledger."""
    row = ledger.conn.execute("SELECT input_flags FROM products WHERE source_id = ?",
                              (str(source_id),)).fetchone()
    return list(_loads(row[0]) or []) if row else []


def count_input_flags(ledger: Ledger) -> dict[str, int]:
    """Products per input flag, over the whole ledger."""
    return {flag: n for flag, n in ledger.conn.execute(
        "SELECT json_extract(j.value, '$.flag'), COUNT(DISTINCT p.source_id) FROM products p, "
        "json_each(p.input_flags) j GROUP BY 1 ORDER BY 1")}


#: Meta: the store units every stored snapshot is known to carry (``set_store_units``).
UNITS_EVERYWHERE = "sync.units_everywhere"


def expect_store_units(ledger: Ledger, units: Mapping[str, str]) -> None:
    """Before a sync writes a product with ``units``: forget any other units recorded as
    being on every snapshot, so a sync that dies before ``set_store_units`` leaves the
    ledger to be scanned by the next one. A ledger with no product carries them all."""
    key = dumps(dict(units)) if units else None
    if ledger.get_meta(UNITS_EVERYWHERE) == key:
        return
    empty = ledger.conn.execute("SELECT 1 FROM products LIMIT 1").fetchone() is None
    ledger.set_meta(UNITS_EVERYWHERE, key if empty else None)


def set_store_units(ledger: Ledger, units: Mapping[str, str]) -> int:
    """Write the store's units into every stored snapshot that has others (or none).

    They sit outside the content hash (``product_snapshot.STORE_KEYS``), so an unchanged
    product is not rewritten by sync; this keeps every snapshot's units current. Sync
    writes every snapshot with the units, so once they are everywhere (``UNITS_EVERYWHERE``,
    kept true by ``expect_store_units``) the scan, a JSON parse of every snapshot, is
    skipped.
    """
    if not units:
        return 0
    key = dumps(dict(units))
    if ledger.get_meta(UNITS_EVERYWHERE) == key:
        return 0
    sets = ", ".join(f"'$.{k}', ?" for k in units)
    where = " OR ".join(f"json_extract(snapshot, '$.{k}') IS NOT ?" for k in units)
    args = [*units.values(), *units.values()]
    cur = ledger._write(lambda c: c.execute(
        f"UPDATE products SET snapshot = json_set(snapshot, {sets}) WHERE {where}", args))
    ledger.set_meta(UNITS_EVERYWHERE, key)
    return int(getattr(cur, "rowcount", 0) or 0)
