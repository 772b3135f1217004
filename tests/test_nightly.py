"""`enrich nightly`: sync then draft, as cron runs it, against the sandbox store."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from enrich.cli.main import cli
from enrich.ledger import Ledger
from enrich.sandbox.catalog import synthetic_catalog
from enrich.sandbox.store import serve_store
from tests.woo_helpers import KEY, SECRET, options


def test_nightly_syncs_and_drafts_then_a_second_night_finds_nothing(tmp_path: Path) -> None:
    with serve_store(list(synthetic_catalog(40, seed=9)), options=options()) as srv:
        config = tmp_path / "config.toml"
        config.write_text(f"""
[store]
url = "{srv.url}"
[sync]
fields = ["description", "short_description"]
[llm]
provider = "offline"
model = "offline-v1"
[nightly]
until = "23:59"
""")
        env = {"WOO_CONSUMER_KEY": KEY, "WOO_CONSUMER_SECRET": SECRET}
        first = CliRunner().invoke(cli, ["--config", str(config), "nightly"], env=env)
        second = CliRunner().invoke(cli, ["--config", str(config), "nightly", "--limit", "5"],
                                    env=env)
    assert first.exit_code == 0, first.output
    assert "run #" in first.output and "enrich publish" in first.output
    assert SECRET not in first.output
    with Ledger(tmp_path / "enrich.db") as ledger:
        counts = ledger.counts()["product"]
        runs = ledger.list_runs()
    assert counts["pending"] == 0 and counts["drafted"] > 0
    assert [r["kind"] for r in runs][:4] == ["run", "sync", "run", "sync"]
    assert "0/0 done" in second.output
