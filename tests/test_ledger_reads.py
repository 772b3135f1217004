"""The ledger's named reads (drafts, reports) and its JSON columns, on a real SQLite file."""

from __future__ import annotations

import threading

from enrich.ledger import Attempt, DraftRecord, EnqueueItem, JobStatus, Ledger
from enrich.ledger.bands import BandStore
from enrich.ledger.codec import dumps, loads
from enrich.ledger.drafts import draft_view, draft_views, live_product_fields
from enrich.ledger.reports import (
    attempt_outcomes,
    p95_latency_ms,
    run_usage,
    waiting_product_jobs,
)


def _drafted(ledger: Ledger, kind: str, source_id: str, fields: dict[str, str], *,
             run_id: int | None = None, latency_ms: float | None = None) -> int:
    ledger.enqueue(EnqueueItem(kind=kind, source_id=source_id, input_hash="h" + source_id,
                               payload={"fields": list(fields)}))
    [job] = ledger.claim("reads-test", 1, kind=kind)
    ledger.complete(job.id, "reads-test", DraftRecord(fields=fields),
                    Attempt(started_at=0.0, outcome="ok", latency_ms=latency_ms,
                            tokens_in=10, tokens_out=5, cost_usd=0.01), run_id=run_id)
    return job.id


def test_codec_keeps_null_apart_from_empty_and_writes_real_utf8() -> None:
    assert dumps(None) is None and loads(None) is None
    assert dumps({}) == "{}" and loads("{}") == {}
    assert dumps({"b": 1, "a": "Café"}) == '{"a":"Café","b":1}'
    assert loads(dumps({"x": ["ü", 2.5]})) == {"x": ["ü", 2.5]}


def test_codec_spells_what_orjson_refuses_the_same_way() -> None:
    # Integer keys, integers beyond 64 bits and lone surrogates go through json, which
    # must give the spelling orjson gives everything else (sorted, compact, real UTF-8).
    assert dumps({2: "b", 1: "é"}) == '{"1":"é","2":"b"}'
    assert dumps({"n": 2**70, "a": "é"}) == '{"a":"é","n":1180591620717411303424}'
    assert loads(dumps({"s": "x\ud800"})) == {"s": "x\ud800"}
    assert dumps({"x": float("nan")}) == '{"x":null}'  # SQLite's JSON functions refuse NaN


def test_draft_view_is_job_draft_and_synced_product_in_one_record(ledger: Ledger) -> None:
    snap = {"id": 7, "name": "Hoodie", "sku": "H-7", "categories": [{"name": "Hoodies"}]}
    ledger.upsert_products([{"source_id": "7", "type": "simple", "sku": "H-7",
                             "name": "Hoodie", "snapshot": snap, "content_hash": "c7",
                             "date_modified_gmt": "2025-01-02T03:04:05",
                             "missing": ["seo_title"]}])
    product_job = _drafted(ledger, "product", "7", {"seo_title": "Hoodie | Hoodies"})
    # An invoice with the same source id is not joined to the product of that id.
    invoice_job = _drafted(ledger, "invoice", "7", {"total": "12.00"})
    ledger.review(product_job, JobStatus.APPROVED, note="fine",
                  edited_fields={"seo_title": "Warm hoodie | Hoodies"})

    view = draft_view(ledger, product_job)
    assert view is not None and view.status == "approved" and view.reviewer_note == "fine"
    assert view.product is not None
    assert (view.product["content_hash"], view.product["date_modified_gmt"]) == (
        "c7", "2025-01-02T03:04:05")
    assert view.product["missing"] == ["seo_title"] and view.snapshot == snap
    assert (view.name, view.sku, view.categories) == ("Hoodie", "H-7", ["Hoodies"])
    assert view.effective_fields == {"seo_title": "Warm hoodie | Hoodies"}
    assert view.payload == {"fields": ["seo_title"]} and view.cost_usd == 0.01

    invoice = draft_view(ledger, invoice_job)
    assert invoice is not None and invoice.product is None and invoice.name == "invoice 7"
    assert draft_view(ledger, 999) is None

    assert [v.job_id for v in draft_views(ledger)] == [invoice_job]  # drafted only
    assert [v.job_id for v in draft_views(ledger, statuses=())] == [product_job, invoice_job]
    assert [v.job_id for v in draft_views(ledger, statuses=(), kind="product")] == [product_job]
    assert draft_views(ledger, statuses=(), job_ids=[]) == []


def test_live_product_fields_leave_out_rejected_and_lay_edits_over(ledger: Ledger) -> None:
    kept = _drafted(ledger, "product", "1", {"description": "one", "seo_title": "t1"})
    gone = _drafted(ledger, "product", "2", {"description": "two"})
    edited = _drafted(ledger, "product", "3", {"description": "three", "seo_title": "t3"})
    _drafted(ledger, "invoice", "4", {"description": "an invoice"})
    ledger.review(gone, JobStatus.REJECTED)
    ledger.review(edited, JobStatus.APPROVED, edited_fields={"description": "three, edited"})
    chunks = list(live_product_fields(ledger, batch=1))
    assert chunks == [[(kept, "1", {"description": "one", "seo_title": "t1"})],
                      [(edited, "3", {"description": "three, edited", "seo_title": "t3"})]]


def test_report_reads_add_up_the_attempts(ledger: Ledger) -> None:
    run = ledger.start_run("run")
    for i in range(20):
        _drafted(ledger, "product", str(i), {"description": "x"}, run_id=run,
                 latency_ms=float(i + 1))
    _drafted(ledger, "product", "other", {"description": "y"}, latency_ms=500.0)
    ledger.enqueue(EnqueueItem(kind="product", source_id="waiting", input_hash="w"))
    ledger.enqueue(EnqueueItem(kind="invoice", source_id="inv", input_hash="w"))

    figures = attempt_outcomes(ledger, run)
    assert (figures["attempts"], figures["jobs"], figures["drafted"]) == (20, 20, 20)
    assert (figures["tokens_in"], figures["tokens_out"]) == (200, 100)
    assert attempt_outcomes(ledger)["attempts"] == 21
    # Nearest rank: the 19th of 20 sorted latencies; the other run's 500 ms only in total.
    assert p95_latency_ms(ledger, run) == 19.0
    assert p95_latency_ms(ledger) == 20.0
    assert p95_latency_ms(ledger, run + 1) is None
    jobs, tokens_in, tokens_out, cost = run_usage(ledger, run)
    assert (jobs, tokens_in, tokens_out, round(cost, 6)) == (20, 200, 100, 0.2)
    [(job_id, source_id)] = waiting_product_jobs(ledger)
    assert source_id == "waiting" and ledger.get_job(job_id).status == "pending"


def test_band_store_counts_every_text_added_from_many_threads() -> None:
    store = BandStore()
    try:
        def add(n: int) -> None:
            for i in range(50):
                store.insert([(i, f"{n}-{i}", "description", b"sig", [n * 1000 + i, 7])])

        threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert store.size == 200
        shared = store.candidates([7], not_source="0-0", limit=1000)
        assert len(shared) == 199 and all(src != "0-0" for _, src, _, _ in shared)
        assert len(store.candidates([7], not_source=None, limit=10)) == 10
    finally:
        store.close()
