"""`enrich demo` runs the whole flow for real: what it reports is what the store now holds."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from enrich.cli.main import cli
from enrich.ledger import Ledger


def test_demo_publishes_approved_copy_and_keeps_the_store_edit(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--dir", str(folder)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "publish again: 0 written" in out
    state = json.loads((folder / "store-state.json").read_text())
    by_id = {str(p["id"]): p for p in state}
    review = (folder / "review.html").read_text()
    assert "<script>alert" not in review
    with Ledger(folder / "enrich.db") as ledger:
        published = ledger.list_jobs(status="published")
        conflicts = ledger.list_jobs(status="conflict")
        assert published and len(conflicts) == 1
        for job in published:
            draft = ledger.draft_for(job.id)
            assert draft is not None
            product = by_id[job.source_id]
            for name, value in draft["fields"].items():
                if name in ("description", "short_description"):
                    assert product[name] == value
                elif name == "seo_title":
                    meta = {m["key"]: m["value"] for m in product["meta_data"]}
                    assert meta["_yoast_wpseo_title"] == value
        edited = by_id[conflicts[0].source_id]
        assert edited["short_description"] == "Edited by the shop owner in wp-admin."
        assert ledger.last_run("run")["exit_reason"] == "completed"
    assert f"{len(published)} products written" in out
