"""Does `enrich estimate` hold? Estimate after a 20-job sample, then draft the rest.

    uv run python bench/estimate.py [--sample 20] [--max-products 400] [--wire openai]

For each of three fixture catalogs (fixtures/products: Magento's Luma gear (its five
SimpleProduct CSVs as one store), Saleor's populatedb fixture, Magento's Luma configurable
catalog, its first ``--max-products`` rows; WooCommerce's sample queues only 18 jobs, fewer
than the sample),
served by the sandbox store and synced into a fresh ledger: ``run --limit 20`` against the
sandbox LLM (billed at the model's list price), ``estimate`` for the rest, then a run that
drafts the rest. Prints estimate, actual and their ratio (target: within +-10 %), the
estimate the schema alone gives (what ``estimate`` said before anything was recorded), and
the estimate the second run recorded when it started (what ``enrich report`` shows).
Bounded: at most ``--max-products`` products per catalog, one pass each.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from enrich.config import LLMConfig, Secrets, Settings, StoreConfig
from enrich.estimate import estimate_queue
from enrich.ledger import Ledger
from enrich.prompts import PromptBook
from enrich.providers import make_provider
from enrich.report import run_report
from enrich.sandbox.catalog import load_catalog
from enrich.sandbox.llm import LLMSandboxOptions, serve_llm
from enrich.sandbox.store import StoreOptions, serve_store
from enrich.sync import sync
from enrich.woo.client import WooClient
from enrich.worker import run_jobs

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "products"
GEAR = ROOT / "magento2-sample-data" / "CatalogSampleData" / "SimpleProduct"
CATALOGS: dict[str, list[Path]] = {
    "magento luma gear (5 CSVs)": sorted(GEAR.glob("products_gear_*.csv")),
    "saleor populatedb (JSON)": [ROOT / "saleor" / "populatedb_data.json"],
    "magento luma configurable (CSV)": [ROOT / "magento2-sample-data"
                                        / "ConfigurableSampleData" / "products.csv"],
}
KEY, SECRET = "ck_bench", "cs_bench"
SECRETS = Secrets({"OPENAI_API_KEY": "sk-bench", "ANTHROPIC_API_KEY": "sk-ant-bench",
                   "WOO_CONSUMER_KEY": KEY, "WOO_CONSUMER_SECRET": SECRET})


def _settings(store_url: str, llm_url: str, wire: str) -> Settings:
    model = "gpt-4o-mini" if wire == "openai" else "claude-haiku-4-5"
    base = llm_url + "/v1" if wire == "openai" else llm_url
    return Settings(store=StoreConfig(url=store_url),
                    llm=LLMConfig(provider=wire, model=model, base_url=base, concurrency=16,
                                  max_rpm=60_000, max_tpm=100_000_000, budget_usd=100,
                                  retry_base_s=0.05, retry_max_s=0.2))


def _products(paths: list[Path], limit: int) -> list[dict[str, Any]]:
    """The files' products as one catalog, ids kept apart."""
    products: list[dict[str, Any]] = []
    for path in paths:
        products += load_catalog(path, first_id=len(products) + 1)
    return products[:limit]


def one(name: str, paths: list[Path], args: argparse.Namespace,
        llm_url: str) -> dict[str, Any]:
    products = _products(paths, args.max_products)
    with tempfile.TemporaryDirectory() as tmp, \
            serve_store(products, options=StoreOptions(consumer_key=KEY,
                                                       consumer_secret=SECRET)) as store, \
            Ledger(Path(tmp) / "enrich.db") as ledger:
        settings = _settings(store.url, llm_url, args.wire)
        with WooClient(store.url, KEY, SECRET) as woo:
            queued = sync(ledger, woo, settings).queued
        provider = make_provider(settings.llm, SECRETS)
        prompts = PromptBook.from_settings(settings)
        fields = list(settings.sync.fields)
        schema_only = estimate_queue(ledger, provider, prompts, fields,
                                     settings.llm.max_output_tokens)
        first = asyncio.run(run_jobs(ledger, settings, SECRETS, limit=args.sample,
                                     handle_signals=False))
        estimate = estimate_queue(ledger, provider, prompts, fields,
                                  settings.llm.max_output_tokens)
        rest = asyncio.run(run_jobs(ledger, settings, SECRETS, handle_signals=False))
        report = run_report(ledger, rest.run_id)["runs"][0]
        sample_cost = run_report(ledger, first.run_id)["runs"][0]["cost_usd"]
    actual = report["cost_usd"]
    return {"catalog": name, "products": len(products), "queued": queued,
            "sampled": first.stats.drafted, "sample_cost": sample_cost,
            "rest": estimate.jobs, "schema_only": schema_only.cost_live_usd,
            "estimate": estimate.cost_live_usd, "basis": estimate.basis, "actual": actual,
            "ratio": actual / estimate.cost_live_usd if estimate.cost_live_usd else None,
            "recorded_at_start": report["estimate_usd"],
            "drafted": rest.stats.drafted, "dead": rest.stats.dead}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=20)
    parser.add_argument("--max-products", type=int, default=400)
    parser.add_argument("--wire", choices=("openai", "anthropic"), default="openai")
    args = parser.parse_args()
    worst = 0.0
    with serve_llm(LLMSandboxOptions(seed=7)) as llm:
        for name, paths in CATALOGS.items():
            r = one(name, paths, args, llm.url)
            off = abs((r["ratio"] or 0) - 1)
            worst = max(worst, off)
            print(f"{r['catalog']}: {r['products']} products, {r['queued']} queued; sample "
                  f"{r['sampled']} drafted (${r['sample_cost']:.5f})")
            print(f"  rest: {r['rest']} jobs; schema-only estimate ${r['schema_only']:.5f}; "
                  f"estimate after the sample ${r['estimate']:.5f} ({r['basis']})")
            print(f"  actual ${r['actual']:.5f} ({r['drafted']} drafted, {r['dead']} dead): "
                  f"actual/estimate = {r['ratio']:.3f} (target 0.9-1.1); the run recorded "
                  f"${r['recorded_at_start']:.5f} at its start")
    print(f"worst deviation: {worst:.1%} (target <= 10 %)")


if __name__ == "__main__":
    main()
