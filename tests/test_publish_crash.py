"""A publish killed at any point and run again writes each product at most once and loses
nothing: SIGKILL of a real `enrich publish` process mid-batch (left an unreaped zombie, which
must not block the next publish), and an interrupt between the write-ahead commit and the
request."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from enrich.ledger import Ledger
from enrich.publish import publish
from tests.process_helpers import is_zombie, kill_leaving_zombie, reap
from tests.publish_helpers import (
    KEY,
    SECRET,
    client_for,
    draft_text,
    sandbox,
    settings_for,
    source_of,
    synced_and_approved,
)


def _enrich(cfg: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "WOO_CONSUMER_KEY": KEY, "WOO_CONSUMER_SECRET": SECRET}
    return subprocess.Popen(
        [sys.executable, "-c", "from enrich.cli import main; main()", "--config", str(cfg),
         *args], cwd=cfg.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def _planned(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return int(conn.execute(
            "SELECT COUNT(*) FROM publishes WHERE outcome = 'planned'").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not migrated yet
    finally:
        conn.close()


def test_sigkill_mid_publish_then_rerun_writes_nothing_twice_and_loses_nothing(
        tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    with sandbox(260, seed=21) as running:
        cfg = tmp_path / "config.toml"
        cfg.write_text(f'[store]\nurl = "{running.url}"\nseo_plugin = "yoast"\n'
                       'timeout_s = 5\n[ledger]\npath = "ledger.db"\n', encoding="utf-8")
        settings = settings_for(running)
        with Ledger(db) as ledger:
            job_ids = synced_and_approved(ledger, running, settings, approved=250)
            approved = {source_of(ledger, j) for j in job_ids[:250]}
        store = running.store
        store.options.latency_ms = 600  # every request takes 0.6 s inside the store

        child = _enrich(cfg, "publish", "--json")
        deadline = time.monotonic() + 30
        while _planned(db) < 100:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "publish never planned its first batch"
            time.sleep(0.02)
        time.sleep(0.2)  # the first batch request is now inside the store
        # Killed and not reaped, as under a PID 1 that reaps nothing: a zombie whose pid
        # `os.kill(pid, 0)` calls alive. Its publish lock died with it all the same.
        kill_leaving_zombie(child)
        in_doubt = _planned(db)  # rows whose batch the killed process never settled
        assert in_doubt > 0  # normally the 100 rows of batch 1

        rerun = _enrich(cfg, "publish", "--json")
        out, err = rerun.communicate(timeout=60)
        assert rerun.returncode == 0, err
        assert is_zombie(child)  # the rerun ran beside the unreaped killed publisher
        report = json.loads(out)
        counts = report["counts"]
        # The batch in flight reached the store and landed after the kill: recognised as
        # written, not sent again. (On a machine so loaded that the kill came before the
        # request left, its rows are untouched instead and the rerun sends them once.)
        assert (counts["recovered_written"], counts["recovered_resent"]) in (
            (in_doubt, 0), (0, in_doubt))
        with Ledger(db) as ledger:
            before_kill = ledger.conn.execute(
                "SELECT COUNT(*) FROM publishes WHERE outcome = 'written' AND run_id = ?",
                (report["run_id"] - 1,)).fetchone()[0] - counts["recovered_written"]
        assert before_kill + counts["recovered_written"] + counts["written"] == 250

        assert set(store.writes) == approved
        assert set(store.writes.values()) == {1}, "a product was written twice"
        assert store.count("products/batch", "POST") == 3
        with Ledger(db) as ledger:
            assert ledger.counts()["product"]["published"] == 250
            assert ledger.counts()["product"]["approved"] == 0
            outcomes = dict(ledger.conn.execute(
                "SELECT outcome, COUNT(*) FROM publishes GROUP BY outcome").fetchall())
            assert outcomes == {"written": 250}
            killed_run = ledger.list_runs("publish")[-1]
            assert killed_run["exit_reason"] == "signal"  # closed by the run that took over
        for pid in list(approved)[:10]:
            assert store.product(pid)["description"] == draft_text(str(pid), "description")

        store.options.latency_ms = 0
        again = _enrich(cfg, "publish", "--json")
        out, err = again.communicate(timeout=60)
        assert again.returncode == 0, err
        assert json.loads(out)["counts"]["written"] == 0
        assert store.count("products/batch", "POST") == 3
        reap(child)


def test_interrupted_after_the_backup_and_before_the_request(ledger: Ledger) -> None:
    with sandbox(60, seed=22) as running:
        settings = settings_for(running, batch_size=20)
        job_ids = synced_and_approved(ledger, running, settings, approved=50)
        approved = {source_of(ledger, j) for j in job_ids[:50]}
        store = running.store

        def stop_before_the_second_batch(batch_no: int, size: int) -> None:
            if batch_no == 2:
                raise KeyboardInterrupt  # Ctrl-C right after the planned rows committed

        with client_for(running) as client:
            with pytest.raises(KeyboardInterrupt):
                publish(ledger, client, settings, on_batch=stop_before_the_second_batch)
            assert ledger.last_run("publish")["exit_reason"] == "signal"
            planned = ledger.conn.execute(
                "SELECT COUNT(*) FROM publishes WHERE outcome = 'planned'").fetchone()[0]
            assert planned == 20
            assert sum(store.writes.values()) == 20

            report = publish(ledger, client, settings, settle_s=0.0)
        assert report.counts()["recovered_resent"] == 20
        assert report.counts()["written"] == 30
        assert set(store.writes) == approved and set(store.writes.values()) == {1}
        assert ledger.counts()["product"]["published"] == 50
        leftovers = ledger.conn.execute(
            "SELECT COUNT(*) FROM publishes WHERE outcome = 'planned'").fetchone()[0]
        assert leftovers == 0


def test_a_young_untouched_row_gets_time_to_land_before_it_is_resent(ledger: Ledger) -> None:
    """The killed process's request may still be running in the store: a planned row younger
    than the store timeout is read again after that time before it counts as unsent."""
    with sandbox(30, seed=23) as running:
        settings = settings_for(running, batch_size=10)
        synced_and_approved(ledger, running, settings, approved=10)

        def stop(batch_no: int, size: int) -> None:
            raise KeyboardInterrupt

        with client_for(running) as client:
            with pytest.raises(KeyboardInterrupt):
                publish(ledger, client, settings, on_batch=stop)
            started = time.monotonic()
            report = publish(ledger, client, settings, settle_s=1.0)
        assert time.monotonic() - started >= 0.9
        assert report.counts()["recovered_resent"] == 10
        assert set(running.store.writes.values()) == {1}
