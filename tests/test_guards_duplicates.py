"""Near-duplicate copy across a catalog's drafts: real Magento descriptions, a real ledger."""

from __future__ import annotations

import random
import time
from pathlib import Path

from guard_helpers import magento_gear_products, woo_product

from enrich.guards import DuplicateIndex, check_draft
from enrich.guards.duplicates import shingles, signature, similarity
from enrich.guards.text import plain_text
from enrich.ledger import Attempt, DraftRecord, EnqueueItem, JobStatus, Ledger

GEAR = magento_gear_products()


def _jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def _edit(text: str, rng: random.Random, words: int) -> str:
    """Change ``words`` scattered words of ``text`` (a light rewrite of copied copy)."""
    tokens = plain_text(text).split(" ")
    for i in rng.sample(range(len(tokens)), words):
        tokens[i] = rng.choice(["great", "handy", "sturdy", "light", "simple"])
    return " ".join(tokens)


def test_near_duplicate_of_another_products_draft_is_flagged() -> None:
    index = DuplicateIndex()
    for product in GEAR:
        assert index.add(None, product["id"], product["description"])
    rng = random.Random(3)
    bag = next(p for p in GEAR if "Joust Duffle Bag" in p["name"])
    copied = _edit(bag["description"], rng, 1)
    assert _jaccard(copied, bag["description"]) >= 0.8
    other = dict(woo_product("Hoodie"), id=9001)
    result = check_draft({"description": f"<p>{copied}</p>"}, other, duplicates=index)
    flags = [f for f in result.flags if f.guard == "duplicate"]
    assert len(flags) == 1 and flags[0].field == "description"
    assert f"drafted for product {bag['id']}" in flags[0].detail
    # Its own earlier draft is not a duplicate of itself (a re-draft after a change).
    own = index.check(copied, source_id=bag["id"])
    assert own is None or own.source_id != bag["id"]


def test_distinct_descriptions_are_not_flagged() -> None:
    index = DuplicateIndex()
    for product in GEAR[:30]:
        index.add(None, product["id"], product["description"])
    for product in GEAR[30:]:
        match = index.check(product["description"], source_id=product["id"])
        if match is not None:  # real sample data does repeat some copy: it must be real
            twin = next(p for p in GEAR if p["id"] == match.source_id)
            assert _jaccard(twin["description"], product["description"]) > 0.6
    unrelated = 0
    for product in GEAR[30:]:
        if index.check(product["description"], source_id=product["id"]) is None:
            unrelated += 1
    assert unrelated >= 10


def test_estimated_similarity_tracks_true_jaccard() -> None:
    rng = random.Random(11)
    errors = []
    for product in GEAR[:20]:
        base = plain_text(product["description"])
        words = len(base.split(" "))
        for share in (0.02, 0.1, 0.3):
            edited = _edit(base, rng, max(1, int(words * share)))
            a, b = signature(base), signature(edited)
            assert a is not None and b is not None
            errors.append(abs(similarity(a, b) - _jaccard(base, edited)))
    assert sum(errors) / len(errors) < 0.08


def test_short_texts_are_not_compared() -> None:
    index = DuplicateIndex(min_words=8)
    assert not index.add(1, "a", "A blue hoodie.")
    assert index.check("A blue hoodie.", source_id="b") is None
    assert index.size == 0


def test_short_description_is_checked_too_and_threshold_is_respected() -> None:
    text = ("Soft and warm hoodie with a kangaroo pocket, a lined hood and ribbed cuffs, "
            "made for cool evenings outdoors.")
    strict = DuplicateIndex(threshold=1.0)
    strict.add(7, "100", text)
    product = dict(woo_product("Hoodie"), id=200)
    flags = check_draft({"short_description": f"<p>{text}</p>"}, product, duplicates=strict).flags
    assert [(f.guard, f.field) for f in flags] == [("duplicate", "short_description")]
    assert "100% the same as the description drafted for product 100 (job 7)" in flags[0].detail
    changed = text.replace("cool evenings outdoors", "long walks in the rain")
    assert check_draft({"short_description": changed}, product, duplicates=strict).flags == []


def _draft(ledger: Ledger, source_id: str, description: str) -> int:
    ledger.enqueue(EnqueueItem(kind="product", source_id=source_id, input_hash="h" + source_id))
    job = ledger.claim("test-worker", 1)[0]
    ledger.complete(job.id, "test-worker", DraftRecord(fields={"description": description}),
                    Attempt(started_at=time.time(), outcome="ok"))
    return job.id


def test_index_from_ledger_uses_live_drafts_and_edits(db_path: Path) -> None:
    with Ledger(db_path) as ledger:
        kept = _draft(ledger, "1", GEAR[0]["description"])
        rejected = _draft(ledger, "2", GEAR[1]["description"])
        edited = _draft(ledger, "3", GEAR[2]["description"])
        ledger.review(rejected, JobStatus.REJECTED)
        ledger.review(edited, JobStatus.APPROVED,
                      edited_fields={"description": GEAR[3]["description"]})
        index = DuplicateIndex.from_ledger(ledger)
    assert index.size == 2
    hit = index.check(GEAR[0]["description"], source_id="99")
    assert hit is not None and hit.job_id == kept and hit.similarity == 1.0
    assert index.check(GEAR[1]["description"], source_id="99") is None  # rejected
    assert index.check(GEAR[2]["description"], source_id="99") is None  # replaced by edit
    assert index.check(GEAR[3]["description"], source_id="99").job_id == edited


def test_index_check_cost_does_not_grow_with_the_catalog() -> None:
    """LSH: a check looks at a few buckets, not every draft (bounded time, not a benchmark)."""
    rng = random.Random(5)
    vocabulary = [f"word{i}" for i in range(5000)]
    index = DuplicateIndex()
    texts = [" ".join(rng.choice(vocabulary) for _ in range(60)) for _ in range(10_000)]
    for start in range(0, len(texts), 2500):
        index._insert([(i, str(i), "description", signature(t))  # type: ignore[misc]
                       for i, t in enumerate(texts[start:start + 2500], start)])
    probe = " ".join(rng.choice(vocabulary) for _ in range(60))
    started = time.perf_counter()
    for _ in range(200):
        assert index.check(probe, source_id="x") is None
    per_check = (time.perf_counter() - started) / 200
    assert per_check < 0.005, per_check
    assert index.check(texts[123], source_id="x").source_id == "123"
