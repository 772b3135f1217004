"""The store's product as sync snapshots it, so publish compares like with like.

The conflict check is only sound if publish hashes the current product exactly the way sync
hashed it when it recorded the baseline, so this module does not hash anything itself: it
runs sync's own ``build_record`` (same fields, same SEO plugin, same canonical JSON).

A variation's snapshot holds its parent's name (sync reads it with the parent); publish
passes the name sync recorded, so a renamed parent is the parent's change, checked on the
parent, not a conflict on each of its variations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from enrich.missing import Rules
from enrich.product_snapshot import STORE_KEYS, build_record

#: Snapshot keys that are derived from others, or are store settings sync adds (units), and
#: say nothing a person could have changed on the product.
DERIVED = frozenset({"fingerprints", "id"}) | STORE_KEYS


def store_snapshot(product: Mapping[str, Any], rules: Rules, *,
                   parent: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    """(snapshot, content hash) of a product (or, with ``parent``, a variation) read from
    the store in edit context."""
    record = build_record(dict(product), rules, parent=parent)
    return record.snapshot, record.content_hash


def snapshot_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]
                     ) -> list[dict[str, Any]]:
    """Field by field (``seo.meta_description``), what differs between two snapshots."""
    rows: list[dict[str, Any]] = []

    def walk(prefix: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> None:
        for key in sorted(set(a) | set(b)):
            if not prefix and key in DERIVED:
                continue
            x, y = a.get(key), b.get(key)
            if isinstance(x, Mapping) and isinstance(y, Mapping):
                walk(f"{prefix}{key}.", x, y)
            elif x != y:
                rows.append({"field": f"{prefix}{key}", "old": x, "new": y})

    walk("", old or {}, new)
    return rows
