"""A store synced into a real ledger, and settings pointing the worker at the sandbox LLM."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from enrich.config import LLMConfig, Secrets, Settings, StoreConfig, SyncConfig
from enrich.ledger import Ledger
from enrich.sandbox.catalog import synthetic_catalog
from enrich.sandbox.store import serve_store
from enrich.sync import sync
from tests.woo_helpers import client, options

FAKE_KEY = "sk-test-worker"
SECRETS = Secrets({"OPENAI_API_KEY": FAKE_KEY, "ANTHROPIC_API_KEY": FAKE_KEY})


def llm_settings(base_url: str | None = None, *, provider: str = "openai",
                 model: str = "gpt-4o-mini", **llm: Any) -> Settings:
    llm.setdefault("concurrency", 16)
    llm.setdefault("max_rpm", 60_000)
    llm.setdefault("max_tpm", 100_000_000)
    llm.setdefault("retry_base_s", 0.05)
    llm.setdefault("retry_max_s", 0.2)
    llm.setdefault("timeout_s", 10)
    return Settings(
        store=StoreConfig(url="http://127.0.0.1:1"),
        sync=SyncConfig(fields=["description", "short_description"]),
        llm=LLMConfig(provider=provider, model=model, base_url=base_url, **llm))


@contextmanager
def synced_ledger(ledger: Ledger, products: list[dict[str, Any]] | int,
                  seed: int = 3) -> Iterator[int]:
    """Serve ``products`` (or a synthetic catalog of that size) and sync it; yields queued."""
    catalog = list(synthetic_catalog(products, seed)) if isinstance(products, int) else products
    with serve_store(catalog, options=options()) as srv, client(srv.url) as woo:
        settings = Settings(store=StoreConfig(url=srv.url),
                            sync=SyncConfig(fields=["description", "short_description"]))
        summary = sync(ledger, woo, settings)
    yield summary.queued


def job_statuses(ledger: Ledger) -> dict[str, int]:
    return {k: v for k, v in ledger.counts()["product"].items() if v}
