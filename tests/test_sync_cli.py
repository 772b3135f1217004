"""`enrich sync` from the command line, against the sandbox store on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from enrich.cli.main import cli
from enrich.ledger import Ledger
from enrich.sandbox.store import serve_store
from tests.woo_helpers import KEY, SECRET, options, product


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[store]\nurl = "{url}"\n\n[ledger]\npath = "enrich.db"\n',
                    encoding="utf-8")
    return path


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WOO_CONSUMER_KEY", KEY)
    monkeypatch.setenv("WOO_CONSUMER_SECRET", SECRET)


def test_sync_prints_a_summary_and_is_idempotent(tmp_path: Path, keys: None) -> None:
    with serve_store([product(i) for i in range(1, 121)], options=options()) as srv:
        config = _config(tmp_path, srv.url)
        runner = CliRunner()
        first = runner.invoke(cli, ["--config", str(config), "sync"])
        second = runner.invoke(cli, ["--config", str(config), "sync", "--full", "--json"])
    assert first.exit_code == 0, first.output
    assert "scanned" in first.output and "120" in first.output
    assert "needs work" in first.output and "queued" in first.output
    data = json.loads(second.output)
    assert data["scanned"] == 120 and data["queued"] == 0 and data["unchanged"] == 120
    with Ledger(tmp_path / "enrich.db") as ledger:
        assert ledger.counts()["product"]["pending"] == 120


def test_dry_run_and_limit_flags(tmp_path: Path, keys: None) -> None:
    with serve_store([product(i) for i in range(1, 31)], options=options()) as srv:
        config = _config(tmp_path, srv.url)
        runner = CliRunner()
        dry = runner.invoke(cli, ["--config", str(config), "sync", "--dry-run", "--json"])
        limited = runner.invoke(cli, ["--config", str(config), "sync", "--limit", "10"])
    assert dry.exit_code == 0 and json.loads(dry.output)["queued"] == 30
    assert limited.exit_code == 0 and "stopped at --limit" in limited.output
    with Ledger(tmp_path / "enrich.db") as ledger:
        assert ledger.counts()["product"]["pending"] == 10


def test_wrong_secret_exits_2_without_printing_it(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WOO_CONSUMER_KEY", KEY)
    monkeypatch.setenv("WOO_CONSUMER_SECRET", "cs_leaky_wrong_secret")
    with serve_store([product(1)], options=options()) as srv:
        result = CliRunner().invoke(cli, ["--config", str(_config(tmp_path, srv.url)), "sync"])
    assert result.exit_code == 2
    assert "signature" in result.output and "what to do" in result.output
    assert "cs_leaky_wrong_secret" not in result.output


def test_missing_keys_name_the_variable(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(_config(tmp_path, "http://127.0.0.1:9")),
                                      "sync"])
    assert result.exit_code == 2 and "WOO_CONSUMER_KEY" in result.output
