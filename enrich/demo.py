"""`enrich demo`: the whole flow on one machine, with real parts and nothing canned.

A sandbox WooCommerce store (WooCommerce's own sample catalog) on 127.0.0.1, a real ledger
and config in a folder the user can keep and explore, the offline provider (free, no
network), the review page, and a staged publish. The one thing the demo does that a real
run does not: it approves the unflagged drafts itself, where a person would use the review
page, and it says so. It also edits one product "in wp-admin" after the sync to show that
publish refuses to overwrite a person's change.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enrich.config import ENV_WOO_KEY, ENV_WOO_SECRET, Secrets, load_settings
from enrich.errors import UsageError
from enrich.estimate import estimate_queue
from enrich.ledger import Ledger
from enrich.ledger.drafts import flags_by_guard
from enrich.prompts import PromptBook
from enrich.providers import make_provider
from enrich.publish.publisher import publish
from enrich.report import run_report
from enrich.review.decisions import approve_jobs
from enrich.review.export import export_review
from enrich.sandbox.store import StoreOptions, serve_store
from enrich.scaffold import shipped_config_example
from enrich.sync import sync
from enrich.woo.client import WooClient
from enrich.worker import run_jobs

CATALOG = (Path(__file__).resolve().parent.parent / "fixtures" / "products" / "woocommerce"
           / "sample_products.csv")
DEMO_KEY = "ck_demo_sandbox"
DEMO_SECRET = "cs_demo_sandbox"


@dataclass
class DemoResult:
    folder: Path
    config: Path
    review_page: Path
    state_file: Path
    figures: dict[str, Any] = field(default_factory=dict)


def _catalog() -> Path:
    if CATALOG.exists():
        return CATALOG
    from importlib import resources

    return Path(str(resources.files("enrich") / "_fixtures" / "woocommerce_sample_products.csv"))


def _write_config(folder: Path, store_url: str) -> Path:
    text = shipped_config_example()
    text = text.replace('url = "http://127.0.0.1:8787"', f'url = "{store_url}"', 1)
    text = text.replace('seo_plugin = "none"', 'seo_plugin = "yoast"', 1)
    config = folder / "config.toml"
    config.write_text(text, encoding="utf-8")
    return config


def run_demo(folder: Path, echo: Callable[[str], None] = print) -> DemoResult:
    """Run sync → estimate → run → review → publish in ``folder``; returns what it made."""
    _refuse_used_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = folder / "store-state.json"
    options = StoreOptions(consumer_key=DEMO_KEY, consumer_secret=DEMO_SECRET,
                           state_path=state)
    secrets = Secrets({ENV_WOO_KEY: DEMO_KEY, ENV_WOO_SECRET: DEMO_SECRET})
    with serve_store(_catalog(), options=options) as store:
        config = _write_config(folder, store.url)
        settings = load_settings(config)
        echo(f"1. Sandbox store with WooCommerce's sample catalog at {store.url} "
             f"(its products are saved in {state.name}).")
        with Ledger(settings.resolve(settings.ledger.path)) as ledger, \
                WooClient.from_settings(settings, secrets) as woo:
            summary = sync(ledger, woo, settings)
            states = summary.catalog
            waiting = ledger.counts()["product"]["pending"]
            echo(f"2. sync: {summary.scanned} products read; {states.get('needs_work', 0)} need "
                 f"copy, {states.get('needs_data', 0)} have too little data to write from "
                 f"(the same supplier text on many products does not count), "
                 f"{states.get('complete', 0)} are complete; {waiting} jobs waiting.")
            provider = make_provider(settings.llm, secrets)
            estimate = estimate_queue(ledger, provider, PromptBook.from_settings(settings),
                                      list(settings.sync.fields),
                                      settings.llm.max_output_tokens)
            echo(f"3. estimate: {estimate.jobs} jobs, ~{estimate.input_tokens:,} tokens in, "
                 f"${estimate.cost_live_usd:.2f} with the offline writer (a paid model would "
                 f"show its price here).")
            result = asyncio.run(run_jobs(ledger, settings, secrets, handle_signals=False))
            s = result.stats
            by_guard = ", ".join(f"{guard} {n}" for guard, n in flags_by_guard(ledger).items())
            echo(f"4. run: {s.drafted} drafted ({s.flagged} flagged by the guards"
                 + (f": {by_guard}" if by_guard else "") + f"), {s.dead} dead, cost "
                 f"${s.cost_usd:.2f}." + (" The sample catalog's descriptions are placeholder "
                 "text, so the offline writer has little to write from and the guards say so: "
                 "a person decides." if s.flagged else ""))
            page = folder / "review.html"
            exported = export_review(ledger, page, guards=settings.guards)
            echo(f"5. review page: {page} ({exported.count} drafts). Open it in a browser: "
                 f"approve, edit or reject, then `enrich review import decisions.json`.")
            approved = approve_jobs(ledger, all_drafted=True, unflagged=True,
                                    note="approved by the demo (a person does this in review)")
            echo(f"6. The demo approves the {len(approved.applied)} unflagged drafts itself; "
                 f"flagged ones wait for a person.")
            edited = _edit_in_store(ledger, store.store)
            if edited is not None:
                echo(f"7. Meanwhile someone edits product {edited} in wp-admin...")
            report = publish(ledger, woo, settings)
            counts = report.counts()
            echo(f"8. publish: {counts['written']} products written in "
                 f"{counts['batch_requests']} batch request(s), {counts['conflict']} "
                 f"conflict(s) left untouched"
                 + (f" (product {edited}: the store's edit wins)" if edited else "") + ".")
            again = publish(ledger, woo, settings).counts()
            echo(f"9. publish again: {again['written']} written (nothing twice).")
            figures = {"sync": {"scanned": summary.scanned, "queued": summary.queued},
                       "run": s.as_dict(), "publish": counts, "publish_again": again,
                       "report": run_report(ledger, result.run_id)["runs"][0]}
    example = _example(state, ledger_path=settings.resolve(settings.ledger.path))
    if example:
        echo("   For example, in the store now:\n" + example)
    echo(f"Explore: enrich --config {config} status | jobs list | report")
    return DemoResult(folder, config, page, state, figures)


def _refuse_used_folder(folder: Path) -> None:
    """The demo writes config.toml, enrich.db, review.html and store-state.json: never over
    a real project's, and not over an earlier demo's (its store would resume half-done and
    tell a different story)."""
    found = [name for name in ("config.toml", "enrich.db", "review.html", "store-state.json")
             if (folder / name).exists()]
    if not found:
        return
    fresh = "run `enrich demo` without --dir (a new temporary folder) or with an empty one"
    if "store-state.json" in found:
        raise UsageError(f"{folder} already holds an earlier demo; the demo would overwrite it.",
                         f"Explore it with `enrich --config {folder / 'config.toml'} status`, "
                         f"or {fresh}.")
    raise UsageError(f"{folder} already holds an enrich project ({', '.join(found)}); the "
                     "demo would overwrite it.", f"Leave it alone and {fresh}.")


def _edit_in_store(ledger: Ledger, store: Any) -> str | None:
    """Play the person who edits an approved product in wp-admin after the sync."""
    approved = ledger.list_jobs(status="approved", limit=1)
    if not approved:
        return None
    store.edit(int(approved[0].source_id),
               short_description="Edited by the shop owner in wp-admin.")
    return approved[0].source_id


def _example(state: Path, *, ledger_path: Path) -> str:
    """One published product's new copy, read back from the store's saved state."""
    with Ledger(ledger_path) as ledger:
        published = ledger.list_jobs(status="published", limit=1)
    if not published or not state.exists():
        return ""
    products = {str(p["id"]): p for p in json.loads(state.read_text(encoding="utf-8"))}
    product = products.get(published[0].source_id)
    if product is None:
        return ""
    meta = {m["key"]: m["value"] for m in product.get("meta_data", [])}
    lines = [f"   #{product['id']} {product['name']}",
             f"     short description: {product.get('short_description', '')[:150]}",
             f"     SEO title: {meta.get('_yoast_wpseo_title', '-')}",
             f"     meta description: {meta.get('_yoast_wpseo_metadesc', '-')}"]
    return "\n".join(lines)
