"""Job priority as the ledger keeps it: the number on each job, a store owner's overrides.

``enrich.priority`` decides what a job's number is (tiers from ``[sync] priority``, sales
within a tier); this module holds the SQL that reads what it decides from and writes the
result. Claims take jobs in ``priority DESC, id`` order (``Ledger.claim`` / ``due_jobs``), so
changing a waiting job's number is all it takes to move it up or down the queue.

Only jobs not yet written to the store (the statuses a changed input may supersede) are
renumbered: a published job's priority no longer matters, and leaving it alone keeps the
history as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from enrich.ledger.ledger import Ledger, _now, _placeholders
from enrich.ledger.states import SUPERSEDABLE

_OPEN = tuple(s.value for s in SUPERSEDABLE)
_CHUNK = 500


def _chunks(values: Sequence[str], size: int = _CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield list(values[start:start + size])


# -- overrides ------------------------------------------------------------------------------

def overrides(ledger: Ledger) -> dict[str, str]:
    """source id -> tier name, for every product a store owner prioritized by hand."""
    return {r[0]: r[1] for r in ledger.conn.execute(
        "SELECT source_id, tier FROM priority_overrides")}


def set_overrides(ledger: Ledger, source_ids: Iterable[str], tier: str | None) -> int:
    """Pin these products to ``tier`` (``None`` removes their pin); returns rows changed."""
    ids = list(dict.fromkeys(str(s) for s in source_ids))
    if not ids:
        return 0
    now = _now()

    def go(c: Any) -> int:
        before = c.total_changes
        if tier is None:
            for chunk in _chunks(ids):
                c.execute(f"DELETE FROM priority_overrides WHERE source_id IN "
                          f"({_placeholders(chunk)})", chunk)
        else:
            c.executemany(
                "INSERT INTO priority_overrides (source_id, tier, set_at) VALUES (?, ?, ?) "
                "ON CONFLICT (source_id) DO UPDATE SET tier = excluded.tier, "
                "set_at = excluded.set_at", [(s, tier, now) for s in ids])
        return int(c.total_changes - before)
    return int(ledger._write(go))


# -- finding products -----------------------------------------------------------------------

def products_with_skus(ledger: Ledger, skus: Sequence[str]) -> dict[str, list[str]]:
    """sku -> source ids of the synced products (or variations) carrying it."""
    found: dict[str, list[str]] = {}
    for chunk in _chunks(list(dict.fromkeys(skus))):
        for sku, source_id in ledger.conn.execute(
                f"SELECT sku, source_id FROM products WHERE sku IN ({_placeholders(chunk)}) "
                f"ORDER BY source_id", chunk):
            found.setdefault(sku, []).append(source_id)
    return found


def products_in_categories(ledger: Ledger, names: Sequence[str]) -> dict[str, list[str]]:
    """category name (as given) -> source ids of synced products in it, ignoring case."""
    wanted = {name.casefold(): name for name in names}
    found: dict[str, list[str]] = {}
    rows = ledger.conn.execute(
        "SELECT DISTINCT c.value, p.source_id FROM products p, "
        "json_each(p.snapshot, '$.categories') c ORDER BY p.source_id")
    for category, source_id in rows:
        name = wanted.get(str(category).casefold())
        if name is not None:
            found.setdefault(name, []).append(source_id)
    return found


# -- renumbering ----------------------------------------------------------------------------

def open_job_signals(ledger: Ledger, source_ids: Sequence[str] | None = None
                     ) -> Iterator[list[dict[str, Any]]]:
    """The product jobs not yet published, with what their priority is computed from.

    Rows: ``id, source_id, parent_id, status, stock_status, total_sales, priority`` (the
    job's current number; ``status`` is the product's). ``source_ids`` limits it to those
    products and their variations. In chunks, each a fresh short read (keyset on the job
    id), so the caller may write between them.
    """
    sql = (f"SELECT j.id, j.source_id, p.parent_id, p.status, p.stock_status, p.total_sales, "
           f"j.priority FROM jobs j JOIN products p ON p.source_id = j.source_id "
           f"WHERE j.kind = 'product' AND j.status IN ({_placeholders(_OPEN)}) AND j.id > ?")
    groups: list[tuple[str, list[str]]] = [("", [])]
    if source_ids is not None:
        ids = list(dict.fromkeys(str(s) for s in source_ids))
        groups = [(f" AND (p.source_id IN ({_placeholders(chunk)}) OR p.parent_id IN "
                   f"({_placeholders(chunk)}))", chunk + chunk) for chunk in _chunks(ids)]
    for where, args in groups:
        last = -1
        while True:
            rows = ledger.conn.execute(sql + where + " ORDER BY j.id LIMIT ?",
                                       (*_OPEN, last, *args, _CHUNK)).fetchall()
            if not rows:
                break
            last = rows[-1][0]
            yield [dict(r) for r in rows]


def set_priorities(ledger: Ledger, priorities: Mapping[str, int]) -> int:
    """Give the open jobs of each product (source id -> number) that priority; returns jobs
    renumbered. Jobs already at that number are not written."""
    if not priorities:
        return 0

    def go(c: Any) -> int:
        before = c.total_changes
        c.executemany(
            f"UPDATE jobs SET priority = ? WHERE kind = 'product' AND source_id = ? "
            f"AND priority != ? AND status IN ({_placeholders(_OPEN)})",
            [(p, s, p, *_OPEN) for s, p in priorities.items()])
        return int(c.total_changes - before)
    return int(ledger._write(go))


def pending_by_rank(ledger: Ledger, span: int) -> dict[int, int]:
    """Pending jobs counted by ``priority // span`` (the tier rank), every kind."""
    return {int(rank): n for rank, n in ledger.conn.execute(
        "SELECT priority / ? AS rank, COUNT(*) FROM jobs WHERE status = 'pending' "
        "GROUP BY rank", (span,))}


__all__ = [
    "open_job_signals",
    "overrides",
    "pending_by_rank",
    "products_in_categories",
    "products_with_skus",
    "set_overrides",
    "set_priorities",
]
