"""Which jobs go to the model first: ``[sync] priority`` tiers, sales within a tier, overrides.

A nightly window that ends early should have drafted the products that sell. So each job
carries a number (``jobs.priority``) and every claim, live or batch, takes the highest
first (``Ledger.claim`` / ``Ledger.due_jobs``, read off an index):

    priority = rank of the product's tier × TIER_SPAN + its total_sales (capped)

Tiers, top first: ``urgent`` (only by ``enrich jobs prioritize``), the ``[sync] priority``
tiers in the order written (a product takes the first whose conditions it meets), then
``rest``. Within a tier, the product that sold more goes first, then the older job.

Why it looks like this:
- The signals (status, stock_status, total_sales) are read by sync from the same page it
  already fetches and stored beside the snapshot, never in it: a sale must not change the
  content hash, which would supersede the job and throw its draft away.
- An override is stored per product in the ledger and applied by sync to every job it
  queues for that product, so a re-sync (of the same data or a changed product) keeps it;
  a variation follows its parent's override unless it has its own.
- Changing the tiers in the config renumbers every open job on the next sync (their
  signals are in the ledger), without asking the store again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from enrich.config import RESERVED_TIERS, PriorityTier, Settings
from enrich.errors import NotFound, UsageError
from enrich.ledger import Ledger
from enrich.ledger.priorities import (
    open_job_signals,
    overrides,
    pending_by_rank,
    products_in_categories,
    products_with_skus,
    set_overrides,
    set_priorities,
)

URGENT, REST = RESERVED_TIERS
#: One tier's share of the number line: sales above this are ranked as equal.
TIER_SPAN = 1_000_000_000
META_PRIORITY = "sync.priority_hash"


class Ranked(Protocol):
    """What a tier is decided from (a sync ``Record`` or a ledger row)."""

    source_id: str
    parent_id: str | None
    status: str | None
    stock_status: str | None
    total_sales: int | None


class Tiers:
    """The tiers in force (config + the ledger's overrides), and the number of each job.

    Sync asks for one number per product read, so the ranks are looked up, not searched.
    """

    def __init__(self, rules: Sequence[PriorityTier],
                 pinned: Mapping[str, str] | None = None) -> None:
        self.rules = tuple(rules)
        self.pinned = dict(pinned or {})
        #: Every tier, top first.
        self.names = [URGENT, *(t.tier for t in self.rules), REST]
        self._ranks = {name: len(self.names) - 1 - i for i, name in enumerate(self.names)}

    @classmethod
    def load(cls, settings: Settings, ledger: Ledger | None = None) -> Tiers:
        return cls(settings.sync.priority, overrides(ledger) if ledger else {})

    def rank(self, name: str) -> int | None:
        return self._ranks.get(name)

    def name_of(self, priority: int) -> str:
        """The tier a job's number says it is in (numbers from an older config: ``rank N``)."""
        rank = max(0, priority) // TIER_SPAN
        names = self.names
        return names[len(names) - 1 - rank] if rank < len(names) else f"rank {rank}"

    def tier_of(self, item: Ranked) -> str:
        if self.pinned:
            for key in (item.source_id, item.parent_id):
                pinned = self.pinned.get(str(key)) if key is not None else None
                if pinned is not None and pinned in self._ranks:
                    return pinned  # a pin naming a tier no longer configured is ignored
        sales = item.total_sales or 0
        for rule in self.rules:
            if ((rule.status is None or item.status in rule.status)
                    and (rule.stock_status is None or item.stock_status in rule.stock_status)
                    and sales >= rule.min_sales):
                return rule.tier
        return REST

    def priority(self, item: Ranked) -> int:
        rank = self._ranks[self.tier_of(item)]
        return rank * TIER_SPAN + min(max(item.total_sales or 0, 0), TIER_SPAN - 1)


def rules_digest(settings: Settings) -> str:
    """Changes when the tiers change; sync renumbers every open job when it does."""
    data = [t.model_dump() for t in settings.sync.priority]
    return hashlib.sha256(json.dumps([TIER_SPAN, data], sort_keys=True).encode()
                          ).hexdigest()[:16]


@dataclass
class _Row:
    source_id: str
    parent_id: str | None
    status: str | None
    stock_status: str | None
    total_sales: int | None


def renumber(ledger: Ledger, tiers: Tiers, source_ids: Sequence[str] | None = None) -> int:
    """Recompute the number of open product jobs (all, or these products and their
    variations) from the signals in the ledger; returns how many jobs changed."""
    changed = 0
    for rows in open_job_signals(ledger, source_ids):
        wanted = {}
        for r in rows:
            item = _Row(r["source_id"], r["parent_id"], r["status"], r["stock_status"],
                        r["total_sales"])
            number = tiers.priority(item)
            if number != r["priority"]:
                wanted[r["source_id"]] = number
        changed += set_priorities(ledger, wanted)
    return changed


# -- enrich jobs prioritize ---------------------------------------------------------------------

@dataclass
class Prioritized:
    """What ``enrich jobs prioritize`` did."""

    tier: str | None  # None: the overrides were cleared
    products: list[str]
    jobs_renumbered: int


def prioritize(ledger: Ledger, settings: Settings, *, skus: Iterable[str] = (),
               categories: Iterable[str] = (), source_ids: Iterable[str] = (),
               tier: str | None = URGENT) -> Prioritized:
    """Pin the products with these SKUs, in these categories, or with these ids to ``tier``
    (``None`` clears their pins, so the [sync] rules decide again), and renumber their open
    jobs now. Nothing is changed when any SKU, category or id matches no synced product."""
    tiers = Tiers.load(settings)
    if tier is not None and tier not in tiers.names:
        raise UsageError(f"no priority tier named {tier!r}",
                         f"Use one of: {', '.join(tiers.names)} (tiers come from "
                         f"[sync] priority in the config).")
    skus, categories, ids = list(skus), list(categories), [str(s) for s in source_ids]
    if not (skus or categories or ids):
        raise UsageError("say which products: --sku, --category or --product",
                         "e.g. `enrich jobs prioritize --sku TSHIRT-RED,TSHIRT-BLUE`.")
    chosen: list[str] = []
    by_sku = products_with_skus(ledger, skus)
    by_category = products_in_categories(ledger, categories)
    missing = [f"SKU {s}" for s in skus if s not in by_sku]
    missing += [f"category {c!r}" for c in categories if c not in by_category]
    for s in ids:
        if ledger.get_product(s) is None:
            missing.append(f"product {s}")
    if missing:
        raise NotFound(f"no synced product matches {', '.join(missing)}; nothing was changed",
                       "Check the spelling, or run `enrich sync` first: only products in the "
                       "ledger can be prioritized.")
    for found in (*by_sku.values(), *by_category.values(), ids):
        chosen.extend(found)
    chosen = list(dict.fromkeys(chosen))
    set_overrides(ledger, chosen, tier)
    renumbered = renumber(ledger, Tiers.load(settings, ledger), chosen)
    return Prioritized(tier, chosen, renumbered)


def pending_by_tier(ledger: Ledger, settings: Settings) -> dict[str, int]:
    """Pending jobs per tier, top first; every configured tier is present, zero or not."""
    tiers = Tiers.load(settings)
    counts = dict.fromkeys(tiers.names, 0)
    for rank, n in sorted(pending_by_rank(ledger, TIER_SPAN).items(), reverse=True):
        name = tiers.name_of(rank * TIER_SPAN)
        counts[name] = counts.get(name, 0) + n
    return counts


__all__ = [
    "REST",
    "TIER_SPAN",
    "URGENT",
    "Prioritized",
    "Tiers",
    "pending_by_tier",
    "prioritize",
    "renumber",
    "rules_digest",
]
