"""The store's product as sync snapshots it, so publish compares like with like.

The conflict check is only sound if publish hashes the current product exactly the way sync
hashed it when it recorded the baseline; this module is the one bridge to that code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

#: The edit-context fields whose change means "a person edited the copy".
SNAPSHOT_FIELDS = ("name", "description", "short_description", "sku", "status", "type",
                   "meta_data", "images")


def snapshot_of(product: Mapping[str, Any]) -> dict[str, Any]:
    snap: dict[str, Any] = {key: product.get(key) for key in SNAPSHOT_FIELDS}
    snap["meta_data"] = sorted(
        ({"key": m.get("key"), "value": m.get("value")} for m in product.get("meta_data") or []
         if isinstance(m, Mapping)), key=lambda m: str(m["key"]))
    snap["images"] = [{"id": i.get("id"), "alt": i.get("alt")}
                      for i in product.get("images") or [] if isinstance(i, Mapping)]
    return snap


def content_hash(snapshot: Mapping[str, Any]) -> str:
    text = json.dumps(snapshot, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def store_snapshot(product: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """(snapshot, content hash) of a product read from the store in edit context."""
    snap = snapshot_of(product)
    return snap, content_hash(snap)
