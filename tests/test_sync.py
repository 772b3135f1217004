"""``enrich sync`` against the sandbox store over real HTTP, into a real SQLite ledger."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from enrich.config import Settings, StoreConfig, SyncConfig
from enrich.httpserver import Request, Response
from enrich.ledger import Attempt, DraftRecord, Ledger
from enrich.missing import Rules, evaluate
from enrich.product_snapshot import build_record, content_hash, store_snapshot
from enrich.sandbox.catalog import synthetic_catalog
from enrich.sandbox.store import serve_store
from enrich.sandbox.store_settings import StoreSettings
from enrich.sync import META_CURSOR, sync
from enrich.woo.client import SETTINGS_READS
from tests.woo_helpers import LONG_COPY, client, interposed_store, options, product

SHORT_OK = "Solid walnut side table with a shelf."


def settings(url: str, **sync_kw: Any) -> Settings:
    seo = sync_kw.pop("seo_plugin", "none")
    statuses = sync_kw.pop("statuses", ["publish", "draft", "pending", "private"])
    return Settings(store=StoreConfig(url=url, seo_plugin=seo, statuses=statuses),
                    sync=SyncConfig(**sync_kw))


def complete(pid: int, **kw: Any) -> dict[str, Any]:
    kw.setdefault("description", f"<p>{LONG_COPY} Item {pid}.</p>")
    kw.setdefault("short_description", f"{SHORT_OK} ({pid})")
    return product(pid, **kw)


def jobs(ledger: Ledger, source_id: str | None = None) -> list[Any]:
    return ledger.list_jobs(kind="product", source_id=source_id)


def open_jobs(ledger: Ledger) -> dict[str, str]:
    return {j.source_id: j.status for j in jobs(ledger) if j.status != "superseded"}


# -- the whole flow -------------------------------------------------------------------------

def test_full_sync_of_1050_products_then_nothing_new(ledger: Ledger) -> None:
    catalog = list(synthetic_catalog(1050, seed=5))
    with serve_store(catalog, options=options()) as srv, client(srv.url) as woo:
        cfg = settings(srv.url)
        first = sync(ledger, woo, cfg)
        requests_first = srv.store.count()
        second = sync(ledger, woo, cfg, full=True)
    kept = sum(1 for p in catalog if p["status"] != "future")
    assert first.scanned == kept == 1050 and first.pages == 11 and \
        requests_first == 11 + SETTINGS_READS  # the store's units: read once per sync
    assert first.complete + first.needs_work + first.needs_data + first.invalid == kept
    assert first.needs_data > 0  # the synthetic catalog has bare SKU+weight products
    assert first.queued == first.needs_work + first.needs_data
    counts = ledger.counts()["product"]
    assert counts["pending"] == first.needs_work and counts["needs_data"] == first.needs_data
    assert ledger.conn.execute("SELECT COUNT(*) FROM products").fetchone()[0] == kept
    # Idempotent: a second full read queues nothing and supersedes nothing.
    assert second.queued == 0 and second.superseded == 0 and second.unchanged == kept
    assert ledger.counts()["product"] == counts
    run = ledger.get_run(first.run_id or 0)
    assert run["kind"] == "sync" and run["exit_reason"] == "completed"
    assert run["counts"]["queued"] == first.queued
    assert "secret" not in json.dumps(run["params"]).lower()


def test_the_stream_commits_its_pages_in_groups(ledger: Ledger) -> None:
    # One commit per page wrote the pages a stream shares (index leaves, the tables' last
    # leaves) to the WAL again at every page (``Ledger.commit_group``).
    statements: list[str] = []
    ledger.conn.set_trace_callback(statements.append)
    with serve_store(list(synthetic_catalog(2000, seed=3)), options=options()) as srv, \
            client(srv.url) as woo:
        summary = sync(ledger, woo, settings(srv.url), readers=0)
    ledger.conn.set_trace_callback(None)
    writes = [i for i, s in enumerate(statements) if s.startswith("INSERT INTO products")]
    commits = sum(s == "COMMIT" for s in statements[writes[0]:writes[-1]])
    assert summary.pages == 20 and len(writes) >= 20
    # A commit per page would be 19; a slow machine may take a few groups for 20 pages.
    assert commits <= 9, f"{commits} commits between the first page's rows and the last's"
    assert ledger.conn.execute("SELECT COUNT(*) FROM products").fetchone()[0] == 2000


def test_needs_data_reason_names_what_is_missing(ledger: Ledger) -> None:
    bare = {"id": 1, "name": "", "type": "simple", "status": "publish", "sku": "SUP-1",
            "weight": "2.0", "description": "", "short_description": "", "categories": []}
    with serve_store([bare, product(2)], options=options()) as srv, client(srv.url) as woo:
        summary = sync(ledger, woo, settings(srv.url))
    assert summary.needs_data == 1 and summary.needs_work == 1
    (job,) = jobs(ledger, "1")
    assert job.status == "needs_data"
    assert "characters of source text" in (job.last_error or "")
    assert ledger.get_product("1")["state"] == "needs_data"  # type: ignore[index]


def test_missing_rules(ledger: Ledger) -> None:
    items = [
        complete(1),
        complete(2, description="<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit. "
                                + LONG_COPY + "</p>"),
        complete(3, short_description="TBD"),
        complete(4, short_description="N/A."),
        complete(5, short_description="Walnut side table 5"),  # the name again
        complete(6, description="<p><strong>Short.</strong></p>"),
        complete(7, name="WT-0007", sku="WT-0007"),
    ]
    with serve_store(items, options=options()) as srv, client(srv.url) as woo:
        sync(ledger, woo, settings(srv.url, fields=["name", "description",
                                                    "short_description"]))
    why = {sid: (ledger.get_product(sid) or {}).get("reason") for sid in map(str, range(1, 8))}
    missing = {sid: (ledger.get_product(sid) or {}).get("missing") for sid in why}
    assert missing["1"] == []
    assert missing["2"] == ["description"] and "lorem ipsum" in (why["2"] or "")
    assert missing["3"] == ["short_description"] and "'tbd'" in (why["3"] or "")
    assert missing["4"] == ["short_description"] and "'n/a'" in (why["4"] or "")
    assert missing["5"] == ["short_description"] and "same as the name" in (why["5"] or "")
    assert missing["6"] == ["description"] and "shorter than 120" in (why["6"] or "")
    assert missing["7"] == ["name"] and "SKU" in (why["7"] or "")
    (job,) = jobs(ledger, "6")
    assert job.payload["fields"] == ["description"]


def test_seo_fields_follow_the_plugin(ledger: Ledger) -> None:
    meta = [{"key": "_yoast_wpseo_title", "value": "Walnut side table | Shop"}]
    with serve_store([complete(1, meta_data=meta)], options=options()) as srv, \
            client(srv.url) as woo:
        none = sync(ledger, woo, settings(srv.url))
        assert none.skipped_fields == ["seo_title", "meta_description"] and none.complete == 1
        yoast = sync(ledger, woo, settings(srv.url, seo_plugin="yoast"), full=True)
    assert yoast.needs_work == 1 and yoast.needs_work_by_field == {"meta_description": 1}
    snap = (ledger.get_product("1") or {})["snapshot"]
    assert snap["seo"]["seo_title"] == "Walnut side table | Shop" and snap["seo_plugin"] == "yoast"
    # The rules changed (seo_plugin), so the product was re-decided and a job queued.
    assert open_jobs(ledger) == {"1": "pending"}


def test_meta_data_is_asked_for_only_with_an_seo_plugin(ledger: Ledger, tmp_path: Path) -> None:
    # Without a plugin enrich reads nothing of a product's meta, which on real stores is
    # often most of it (page builders, feeds): it is not fetched, and its shape is no
    # concern (a malformed meta_data does not make the product invalid). With a plugin it
    # is fetched and checked. Either way publish's hash of the store's product (all fields,
    # as it reads them) agrees with the one sync recorded.
    builder = [{"key": "_builder_data", "value": "x" * 20_000}]
    items = [complete(1, meta_data=builder), complete(2)]

    def malformed(request: Request, handle) -> Response:  # type: ignore[no-untyped-def]
        response = handle(request)  # product 2's meta_data, where sent, is not an array
        if request.path.endswith("/products"):
            body = json.loads(response.body)
            for item in body:
                if item.get("id") == 2 and "meta_data" in item:
                    item["meta_data"] = {"not": "a list"}
            response.body = json.dumps(body).encode()
        return response

    def fields_asked(log: list[Any]) -> list[list[str]]:
        return [dict(parse_qsl(e.query))["_fields"].split(",") for e in log
                if e.path.endswith("/products")]

    with interposed_store(items) as (url, store, inter), client(url) as woo:
        inter.hook = malformed
        plain = sync(ledger, woo, settings(url))
        asked = fields_asked(store.request_log)
        with Ledger(tmp_path / "yoast.db") as other:
            yoast = sync(other, woo, settings(url, seo_plugin="yoast"))
            yoast_hashes = {p: (other.get_product(p) or {})["content_hash"] for p in "12"}
        asked_yoast = fields_asked(store.request_log)[len(asked):]
        stored = woo.get_products([1, 2])
    assert asked and all("meta_data" not in f and "description" in f for f in asked)
    assert asked_yoast and all("meta_data" in f for f in asked_yoast)
    assert isinstance(stored[1]["meta_data"], dict)  # publish reads it malformed too
    assert plain.invalid == 0 and plain.complete == 2
    assert yoast.invalid == 1 and \
        "product 2: field meta_data: expected an array" in yoast.invalid_examples[0]
    for p in stored:
        assert store_snapshot(p)[1] == (ledger.get_product(str(p["id"])) or {})["content_hash"]
    assert store_snapshot(stored[0], seo_plugin="yoast")[1] == yoast_hashes["1"]


# -- incremental ----------------------------------------------------------------------------

def test_incremental_sync_after_edits(ledger: Ledger) -> None:
    items = [complete(i) for i in range(1, 21)] + [product(21)]
    with serve_store(items, options=options()) as srv, client(srv.url) as woo:
        cfg = settings(srv.url)
        first = sync(ledger, woo, cfg)
        assert first.needs_work == 1 and open_jobs(ledger) == {"21": "pending"}
        cursor = ledger.get_meta(META_CURSOR)
        old_job = jobs(ledger, "21")[0]
        srv.store.edit(3, short_description="TBD")        # becomes incomplete
        srv.store.edit(21, short_description="Edited in wp-admin, still short")  # changed
        second = sync(ledger, woo, cfg)
        sent = [dict(parse_qsl(e.query)) for e in srv.store.request_log][-1]
        after_second = open_jobs(ledger)
        srv.store.edit(21, description=f"<p>{LONG_COPY}</p>",
                       short_description=SHORT_OK)  # now complete
        third = sync(ledger, woo, cfg)
    assert second.modified_after == cursor and second.scanned == 2
    assert sent["dates_are_gmt"] == "true" and sent["modified_after"] == cursor
    assert second.queued == 2 and second.superseded == 1
    assert ledger.get_job(old_job.id).status == "superseded"
    assert after_second == {"3": "pending", "21": "pending"}
    assert third.scanned >= 1 and third.complete >= 1
    assert open_jobs(ledger) == {"3": "pending"}  # 21 became complete: its job gave way
    assert (ledger.get_product("21") or {})["state"] == "complete"


def test_every_snapshot_carries_the_store_units_even_after_a_sync_that_died(
        ledger: Ledger) -> None:
    """Units sit outside the hash, so unchanged products are not rewritten: after the
    stream every snapshot gets them, unless the ledger knows they are already everywhere.
    A sync that dies after writing some products with other units must not leave that
    knowledge standing."""
    catalog = list(synthetic_catalog(250, seed=3))
    metric = StoreSettings(weight_unit="kg", dimension_unit="cm")
    imperial = StoreSettings(weight_unit="lbs", dimension_unit="in")

    def units() -> set[tuple[str, str]]:
        return {(p["snapshot"]["weight_unit"], p["snapshot"]["dimension_unit"])
                for p in map(ledger.get_product, (str(c["id"]) for c in catalog)) if p}

    def die_after_the_first_page(progress: object) -> None:
        raise KeyboardInterrupt

    with serve_store(catalog, options=options(settings=imperial)) as srv, \
            client(srv.url) as woo:
        cfg = settings(srv.url)
        sync(ledger, woo, cfg)
        assert units() == {("lbs", "in")}
        srv.store.options.settings = metric
        sync(ledger, woo, cfg)  # nothing changed but the units
        assert units() == {("kg", "cm")}
        srv.store.options.settings = imperial
        srv.store.edit(1, short_description="Edited, and written with the store's units.")
        with pytest.raises(KeyboardInterrupt):
            sync(ledger, woo, cfg, full=True, progress=die_after_the_first_page)
        assert ledger.get_product("1")["snapshot"]["weight_unit"] == "lbs"
        srv.store.options.settings = metric
        sync(ledger, woo, cfg)
        assert units() == {("kg", "cm")}


def test_cursor_catches_an_edit_in_the_same_second(ledger: Ledger) -> None:
    """The bound is exclusive and second-resolution: max-seen alone would miss this edit."""
    items = [complete(i) for i in range(1, 6)]
    with serve_store(items, options=options()) as srv, client(srv.url) as woo:
        cfg = settings(srv.url)
        sync(ledger, woo, cfg)
        edited = srv.store.edit(1, short_description="TBD")
        second = sync(ledger, woo, cfg)
        late = srv.store.edit(2, short_description="TBD")
        third = sync(ledger, woo, cfg)
    assert second.scanned == 1
    if late["date_modified_gmt"] == edited["date_modified_gmt"]:
        assert third.scanned == 2  # both products of that second read again; 1 unchanged
    assert (ledger.get_product("2") or {})["state"] == "needs_work"
    assert set(open_jobs(ledger)) == {"1", "2"}


def test_limit_does_not_move_the_cursor(ledger: Ledger) -> None:
    items = [product(i) for i in range(1, 251)]
    with serve_store(items, options=options()) as srv, client(srv.url) as woo:
        summary = sync(ledger, woo, settings(srv.url), limit=120)
        pages = summary.pages
    assert summary.scanned == 120 and summary.limit_reached and summary.exit_reason == "limit"
    assert pages == 2 and ledger.get_meta(META_CURSOR) is None
    assert len(open_jobs(ledger)) == 120
    assert ledger.last_run("sync")["exit_reason"] == "limit"  # type: ignore[index]


def test_dry_run_writes_nothing(ledger: Ledger, tmp_path: Path) -> None:
    items = [product(i) for i in range(1, 40)] + [complete(40)]
    with serve_store(items, options=options()) as srv, client(srv.url) as woo:
        dry = sync(ledger, woo, settings(srv.url), dry_run=True)
        assert ledger.conn.execute("SELECT COUNT(*) FROM products").fetchone()[0] == 0
        assert ledger.list_runs() == [] and jobs(ledger) == []
        real = sync(ledger, woo, settings(srv.url))
    assert dry.dry_run and dry.run_id is None
    assert (dry.scanned, dry.needs_work, dry.queued) == (real.scanned, real.needs_work,
                                                          real.queued) == (40, 39, 39)


# -- bad records ----------------------------------------------------------------------------

def test_bad_records_are_recorded_and_skipped(ledger: Ledger) -> None:
    items = [
        product(1),
        product(2, regular_price={"bad": ""}),           # what a bad batch item leaves behind
        product(3, description="x" * 2_100_000),         # a 2 MB description
        product(4, name="BROKEN_BYTES_HERE"),            # becomes invalid UTF-8 on the wire
        product(5, categories=[{"name": 7}]),
        product(6),
    ]

    def corrupt(request: Request, handle) -> Response:  # type: ignore[no-untyped-def]
        response = handle(request)
        response.body = response.body.replace(b"BROKEN_BYTES_HERE", b"Caf\xe9 table \xff")
        return response

    with interposed_store(items) as (url, _store, inter):
        inter.hook = corrupt
        with client(url) as woo:
            summary = sync(ledger, woo, settings(url))
    assert summary.scanned == 6 and summary.invalid == 3 and summary.needs_work == 3
    reasons = {sid: j.last_error or "" for sid, j in
               ((j.source_id, j) for j in jobs(ledger)) if j.status == "invalid"}
    assert set(reasons) == {"2", "3", "4"}
    assert "product 2: field regular_price: expected a string, got object" in reasons["2"]
    assert "product 3: field description: 2,100,000 bytes" in reasons["3"]
    assert "product 4: field name: not valid UTF-8" in reasons["4"]
    assert open_jobs(ledger)["5"] == "pending"  # a non-string category name is skipped
    stored = ledger.get_product("3") or {}
    assert stored["state"] == "invalid" and len(stored["snapshot"]["description"]) < 3000


def test_a_fixed_invalid_product_supersedes_its_invalid_job(ledger: Ledger) -> None:
    with serve_store([product(1, regular_price={"bad": ""})], options=options()) as srv, \
            client(srv.url) as woo:
        sync(ledger, woo, settings(srv.url))
        assert open_jobs(ledger) == {"1": "invalid"}
        srv.store.edit(1, regular_price="99.00")
        sync(ledger, woo, settings(srv.url))
    assert open_jobs(ledger) == {"1": "pending"}


# -- boilerplate ----------------------------------------------------------------------------

BOILER = ("<p>This quality product is sourced from our trusted partners and meets all "
          "applicable standards. Please contact customer service for more information "
          "about availability and delivery times in your region.</p>")


def test_boilerplate_is_detected_across_syncs(ledger: Ledger) -> None:
    items = [complete(i, description=BOILER) for i in range(1, 5)] + \
        [complete(i) for i in range(5, 12)]
    with serve_store(items, options=options()) as srv, client(srv.url) as woo:
        cfg = settings(srv.url, boilerplate_min_products=5)
        first = sync(ledger, woo, cfg)
        assert first.complete == 11 and first.boilerplate_texts == 0
        srv.store.edit(5, description=BOILER)             # the fifth copy of the same text
        second = sync(ledger, woo, cfg)
        assert second.scanned == 1 and second.reevaluated == 5  # 4 earlier + the one read
        assert set(open_jobs(ledger)) == {"1", "2", "3", "4", "5"}
        reason = (ledger.get_product("2") or {})["reason"]
        assert "supplier boilerplate" in reason
        for pid in (1, 2):                                # below the threshold again
            srv.store.edit(pid, description=f"<p>{LONG_COPY} Own words {pid}.</p>")
        third = sync(ledger, woo, cfg)
    assert third.boilerplate_texts == 0 and third.reevaluated == 3
    assert open_jobs(ledger) == {}


def test_unit_evaluate_and_hash_are_deterministic() -> None:
    rules = Rules.from_settings(settings("http://127.0.0.1:1"))
    raw = complete(9)
    raw.update({"date_modified_gmt": "2026-01-01T00:00:00", "images": [],
                "categories": [{"id": 1, "name": "Tables"}]})
    rec = build_record(raw, rules)
    assert rec.content_hash == content_hash(rec.snapshot)
    again = dict(raw, date_modified_gmt="2026-02-02T00:00:00")  # a no-op write bumps the date
    assert build_record(again, rules).content_hash == rec.content_hash
    assert evaluate(rec.snapshot, rules).state == "complete"
    assert store_snapshot(raw)[1] == rec.content_hash


def test_counting_source_text_up_to_enough_decides_as_the_whole_count() -> None:
    # evaluate stops counting a product's source text once it has min_source_chars.
    from guard_helpers import catalog

    from enrich.missing import source_chars, visible_texts

    rules = Rules.from_settings(settings("http://127.0.0.1:1"))
    products = [*catalog(), *synthetic_catalog(500, seed=8)]
    snapshots = [build_record(p, rules).snapshot for p in products if isinstance(p.get("id"), int)]
    below = 0
    for snap in snapshots:
        texts = visible_texts(snap)
        for exclude in (set(), {"description", "short_description"}):
            whole = source_chars(snap, texts, exclude=exclude, name_ok=False)
            for enough in (0, 1, 20, 60, 200, 2000):
                counted = source_chars(snap, texts, exclude=exclude, name_ok=False,
                                       enough=enough)
                assert counted == whole if whole < enough else counted >= enough
                below += whole < enough
    assert below > 100  # both sides of every threshold are seen


def test_variations_are_synced_when_enabled(ledger: Ledger) -> None:
    parent = complete(1, type="variable", attributes=[{
        "id": 0, "name": "Size", "position": 0, "visible": True, "variation": True,
        "options": ["S", "M"]}])
    kids = [{"id": 10 + i, "type": "variation", "parent_id": 1, "sku": f"V-{s}",
             "description": "", "regular_price": "10.00", "status": "publish",
             "attributes": [{"id": 0, "name": "Size", "option": s}]}
            for i, s in enumerate(["S", "M"])]
    with serve_store([parent, *kids], options=options()) as srv, client(srv.url) as woo:
        off = sync(ledger, woo, settings(srv.url))
        on = sync(ledger, woo, settings(srv.url, variations=True), full=True)
    assert off.scanned == 1 and on.scanned == 3
    stored = ledger.get_product("10") or {}
    assert stored["type"] == "variation" and stored["parent_id"] == "1"
    assert stored["missing"] == ["description"]
    assert "short_description" not in stored["snapshot"]


def test_auth_failure_stops_the_sync_and_records_the_run(ledger: Ledger) -> None:
    from enrich.errors import StoreAuthError

    with serve_store([product(1)], options=options()) as srv, \
            client(srv.url, secret="cs_wrong") as woo, pytest.raises(StoreAuthError):
        sync(ledger, woo, settings(srv.url))
    assert ledger.last_run("sync")["exit_reason"] == "fatal"  # type: ignore[index]


def test_sync_survives_faults_end_to_end(ledger: Ledger) -> None:
    catalog = list(synthetic_catalog(300, seed=2))
    opts = options(fail_rate=0.25, seed=9, latency_ms=5)
    with serve_store(catalog, options=opts) as srv, client(srv.url, max_attempts=10) as woo:
        started = time.monotonic()
        summary = sync(ledger, woo, settings(srv.url))
    assert summary.scanned == 300 and time.monotonic() - started < 30
    assert woo.retries > 0


def test_a_product_deleted_while_paging_keeps_the_cursor(ledger: Ledger) -> None:
    items = [product(i) for i in range(1, 201)]
    state = {"done": False}

    def trash_during_paging(request: Request, handle) -> Response:  # type: ignore[no-untyped-def]
        if "page=2" in request.raw_query and not state["done"]:
            state["done"] = True
            _store.edit(5, status="trash")  # page 2 now starts one product later
        return handle(request)

    with interposed_store(items) as (url, _store, inter), client(url) as woo:
        sync(ledger, woo, settings(url), full=True)
        cursor = ledger.get_meta(META_CURSOR)
        inter.hook = trash_during_paging
        summary = sync(ledger, woo, settings(url), full=True)
    assert summary.missed == 1 and summary.scanned == 199  # product 101 shifted onto page 1
    assert ledger.get_meta(META_CURSOR) == cursor


def test_a_store_outage_mid_sync_keeps_what_was_read(ledger: Ledger) -> None:
    from enrich.errors import StoreUnavailable

    def down_after_two_pages(request: Request, handle) -> Response:  # type: ignore[no-untyped-def]
        if "page=3" in request.raw_query:
            return Response(503, b"down")
        return handle(request)

    with interposed_store([product(i) for i in range(1, 301)]) as (url, _store, inter):
        inter.hook = down_after_two_pages
        with client(url, max_attempts=3) as woo, pytest.raises(StoreUnavailable) as info:
            sync(ledger, woo, settings(url))
    assert "HTTP 503" in str(info.value) and "gave up after 3" in str(info.value)
    assert ledger.conn.execute("SELECT COUNT(*) FROM products").fetchone()[0] == 200
    assert len(open_jobs(ledger)) == 200
    assert ledger.get_meta(META_CURSOR) is None
    run = ledger.last_run("sync") or {}
    assert run["exit_reason"] == "error" and run["counts"]["scanned"] == 200


def test_a_boilerplate_move_counts_each_product_once_and_keeps_drafts(ledger: Ledger) -> None:
    """The stream queues product 5 for its short description, then the boilerplate pass
    re-decides it (and queues 1-4): five products queued, not six jobs and one superseded.
    When the set moves again, the drafts waiting for review are not thrown away."""
    items = [complete(i, description=BOILER) for i in range(1, 5)] + [complete(5)]
    with serve_store(items, options=options()) as srv, client(srv.url) as woo:
        cfg = settings(srv.url, boilerplate_min_products=5)
        sync(ledger, woo, cfg)
        srv.store.edit(5, description=BOILER, short_description="")
        second = sync(ledger, woo, cfg)
        for job in ledger.claim("w", limit=10):
            ledger.complete(job.id, "w", DraftRecord(fields={"description": "x"}),
                            Attempt(started_at=time.time(), outcome="ok"))
        for pid in (1, 2):
            srv.store.edit(pid, description=f"<p>{LONG_COPY} Own words {pid}.</p>")
        third = sync(ledger, woo, cfg)
    assert (second.queued, second.superseded) == (5, 0)
    assert (second.scanned, second.needs_work) == (1, 1)
    assert second.needs_work_by_field == {"description": 1, "short_description": 1}
    assert third.superseded == 2 and third.queued == 0  # 1 and 2 were rewritten by a person
    assert open_jobs(ledger) == {"3": "drafted", "4": "drafted", "5": "drafted"}
