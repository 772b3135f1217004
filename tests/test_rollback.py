"""enrich rollback against the sandbox store: exact restore, the conflict check, --product."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from enrich.cli.main import cli
from enrich.errors import UsageError
from enrich.ledger import Ledger
from enrich.publish import publish, rollback, rows_for_run
from tests.publish_helpers import (
    KEY,
    SECRET,
    SEO_KEYS,
    client_for,
    meta,
    sandbox,
    settings_for,
    source_of,
    synced_and_approved,
)

DATES = ("date_modified", "date_modified_gmt")


def _without_dates(product: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in product.items() if k not in DATES}


def test_rollback_restores_exactly_the_prior_values(ledger: Ledger) -> None:
    with sandbox(40, seed=5) as running:
        settings = settings_for(running)
        store = running.store
        # One product already has a Yoast title (it must come back, with its meta id).
        store.edit(1, meta_data=[{"key": SEO_KEYS["seo_title"], "value": "Old title"}])
        job_ids = synced_and_approved(ledger, running, settings, approved=25)
        pids = [source_of(ledger, j) for j in job_ids[:25]]
        assert pids[0] == 1
        before = {pid: store.product(pid) for pid in pids}
        with client_for(running) as client:
            published = publish(ledger, client, settings)
            assert published.counts()["written"] == 25
            assert meta(store.product(pids[1]), SEO_KEYS["seo_title"]) is not None
            report = rollback(ledger, client, settings, run_id=published.run_id)
        assert report.counts()["rolled_back"] == 25 and report.ok
        assert store.count("products/batch", "POST") == 2
        for pid in pids:
            after = store.product(pid)
            assert _without_dates(after) == _without_dates(before[pid])
            assert after["date_modified_gmt"] >= before[pid]["date_modified_gmt"]
        # keys that did not exist before are gone again, the one that did is back
        assert meta(store.product(pids[1]), SEO_KEYS["seo_title"]) is None
        assert meta(store.product(pids[0]), SEO_KEYS["seo_title"]) == "Old title"
        assert {ledger.get_job(j).status for j in job_ids[:25]} == {"rolled_back"}
        rows = rows_for_run(ledger, report.run_id)
        assert {r["outcome"] for r in rows} == {"rolled_back"} and len(rows) == 25
        deleting = [m for m in rows[1]["written"]["meta_data"] if m["value"] is None]
        assert deleting, "a rollback of a new meta key sends value null"

        # Nothing left to roll back: a second rollback writes nothing.
        with client_for(running) as client:
            again = rollback(ledger, client, settings, run_id=published.run_id)
        assert again.items == [] and store.count("products/batch", "POST") == 2


def test_a_product_edited_after_the_publish_is_not_rolled_back(ledger: Ledger) -> None:
    with sandbox(20) as running:
        settings = settings_for(running)
        job_ids = synced_and_approved(ledger, running, settings, approved=6)
        pids = [source_of(ledger, j) for j in job_ids[:6]]
        store = running.store
        originals = {pid: store.product(pid) for pid in pids}
        with client_for(running) as client:
            published = publish(ledger, client, settings)
            store.edit(pids[0], short_description="The owner rewrote this after publish.")
            time.sleep(1.05)  # the store's dates have one-second resolution
            store.edit(pids[1], stock_quantity=1)  # saved, copy unchanged
            report = rollback(ledger, client, settings, run_id=published.run_id)
        assert report.counts()["rolled_back"] == 4
        assert report.counts()["conflict"] == 2 and not report.ok
        by_id = {int(i.source_id): i for i in report.items}
        assert "short_description" in (by_id[pids[0]].reason or "")
        assert [(c["field"], c["new"]) for c in by_id[pids[0]].changes] == [
            ("short_description", "The owner rewrote this after publish.")]
        assert "date_modified_gmt" in (by_id[pids[1]].reason or "")
        assert store.product(pids[0])["short_description"] == \
            "The owner rewrote this after publish."
        assert store.product(pids[1])["description"] != originals[pids[1]]["description"]
        assert ledger.get_job(job_ids[0]).status == "published"
        assert ledger.get_job(job_ids[1]).status == "published"
        for pid in pids[2:]:
            assert store.product(pid)["description"] == originals[pid]["description"]


def test_rollback_of_chosen_products_only(ledger: Ledger) -> None:
    with sandbox(20) as running:
        settings = settings_for(running)
        job_ids = synced_and_approved(ledger, running, settings, approved=5)
        pids = [source_of(ledger, j) for j in job_ids[:5]]
        store = running.store
        originals = {pid: store.product(pid) for pid in pids}
        with client_for(running) as client:
            publish(ledger, client, settings)
            preview = rollback(ledger, client, settings, source_ids=[str(pids[3])],
                               dry_run=True)
            assert [i.action for i in preview.items] == ["restore"]
            assert store.count("products/batch", "POST") == 1  # the dry run wrote nothing
            report = rollback(ledger, client, settings,
                              source_ids=[str(pids[3]), str(pids[4])])
        assert report.counts()["rolled_back"] == 2
        for pid in pids[3:]:
            assert _without_dates(store.product(pid)) == _without_dates(originals[pid])
        for pid in pids[:3]:
            assert store.product(pid)["description"] != originals[pid]["description"]
        assert [ledger.get_job(j).status for j in job_ids[:5]] == \
            ["published"] * 3 + ["rolled_back"] * 2
        with client_for(running) as client:
            nothing = rollback(ledger, client, settings, source_ids=[str(pids[3]), "999"])
        assert nothing.items == [] and nothing.not_found == [str(pids[3]), "999"]


def test_rollback_needs_a_publish_run_or_products(ledger: Ledger) -> None:
    with sandbox(5) as running:
        settings = settings_for(running)
        sync_run = ledger.start_run("sync", {})
        with client_for(running) as client:
            with pytest.raises(UsageError):
                rollback(ledger, client, settings)
            with pytest.raises(UsageError, match="not a publish"):
                rollback(ledger, client, settings, run_id=sync_run)


def test_rollback_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WOO_CONSUMER_KEY", KEY)
    monkeypatch.setenv("WOO_CONSUMER_SECRET", SECRET)
    with sandbox(10) as running:
        cfg = tmp_path / "config.toml"
        cfg.write_text(f'[store]\nurl = "{running.url}"\nseo_plugin = "yoast"\n'
                       '[ledger]\npath = "ledger.db"\n', encoding="utf-8")
        settings = settings_for(running)
        with Ledger(tmp_path / "ledger.db") as ledger:
            synced_and_approved(ledger, running, settings, approved=3)
        runner = CliRunner()
        out = runner.invoke(cli, ["--config", str(cfg), "publish", "--json"])
        assert out.exit_code == 0, out.output
        run_id = json.loads(out.output)["run_id"]
        both = runner.invoke(cli, ["--config", str(cfg), "rollback", "--run", str(run_id),
                                   "--product", "1"])
        assert both.exit_code == 2 and "not both" in both.output
        done = runner.invoke(cli, ["--config", str(cfg), "rollback", "--run", str(run_id)])
        assert done.exit_code == 0, done.output
        assert "rolled_back: 3" in done.output
        nothing = runner.invoke(cli, ["--config", str(cfg), "rollback", "--product", "1"])
        assert nothing.exit_code == 0 and "no published write to undo" in nothing.output


def test_an_interrupted_rollback_is_finished_by_the_next_one(ledger: Ledger) -> None:
    with sandbox(20, seed=8) as running:
        settings = settings_for(running, batch_size=4)
        job_ids = synced_and_approved(ledger, running, settings, approved=8)
        pids = [source_of(ledger, j) for j in job_ids[:8]]
        store = running.store
        originals = {pid: store.product(pid) for pid in pids}

        def stop_before_the_second_batch(batch_no: int, size: int) -> None:
            if batch_no == 2:
                raise KeyboardInterrupt

        with client_for(running) as client:
            published = publish(ledger, client, settings)
            with pytest.raises(KeyboardInterrupt):
                rollback(ledger, client, settings, run_id=published.run_id,
                         on_batch=stop_before_the_second_batch)
            assert ledger.last_run("rollback")["exit_reason"] == "signal"
            assert [ledger.get_job(j).status for j in job_ids[:8]] == \
                ["rolled_back"] * 4 + ["published"] * 4
            report = rollback(ledger, client, settings, run_id=published.run_id,
                              settle_s=0.0)
        assert report.recovered.requeued == [str(p) for p in pids[4:]]
        assert report.counts()["rolled_back"] == 4
        assert {ledger.get_job(j).status for j in job_ids[:8]} == {"rolled_back"}
        for pid in pids:
            assert _without_dates(store.product(pid)) == _without_dates(originals[pid])
            assert store.writes[pid] == 2  # one publish, one rollback: nothing twice
