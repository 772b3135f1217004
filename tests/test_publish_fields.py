"""What publish sends for each kind of draft field: image alt text through the whole
gallery, and refusals that name the product and the field."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from enrich.config import Settings, StoreConfig, SyncConfig
from enrich.ledger import Attempt, DraftRecord, Ledger
from enrich.publish import publish, rollback
from enrich.sandbox.store import RunningStore, StoreOptions, serve_store
from tests.publish_helpers import KEY, SECRET, client_for, sync_store

CHAIR = {
    "id": 7, "name": "Oak Chair", "type": "simple", "status": "publish", "sku": "OAK-7",
    "description": "Solid oak chair with a woven seat, 45 cm seat height, made in Portugal "
                   "from FSC certified oak and finished with natural oil.",
    "short_description": "",
    "images": [{"id": 501, "src": "http://127.0.0.1/a.jpg", "name": "front", "alt": ""},
               {"id": 502, "src": "http://127.0.0.1/b.jpg", "name": "back", "alt": "Back"},
               {"id": 503, "src": "http://127.0.0.1/c.jpg", "name": "seat", "alt": ""}],
}


@contextmanager
def chair_store() -> Iterator[RunningStore]:
    with serve_store([dict(CHAIR)], options=StoreOptions(consumer_key=KEY,
                                                         consumer_secret=SECRET)) as running:
        yield running


def _settings(running: RunningStore, plugin: str = "yoast") -> Settings:
    return Settings(store=StoreConfig(url=running.url, seo_plugin=plugin),  # type: ignore[arg-type]
                    sync=SyncConfig(fields=["short_description", "image_alt", "seo_title"]))


def _approve(ledger: Ledger, fields: dict) -> int:
    job = ledger.claim("w", limit=1)[0]
    ledger.complete(job.id, "w", DraftRecord(fields=fields),
                    Attempt(started_at=time.time(), outcome="ok"))
    ledger.review(job.id, "approved")
    return job.id


def test_image_alt_fills_missing_alts_keeps_the_gallery_and_rolls_back(ledger: Ledger) -> None:
    with chair_store() as running:
        settings = _settings(running)
        sync_store(ledger, running, settings)
        before = running.store.product(7)
        _approve(ledger, {"short_description": "An oak chair with a woven seat.",
                          "seo_title": "Oak Chair with Woven Seat",
                          "image_alt": ["Oak chair, front", "Oak chair, back",
                                        "Woven seat close-up"]})
        with client_for(running) as client:
            report = publish(ledger, client, settings)
            assert report.counts()["written"] == 1
            images = running.store.product(7)["images"]
            assert [(i["id"], i["src"], i["alt"]) for i in images] == [
                (501, "http://127.0.0.1/a.jpg", "Oak chair, front"),
                (502, "http://127.0.0.1/b.jpg", "Back"),  # it had alt text: kept
                (503, "http://127.0.0.1/c.jpg", "Woven seat close-up")]
            changes = {c["field"] for c in report.items[0].changes}
            assert {"image:501:alt", "image:503:alt"} <= changes
            assert "image:502:alt" not in changes
            back = rollback(ledger, client, settings, run_id=report.run_id)
        assert back.counts()["rolled_back"] == 1
        after = running.store.product(7)
        assert after["images"] == before["images"]
        assert after["short_description"] == ""
        assert after["meta_data"] == before["meta_data"]


def test_a_draft_field_that_cannot_be_sent_is_an_error_naming_it(ledger: Ledger) -> None:
    with chair_store() as running:
        settings = _settings(running)
        sync_store(ledger, running, settings)
        job_id = _approve(ledger, {"short_description": 42, "image_alt": ["x", "y", "z"]})
        with client_for(running) as client:
            report = publish(ledger, client, settings)
        assert report.counts()["error"] == 1 and not report.ok
        reason = report.items[0].reason or ""
        assert "product 7" in reason and "short_description" in reason
        assert running.store.count("products/batch") == 0
        job = ledger.get_job(job_id)
        assert job.status == "approved" and "short_description" in (job.last_error or "")


def test_changing_the_seo_plugin_after_sync_is_refused_not_a_conflict(ledger: Ledger) -> None:
    with chair_store() as running:
        sync_store(ledger, running, _settings(running, "yoast"))
        _approve(ledger, {"short_description": "An oak chair.", "seo_title": "Oak Chair"})
        with client_for(running) as client:
            report = publish(ledger, client, _settings(running, "rankmath"))
        item = report.items[0]
        assert item.action == "error" and "seo_plugin changed since sync" in (item.reason or "")
        assert running.store.writes == {}


def test_backslashes_in_a_draft_survive_the_stores_unslashing(ledger: Ledger) -> None:
    """The sandbox unslashes description/short_description as the recorded WooCommerce does
    (copy_normalisation.json: ``\\n`` sent is stored as ``n``); publish slashes them on the
    wire, so the store holds the draft byte for byte and the rollback compares with that."""
    with chair_store() as running:
        settings = _settings(running)
        sync_store(ledger, running, settings)
        before = running.store.product(7)
        draft = r"An oak chair; the label reads C:\Temp\n (a backslash-n, kept as typed)."
        _approve(ledger, {"short_description": draft, "seo_title": r"Oak Chair \ Woven"})
        with client_for(running) as client:
            report = publish(ledger, client, settings)
            stored = running.store.product(7)
            back = rollback(ledger, client, settings, run_id=report.run_id)
        after = running.store.product(7)
    assert report.counts()["written"] == 1
    assert stored["short_description"] == draft
    assert back.counts()["rolled_back"] == 1, back.as_dict()
    assert after["short_description"] == before["short_description"]
    assert after["meta_data"] == before["meta_data"]


def test_a_rollback_puts_back_a_literal_backslash_n_exactly(ledger: Ledger) -> None:
    """Rollback's own write is unslashed by the store too: it must send what restores the
    stored value, a supplier's literal ``\\n`` included."""
    chair = dict(CHAIR, short_description=r"Oak.\nSeat.")
    with serve_store([chair], options=StoreOptions(consumer_key=KEY,
                                                   consumer_secret=SECRET)) as running:
        settings = Settings(store=StoreConfig(url=running.url, seo_plugin="yoast"),
                            sync=SyncConfig(fields=["short_description"],
                                            min_length={"short_description": 40}))
        sync_store(ledger, running, settings)
        assert ledger.get_product("7")["snapshot"]["short_description"] == "Oak.\nSeat."
        _approve(ledger, {"short_description": "A solid oak chair with a woven seat."})
        with client_for(running) as client:
            report = publish(ledger, client, settings)
            back = rollback(ledger, client, settings, run_id=report.run_id)
        after = running.store.product(7)
    assert back.counts()["rolled_back"] == 1, back.as_dict()
    assert after["short_description"] == r"Oak.\nSeat."
