"""Drafts for the review tests, made through the real ledger API from real sample products.

Products come from WooCommerce's own sample catalog (the CSV in fixtures/products), turned
into the REST shape sync stores; drafts are written by a claim + complete like the worker's.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import re
from typing import Any

from enrich.guards.draft import check_draft
from enrich.ledger import Attempt, DraftRecord, EnqueueItem, Ledger
from tests.paths import WOO_SAMPLE_CSV as SAMPLE_CSV

SCRIPT_NAME = "<script>alert(1)</script>"


def sample_rows() -> list[dict[str, str]]:
    with SAMPLE_CSV.open(encoding="utf-8-sig", newline="") as fh:
        return [row for row in csv.DictReader(fh) if row["Type"] != "variation"]


def snapshot_of(row: dict[str, str]) -> dict[str, Any]:
    """A sample CSV row in the shape sync stores (names as strings, SEO text under seo)."""
    attributes = []
    for n in (1, 2):
        name = row.get(f"Attribute {n} name")
        if name:
            attributes.append({"name": name, "options": [
                v.strip() for v in row[f"Attribute {n} value(s)"].split(",") if v.strip()]})
    return {
        "id": int(row["ID"]), "name": row["Name"], "type": row["Type"], "sku": row["SKU"],
        "status": "publish" if row["Published"] == "1" else "draft",
        "description": row["Description"], "short_description": row["Short description"],
        "regular_price": row["Regular price"], "sale_price": row["Sale price"],
        "categories": [c.strip() for c in row["Categories"].split(",") if c.strip()],
        "tags": [t.strip() for t in row["Tags"].split(",") if t.strip()],
        "weight": row["Weight (lbs)"], "attributes": attributes, "images": [],
        "seo": {"seo_title": "", "meta_description": ""},
    }


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.unescape(text))).strip()


def draft_fields(snap: dict[str, Any]) -> dict[str, str]:
    """Copy written from the product's own data (what the offline provider would do)."""
    name = snap["name"]
    category = snap["categories"][0].split(">")[-1].strip() if snap["categories"] else "Shop"
    attrs = "; ".join(f"{a['name']}: {', '.join(a['options'])}" for a in snap["attributes"])
    facts = _plain(snap["short_description"]).rstrip(".") or f"A {category.lower()} item"
    meta = f"{name}: {facts}. {attrs or 'In stock and ready to ship'}. Order online today."
    if len(meta) < 120:
        meta += " Simple returns and friendly support from our small team."
    return {
        "seo_title": f"{name} | {category}",
        "meta_description": meta[:158].rstrip(),
        "short_description": f"<p>{name}. {facts}.</p>",
    }


def seed_drafts(ledger: Ledger, snapshots: list[dict[str, Any]], *,
                flag_every: int = 3) -> list[int]:
    """Sync-like upsert + enqueue, then claim and complete each job; returns job ids.

    Flags come from the real guards, as the worker records them; every ``flag_every``-th
    draft claims a weight the product data does not have.
    """
    products, items = [], []
    for snap in snapshots:
        content = json.dumps(snap, sort_keys=True)
        digest = hashlib.sha256(content.encode()).hexdigest()
        products.append({"source_id": str(snap["id"]), "type": snap["type"],
                         "sku": snap["sku"], "name": snap["name"], "status": snap["status"],
                         "snapshot": snap, "content_hash": digest, "state": "needs_work",
                         "missing": ["seo_title", "meta_description", "short_description"]})
        items.append(EnqueueItem(kind="product", source_id=str(snap["id"]), input_hash=digest,
                                 payload={"fields": ["seo_title", "meta_description",
                                                     "short_description"],
                                          "why": {"seo_title": "empty",
                                                  "meta_description": "empty",
                                                  "short_description": "placeholder text"},
                                          "type": snap["type"], "parent_id": None}))
    ledger.upsert_products(products)
    ledger.enqueue_many(items)
    jobs = ledger.claim("review-test", limit=len(items))
    assert len(jobs) == len(items)
    by_source = {str(s["id"]): s for s in snapshots}
    for n, job in enumerate(jobs):
        snap = by_source[job.source_id]
        fields = draft_fields(snap)
        if flag_every and n % flag_every == 1:
            # A claim the data does not support, as a model might invent: the guards flag it.
            fields["meta_description"] = fields["meta_description"][:130] + " Only 250 g."
        checked = check_draft(fields, snap, expected=list(fields))
        fields, flags = checked.fields, checked.flag_dicts()
        ledger.complete(job.id, "review-test", DraftRecord(
            fields=fields, template_name="product_copy.j2", template_hash="3f9a1c2b7d4e5f60",
            provider="offline", model="offline-v1", flags=flags),
            Attempt(started_at=0.0, outcome="flagged" if flags else "ok"))
    return [job.id for job in jobs]


def seed_sample_catalog(ledger: Ledger, *, script_name: bool = False,
                        limit: int | None = None) -> list[int]:
    """Every parent product of the sample CSV as a drafted job (one renamed to a script)."""
    snaps = [snapshot_of(row) for row in sample_rows()][:limit]
    if script_name:
        snaps[0]["name"] = SCRIPT_NAME
        snaps[0]["short_description"] = "<img src=x onerror=alert(2)> & more </script>"
    return seed_drafts(ledger, snaps)
