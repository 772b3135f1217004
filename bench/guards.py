"""Cost of prompts and guards per product, and of the near-duplicate index as it grows.

    uv run python bench/guards.py [INDEX_SIZE] [LEDGER_DRAFTS]

Uses the catalogs in fixtures/products (WooCommerce, Magento gear, Saleor samples) for prompts
and drafts, random 80-word texts to fill the duplicate index, and a real ledger file for
``DuplicateIndex.from_ledger``. Results are recorded in docs/guards.md.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from guard_helpers import magento_gear_products, saleor_products, woo_products

from enrich.guards.draft import DuplicateIndex, check_draft
from enrich.ledger import Attempt, DraftRecord, EnqueueItem, Ledger
from enrich.prompts import PromptBook

FIELDS = ["description", "short_description", "seo_title", "meta_description"]


def main() -> None:
    index_size = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    ledger_drafts = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    catalog = woo_products() + magento_gear_products() + saleor_products()
    rng = random.Random(1)

    book = PromptBook()
    started = time.perf_counter()
    for _ in range(10):
        for product in catalog:
            book.render_product(product, FIELDS)
    per = (time.perf_counter() - started) / (10 * len(catalog))
    print(f"render_product: {per * 1e6:.0f} us per product")

    drafts = []
    for product in catalog:
        words = " ".join(str(v) for v in (product.get("name"), product.get("description"))
                         if v).split(" ")
        drafts.append((product, {
            "description": f"<p>{' '.join(words[:120])}</p>",
            "short_description": " ".join(words[:30]),
            "seo_title": product["name"][:60], "meta_description": " ".join(words[:25])}))
    started = time.perf_counter()
    for _ in range(10):
        for product, draft in drafts:
            check_draft(draft, product)
    per = (time.perf_counter() - started) / (10 * len(drafts))
    print(f"check_draft without a duplicate index: {per * 1e3:.2f} ms per draft")

    vocabulary = [f"w{i}" for i in range(20_000)]
    texts = [" ".join(rng.choice(vocabulary) for _ in range(80)) for _ in range(index_size)]
    with DuplicateIndex() as index:
        started = time.perf_counter()
        for i, text in enumerate(texts):
            index.add(i, str(i), text)
        per = (time.perf_counter() - started) / index_size
        print(f"DuplicateIndex.add: {per * 1e3:.3f} ms per text ({index_size} texts)")
        probes = [" ".join(rng.choice(vocabulary) for _ in range(80)) for _ in range(500)]
        started = time.perf_counter()
        for probe in probes:
            index.check(probe, source_id="x")
        per = (time.perf_counter() - started) / len(probes)
        print(f"DuplicateIndex.check at {index_size} texts: {per * 1e3:.3f} ms")
        started = time.perf_counter()
        for _ in range(5):
            for product, draft in drafts:
                check_draft(draft, product, duplicates=index)
        per = (time.perf_counter() - started) / (5 * len(drafts))
        print(f"check_draft with a {index_size}-text index: {per * 1e3:.2f} ms per draft")

    with tempfile.TemporaryDirectory() as folder, Ledger(Path(folder) / "bench.db") as ledger:
        ledger.enqueue_many(EnqueueItem("product", str(i), f"h{i}")
                            for i in range(ledger_drafts))
        while jobs := ledger.claim("bench", 500):
            for job in jobs:
                ledger.complete(job.id, "bench", DraftRecord(fields={
                    "description": texts[job.id % len(texts)],
                    "short_description": texts[(job.id * 7) % len(texts)][:200]}),
                    Attempt(started_at=time.time(), outcome="ok"))
        started = time.perf_counter()
        with DuplicateIndex.from_ledger(ledger) as index:
            took = time.perf_counter() - started
            print(f"DuplicateIndex.from_ledger: {ledger_drafts} drafts ({index.size} texts) "
                  f"in {took:.1f} s = {took / ledger_drafts * 1e3:.3f} ms per draft")


if __name__ == "__main__":
    main()
