"""`enrich nightly`: sync then draft, as cron runs it, against the sandbox store."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from enrich.cli.main import cli
from enrich.ledger import Ledger
from enrich.ledger.locks import lock_file
from enrich.sandbox.catalog import synthetic_catalog
from enrich.sandbox.store import serve_store
from tests.process_helpers import hold_lock_in_child, is_zombie, kill_leaving_zombie
from tests.woo_helpers import KEY, SECRET, options

ENV = {"WOO_CONSUMER_KEY": KEY, "WOO_CONSUMER_SECRET": SECRET}


def _offline_config(folder: Path, store_url: str, extra: str = "") -> Path:
    config = folder / "config.toml"
    config.write_text(f"""[store]
url = "{store_url}"
[sync]
fields = ["description", "short_description"]
[llm]
provider = "offline"
model = "offline-v1"
{extra}""", encoding="utf-8")
    return config


def test_nightly_syncs_and_drafts_then_a_second_night_finds_nothing(tmp_path: Path) -> None:
    with serve_store(list(synthetic_catalog(40, seed=9)), options=options()) as srv:
        config = _offline_config(tmp_path, srv.url, '[nightly]\nuntil = "23:59"\n')
        first = CliRunner().invoke(cli, ["--config", str(config), "nightly"], env=ENV)
        second = CliRunner().invoke(cli, ["--config", str(config), "nightly", "--limit", "5"],
                                    env=ENV)
    assert first.exit_code == 0, first.output
    assert "run #" in first.output and "enrich publish" in first.output
    assert SECRET not in first.output
    with Ledger(tmp_path / "enrich.db") as ledger:
        counts = ledger.counts()["product"]
        runs = ledger.list_runs()
    assert counts["pending"] == 0 and counts["drafted"] > 0
    assert [r["kind"] for r in runs][:4] == ["run", "sync", "run", "sync"]
    assert "0/0 done" in second.output


def test_a_second_nightly_exits_0_and_one_killed_never_blocks_the_next(tmp_path: Path) -> None:
    with serve_store(list(synthetic_catalog(8, seed=9)), options=options()) as srv:
        config = _offline_config(tmp_path, srv.url)
        db = tmp_path / "enrich.db"
        Ledger(db).close()
        first = hold_lock_in_child("nightly", db)  # a nightly still running
        try:
            second = CliRunner().invoke(cli, ["--config", str(config), "nightly"], env=ENV)
            assert second.exit_code == 0, second.output
            assert re.search(rf"already running \(pid {first.pid}, since \d\d:\d\d\)",
                             second.output), second.output
            assert srv.store.count() == 0  # it did nothing at all
            # The first one is killed and left unreaped (a zombie): the next night runs.
            kill_leaving_zombie(first)
            third = CliRunner().invoke(cli, ["--config", str(config), "nightly"], env=ENV)
            assert is_zombie(first)
        finally:
            first.kill()
            first.communicate(timeout=10)
    assert third.exit_code == 0, third.output
    assert "already running" not in third.output and "run #" in third.output
    with Ledger(db) as ledger:
        assert [r["kind"] for r in ledger.list_runs()] == ["run", "sync"]
    assert not lock_file(db, "nightly").exists()
