"""Priority tiers end to end: the sandbox store over HTTP, a real ledger, the offline writer.

A night that ends early must have drafted the products that sell: published and in stock
first (most sold first), then the other published ones, then drafts; a store owner's
`enrich jobs prioritize` beats the rules and survives every later sync.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from enrich.cli.main import cli
from enrich.config import SyncConfig
from enrich.ledger import EnqueueItem, Ledger
from enrich.priority import TIER_SPAN
from enrich.product_snapshot import sales_signals
from enrich.sandbox.store import SandboxStore, serve_store
from tests.woo_helpers import KEY, SECRET, options, product

SCRIPT = Path(__file__).with_name("ledger_worker_script.py")

# id: (status, stock_status, total_sales)
CATALOG: dict[int, tuple[str, str, int]] = {
    1: ("publish", "instock", 5), 2: ("publish", "instock", 90), 3: ("publish", "instock", 0),
    4: ("publish", "onbackorder", 40), 5: ("publish", "instock", 12),
    6: ("publish", "instock", 300),
    7: ("publish", "outofstock", 1000), 8: ("publish", "outofstock", 500),
    9: ("draft", "instock", 2000), 10: ("draft", "instock", 0),
    11: ("pending", "instock", 7), 12: ("private", "outofstock", 3),
}
SELLING = [6, 2, 4, 5, 1, 3]  # published and in stock (or on backorder), most sold first
PUBLISHED = [7, 8]            # published, out of stock
REST = [9, 11, 12, 10]        # drafts, pending, private: by sales


def _catalog() -> list[dict[str, Any]]:
    return [product(pid, status=status, stock_status=stock, total_sales=sales,
                    categories=[{"name": "Lamps" if pid in (10, 12) else "Tables"}])
            for pid, (status, stock, sales) in CATALOG.items()]


def _sell(store: SandboxStore, pid: int, total_sales: int) -> None:
    """An order: WooCommerce counts the sale in post meta and leaves the product's date."""
    store._products[pid]["total_sales"] = total_sales


@contextmanager
def _shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          extra: str = "") -> Iterator[tuple[Any, Path]]:
    monkeypatch.setenv("WOO_CONSUMER_KEY", KEY)
    monkeypatch.setenv("WOO_CONSUMER_SECRET", SECRET)
    with serve_store(_catalog(), options=options()) as srv:
        config = tmp_path / "config.toml"
        config.write_text(f'[store]\nurl = "{srv.url}"\n\n[sync]\n'
                          f'fields = ["description", "short_description"]\n{extra}\n'
                          f'[ledger]\npath = "enrich.db"\n', encoding="utf-8")
        yield srv, config


def _cli(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.stdout if "--json" in args else result.output


def _queue(db: Path) -> list[int]:
    """Source ids of the waiting jobs, in the order the worker would take them."""
    with Ledger(db) as ledger:
        return [int(j.source_id) for j in ledger.due_jobs(100)]


def _drafted_in_order(db: Path) -> list[int]:
    with Ledger(db) as ledger:
        rows = ledger.conn.execute(
            "SELECT j.source_id FROM attempts a JOIN jobs j ON j.id = a.job_id "
            "WHERE a.outcome IN ('ok', 'flagged') ORDER BY a.started_at, a.id").fetchall()
    return [int(r[0]) for r in rows]


def test_a_limited_run_drafts_the_top_tier_first(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with _shop(tmp_path, monkeypatch) as (_, config):
        assert _cli(config, "sync")[0] == 0
        assert _queue(tmp_path / "enrich.db") == SELLING + PUBLISHED + REST
        code, out = _cli(config, "run", "--limit", str(len(SELLING)), "--concurrency", "1")
        assert code == 0, out
        # Exactly the products that sell, most sold first; nothing from a lower tier.
        assert _drafted_in_order(tmp_path / "enrich.db") == SELLING
        assert _queue(tmp_path / "enrich.db") == PUBLISHED + REST

        code, out = _cli(config, "status", "--json")
        assert code == 0, out
        data = json.loads(out)
        assert data["pending_by_tier"] == {"urgent": 0, "selling": 0, "published": 2, "rest": 4}
        assert set(data) >= {"jobs", "cost_usd", "last_run", "oldest_pending"}  # kept as was
        code, out = _cli(config, "status")
        assert code == 0
        assert "pending by tier (the worker takes them in this order): urgent 0 · selling 0 · " \
               "published 2 · rest 4" in " ".join(out.split())


def test_an_override_beats_the_rules_and_survives_a_resync(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "enrich.db"
    with _shop(tmp_path, monkeypatch) as (srv, config):
        assert _cli(config, "sync")[0] == 0
        code, out = _cli(config, "jobs", "prioritize", "--sku", "WT-0010,WT-0003")
        assert code == 0, out
        assert "2 product(s) pinned to tier urgent; 2 waiting job(s) moved" in out
        code, out = _cli(config, "jobs", "prioritize", "--category", "lamps",
                         "--tier", "published", "--json")
        assert code == 0 and json.loads(out)["products"] == ["10", "12"]
        # The later pin of 10 wins; 12 joins the published tier, ordered by its sales.
        expected = [3, 6, 2, 4, 5, 1, 7, 8, 12, 10, 9, 11]
        assert _queue(db) == expected

        # A re-sync of unchanged data keeps every pin; a full one reads all and changes none.
        code, out = _cli(config, "sync", "--full", "--json")
        assert code == 0 and json.loads(out)["queued"] == 0
        assert _queue(db) == expected
        # A product changed in the store gets a new job, and the pin carries over to it.
        with Ledger(db) as ledger:
            old = ledger.list_jobs(source_id="3")[0].id
        srv.store.edit(3, short_description="Edited in wp-admin")
        assert _cli(config, "sync")[0] == 0
        with Ledger(db) as ledger:
            assert ledger.get_job(old).status == "superseded"
            assert ledger.due_jobs(1)[0].source_id == "3"
            assert ledger.due_jobs(1)[0].id != old

        # Unknown names change nothing and say which one; --clear hands back to the rules.
        code, out = _cli(config, "jobs", "prioritize", "--sku", "WT-0003,NOPE-1")
        assert code == 2 and "SKU NOPE-1" in out and "nothing was changed" in out
        code, out = _cli(config, "jobs", "prioritize", "--sku", "WT-0003", "--tier", "vip")
        assert code == 2 and "no priority tier named 'vip'" in out
        assert _cli(config, "jobs", "prioritize", "--sku", "WT-0003,WT-0010", "--clear")[0] == 0
        assert _queue(db) == [6, 2, 4, 5, 1, 3, 7, 8, 12, 9, 11, 10]


def test_sales_and_stock_moves_renumber_the_same_job(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "enrich.db"
    with _shop(tmp_path, monkeypatch) as (srv, config):
        assert _cli(config, "sync")[0] == 0
        with Ledger(db) as ledger:
            ids = {j.source_id: j.id for j in ledger.list_jobs()}
        _sell(srv.store, 3, 10_000)          # a best seller now
        srv.store.edit(6, stock_status="outofstock")  # sold out: drops a tier
        code, out = _cli(config, "sync", "--full", "--json")
        assert code == 0 and json.loads(out)["queued"] == 0
        assert json.loads(out)["superseded"] == 0  # the drafts-to-be are kept, only moved
        assert _queue(db) == [3, 2, 4, 5, 1, 7, 8, 6, *REST]
        with Ledger(db) as ledger:
            assert {j.source_id: j.id for j in ledger.list_jobs()} == ids
            assert ledger.get_job(ids["3"]).priority == 2 * TIER_SPAN + 10_000


def test_changing_the_tiers_renumbers_every_waiting_job(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "enrich.db"
    with _shop(tmp_path, monkeypatch) as (_, config):
        assert _cli(config, "sync")[0] == 0
        text = config.read_text()
        config.write_text(text.replace("[sync]\n", "[sync]\npriority = [{ tier = \"hits\", "
                                       "min_sales = 100 }]\n"))
        code, out = _cli(config, "sync", "--json")  # incremental: the store sends nothing new
        assert code == 0 and json.loads(out)["scanned"] == 0
        # Every product that sold 100 or more, whatever its status, then the rest, by sales.
        assert _queue(db) == [9, 7, 8, 6, 2, 4, 5, 11, 1, 12, 3, 10]
        code, out = _cli(config, "status", "--json")
        assert json.loads(out)["pending_by_tier"] == {"urgent": 0, "hits": 4, "rest": 8}


def test_concurrent_claimers_take_each_job_once_in_priority_order(db_path: Path,
                                                                  tmp_path: Path) -> None:
    with Ledger(db_path) as ledger:
        ledger.enqueue_many(EnqueueItem("product", str(i), "h", priority=(i * 7919) % 5 *
                                        TIER_SPAN + (i * 104729) % 1000)
                            for i in range(1500))
        key = {j.id: (-j.priority, j.id) for j in ledger.list_jobs()}
    outs = [tmp_path / f"w{i}.json" for i in range(4)]
    procs = [subprocess.Popen([sys.executable, str(SCRIPT), str(db_path), f"w{i}", str(out)],
                              stderr=subprocess.PIPE) for i, out in enumerate(outs)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    taken = [json.loads(out.read_text()) for out in outs]
    claimed = [job_id for ids in taken for job_id in ids]
    assert len(claimed) == len(set(claimed)) == 1500
    assert sum(1 for ids in taken if ids) >= 2  # really concurrent
    # Each claim takes the best of what is left, so every worker saw the queue in order.
    for ids in taken:
        assert [key[i] for i in ids] == sorted(key[i] for i in ids)


def test_claim_reads_the_due_index_not_a_sort(ledger: Ledger) -> None:
    ledger.enqueue_many(EnqueueItem("product", str(i), "h", priority=i % 3) for i in range(50))
    plan = " ".join(str(tuple(r)) for r in ledger.conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM jobs INDEXED BY jobs_due WHERE status IN "
        "('pending', 'failed') AND next_attempt_at <= 0 ORDER BY priority DESC, id LIMIT 5"))
    assert "jobs_due" in plan and "TEMP B-TREE" not in plan
    first = ledger.claim("w", 5)
    assert [j.priority for j in first] == [2] * 5
    assert [j.id for j in ledger.due_jobs(3)] == [j.id for j in ledger.claim("w", 3)]


def test_odd_signals_are_read_as_unknown_never_as_errors() -> None:
    assert sales_signals({"stock_status": "instock", "total_sales": 12}) == ("instock", 12)
    assert sales_signals({"stock_status": "sold", "total_sales": " 7 "}) == (None, 7)
    assert sales_signals({"total_sales": True}) == (None, None)
    assert sales_signals({"total_sales": -3}) == (None, None)
    assert sales_signals({"stock_status": "outofstock"}, parent={"total_sales": 40}) == (
        "outofstock", 40)


def test_tier_names_are_checked() -> None:
    with pytest.raises(ValidationError, match="reserved"):
        SyncConfig(priority=[{"tier": "urgent"}])
    with pytest.raises(ValidationError, match="named twice"):
        SyncConfig(priority=[{"tier": "a"}, {"tier": "a", "status": ["draft"]}])
    with pytest.raises(ValidationError):
        SyncConfig(priority=[{"tier": "a", "stock_status": ["in stock"]}])
