"""`enrich estimate`, `run` and `report` through the CLI, on a ledger synced from the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from enrich.cli.main import cli
from enrich.ledger import Ledger
from enrich.sandbox.llm import serve_llm
from tests.paths import INVOICES
from tests.worker_helpers import FAKE_KEY, synced_ledger


def _config(tmp_path: Path, db: Path, llm: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f"""
[sync]
fields = ["description", "short_description"]
[llm]
{llm}
max_rpm = 60000
max_tpm = 100000000
[ledger]
path = "{db}"
""")
    return config


def _cli(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args],
                                env={"OPENAI_API_KEY": FAKE_KEY})
    # --json is read from stdout, as a script reads it; progress lines go to stderr.
    return result.exit_code, result.stdout if "--json" in args else result.output


def test_estimate_run_report_with_a_priced_model(db_path: Path, tmp_path: Path) -> None:
    with Ledger(db_path) as ledger, synced_ledger(ledger, 40):
        waiting = ledger.counts()["product"]["pending"]
    with serve_llm() as llm:
        config = _config(tmp_path, db_path, f'provider = "openai"\nmodel = "gpt-4o"\n'
                                            f'base_url = "{llm.url}/v1"')
        code, out = _cli(config, "estimate", "--json")
        assert code == 0, out
        estimate = json.loads(out)
        assert estimate["jobs"] == waiting and estimate["method"] == "rendered prompts"
        assert 0 < estimate["cost_batch_usd"] < estimate["cost_live_usd"]
        code, out = _cli(config, "run", "--limit", "5")
        assert code == 0, out
        assert "run #" in out and "limit" in out
        code, out = _cli(config, "estimate", "--sample", "5", "--json")
        assert code == 0, out
        measured = json.loads(out)
        # The rest is priced from the 10 drafts recorded so far (the run's and the sample's).
        assert measured["method"] == "recorded usage" and measured["recorded"] == 10
        assert measured["jobs"] == measured["sampled"] == waiting - 10
        assert "10 gpt-4o draft(s)" in measured["basis"]
        code, out = _cli(config, "run")
        assert code == 0, out
    code, out = _cli(config, "report", "--json")
    report = json.loads(out)
    assert [r["exit_reason"] for r in report["runs"]] == ["completed", "limit", "limit"]
    total = report["total"]
    assert total["drafted"] == waiting and total["cost_usd"] > 0 and total["tokens_in"] > 0
    assert total["p95_latency_ms"] >= total["mean_latency_ms"] * 0.5
    assert sum(r["cost_usd"] for r in report["runs"]) == pytest.approx(total["cost_usd"],
                                                                      abs=1e-5)
    code, out = _cli(config, "report")  # not a terminal: as wide as its content, not 80
    assert code == 0, out
    header = next(line for line in out.splitlines() if "tokens in/out/cached" in line)
    assert "p95 ms" in header and len(header) > 100 and "…" not in out


def test_estimate_refuses_an_unknown_model_before_spending(db_path: Path,
                                                           tmp_path: Path) -> None:
    config = _config(tmp_path, db_path, 'provider = "openai"\nmodel = "my-finetune"')
    code, out = _cli(config, "estimate")
    assert code == 2 and "my-finetune" in out and "llm.prices" in out


def test_run_kind_invoice_drafts_invoices(db_path: Path, tmp_path: Path) -> None:
    """`run --kind invoice` (once refused) drafts what `invoices add` queued; products wait."""
    config = _config(tmp_path, db_path, 'provider = "offline"\nmodel = "offline-v1"')
    pdf = INVOICES / "invoice2data" / "NetpresseInvoice.pdf"
    code, out = _cli(config, "invoices", "add", str(pdf), "--json")
    assert code == 0 and json.loads(out)["queued"] == 1
    code, out = _cli(config, "run", "--kind", "invoice")
    assert code == 0 and "drafted 1" in out
    code, out = _cli(config, "invoices", "export", "--all", "--format", "jsonl")
    assert code == 0
    record = json.loads(out)
    assert record["invoice"]["invoice_number"] == "2022089083"
    assert record["invoice"]["total"] == "56.02" and record["source"] == "text_layer"
