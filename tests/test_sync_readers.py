"""Sync's page readers (``enrich.page_reader``): the ledger ends exactly as a sync in one
process leaves it, with the sandbox store over real HTTP, real reader processes and real
SQLite ledgers; a reader that dies costs nothing but speed; a reader's error is the sync's."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from enrich.config import Settings, StoreConfig, SyncConfig
from enrich.errors import StoreAuthError
from enrich.httpserver import Request, Response
from enrich.ledger import Ledger
from enrich.ledger.publishes import record_published
from enrich.sandbox.catalog import synthetic_catalog
from enrich.sandbox.store import serve_store
from enrich.sync import SyncProgress, SyncSummary, sync
from enrich.woo import fetcher
from tests.injection_phrasings import POSITIVES
from tests.woo_helpers import client, interposed_store, options

#: Columns that hold clocks (ours or the store's) or the process id: they differ run to run.
_CLOCKS = ("_at", "time", "started", "finished", "date_modified", "pid", "params", "counts")


def _catalog() -> list[dict[str, Any]]:
    """400 products with the problems sync's checks look for, a variable product with
    variations, and one with a malformed field."""
    products = list(synthetic_catalog(400, seed=3))
    for i, p in enumerate(products):
        if i % 25 == 0:
            p["description"] = f"{p.get('description') or ''} {POSITIVES[i % len(POSITIVES)]}"
        if i % 30 == 3:
            p["attributes"] = [*(p.get("attributes") or []), {
                "id": 0, "name": "Power", "options": ["300 W"], "visible": True,
                "variation": False}]
            p["description"] = f"{p.get('description') or ''} A strong 500 W motor."
        if i % 40 == 5:
            p["weight"] = "-1"
        if i % 45 == 7:
            p["name"] = f"{p['name']} <script>x</script>"
        if i % 50 == 9:
            p["sku"] = "DUP-1"
        if i % 60 == 11:
            p["regular_price"] = 12  # not a string: the product is invalid
        if i % 70 == 13:
            p["short_description"] = "Café crème, 2\u00a0kg — déjà vu."  # non-ASCII
    parent = products[100]
    parent["type"] = "variable"
    parent["attributes"] = [{"id": 0, "name": "Size", "position": 0, "visible": True,
                             "variation": True, "options": ["S", "M"]}]
    products += [{"id": 9000 + i, "type": "variation", "parent_id": parent["id"],
                  "sku": f"V-{s}", "description": "", "regular_price": "10.00",
                  "status": "publish", "attributes": [{"id": 0, "name": "Size", "option": s}]}
                 for i, s in enumerate(["S", "M"])]
    return products


def _tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = sqlite3.connect(path)
    out = {}
    for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")
                if not any(c in r[1] for c in _CLOCKS)]
        rows = con.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall()
        if table == "meta":  # the cursor (a clock) and the store's address (a free port)
            rows = [r for r in rows if r[0] not in ("sync.modified_after", "sync.store_url")]
        if table == "products":  # the same snapshot, maybe spelled with other key order
            at = cols.index("snapshot")
            rows = [(*r[:at], json_value(r[at]), *r[at + 1:]) for r in rows]
        out[table] = sorted(rows, key=repr)
    con.close()
    return out


def json_value(text: str) -> str:
    import json
    return json.dumps(json.loads(text), sort_keys=True)


def _syncs(path: Path, readers: int) -> list[SyncSummary]:
    """A full sync, an unchanged one, one after store edits (and a value enrich published
    still in place), one under changed rules."""
    summaries = []
    with serve_store(_catalog(), options=options()) as srv, client(srv.url) as woo, \
            Ledger(path) as ledger:
        cfg = Settings(store=StoreConfig(url=srv.url), sync=SyncConfig(variations=True))
        summaries.append(sync(ledger, woo, cfg, full=True, readers=readers))
        summaries.append(sync(ledger, woo, cfg, full=True, readers=readers))
        for n, pid in enumerate((2, 50, 77, 101, 250)):
            woo.update_product(pid, {"description": f"New copy {n}, long enough to be kept "
                                                    "as it is by the rules in force."})
        # Short copy enrich published on product 250 counts as done (the reader decides
        # without the ledger; the syncing process decides this one again).
        woo.update_product(250, {"short_description": "Tiny copy."})
        with ledger.transaction() as c:
            record_published(c, "250", None, {"short_description": ("Tiny copy.", None)})
        summaries.append(sync(ledger, woo, cfg, full=True, readers=readers))
        stricter = Settings(store=StoreConfig(url=srv.url),
                            sync=SyncConfig(variations=True, min_length={"description": 300}))
        summaries.append(sync(ledger, woo, stricter, full=True, readers=readers))
    return summaries


def _counts(s: SyncSummary) -> dict[str, Any]:
    data = s.counts()
    for key in ("elapsed_s", "store", "cursor", "modified_after", "run_id"):
        data.pop(key)
    return {**data, "invalid_examples": s.invalid_examples}


def test_page_readers_leave_the_ledger_as_one_process_does(tmp_path: Path) -> None:
    alone = _syncs(tmp_path / "alone.db", readers=0)
    read = _syncs(tmp_path / "read.db", readers=2)
    assert [s.reader_pages for s in alone] == [0, 0, 0, 0]
    assert [(s.reader_pages, s.pages) for s in read] == [(3, 4)] * 4  # all but the first
    assert [_counts(s) for s in read] == [_counts(s) for s in alone]
    first = read[0]
    assert first.scanned == 402 and first.invalid == 7 and set(first.input_flags) == {
        "instruction", "source_conflict", "bad_value", "markup", "duplicate_sku"}
    assert read[2].queued == 5 and read[3].queued > 0  # edits, then stricter rules
    with Ledger(tmp_path / "read.db") as ledger:
        missing = ledger.conn.execute(
            "SELECT missing FROM products WHERE source_id = '250'").fetchone()[0]
    assert "short_description" not in missing  # published and still in place: done
    assert _tables(tmp_path / "read.db") == _tables(tmp_path / "alone.db")


def test_readers_only_where_they_pay(tmp_path: Path) -> None:
    with serve_store(_catalog(), options=options()) as srv, client(srv.url) as woo, \
            Ledger(tmp_path / "l.db") as ledger:
        cfg = Settings(store=StoreConfig(url=srv.url))
        small = sync(ledger, woo, cfg, full=True)  # 5 pages: below MIN_PAGES
        limited = sync(ledger, woo, cfg, full=True, limit=150, readers=2)
    assert small.reader_pages == 0
    # With --limit each page's count decides the next page's cut: built here, in order.
    assert limited.reader_pages == 0 and limited.scanned == 150 and limited.limit_reached


def _reader_pids(module: bytes = b"enrich.page_reader") -> list[int]:
    """This process's page readers, or its page fetcher (their command lines name the
    module)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == os.getpid() and state != "Z" and module in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("victim", [b"enrich.page_reader", b"enrich.woo.fetcher"])
def test_a_killed_reader_or_fetcher_costs_nothing_but_speed(tmp_path: Path,
                                                             victim: bytes) -> None:
    products = list(synthetic_catalog(3000, seed=5))  # 30 pages, readers from page 9
    killed: list[int] = []

    def kill_a_reader(p: SyncProgress) -> None:
        if p.pages == 12 and not killed:
            for pid in _reader_pids(victim):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    # A store slow enough (20 ms a page) that the readers cannot be done by page 12.
    with serve_store(products, options=options(latency_ms=20)) as srv, \
            client(srv.url) as woo:
        cfg = Settings(store=StoreConfig(url=srv.url))
        with Ledger(tmp_path / "killed.db") as ledger:
            hurt = sync(ledger, woo, cfg, full=True, readers=2, progress=kill_a_reader)
        with Ledger(tmp_path / "alone.db") as ledger:
            alone = sync(ledger, woo, cfg, full=True, readers=0)
    assert killed, "no reader process was found to kill"
    # Pages 1-8 are read here while the readers start; after the kill, more are read here.
    assert hurt.pages == 30 and hurt.reader_pages > 0 and hurt.pages - hurt.reader_pages > 8
    assert _counts(hurt) == _counts(alone) and hurt.queued == 3000
    assert _tables(tmp_path / "killed.db") == _tables(tmp_path / "alone.db")
    assert not _reader_pids() and not _reader_pids(b"enrich.woo.fetcher")  # none left


def test_a_readers_auth_failure_is_the_syncs(tmp_path: Path) -> None:
    products = list(synthetic_catalog(800, seed=7))  # 8 pages: pages 3-8 from the readers
    refused: list[str] = []
    with interposed_store(products) as (url, _store, inter), client(url) as woo, \
            Ledger(tmp_path / "l.db") as ledger:
        def refuse_once_from_page_6(request: Request, forward: Any) -> Response:
            # Only readers ask for pages 5-8 (the sync reads pages 1-2, and its own reading
            # ahead stops by page 4), and only the first such request past 5 is refused:
            # were a reader's error lost, the sync would read that page again here and
            # succeed.
            page = request.arg("page") or "1"
            with inter.lock:
                first = request.path.endswith("/products") and page.isdigit() \
                    and int(page) >= 6 and not refused
                if first:
                    refused.append(page)
            if first:
                return Response.json({"code": "woocommerce_rest_cannot_view",
                                      "message": "Sorry, you cannot list resources."},
                                     status=401)
            return forward(request)

        inter.hook = refuse_once_from_page_6
        with pytest.raises(StoreAuthError):
            sync(ledger, woo, Settings(store=StoreConfig(url=url)), full=True, readers=2)
        run = ledger.conn.execute(
            "SELECT exit_reason FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    assert run[0] == "fatal" and len(refused) == 1
    assert not _reader_pids() and not _reader_pids(b"enrich.woo.fetcher")


def test_sync_readers_setting_sets_how_many(tmp_path: Path) -> None:
    products = list(synthetic_catalog(2100, seed=9))  # 21 pages: worth readers
    with serve_store(products, options=options()) as srv, client(srv.url) as woo:
        def synced(readers: int, name: str) -> SyncSummary:
            cfg = Settings(store=StoreConfig(url=srv.url), sync=SyncConfig(readers=readers))
            with Ledger(tmp_path / name) as ledger:
                return sync(ledger, woo, cfg, full=True)
        none, one = synced(0, "none.db"), synced(1, "one.db")
    assert none.reader_pages == 0 and none.pages == 21
    assert one.reader_pages > 0 and _counts(one) == _counts(none)


def _imported_by(module: str, candidates: tuple[str, ...]) -> list[str]:
    """Which of ``candidates`` a fresh interpreter has imported once it imports ``module``."""
    code = (f"import sys; import {module}; "
            f"print(','.join(m for m in {candidates!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return [m for m in out.strip().split(",") if m]


def test_a_reader_starts_without_the_ledger_or_the_configuration() -> None:
    """Each reader is a fresh interpreter started per sync: what it imports is paid on
    every CPU before the first page. It needs the store client, the snapshot, the rules and
    the input checks; not SQLite's helpers, not the configuration's models. The fetcher
    only asks the store: nothing of the snapshot or the checks either."""
    assert _imported_by("enrich.page_reader", (
        "sqlite_utils", "pydantic", "enrich.config", "enrich.ledger.ledger",
        "enrich.guards.draft", "enrich.priority", "nh3")) == []
    assert _imported_by("enrich.woo.fetcher", (
        "sqlite_utils", "pydantic", "enrich.config", "enrich.ledger", "enrich.guards",
        "enrich.missing", "enrich.product_snapshot", "enrich.page_reader")) == []
    # What the check looks at is there to be seen.
    assert _imported_by("enrich.page_reader", ("enrich.guards", "enrich.missing")) == [
        "enrich.guards", "enrich.missing"]


def test_the_fetcher_stops_quietly_when_its_reader_is_gone() -> None:
    """A reader that died leaves its pipe without a reading end: the fetcher's thread for it
    stops there, and raises nothing (a thread's exception is a traceback on the terminal)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    # A small page: its frame waits in the write buffer, where closing tries it again.
    with serve_store(list(synthetic_catalog(5, seed=5)), options=options()) as srv, \
            client(srv.url) as woo:
        job = {"client": woo.reopen_args(), "modified_after": None,
               "statuses": ("publish", "draft", "pending", "private"), "fields": ["id"],
               "first_page": 1, "outs": [write_end]}
        fetcher._fetch(job, 0, write_end)
        asked = len(srv.store.request_log)
    assert asked == 1  # one page fetched, then nobody to hand it to: no more asked
