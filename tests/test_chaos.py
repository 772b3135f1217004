"""The chaos bench (bench/chaos.py), reduced: `enrich sync`, `run` and `publish` as real
processes, each SIGKILLed twice at seeded moments (one of them with a request of the stage's
kind inside a sandbox) and resumed; nothing lost, nothing drafted or written twice, the ledger
intact, and the store equal to the approved drafts at the end. Plus a check that the harness's
own detectors see a double write and a write the ledger does not know about."""

from __future__ import annotations

from pathlib import Path

import httpx

from bench.chaos import (
    KEY,
    SECRET,
    ChaosConfig,
    publish_violations,
    read_ledger,
    run_chaos,
    store_equals_drafts,
    summary,
)
from enrich.ledger import Ledger
from enrich.sandbox.catalog import synthetic_catalog
from enrich.sandbox.store import StoreOptions, serve_store
from tests.store_helpers import OAuth1


def test_kill_9_of_sync_run_and_publish_then_resume_publishes_every_approved_draft_once(
        tmp_path: Path) -> None:
    lines: list[str] = []
    # Killed children are left unreaped (zombies), as under a container's PID 1: the next
    # command must start at once all the same (the locks are flocks, not pid checks).
    report = run_chaos(ChaosConfig(seed=3, kills=2, products=60, time_bound_s=150,
                                   store_latency_ms=200, llm_latency_ms=150, batch_size=5,
                                   keep=tmp_path / "chaos", echo=lines.append, reap=False))
    text = summary(report) + "\n" + "\n".join(lines)
    assert report.all_violations == [], text
    stages = {s.name: s for s in report.stages}
    assert list(stages) == ["sync", "run", "publish"], text
    for stage in stages.values():
        assert stage.landed == 2, text  # both kills hit a running command
        # Two restarts after a kill; the last one (at least) got on with the work.
        assert len(stage.resumes) == 2 and stage.resumes[-1].first_progress_s, text
    # The first publish kill waits for a batch write to be inside the store.
    assert stages["publish"].mid_request >= 1, text
    figures = stages["publish"].figures
    assert figures["approved"] == figures["written_once"] > 0, text
    assert figures["written_twice"] == 0, text
    assert figures["fields_compared"] >= figures["approved"], text
    assert stages["run"].figures["drafted"] + stages["run"].figures["dead"] == \
        stages["run"].figures["jobs"], text


def test_the_detectors_see_a_double_write_and_a_write_the_ledger_never_planned(
        tmp_path: Path) -> None:
    """The bench is only as good as its checks: a product written twice through the store's
    real batch endpoint, with no publish row for it, must be reported both ways."""
    options = StoreOptions(consumer_key=KEY, consumer_secret=SECRET)
    with serve_store(list(synthetic_catalog(5, 1)), options=options) as running, \
            httpx.Client(base_url=running.api_url, auth=OAuth1(KEY, SECRET),
                         timeout=10) as http:
        pid = running.store.products()[0]["id"]
        for text in ("first", "second"):
            reply = http.post("/products/batch",
                              json={"update": [{"id": pid, "short_description": text}]})
            assert reply.status_code == 200, reply.text
        db = tmp_path / "ledger.db"
        with Ledger(db):
            pass
        with read_ledger(db) as conn:
            found = publish_violations(conn, running.store, {})
            mismatches, compared = store_equals_drafts(conn, running.store, {7: str(pid)})
    assert f"product {pid} written 2 times" in found
    assert f"product {pid} written to the store with no publish row in the ledger" in found
    assert mismatches == ["approved job 7 has no draft"] and compared == 0
