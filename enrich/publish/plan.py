"""Deciding, per approved draft, what publish will do with the store as it is right now.

Why a separate step: the same decision serves the dry run (printed, nothing written) and the
real run (recorded, then sent), so what ``--dry-run`` shows is exactly what a publish would
do at that moment.

The conflict rule: the store's current product is snapshotted the way sync snapshots it and
compared with the baseline (the sync snapshot, or the store state a conflict recorded when
the reviewer re-approved after it). A different content hash means a person changed the
copy; a moved ``date_modified_gmt`` with the same hash means a person saved the product
(perhaps another field, perhaps the same text again). Both are conflicts: enrich never
writes over a product somebody touched after it looked, and lists what changed. One
exception: WooCommerce saves a variable product whenever one of its variations is saved, so
a parent whose date moved to the date enrich's own variation write got (``own_dates``), with
its copy unchanged, is not a conflict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from enrich.errors import InputError
from enrich.ledger.publishes import ApprovedDraft
from enrich.missing import Rules
from enrich.publish import fields as F
from enrich.publish.snapshot import snapshot_changes, store_snapshot
from enrich.woo.validate import check_product_update

ACTIONS = ("write", "unchanged", "conflict", "error")


@dataclass
class PlanItem:
    """What publish does (or did) for one product."""

    job_id: int
    source_id: str
    name: str | None
    action: str  # write | unchanged | conflict | error
    changes: list[dict[str, Any]] = field(default_factory=list)  # {field, old, new}
    reason: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    item: dict[str, Any] = field(default_factory=dict)  # the body to send (no id)
    previous: dict[str, Any] = field(default_factory=dict)  # the store's values, same keys
    store_date: str | None = None
    store_hash: str | None = None
    draft_id: int | None = None
    outcome: str | None = None  # after a real run: written | conflict | error | unchanged
    parent_id: str | None = None  # a variation's parent: the endpoint it is written through
    #: The store's values for every key the draft sets (``previous`` keeps only the changed
    #: ones): for an unchanged item, what the store already holds of enrich's text.
    held: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "source_id": self.source_id, "name": self.name,
                "action": self.action, "outcome": self.outcome, "changes": self.changes,
                "reason": self.reason, "skipped": self.skipped}


def snapshot_parent(draft: ApprovedDraft) -> dict[str, Any] | None:
    """The parent a variation's snapshot is built with: the name sync recorded."""
    if not draft.is_variation:
        return None
    return {"id": int(draft.parent_id) if draft.parent_id else None,
            "name": draft.snapshot.get("parent_name") or ""}


def conflict_of(draft: ApprovedDraft, product: Mapping[str, Any] | None, rules: Rules,
                own_dates: frozenset[str] = frozenset()
                ) -> tuple[str, list[dict[str, Any]]] | None:
    """Why ``product`` (the store's now) may not be written over, or None when it may."""
    if product is None:
        return "the product no longer exists in the store", []
    snapshot, content_hash = store_snapshot(product, rules, parent=snapshot_parent(draft))
    date = product.get("date_modified_gmt")
    if content_hash != draft.baseline_hash:
        changed = snapshot_changes(draft.snapshot, snapshot) if draft.baseline_from == "sync" \
            else []
        names = ", ".join(c["field"] for c in changed) or "its synced fields"
        return f"changed in the store since {draft.baseline_from}: {names}", changed
    if date != draft.baseline_date and date not in own_dates:
        return (f"saved in the store since {draft.baseline_from} (date_modified_gmt "
                f"{draft.baseline_date} -> {date}); the synced fields are the same, "
                "another field may have changed", [{"field": "date_modified_gmt",
                                                    "old": draft.baseline_date,
                                                    "new": date}])
    return None


def plan_item(draft: ApprovedDraft, product: Mapping[str, Any] | None, rules: Rules,
              own_dates: frozenset[str] = frozenset()) -> PlanItem:
    """The decision for one approved draft against the store's current product (or
    variation); ``own_dates``: see the module docstring."""
    plan = PlanItem(job_id=draft.job_id, source_id=draft.source_id, draft_id=draft.draft_id,
                    name=(product or {}).get("name") or draft.name, action="write",
                    parent_id=draft.parent_id)
    if product is not None:
        plan.store_date = product.get("date_modified_gmt")
        plan.store_hash = store_snapshot(product, rules, parent=snapshot_parent(draft))[1]
    if draft.is_variation and not draft.parent_id:
        plan.action = "error"
        plan.reason = (f"variation {draft.source_id} has no parent product in the ledger; "
                       "run `enrich sync` (with sync.variations = true)")
        return plan
    if draft.baseline_hash is None:
        plan.action = "error"
        plan.reason = ("the product was never synced into this ledger, so there is no "
                       "snapshot to check the store against; run `enrich sync`")
        return plan
    synced_with = draft.snapshot.get("seo_plugin", "none")
    if draft.product is not None and synced_with != rules.seo_plugin:
        plan.action = "error"
        plan.reason = (f"store.seo_plugin changed since sync ({synced_with} -> "
                       f"{rules.seo_plugin}); run `enrich sync` so the snapshot and the "
                       "drafts use the same SEO fields")
        return plan
    conflict = conflict_of(draft, product, rules, own_dates)
    if conflict is not None:
        plan.action, (plan.reason, plan.changes) = "conflict", conflict
        return plan
    assert product is not None
    wanted = draft.payload.get("fields")
    try:
        build = F.build_item(draft.source_id, F.effective_fields(draft.fields,
                                                                 draft.edited_fields),
                             seo_plugin=rules.seo_plugin, current=product,
                             wanted=list(wanted) if isinstance(wanted, list) else None,
                             variation=draft.is_variation)
        plan.skipped = build.skipped
        previous = F.values_in(product, build.item)
        plan.held = previous
        plan.item, plan.previous = F.without_unchanged(build.item, previous)
        if plan.item:
            check_product_update(plan.item, f"product {draft.source_id}",
                                 max_field_bytes=rules.max_field_bytes)
    except InputError as exc:
        plan.action, plan.reason = "error", exc.message
        return plan
    if not build.fields:
        plan.action = "error"
        plan.reason = ("the approved draft sets no field enrich can write"
                       + (f" (skipped: {', '.join(sorted(build.skipped))})"
                          if build.skipped else ""))
        return plan
    if not plan.item:
        plan.action = "unchanged"
        plan.reason = "the store already holds the approved text"
        return plan
    plan.changes = F.changes(plan.item, plan.previous)
    return plan
