"""The review page at catalog scale: open and filter 1,000 and 10,000 drafts in Chromium.

    uv run python bench/review.py [--drafts 1000 10000] [--chromium /usr/bin/chromium]
                                  [--rounds 3] [--keep DIR]

Drafts are written from the real catalogs in fixtures/products (WooCommerce sample, Magento
gear, Saleor), repeated with new ids up to the count, through the real ledger API and the real
guards (about a third are flagged). Half the descriptions are edits of the store's text, half
are rewritten, as a model does. Then ``review export`` writes the page and Debian's Chromium
(through Playwright) opens it from disk. For each size it prints the medians over --rounds:

- export: seconds to build and write the page, and its size;
- first paint and ready: from navigation start to the first contentful paint and to the
  page's ``enrich-review-ready`` mark (list, counts and the first draft's detail shown);
- flag / category / search filter: from the change to the next painted frame (search
  includes the page's 150 ms typing pause);
- next draft (``j``) and bulk approve of the unflagged drafts shown.

Target: ready and every filter under 2 s at 10,000 drafts. Bounded: one export and --rounds
page loads per size, then it stops.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from guard_helpers import magento_gear_products, saleor_products, woo_products
from playwright.sync_api import Page, sync_playwright

from enrich.guards.draft import check_draft
from enrich.guards.text import plain_text
from enrich.ledger import Attempt, DraftRecord, EnqueueItem, Ledger
from enrich.review.export import export_review

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
FIELDS = ["description", "short_description", "seo_title", "meta_description"]


def catalog() -> list[dict[str, Any]]:
    return woo_products() + magento_gear_products() + saleor_products()


def draft_for(product: dict[str, Any], n: int) -> dict[str, str]:
    """Copy as a writer would make it: even n edit the store's text, odd n rewrite it."""
    name = str(product["name"])
    category = (product.get("categories") or [{"name": "Shop"}])[0]["name"]
    facts = plain_text(str(product.get("short_description") or product.get("description")
                           or "")) or f"A {category.lower()} item"
    store = str(product.get("description") or "")
    if n % 2 == 0 and store:
        description = store.replace("</p>", " Made to last, easy to care for.</p>", 1)
        if description == store:
            description = store + " Made to last, easy to care for."
    else:
        description = (f"<p>{name} is a {category.lower()} chosen for everyday use.</p>"
                       f"<ul><li>{facts[:120]}</li><li>Category: {category}</li></ul>")
    meta = f"{name}: {facts[:100]}. Browse the {category.lower()} range and order online."
    if n % 3 == 1:
        meta = meta[:120] + " Only 250 g."  # a claim the data does not hold: grounding flags it
    return {"description": description, "short_description": f"<p>{name}. {facts[:150]}</p>",
            "seo_title": f"{name} | {category}"[:60], "meta_description": meta[:160]}


def seed(ledger: Ledger, count: int) -> None:
    base = catalog()
    products, items, snaps = [], [], {}
    for n in range(count):
        product = dict(base[n % len(base)])
        product["id"] = 100_000 + n
        product["sku"] = f"{product.get('sku') or 'sku'}-{n}"
        snaps[str(product["id"])] = product
        digest = hashlib.sha256(json.dumps(product, sort_keys=True).encode()).hexdigest()
        products.append({"source_id": str(product["id"]), "type": "simple",
                         "sku": product["sku"], "name": product["name"], "status": "publish",
                         "snapshot": product, "content_hash": digest, "state": "needs_work",
                         "missing": FIELDS})
        items.append(EnqueueItem(kind="product", source_id=str(product["id"]),
                                 input_hash=digest,
                                 payload={"fields": FIELDS, "type": "simple",
                                          "parent_id": None}))
    ledger.upsert_products(products)
    ledger.enqueue_many(items)
    jobs = ledger.claim("bench", limit=count)
    for n, job in enumerate(jobs):
        snap = snaps[job.source_id]
        checked = check_draft(draft_for(snap, n), snap, expected=FIELDS)
        ledger.complete(job.id, "bench", DraftRecord(
            fields=checked.fields, template_name="product_copy.j2", template_hash="0" * 16,
            provider="offline", model="offline-v1", flags=checked.flag_dicts()),
            Attempt(started_at=0.0, outcome="flagged" if checked.flags else "ok"))


_TIMED_CHANGE = """async ([id, value]) => {
  const box = document.getElementById(id);
  const t0 = performance.now();
  box.value = value;
  box.dispatchEvent(new Event(id === 'search' ? 'input' : 'change'));
  if (id === 'search') await new Promise(done => {
    const seen = document.getElementById('showing').textContent;
    const watch = new MutationObserver(() => { watch.disconnect(); done(); });
    watch.observe(document.getElementById('showing'), {childList: true, characterData: true,
                                                       subtree: true});
    setTimeout(() => { watch.disconnect(); done(); }, 5000);
  });
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return [performance.now() - t0, document.getElementById('showing').textContent];
}"""

_TIMED_KEY = """async () => {
  const t0 = performance.now();
  document.dispatchEvent(new KeyboardEvent('keydown', {key: 'j', bubbles: true}));
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return performance.now() - t0;
}"""

_TIMED_BULK = """async () => {
  const t0 = performance.now();
  document.getElementById('bulk-approve-clean').click();
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return [performance.now() - t0, document.getElementById('counts').innerText];
}"""


def measure(page: Page, url: str) -> dict[str, float]:
    page.goto(url, wait_until="domcontentloaded", timeout=120_000)
    page.wait_for_selector("body[data-ready='1']", timeout=120_000)
    paint = page.evaluate("() => (performance.getEntriesByName('first-contentful-paint')[0]"
                          " || {startTime: NaN}).startTime")
    ready = page.evaluate("() => performance.getEntriesByName('enrich-review-ready')[0]"
                          ".startTime")
    out = {"first paint": paint / 1000, "ready": ready / 1000}
    category = page.evaluate("() => document.getElementById('f-cat').options[1].value")
    for label, args in (("flag filter", ["f-flag", "flagged"]),
                        ("flag filter off", ["f-flag", ""]),
                        ("category filter", ["f-cat", category]),
                        ("category filter off", ["f-cat", ""]),
                        ("search", ["search", "hoodie"])):
        took, showing = page.evaluate(_TIMED_CHANGE, args)
        assert showing or label.endswith("off"), f"{label}: the filter showed nothing"
        out[label] = took / 1000
    page.evaluate("() => { const s = document.getElementById('search'); s.value = '';"
                  " s.dispatchEvent(new Event('input')); }")
    page.wait_for_timeout(400)
    out["next draft (j)"] = page.evaluate(_TIMED_KEY) / 1000
    took, counts = page.evaluate(_TIMED_BULK)
    assert "approved" in counts
    out["bulk approve unflagged"] = took / 1000
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drafts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the ledgers and pages in this folder")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-review-"))
    work.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=ARGS)
        for count in args.drafts:
            db = work / f"review-{count}.db"
            for old in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
                old.unlink(missing_ok=True)
            ledger = Ledger(db)
            started = time.perf_counter()
            seed(ledger, count)
            seeded = time.perf_counter() - started
            out = work / f"review-{count}.html"
            started = time.perf_counter()
            result = export_review(ledger, out)
            exported = time.perf_counter() - started
            flagged = sum(1 for i in json.loads(result.html.split(
                '<script type="application/json" id="review-data">', 1)[1].split(
                "</script>", 1)[0])["items"] if i["flags"])
            ledger.close()
            rounds: list[dict[str, float]] = []
            for _ in range(args.rounds):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.on("dialog", lambda d: d.accept())
                rounds.append(measure(page, out.as_uri()))
                assert not errors, errors
                context.close()
            print(f"\n{count:,} drafts ({flagged:,} flagged): seeded in {seeded:.1f} s, "
                  f"export {exported:.2f} s, {out.stat().st_size / 1e6:.1f} MB")
            for key in rounds[0]:
                values = [r[key] for r in rounds]
                print(f"  {key:<24} median {statistics.median(values):6.3f} s   "
                      f"(max {max(values):.3f} s over {len(values)} rounds)")
        browser.close()


if __name__ == "__main__":
    main()
