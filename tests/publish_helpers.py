"""Shared set-up for the publish and rollback tests: a sandbox store, a synced ledger, and
approved drafts made through the real ledger API (enqueue by sync, claim, complete, review)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from enrich.config import PublishConfig, Settings, StoreConfig
from enrich.ledger import Attempt, DraftRecord, Ledger
from enrich.sandbox.catalog import synthetic_catalog
from enrich.sandbox.store import RunningStore, StoreOptions, serve_store
from enrich.sync import sync
from enrich.woo import WooClient

KEY = "ck_publish_tests_0123456789"
SECRET = "cs_publish_tests_9876543210"
#: The fields publish writes, and what the store keeps them under (Yoast).
SEO_KEYS = {"seo_title": "_yoast_wpseo_title", "meta_description": "_yoast_wpseo_metadesc"}


@contextmanager
def sandbox(n: int, *, seed: int = 11, **options: Any) -> Iterator[RunningStore]:
    """A sandbox store of ``n`` synthetic products on 127.0.0.1 (real HTTP)."""
    opts = StoreOptions(consumer_key=KEY, consumer_secret=SECRET, seed=seed, **options)
    with serve_store(list(synthetic_catalog(n, seed)), options=opts) as running:
        yield running


def settings_for(running: RunningStore, *, batch_size: int = 100,
                 timeout_s: float = 10.0) -> Settings:
    return Settings(store=StoreConfig(url=running.url, seo_plugin="yoast", timeout_s=timeout_s),
                    publish=PublishConfig(batch_size=batch_size))


def client_for(running: RunningStore, **kwargs: Any) -> WooClient:
    """A connector with short back-off, so fault tests take seconds."""
    kwargs.setdefault("backoff_base_s", 0.02)
    kwargs.setdefault("backoff_max_s", 0.2)
    kwargs.setdefault("max_attempts", 8)
    return WooClient(running.url, KEY, SECRET, **kwargs)


def draft_text(job_source_id: str, field: str) -> str:
    return {
        "description": f"<p>Approved description for product {job_source_id}, written from "
                       "its supplier data.</p>",
        "short_description": f"Approved summary for product {job_source_id}.",
        "seo_title": f"Product {job_source_id} | Test Shop",
        "meta_description": f"Everything about product {job_source_id}: material, size and "
                            "care, from the supplier's own data sheet.",
    }[field]


def sync_store(ledger: Ledger, running: RunningStore, settings: Settings) -> None:
    with client_for(running) as client:
        sync(ledger, client, settings, full=True)


def draft_all(ledger: Ledger, *, limit: int | None = None) -> list[int]:
    """Claim pending jobs and complete each with a draft for the fields sync asked for."""
    done: list[int] = []
    while limit is None or len(done) < limit:
        want = 100 if limit is None else min(100, limit - len(done))
        jobs = ledger.claim("test-worker", limit=want)
        if not jobs:
            break
        for job in jobs:
            fields = {f: draft_text(job.source_id, f) for f in job.payload["fields"]}
            ledger.complete(job.id, "test-worker", DraftRecord(fields=fields, provider="test"),
                            Attempt(started_at=time.time(), outcome="ok"))
            done.append(job.id)
    return done


def approve(ledger: Ledger, job_ids: list[int]) -> None:
    for job_id in job_ids:
        ledger.review(job_id, "approved")


def synced_and_approved(ledger: Ledger, running: RunningStore, settings: Settings,
                        approved: int) -> list[int]:
    """Sync the store, draft every queued job, approve the first ``approved``."""
    sync_store(ledger, running, settings)
    job_ids = draft_all(ledger)
    assert len(job_ids) >= approved, f"the catalog queued only {len(job_ids)} jobs"
    approve(ledger, job_ids[:approved])
    return job_ids


def source_of(ledger: Ledger, job_id: int) -> int:
    return int(ledger.get_job(job_id).source_id)


def meta(product: dict[str, Any], key: str) -> Any:
    values = [m["value"] for m in product.get("meta_data") or [] if m.get("key") == key]
    return values[-1] if values else None


def copy_fields(product: dict[str, Any]) -> dict[str, Any]:
    """What a rollback must restore exactly: the copy fields and all meta (ids included)."""
    return {"name": product["name"], "description": product["description"],
            "short_description": product["short_description"],
            "meta_data": sorted(((m["key"], m["value"]) for m in product["meta_data"]),
                                key=lambda kv: (kv[0], str(kv[1])))}
