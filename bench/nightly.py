"""Consecutive nights over one unchanged catalog: after the first, the model is never asked.

    uv run python bench/nightly.py [--products 300] [--nights 3] [--seed 15]

Issue 15. Each night is what a store owner runs: ``enrich nightly`` (incremental sync, then
drafting with the sandbox LLM through the OpenAI route), ``enrich review approve --all``
(every draft, flagged or not, so enrich's own text that the sync rules dislike is published
too) and ``enrich publish``. Nothing else touches the store between nights. The catalog is
synthetic supplier data with six products sharing one name and literal ``\\n`` in supplier
text, served by the sandbox store (which rewrites copy on the way in as WordPress does).

Target: requests to the model on nights 2 and 3 = 0 (published copy stays done), and
nothing queued or written after the first night. The model requests are counted by the
sandbox LLM itself (requests that reached it, every outcome), not by enrich.
Bounded: ``--nights`` nights of at most ``--products`` products, loopback only; the temp
folder is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from enrich.cli.main import cli
from enrich.sandbox.catalog import synthetic_catalog
from enrich.sandbox.llm import serve_llm
from enrich.sandbox.store import StoreOptions, serve_store

KEY, SECRET = "ck_bench_nightly", "cs_bench_nightly"


def catalog(n: int, seed: int) -> list[dict[str, Any]]:
    """Synthetic supplier data, plus what the held-out vendor catalog of issue 15 had: the
    same item listed several times under one name (same data, no category), and supplier
    text with literal ``\\n``."""
    products = list(synthetic_catalog(n, seed))
    for i in range(0, min(n, 60), 6):  # groups of six listings of one item
        for p in products[i:i + 6]:
            p["name"] = f"Bamboo Mug {i // 6 + 1}"
            p["categories"] = []
            p["attributes"] = products[i]["attributes"]
            p["description"] = p["short_description"] = ""
    for p in products[4:n:7]:
        p["short_description"] = "Sturdy and light.\\nDishwasher safe.\\tHand made."
    return products


def run(config: Path, env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], env=env)
    if result.exit_code != 0:
        sys.exit(f"`enrich {' '.join(args)}` exited {result.exit_code}:\n{result.output}")
    return result.output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=300)
    parser.add_argument("--nights", type=int, default=3)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    rows = []
    options = StoreOptions(consumer_key=KEY, consumer_secret=SECRET)
    with tempfile.TemporaryDirectory(prefix="enrich-bench-nightly-") as tmp, \
            serve_store(catalog(args.products, args.seed), options=options) as store, \
            serve_llm() as llm:
        config = Path(tmp) / "config.toml"
        config.write_text(f"""
[store]
url = "{store.url}"
seo_plugin = "yoast"
[sync]
fields = ["description", "short_description", "seo_title", "meta_description"]
[llm]
provider = "openai"
model = "gpt-4o-mini"
base_url = "{llm.openai_base_url}"
max_rpm = 60000
max_tpm = 100000000
[nightly]
until = "23:59"
""")
        env = {"WOO_CONSUMER_KEY": KEY, "WOO_CONSUMER_SECRET": SECRET,
               "OPENAI_API_KEY": "sk-bench-nightly"}
        for night in range(1, args.nights + 1):
            started = time.perf_counter()
            before = llm.llm.count()
            store_writes = len([r for r in store.store.request_log if r.method != "GET"])
            run(config, env, "nightly")
            requests = llm.llm.count() - before
            run(config, env, "review", "approve", "--all")
            published = json.loads(run(config, env, "publish", "--json"))
            sync = json.loads(run(config, env, "sync", "--dry-run", "--json"))
            writes = len([r for r in store.store.request_log if r.method != "GET"]) \
                - store_writes
            rows.append({"night": night, "model_requests": requests,
                         "published": published["counts"]["written"],
                         "store_writes": writes,
                         "next_sync_would_queue": sync["queued"],
                         "seconds": round(time.perf_counter() - started, 1)})
    print(f"{args.products} products, {args.nights} nights, nothing changed in the store "
          "between them")
    print(f"{'night':>5} {'model requests':>15} {'published':>10} {'store writes':>13} "
          f"{'next sync queues':>17} {'s':>6}")
    for r in rows:
        print(f"{r['night']:>5} {r['model_requests']:>15} {r['published']:>10} "
              f"{r['store_writes']:>13} {r['next_sync_would_queue']:>17} {r['seconds']:>6}")
    later = [r for r in rows if r["night"] > 1]
    ok = all(r["model_requests"] == 0 and r["published"] == 0 and r["store_writes"] == 0
             for r in later)
    print("target (nights 2+: 0 model requests, 0 writes):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
