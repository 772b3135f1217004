"""Variations are published like products: through ``/products/<parent>/variations/batch``.

WooCommerce's own sample catalog (fixtures/) in the sandbox store: 2 variable products with 7
variations whose descriptions are lorem ipsum, so ``sync.variations = true`` queues them. The
offline provider drafts them (free, no network), every draft is approved, and publish,
publish again, an edit in the store and rollback run over real HTTP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

from enrich.config import LLMConfig, PublishConfig, Secrets, Settings, StoreConfig, SyncConfig
from enrich.ledger import Ledger
from enrich.ledger.publishes import rows_for_run
from enrich.publish import plan_publish, publish, rollback
from enrich.sandbox.store import RunningStore, StoreOptions, serve_store
from enrich.sync import sync
from enrich.worker import run_jobs
from tests.paths import WOO_SAMPLE_CSV
from tests.publish_helpers import KEY, SECRET, client_for


class WriteClock:
    """The store's clock, two seconds later after every item it writes.

    ``date_modified_gmt`` has one-second resolution; on a fast sandbox a parent's write and
    its variations' writes share a second, which would hide the parent's date moving when
    a variation is saved (as WooCommerce does). Each write in its own second shows it.
    """

    def __init__(self) -> None:
        self.running: RunningStore | None = None

    def __call__(self) -> float:
        writes = sum(self.running.store.writes.values()) if self.running else 0
        return time.time() + 2 * writes


@contextmanager
def sample_store() -> Iterator[RunningStore]:
    clock = WriteClock()
    options = StoreOptions(consumer_key=KEY, consumer_secret=SECRET, clock=clock)
    with serve_store(WOO_SAMPLE_CSV, options=options) as running:
        clock.running = running
        yield running


def settings_for(running: RunningStore, *, batch_size: int = 100) -> Settings:
    return Settings(store=StoreConfig(url=running.url, seo_plugin="yoast", timeout_s=10),
                    sync=SyncConfig(variations=True),
                    llm=LLMConfig(provider="offline", model="offline-v1", concurrency=4),
                    publish=PublishConfig(batch_size=batch_size))


def variations(running: RunningStore) -> dict[int, dict]:
    """Every variation as the store serves it over its API (edit context), by id."""
    parents = [p["id"] for p in running.store.products() if p["type"] == "variable"]
    with client_for(running) as client:
        return {v["id"]: v for parent in parents for v in client.get_variations(parent)}


def drafted_and_approved(ledger: Ledger, running: RunningStore, settings: Settings
                         ) -> list[str]:
    """sync -> run (offline) -> approve every draft; the variation ids that were approved."""
    with client_for(running) as client:
        sync(ledger, client, settings, full=True)
    result = asyncio.run(run_jobs(ledger, settings, Secrets({}), handle_signals=False))
    assert result.stats.drafted > 0
    approved_variations = []
    for job in ledger.list_jobs(status="drafted"):
        ledger.review(job.id, "approved")
        if ledger.get_product(job.source_id)["type"] == "variation":
            approved_variations.append(job.source_id)
    return approved_variations


def test_variations_publish_once_and_roll_back_exactly(ledger: Ledger) -> None:
    with sample_store() as running:
        settings = settings_for(running)
        vids = drafted_and_approved(ledger, running, settings)
        assert len(vids) == 7, vids  # every sample variation is lorem ipsum
        before = variations(running)
        with client_for(running) as client:
            plan = plan_publish(ledger, client, settings)
            assert {i.source_id: i.action for i in plan.items if i.source_id in vids} == \
                dict.fromkeys(vids, "write")
            report = publish(ledger, client, settings)
            assert report.ok, [(i.source_id, i.reason) for i in report.items
                               if i.outcome != "written"]
            assert set(vids) <= set(report.settled.written)
            # products in one request, each parent's variations in one more
            assert running.store.count("variations/batch", "POST") == 2
            assert running.store.count("products/batch", "POST") == 1
            after = variations(running)
            for vid in map(int, vids):
                job = ledger.list_jobs(source_id=str(vid))[-1]
                assert job.status == "published"
                draft = ledger.draft_for(job.id)["fields"]["description"]
                sent = next(r for r in rows_for_run(ledger, report.run_id)
                            if r["source_id"] == str(vid))
                assert sent["written"] == {"description": draft}
                assert sent["previous"]["item"] == {"description": before[vid]["description"]}
                assert sent["previous"]["parent_id"] == str(before[vid]["parent_id"])
                assert after[vid]["description"] != before[vid]["description"]
                assert "Lorem ipsum" not in after[vid]["description"]
                # the rest of the variation is untouched
                for key in ("sku", "regular_price", "attributes", "meta_data", "name"):
                    assert after[vid][key] == before[vid][key], (vid, key)

            writes = dict(running.store.writes)
            again = publish(ledger, client, settings)
            assert again.counts()["written"] == 0 and again.counts()["approved"] == 0
            assert dict(running.store.writes) == writes

            undo = rollback(ledger, client, settings, run_id=report.run_id)
            assert undo.ok, [(i.source_id, i.reason) for i in undo.items
                             if i.outcome != "rolled_back"]
            assert {i.source_id for i in undo.items} >= set(vids)
            # The variable parents were published too, and each variation write moved the
            # parent's date (WooCommerce saves it with them): enrich's own move, no conflict.
            parents = {str(v["parent_id"]) for v in before.values()}
            assert {i.source_id: i.outcome for i in undo.items if i.source_id in parents} == \
                dict.fromkeys(parents, "rolled_back")
        restored = variations(running)
        for vid in map(int, vids):
            assert restored[vid]["description"] == before[vid]["description"]
            assert restored[vid]["meta_data"] == before[vid]["meta_data"]
            assert ledger.list_jobs(source_id=str(vid))[-1].status == "rolled_back"


def test_a_variation_edited_in_the_store_after_sync_is_a_conflict(ledger: Ledger) -> None:
    with sample_store() as running:
        settings = settings_for(running)
        vids = drafted_and_approved(ledger, running, settings)
        edited = int(vids[0])
        running.store.edit(edited, description="Hand-written by the shop owner.")
        by_hand = running.store.product(edited)["description"]
        with client_for(running) as client:
            report = publish(ledger, client, settings)
        by_id = {i.source_id: i for i in report.items}
        assert by_id[str(edited)].outcome == "conflict"
        assert "description" in (by_id[str(edited)].reason or "")
        assert not report.ok
        assert running.store.product(edited)["description"] == by_hand
        assert edited not in running.store.writes
        assert ledger.list_jobs(source_id=str(edited))[-1].status == "conflict"
        others = [v for v in vids if v != str(edited)]
        assert all(by_id[v].outcome == "written" for v in others)


def test_a_variation_draft_field_a_variation_cannot_take_is_skipped_with_the_reason(
        ledger: Ledger) -> None:
    with sample_store() as running:
        settings = settings_for(running)
        vids = drafted_and_approved(ledger, running, settings)
        job = ledger.list_jobs(source_id=vids[0])[-1]
        fields = dict(ledger.draft_for(job.id)["fields"])
        ledger.review(job.id, "approved", edited_fields={
            **fields, "short_description": "A variation has none", "name": "Renamed"})
        with client_for(running) as client:
            plan = plan_publish(ledger, client, settings)
        item = {i.source_id: i for i in plan.items}[vids[0]]
        assert item.action == "write"
        assert [c["field"] for c in item.changes] == ["description"]
        assert "no short description" in item.skipped["short_description"]
        assert "attributes" in item.skipped["name"]


def test_a_parent_published_after_its_variations_is_not_a_conflict(ledger: Ledger) -> None:
    """Publishing the variations moves the parent's date; the parent published in a later
    run is written, not reported as saved by somebody."""
    with sample_store() as running:
        settings = settings_for(running)
        vids = drafted_and_approved(ledger, running, settings)
        parents = {str(ledger.get_product(v)["parent_id"]) for v in vids}
        parent_jobs = [j for p in parents for j in ledger.list_jobs(source_id=p)]
        assert parent_jobs, "the sample's variable products need copy too"
        ledger.set_status([j.id for j in parent_jobs], "drafted")  # approval withdrawn
        with client_for(running) as client:
            first = publish(ledger, client, settings)
            assert first.ok and set(vids) <= set(first.settled.written)
            ledger.set_status([j.id for j in parent_jobs], "approved")
            second = publish(ledger, client, settings)
        assert {i.source_id: i.outcome for i in second.items} == dict.fromkeys(parents,
                                                                               "written")
