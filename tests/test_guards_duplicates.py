"""Near-duplicate copy across a catalog's drafts: real Magento descriptions, a real ledger."""

from __future__ import annotations

import random
import time
from pathlib import Path

from enrich.guards.draft import DuplicateIndex, check_draft
from enrich.guards.duplicates import shingles, signature, similarity
from enrich.guards.text import plain_text
from enrich.ledger import Attempt, DraftRecord, EnqueueItem, JobStatus, Ledger
from tests.guard_helpers import magento_gear_products, woo_product

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
    strict = DuplicateIndex(threshold=1.0, short_threshold=1.0)  # a 19-word text is short
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
        index._insert([(i, str(i), "description", index._eligible(t))  # type: ignore[misc]
                       for i, t in enumerate(texts[start:start + 2500], start)])
    probe = " ".join(rng.choice(vocabulary) for _ in range(60))
    started = time.perf_counter()
    for _ in range(200):
        assert index.check(probe, source_id="x") is None
    per_check = (time.perf_counter() - started) / 200
    assert per_check < 0.005, per_check
    assert index.check(texts[123], source_id="x").source_id == "123"


def _offline_drafts() -> list[tuple[str, str]]:
    """(source id, description) of the offline writer's drafts of the Magento clothing
    catalog: variants differ by a colour or a size, so many pairs sit at 0.6-0.95."""
    from enrich.prompts import output_model
    from enrich.providers.offline import OfflineProvider
    from tests.guard_helpers import magento_configurable_products

    schema = output_model(["description"]).model_json_schema()
    writer = OfflineProvider()
    return [(p["sku"], writer.write(schema, p)["description"])
            for p in magento_configurable_products()[:300]]


def test_matches_report_the_exact_jaccard_and_miss_none_over_the_threshold() -> None:
    drafts = _offline_drafts()
    index = DuplicateIndex()
    grams = [shingles(text) for _sku, text in drafts]
    flagged = 0
    for i, (sku, text) in enumerate(drafts):
        if i:
            match = index.check(text, source_id=sku)
            exact = [(len(grams[i] & grams[j]) / len(grams[i] | grams[j]), drafts[j][0])
                     for j in range(i)]
            best = max(score for score, _src in exact)
            if best >= 0.8:  # every text over the threshold is found (recall 1 here)...
                assert match is not None, (sku, best)
            if match is not None:  # ...with its true similarity, not an estimate
                flagged += 1
                truth = dict((src, score) for score, src in exact)[match.source_id]
                assert abs(match.similarity - truth) < 1e-9 and truth >= 0.8
                assert match.similarity == best
        index.add(None, sku, text)
    assert flagged > 40  # variants of one parent: the pairs the old estimate missed


def test_short_texts_have_their_own_threshold() -> None:
    index = DuplicateIndex()
    # 18 words; the copy differs in one phrase: 3-shingle Jaccard 0.62 (a short near-copy).
    first = ("Step into summer with Saleor. Every time your head goes down, you see these "
             "beauties, and your mood bounces right up.")
    second = ("Step into summer with style. Every time your head goes down, you see these "
              "beauties, and your mood bounces right up.")
    index.add(None, "a", first)
    match = index.check(second, source_id="b")
    exact = len(shingles(first) & shingles(second)) / len(shingles(first) | shingles(second))
    assert 0.6 <= exact < 0.8
    assert match is not None and match.similarity == exact
    strict = DuplicateIndex(short_threshold=0.8)
    strict.add(None, "a", first)
    assert strict.check(second, source_id="b") is None
