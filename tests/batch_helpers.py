"""A ledger filled with product jobs without a store round trip, and batch-mode settings
pointing at the sandbox LLM (batch tests need thousands of jobs, fast)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from enrich.config import LLMConfig, Secrets, Settings, SyncConfig
from enrich.ledger import EnqueueItem, Ledger
from enrich.sandbox.catalog import synthetic_catalog
from enrich.worker.batch import PollSummary, SubmitSummary, poll_batches, submit_batches

FIELDS = ["description", "short_description"]
#: The three providers with a batch API, each through its official SDK.
PROVIDERS = ["openai", "anthropic", "gemini"]
KEYS = {"OPENAI_API_KEY": "sk-test-batch", "ANTHROPIC_API_KEY": "sk-ant-batch",
        "GEMINI_API_KEY": "AIza-test-batch"}
SECRETS = Secrets(KEYS)
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5",
          "gemini": "gemini-2.5-flash"}


def fill(ledger: Ledger, n: int, fields: list[str] | None = None, *, seed: int = 1,
         chunk: int = 5000) -> None:
    """``n`` synthetic products snapshotted and queued for ``fields``, as a sync would leave
    them (written ``chunk`` at a time, so a benchmark's 50,000 never sit in memory at once)."""
    fields = list(fields or FIELDS)
    products, items = [], []
    for p in synthetic_catalog(n, seed=seed):
        snapshot = {k: p.get(k) for k in ("id", "name", "sku", "type", "status", "categories",
                                         "attributes", "weight", "dimensions", "regular_price",
                                         "description", "short_description", "meta_data")}
        if not snapshot["name"]:
            snapshot["name"] = f"Supplier item {p['sku']}"
        products.append({"source_id": str(p["id"]), "snapshot": snapshot,
                         "content_hash": f"h{p['id']}", "name": snapshot["name"],
                         "state": "needs_work", "missing": fields})
        items.append(EnqueueItem("product", str(p["id"]), f"h{p['id']}", {"fields": fields}))
        if len(products) >= chunk:
            ledger.upsert_products(products)
            ledger.enqueue_many(items)
            products, items = [], []
    if products:
        ledger.upsert_products(products)
        ledger.enqueue_many(items)


def base_url(provider: str, url: str) -> str:
    """OpenAI's SDK takes the ``/v1`` prefix in its base URL; Anthropic's and Gemini's add
    their own (``/v1/messages``, ``/v1beta/...``) to the host."""
    return f"{url}/v1" if provider == "openai" else url


def batch_settings(provider: str, url: str, **llm: Any) -> Settings:
    llm.setdefault("timeout_s", 30)
    llm.setdefault("retry_base_s", 0.01)
    llm.setdefault("retry_max_s", 0.02)
    llm.setdefault("max_output_tokens", 2000)
    return Settings(sync=SyncConfig(fields=FIELDS),
                    llm=LLMConfig(provider=provider, model=MODELS[provider],  # type: ignore[arg-type]
                                  base_url=base_url(provider, url), mode="batch", **llm))


def submit(ledger: Ledger, settings: Settings, **kw: Any) -> SubmitSummary:
    return asyncio.run(submit_batches(ledger, settings, SECRETS, **kw))


def poll(ledger: Ledger, settings: Settings) -> PollSummary:
    return asyncio.run(poll_batches(ledger, settings, SECRETS))


def statuses(ledger: Ledger) -> dict[str, int]:
    return {k: v for k, v in ledger.counts()["product"].items() if v}


def read(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """A read-only look at a ledger another process may be writing."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def write_batch_config(folder: Path, provider: str, llm_url: str, *, db: Path | None = None,
                       store_url: str | None = None, extra: str = "") -> Path:
    """A config.toml in ``folder`` for batch mode against the sandbox LLM (and store)."""
    store = f'[store]\nurl = "{store_url}"\n' if store_url else ""
    ledger = f'[ledger]\npath = "{db}"\n' if db else ""
    config = folder / "config.toml"
    config.write_text(f"""{store}[sync]
fields = ["description", "short_description"]
[llm]
provider = "{provider}"
model = "{MODELS[provider]}"
base_url = "{base_url(provider, llm_url)}"
mode = "batch"
max_output_tokens = 2000
{extra}
{ledger}""", encoding="utf-8")
    return config
