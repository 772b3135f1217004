"""enrich publish against the sandbox store over real HTTP: batching, idempotence, approval
only, conflicts, per-item errors, dry run."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from enrich.cli.main import cli
from enrich.errors import UsageError
from enrich.ledger import Ledger
from enrich.ledger import publishes as P
from enrich.ledger.locks import lock_file
from enrich.publish import plan_publish, publish, rows_for_run
from enrich.woo.auth import make_auth
from tests.process_helpers import hold_lock_in_child
from tests.publish_helpers import (
    KEY,
    SECRET,
    SEO_KEYS,
    approve,
    client_for,
    draft_all,
    draft_text,
    meta,
    sandbox,
    settings_for,
    source_of,
    sync_store,
    synced_and_approved,
)


def _publishes(ledger: Ledger) -> list[dict]:
    return [dict(r) for r in ledger.conn.execute("SELECT * FROM publishes ORDER BY id")]


def test_250_approved_drafts_take_three_batch_requests_and_a_second_run_writes_nothing(
        ledger: Ledger) -> None:
    with sandbox(300) as running:
        settings = settings_for(running)
        job_ids = synced_and_approved(ledger, running, settings, approved=250)
        approved = {source_of(ledger, j) for j in job_ids[:250]}
        others = {source_of(ledger, j) for j in job_ids[250:]}
        store = running.store
        before = {pid: store.product(pid) for pid in others}
        with client_for(running) as client:
            report = publish(ledger, client, settings)
            assert store.count("products/batch", "POST") == 3
            assert report.counts()["written"] == 250
            assert report.exit_reason == "completed"
            # every approved product written exactly once, nothing else touched
            assert set(store.writes) == approved
            assert set(store.writes.values()) == {1}
            for pid in others:
                assert store.product(pid) == before[pid]
            for pid in list(approved)[:20]:
                product = store.product(pid)
                assert product["description"] == draft_text(str(pid), "description")
                assert meta(product, SEO_KEYS["seo_title"]) == draft_text(str(pid),
                                                                           "seo_title")
            statuses = ledger.counts()["product"]
            assert statuses["published"] == 250 and statuses["approved"] == 0
            rows = rows_for_run(ledger, report.run_id)
            assert {r["outcome"] for r in rows} == {"written"}
            assert len(rows) == 250 and {r["batch_no"] for r in rows} == {1, 2, 3}
            row = rows[0]
            assert "description" in row["written"] and "id" not in row["written"]
            assert row["previous"]["item"]["meta_data"] == [
                {"key": m["key"], "value": None} for m in row["written"]["meta_data"]]
            assert row["store_date_modified_gmt"] == store.product(
                int(row["source_id"]))["date_modified_gmt"]

            again = publish(ledger, client, settings)
        assert store.count("products/batch", "POST") == 3
        assert again.counts()["written"] == 0 and again.items == []
        assert set(store.writes.values()) == {1}


def test_unreviewed_and_rejected_drafts_are_never_sent(ledger: Ledger) -> None:
    with sandbox(30) as running:
        settings = settings_for(running)
        sync_store(ledger, running, settings)
        job_ids = draft_all(ledger, limit=15)
        approve(ledger, job_ids[:5])
        for job_id in job_ids[5:10]:
            ledger.review(job_id, "rejected", note="not our voice")
        approved = {source_of(ledger, j) for j in job_ids[:5]}
        untouched = {source_of(ledger, j) for j in job_ids[5:]}
        before = {pid: running.store.product(pid) for pid in untouched}
        with client_for(running) as client:
            report = publish(ledger, client, settings)
        assert report.counts()["written"] == 5
        assert set(running.store.writes) == approved
        for pid in untouched:
            assert running.store.product(pid) == before[pid]
        assert [ledger.get_job(j).status for j in job_ids[5:10]] == ["rejected"] * 5
        assert [ledger.get_job(j).status for j in job_ids[10:15]] == ["drafted"] * 5
        sent = {int(r["source_id"]) for r in _publishes(ledger)}
        assert sent == approved


def test_a_product_edited_in_the_store_after_sync_is_a_conflict_and_not_overwritten(
        ledger: Ledger) -> None:
    with sandbox(30) as running:
        settings = settings_for(running)
        job_ids = synced_and_approved(ledger, running, settings, approved=10)
        store = running.store
        copy_edit = source_of(ledger, job_ids[0])
        stock_edit = source_of(ledger, job_ids[1])
        store.edit(copy_edit, description="<p>Written by the shop owner by hand.</p>")
        store.edit(stock_edit, stock_quantity=3)  # not copy, but somebody saved the product
        with client_for(running) as client:
            report = publish(ledger, client, settings)
            assert report.counts()["written"] == 8
            assert report.counts()["conflict"] == 2 and not report.ok
            assert report.exit_reason == "completed"  # it ran to the end; not ok
            assert copy_edit not in store.writes and stock_edit not in store.writes
            assert store.product(copy_edit)["description"] == \
                "<p>Written by the shop owner by hand.</p>"
            assert ledger.get_job(job_ids[0]).status == "conflict"
            assert ledger.get_job(job_ids[1]).status == "conflict"
            by_id = {i.source_id: i for i in report.items}
            first = by_id[str(copy_edit)]
            assert first.outcome == "conflict" and "description" in (first.reason or "")
            change = {c["field"]: c for c in first.changes}["description"]
            assert change["new"] == "<p>Written by the shop owner by hand.</p>"
            assert change["old"] == ledger.get_product(str(copy_edit))["snapshot"][
                "description"]
            assert "date_modified_gmt" in (by_id[str(stock_edit)].reason or "")
            conflicts = [r for r in _publishes(ledger) if r["outcome"] == "conflict"]
            assert {int(r["source_id"]) for r in conflicts} == {copy_edit, stock_edit}

            # The owner looks at the change and approves the draft again: it is written,
            # compared against the store state the conflict recorded.
            ledger.review(job_ids[0], "approved")
            again = publish(ledger, client, settings)
        assert again.counts()["written"] == 1
        assert store.writes[copy_edit] == 1
        assert store.product(copy_edit)["description"] == draft_text(str(copy_edit),
                                                                      "description")
        assert ledger.get_job(job_ids[0]).status == "published"
        assert ledger.get_job(job_ids[1]).status == "conflict"


def test_a_per_item_error_is_recorded_against_that_product_and_the_rest_go_on(
        ledger: Ledger) -> None:
    with sandbox(30) as running:
        settings = settings_for(running)
        job_ids = synced_and_approved(ledger, running, settings, approved=6)
        gone = source_of(ledger, job_ids[2])

        def someone_deletes_a_product(batch_no: int, size: int) -> None:
            # Another admin deletes the product between publish's read and its write.
            with httpx.Client(auth=make_auth("oauth1", KEY, SECRET)) as http:
                resp = http.delete(f"{running.url}/wp-json/wc/v3/products/{gone}",
                                   params={"force": "true"})
                assert resp.status_code == 200

        with client_for(running) as client:
            report = publish(ledger, client, settings, on_batch=someone_deletes_a_product)
            assert report.counts()["written"] == 5
            assert report.counts()["error"] == 1
            job = ledger.get_job(job_ids[2])
            assert job.status == "approved"  # not published; tried again next time
            assert "woocommerce_rest_product_invalid_id" in (job.last_error or "")
            errors = [r for r in _publishes(ledger) if r["outcome"] == "error"]
            assert [int(r["source_id"]) for r in errors] == [gone]

            # Next run: the product is gone from the store, so it is a conflict, not sent.
            again = publish(ledger, client, settings)
        assert again.counts()["conflict"] == 1 and again.counts()["written"] == 0
        assert ledger.get_job(job_ids[2]).status == "conflict"
        assert running.store.count("products/batch", "POST") == 1


def test_only_fields_sync_asked_for_are_sent_and_a_reviewers_edit_wins(
        ledger: Ledger) -> None:
    with sandbox(10) as running:
        settings = settings_for(running)
        sync_store(ledger, running, settings)
        jobs = ledger.claim("w", limit=1)
        job = jobs[0]
        pid = int(job.source_id)
        original_name = running.store.product(pid)["name"]
        fields = {f: draft_text(job.source_id, f) for f in job.payload["fields"]}
        fields["name"] = "A Name The Model Invented"  # sync did not ask for a name
        from enrich.ledger import Attempt, DraftRecord
        ledger.complete(job.id, "w", DraftRecord(fields=fields),
                        Attempt(started_at=0.0, outcome="ok"))
        ledger.review(job.id, "approved",
                      edited_fields={"short_description": "Edited by the reviewer."})
        with client_for(running) as client:
            report = publish(ledger, client, settings)
        product = running.store.product(pid)
        assert product["name"] == original_name
        assert product["short_description"] == "Edited by the reviewer."
        assert report.items[0].skipped == {
            "name": "sync did not ask for it (the store's value is kept)"}
        written = _publishes(ledger)[0]["written"]
        assert "name" not in json.loads(written)


def test_limit_publishes_only_that_many(ledger: Ledger) -> None:
    with sandbox(30) as running:
        settings = settings_for(running)
        synced_and_approved(ledger, running, settings, approved=12)
        with client_for(running) as client:
            first = publish(ledger, client, settings, limit=5)
            assert first.counts()["written"] == 5
            assert ledger.counts()["product"]["approved"] == 7
            rest = publish(ledger, client, settings)
        assert rest.counts()["written"] == 7
        assert sum(running.store.writes.values()) == 12


def test_a_second_publisher_on_the_same_ledger_is_refused(ledger: Ledger) -> None:
    with sandbox(10) as running:
        settings = settings_for(running)
        synced_and_approved(ledger, running, settings, approved=3)
        # Another live process holds the publish lock of this ledger.
        holder = hold_lock_in_child("publish", ledger.path, "999")
        try:
            with client_for(running) as client, pytest.raises(UsageError) as refused:
                publish(ledger, client, settings)
        finally:
            holder.kill()
            holder.communicate(timeout=10)
        assert re.fullmatch(
            rf"another publish or rollback \(run 999, pid {holder.pid}, since \d\d:\d\d\) "
            r"is writing to the store from this ledger", refused.value.message)
        assert running.store.count("products/batch", "POST") == 0
        assert ledger.last_run("publish")["exit_reason"] == "error"
        # A lock row naming a live pid (ours) is information, never the lock.
        ledger.set_meta(P.WRITER_KEY, json.dumps({"pid": os.getpid(), "run_id": 998}))
        with client_for(running) as client:
            assert publish(ledger, client, settings).counts()["written"] == 3
        assert ledger.get_meta(P.WRITER_KEY) is None
        assert not lock_file(ledger.path, "publish").exists()  # removed on the way out


def _config(tmp_path: Path, url: str) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[store]\nurl = "{url}"\nseo_plugin = "yoast"\ntimeout_s = 10\n'
                   f'[ledger]\npath = "ledger.db"\n', encoding="utf-8")
    return cfg


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WOO_CONSUMER_KEY", KEY)
    monkeypatch.setenv("WOO_CONSUMER_SECRET", SECRET)
    with sandbox(20) as running:
        cfg = _config(tmp_path, running.url)
        settings = settings_for(running)
        with Ledger(tmp_path / "ledger.db") as ledger:
            job_ids = synced_and_approved(ledger, running, settings, approved=4)
            running.store.edit(source_of(ledger, job_ids[3]), description="<p>Owner's.</p>")
        db = sqlite3.connect(tmp_path / "ledger.db")
        before = (db.execute("SELECT COUNT(*) FROM runs").fetchone(),
                  db.execute("SELECT id, status, updated_at FROM jobs ORDER BY id").fetchall())
        runner = CliRunner()
        result = runner.invoke(cli, ["--config", str(cfg), "publish", "--dry-run", "--json"])
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        assert data["dry_run"] is True
        assert data["counts"]["write"] == 3 and data["counts"]["conflict"] == 1
        first = data["items"][0]
        changed = {c["field"]: c for c in first["changes"]}
        assert changed["description"]["new"] == draft_text(first["source_id"], "description")
        assert changed["meta:_yoast_wpseo_title"]["old"] is None

        table = runner.invoke(cli, ["--config", str(cfg), "publish", "--dry-run"])
        assert table.exit_code == 0, table.output
        assert "dry run" in table.output and "description" in table.output
        assert "conflict" in table.output

        assert running.store.count("products/batch") == 0
        assert running.store.writes == {}
        after = (db.execute("SELECT COUNT(*) FROM runs").fetchone(),
                 db.execute("SELECT id, status, updated_at FROM jobs ORDER BY id").fetchall())
        assert after == before
        assert db.execute("SELECT COUNT(*) FROM publishes").fetchone() == (0,)
        db.close()

        # the real thing through the CLI: exit 1 because one approved draft was a conflict
        real = runner.invoke(cli, ["--config", str(cfg), "publish", "--json"])
        assert real.exit_code == 1, real.output
        assert json.loads(real.output)["counts"]["written"] == 3


def test_publish_without_keys_says_which_variable_to_set(tmp_path: Path) -> None:
    with sandbox(5) as running:
        cfg = _config(tmp_path, running.url)
        result = CliRunner().invoke(cli, ["--config", str(cfg), "publish"])
    assert result.exit_code == 2
    assert "WOO_CONSUMER_KEY" in result.output


def test_plan_publish_reads_only(ledger: Ledger) -> None:
    with sandbox(12) as running:
        settings = settings_for(running)
        synced_and_approved(ledger, running, settings, approved=5)
        with client_for(running) as client:
            report = plan_publish(ledger, client, settings)
        assert [i.action for i in report.items] == ["write"] * 5
        assert running.store.count(method="POST") == 0
        assert ledger.counts()["product"]["approved"] == 5


def test_wrong_keys_stop_publish_with_what_to_check_and_no_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WOO_CONSUMER_KEY", KEY)
    monkeypatch.setenv("WOO_CONSUMER_SECRET", "cs_wrong_secret_value")
    with sandbox(10) as running:
        cfg = _config(tmp_path, running.url)
        with Ledger(tmp_path / "ledger.db") as ledger:
            synced_and_approved(ledger, running, settings_for(running), approved=3)
        result = CliRunner().invoke(cli, ["--config", str(cfg), "publish"])
        assert result.exit_code == 2
        assert "WOO_CONSUMER_SECRET" in result.output or "secret" in result.output.lower()
        assert "cs_wrong_secret_value" not in result.output
        assert running.store.writes == {}
        with Ledger(tmp_path / "ledger.db") as ledger:
            assert ledger.counts()["product"]["approved"] == 3
            assert ledger.last_run("publish")["exit_reason"] == "error"
