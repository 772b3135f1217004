"""A stratified sample of drafts for the sample-first spot check.

Before approving a night's drafts in bulk, a reviewer reads a few of each kind: every
(category, flags) stratum gets at least one draft when the sample is big enough, and the
rest is shared in proportion to the strata's sizes. The pick is seeded, so the same ledger
and seed give the same sample (two reviewers can discuss "the sample").
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from enrich.review.queries import ReviewItem


def stratum(item: ReviewItem) -> tuple[str, str]:
    """(top category, sorted guard names or 'clean')."""
    cats = item.categories
    category = cats[0].split(">")[0].strip() if cats else "(no category)"
    guards = sorted({str(f.get("guard", "?")) for f in item.flags})
    return category, "+".join(guards) if guards else "clean"


def stratified_sample(items: Sequence[ReviewItem], n: int, *, seed: int = 0) -> list[ReviewItem]:
    """Up to ``n`` items covering as many strata as possible; returned in job id order."""
    if n <= 0:
        raise ValueError("sample size must be at least 1")
    if n >= len(items):
        return sorted(items, key=lambda i: i.job_id)
    rng = random.Random(seed)
    strata: dict[tuple[str, str], list[ReviewItem]] = {}
    for item in sorted(items, key=lambda i: i.job_id):
        strata.setdefault(stratum(item), []).append(item)
    for members in strata.values():
        rng.shuffle(members)
    # Largest strata first; ties broken by name so the order does not depend on the input.
    order = sorted(strata, key=lambda k: (-len(strata[k]), k))
    taken: dict[tuple[str, str], int] = dict.fromkeys(order, 0)
    for key in order[:n]:
        taken[key] = 1
    left = n - sum(taken.values())
    if left > 0:
        spare = {k: len(strata[k]) - taken[k] for k in order}
        total_spare = sum(spare.values())
        shares = {k: left * spare[k] / total_spare for k in order}
        for k in order:
            taken[k] += int(shares[k])
        remainder = n - sum(taken.values())
        by_fraction = sorted(order, key=lambda k: (-(shares[k] - int(shares[k])), order.index(k)))
        for k in by_fraction:
            if remainder <= 0:
                break
            if taken[k] < len(strata[k]):
                taken[k] += 1
                remainder -= 1
    picked = [item for k in order for item in strata[k][:taken[k]]]
    return sorted(picked, key=lambda i: i.job_id)
