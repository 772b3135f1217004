"""The ledger reads sync decides with (``enrich.ledger.products``), on a real SQLite ledger.

test_sync.py runs them through whole syncs; these pin down each query's answer on rows
chosen to sit on either side of its conditions, so a change to the SQL shows here first.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from enrich.ledger import EnqueueItem, JobStatus, Ledger
from enrich.ledger.codec import dumps
from enrich.ledger.inputs import mark_duplicate_skus, product_input_flags
from enrich.ledger.products import (
    count_by_state,
    open_product_jobs,
    product_states,
    products_boilerplate_may_flip,
    shared_fingerprints,
    valid_products,
)
from enrich.ledger.scratch import scratch_copy


def row(source_id: str, *, fingerprints: dict[str, str], missing: list[str] | None = None,
        state: str = "needs_work") -> dict[str, Any]:
    return {"source_id": source_id, "snapshot": {"id": int(source_id),
                                                 "fingerprints": fingerprints},
            "content_hash": f"h{source_id}", "state": state, "missing": missing,
            "reason": None if state != "invalid" else "bad field"}


def seed(ledger: Ledger) -> None:
    ledger.upsert_products([
        row("1", fingerprints={"description": "aaa"}, missing=[]),               # enters
        row("2", fingerprints={"description": "bbb"}, missing=["description"]),  # leaves
        row("3", fingerprints={"description": "aaa"}, missing=["description"]),  # already
        row("4", fingerprints={"seo_title": "aaa"}, missing=[]),  # field not checked
        row("5", fingerprints={"description": "aaa"}, state="invalid"),
        row("6", fingerprints={"short_description": "bbb"}, missing=[], state="complete"),
    ])


def ids(chunks: Any) -> list[list[str]]:
    return [[r["source_id"] for r in chunk] for chunk in chunks]


def test_boilerplate_queries_count_valid_products_and_find_the_ones_that_may_flip(
        ledger: Ledger) -> None:
    seed(ledger)
    # aaa is on 1, 3, 4 (and the invalid 5, which does not count); bbb on 2 and 6.
    assert shared_fingerprints(ledger, 3) == frozenset({"aaa"})
    assert shared_fingerprints(ledger, 2) == frozenset({"aaa", "bbb"})
    assert shared_fingerprints(ledger, 4) == frozenset()
    flips = products_boilerplate_may_flip(ledger, ["description", "short_description"],
                                          entering={"aaa"}, leaving={"bbb"}, chunk=1)
    assert ids(flips) == [["1"], ["2"]]
    assert ids(products_boilerplate_may_flip(ledger, ["description"], entering=set(),
                                             leaving=set())) == []
    every = list(valid_products(ledger, chunk=4))
    assert ids(every) == [["1", "2", "3", "4"], ["6"]]
    first = every[0][1]
    assert first["snapshot"] == {"id": 2, "fingerprints": {"description": "bbb"}}
    assert first["missing"] == ["description"] and first["content_hash"] == "h2"


def test_states_and_open_jobs_of_products(ledger: Ledger) -> None:
    seed(ledger)
    assert count_by_state(ledger) == {"needs_work": 4, "invalid": 1, "complete": 1}
    states = product_states(ledger, ["1", "2", "404"])
    assert set(states) == {"1", "2"}
    assert states["2"].missing == ("description",) and states["1"].missing == ()
    assert states["1"].content_hash == "h1" and product_states(ledger, []) == {}
    ledger.enqueue_many([EnqueueItem("product", "1", "h1"), EnqueueItem("product", "2", "h2")])
    ledger.enqueue_many([EnqueueItem("product", "1", "h1b")])  # supersedes h1
    [old, two, new] = [j.id for j in ledger.list_jobs(kind="product")]
    assert open_product_jobs(ledger, "1") == [new]
    assert open_product_jobs(ledger, "1", "h1") == []  # superseded: nothing left to do
    assert open_product_jobs(ledger, "2", "h2") == [two]
    ledger.set_status([two], JobStatus.SUPERSEDED)
    assert open_product_jobs(ledger, "2") == [] and old != new


def test_fingerprints_are_kept_whichever_way_the_snapshot_comes(ledger: Ledger) -> None:
    snapshot = {"id": 7, "fingerprints": {"description": "ccc"}}
    spelled = {**row("7", fingerprints={}), "snapshot": {}, "snapshot_json": dumps(snapshot)}
    ledger.upsert_products([
        row("5", fingerprints={"description": "ccc"}),
        {**row("6", fingerprints={}), "snapshot": {}, "snapshot_json": dumps(
            {**snapshot, "id": 6}), "fingerprints_json": dumps(snapshot["fingerprints"])},
        spelled,  # no fingerprints_json: read from the spelled snapshot
    ])
    assert shared_fingerprints(ledger, 3) == frozenset({"ccc"})


def test_duplicate_skus_are_found_as_the_store_compares_them(ledger: Ledger) -> None:
    def sku_row(source_id: str, sku: str | None) -> dict[str, Any]:
        return {**row(source_id, fingerprints={}, missing=[]), "sku": sku, "input_flags": []}

    # Written out of source-id order, so ids come back in the order SQL happened to read.
    ledger.upsert_products([sku_row("9", " ab-1 "), sku_row("100", "AB-1"),
                            sku_row("10", "ab-1"), sku_row("11", "solo"),
                            sku_row("12", "  "), sku_row("13", "  "), sku_row("14", None)])
    groups = mark_duplicate_skus(ledger)
    assert groups == [("ab-1", ["10", "100", "9"])]
    details = {sid: [f["detail"] for f in product_input_flags(ledger, sid)]
               for sid in ("9", "10", "100", "11", "12")}
    assert details["9"] == ["The SKU “ab-1” is also on product 10, 100. Give each product "
                            "its own SKU in the store."]
    assert "also on product 100, 9." in details["10"][0]
    assert details["11"] == details["12"] == []  # blank SKUs are not shared ones
    ledger.upsert_products([sku_row("100", "AB-2"), sku_row("10", "ab-3")])
    ledger.upsert_products([{**sku_row("9", " ab-1 "), "input_flags": None}])  # keeps its flag
    assert mark_duplicate_skus(ledger) == []
    assert product_input_flags(ledger, "9") == []  # no longer shared: the flag goes


def test_scratch_copy_is_written_alone_and_thrown_away(ledger: Ledger) -> None:
    seed(ledger)
    with scratch_copy(ledger, prefix="enrich-test-") as work:
        path = work.path
        work.upsert_products([row("7", fingerprints={})])
        assert count_by_state(work)["needs_work"] == 5
    assert count_by_state(ledger)["needs_work"] == 4 and not path.exists()


def test_publish_never_imports_the_sync_orchestration() -> None:
    # A fresh interpreter: in this one other tests have imported enrich.sync already.
    code = ("import sys, enrich.publish; "
            "print(sorted(m for m in sys.modules if m in "
            "('enrich.sync', 'enrich.missing', 'enrich.product_snapshot')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "['enrich.missing', 'enrich.product_snapshot']"
