"""Publish through a throttling, failing store: 429 / 503 / 501 mid-publish recover, and a
batch that failed outright is re-sent only for products the store shows untouched."""

from __future__ import annotations

import threading
from collections import Counter

from enrich.errors import StoreUnavailable
from enrich.ledger import Ledger
from enrich.publish import publish
from tests.publish_helpers import (
    client_for,
    draft_text,
    sandbox,
    settings_for,
    source_of,
    synced_and_approved,
)


def _statuses(running: object, since: int) -> Counter[int]:
    log = list(running.store.request_log)[since:]  # type: ignore[attr-defined]
    return Counter(entry.status for entry in log)


def test_429_and_503_mid_publish_recover(ledger: Ledger) -> None:
    with sandbox(260, seed=3) as running:
        settings = settings_for(running)
        job_ids = synced_and_approved(ledger, running, settings, approved=250)
        approved = {source_of(ledger, j) for j in job_ids[:250]}
        store = running.store
        mark = len(store.request_log)
        store.options.fail_rate = 0.3  # 503s and WAF 501s from here on
        store.options.rate_limit = 4  # and 429 + Retry-After past 4 requests/s
        with client_for(running) as client:
            report = publish(ledger, client, settings)
        seen = _statuses(running, mark)
        assert seen[503] + seen[501] > 0 and seen[429] > 0, seen
        assert report.ok and report.counts()["written"] == 250
        assert set(store.writes) == approved and set(store.writes.values()) == {1}
        assert ledger.counts()["product"]["published"] == 250
        for pid in list(approved)[:10]:
            assert store.product(pid)["description"] == draft_text(str(pid), "description")


def test_429_burst_is_waited_out(ledger: Ledger) -> None:
    with sandbox(30, seed=4) as running:
        settings = settings_for(running)
        synced_and_approved(ledger, running, settings, approved=20)
        store = running.store
        mark = len(store.request_log)
        store.options.rate_limit = 1
        with client_for(running) as client:
            report = publish(ledger, client, settings)
        assert _statuses(running, mark)[429] > 0
        assert report.counts()["written"] == 20
        assert set(store.writes.values()) == {1}


def test_a_batch_that_failed_outright_is_resent_only_when_safe(ledger: Ledger) -> None:
    """The connector gives up after 2 tries; publish reads the batch back and re-sends the
    untouched products (or leaves them approved for the next run): never a double write."""
    with sandbox(130, seed=9) as running:
        settings = settings_for(running, batch_size=25)
        job_ids = synced_and_approved(ledger, running, settings, approved=120)
        approved = {source_of(ledger, j) for j in job_ids[:120]}
        store = running.store
        store.options.fail_rate = 0.5
        runs = 0
        stopped = 0
        with client_for(running, max_attempts=2) as client:
            while ledger.counts()["product"]["approved"] and runs < 30:
                runs += 1
                try:
                    publish(ledger, client, settings, pause_s=0.01, settle_s=0.0)
                except StoreUnavailable:
                    stopped += 1  # a cron run that ended early; the next one carries on
        assert ledger.counts()["product"]["published"] == 120
        assert set(store.writes) == approved
        assert set(store.writes.values()) == {1}, "a product was written twice"
        reasons = [r[0] for r in ledger.conn.execute(
            "SELECT error FROM publishes WHERE outcome = 'error'")]
        assert any("batch request failed" in (r or "") for r in reasons), reasons
        assert stopped >= 1 or any("sent again" in (r or "") for r in reasons)


def test_a_timed_out_batch_that_lands_late_is_not_written_twice(ledger: Ledger) -> None:
    """The client gives up on a slow batch while the store is still applying it: publish
    waits out the store timeout, reads back, sees the write landed, and does not re-send."""
    with sandbox(30, seed=12) as running:
        settings = settings_for(running, timeout_s=2.0)
        job_ids = synced_and_approved(ledger, running, settings, approved=10)
        approved = {source_of(ledger, j) for j in job_ids[:10]}
        store = running.store

        def slow_store_for_this_request(batch_no: int, size: int) -> None:
            store.options.latency_ms = 1500  # the batch request will take 1.5 s ...
            threading.Timer(0.3, lambda: setattr(store.options, "latency_ms", 0)).start()

        with client_for(running, timeout_s=0.7) as client:  # ... the client waits 0.7 s
            report = publish(ledger, client, settings, on_batch=slow_store_for_this_request)
        assert report.counts()["written"] == 10 and report.ok
        assert report.settled.batch_requests == 1
        assert set(store.writes) == approved and set(store.writes.values()) == {1}
        assert store.count("products/batch", "POST") == 1
