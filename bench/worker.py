"""The worker against the sandbox LLM at a realistic latency, limit and fault rate.

    uv run python bench/worker.py [--jobs 10000] [--latency-ms 300] [--rpm 6000]
                                  [--fault-rate 0.05] [--skip-naive]

Prints, for enrich's worker and for a naive loop (batches of 50 with asyncio.gather, then
sleep(1), as commonly written): achieved requests/min divided by the limit (target >= 0.95),
jobs lost (must be 0: every job ends drafted or dead with a reason), and for the worker the
share of its process's CPU time spent in ledger calls. The sandbox LLM runs in its own process
so its CPU is not counted. Bounded: one pass over --jobs jobs each, then it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from enrich.config import LLMConfig, Secrets, Settings, SyncConfig
from enrich.errors import ProviderError
from enrich.guards.duplicates import DuplicateIndex
from enrich.ledger import EnqueueItem, Ledger
from enrich.prompts import PromptBook
from enrich.providers import LLMRequest, make_provider
from enrich.sandbox.catalog import synthetic_catalog
from enrich.worker import Worker

FIELDS = ["description", "short_description"]
SECRETS = Secrets({"OPENAI_API_KEY": "sk-bench"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_llm(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    fail = args.fault_rate * 0.6  # 500s
    overload = args.fault_rate * 0.4  # 503s on the OpenAI route
    proc = subprocess.Popen(
        [sys.executable, "-m", "enrich.cli", "sandbox", "llm", "--port", str(port),
         "--latency-ms", str(args.latency_ms), "--rpm", str(args.rpm),
         "--fail-rate", str(fail), "--overload-rate", str(overload), "--seed", "7"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            httpx.get(url + "/", timeout=1)
            return proc, url
        except httpx.HTTPError:
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit("the sandbox LLM did not start") from None
            time.sleep(0.1)


def _fill(ledger: Ledger, n: int) -> None:
    products, items = [], []
    for p in synthetic_catalog(n, seed=1):
        snapshot = {k: p.get(k) for k in ("id", "name", "sku", "type", "status", "categories",
                                         "attributes", "weight", "dimensions", "regular_price",
                                         "description", "short_description", "meta_data")}
        if not snapshot["name"]:
            snapshot["name"] = f"Supplier item {p['sku']}"
        products.append({"source_id": str(p["id"]), "snapshot": snapshot,
                         "content_hash": f"h{p['id']}", "name": snapshot["name"],
                         "state": "needs_work", "missing": FIELDS})
        items.append(EnqueueItem("product", str(p["id"]), f"h{p['id']}", {"fields": FIELDS}))
    ledger.upsert_products(products)
    ledger.enqueue_many(items)


def _settings(url: str, args: argparse.Namespace) -> Settings:
    return Settings(sync=SyncConfig(fields=FIELDS),
                    llm=LLMConfig(provider="openai", model="gpt-4o-mini", base_url=url + "/v1",
                                  concurrency=args.concurrency, max_rpm=args.rpm,
                                  max_tpm=100_000_000, budget_usd=1000, max_attempts=6,
                                  retry_base_s=1.0, retry_max_s=10, timeout_s=30))


async def _enrich(ledger: Ledger, settings: Settings) -> dict[str, Any]:
    provider = make_provider(settings.llm, SECRETS)
    prompts = PromptBook.from_settings(settings)
    with DuplicateIndex() as duplicates:
        worker = Worker(ledger, settings, provider, prompts, duplicates=duplicates,
                        handle_signals=False)
        cpu0, t0 = time.process_time(), time.perf_counter()
        result = await worker.run()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await provider.aclose()
    return {"result": result, "elapsed": elapsed, "cpu": cpu,
            "ledger_cpu": worker.ledger_cpu_s, "requests": worker.stats.requests}


async def _naive(ledger: Ledger, settings: Settings, n: int) -> dict[str, Any]:
    """The loop people write first: 50 at a time, gather, sleep(1); errors are just logged."""
    provider = make_provider(settings.llm, SECRETS)
    prompts = PromptBook.from_settings(settings)
    ids = [r[0] for r in ledger.conn.execute("SELECT source_id FROM products ORDER BY rowid")]
    ok = requests = 0

    async def one(source_id: str) -> bool:
        nonlocal requests
        snapshot = ledger.get_product(source_id)["snapshot"]  # type: ignore[index]
        prompt = prompts.render_product(snapshot, FIELDS, source_id=source_id)
        requests += 1
        try:
            await provider.generate(LLMRequest(prompt.system, prompt.user, prompt.output_model,
                                               source=snapshot))
        except ProviderError:
            return False
        return True

    t0 = time.perf_counter()
    for i in range(0, len(ids[:n]), 50):
        results = await asyncio.gather(*(one(s) for s in ids[i:i + 50]))
        ok += sum(results)
        await asyncio.sleep(1)
    elapsed = time.perf_counter() - t0
    await provider.aclose()
    return {"elapsed": elapsed, "requests": requests, "ok": ok, "lost": n - ok}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--rpm", type=int, default=6000)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()
    llm, url = _start_llm(args)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = _settings(url, args)
            with Ledger(Path(tmp) / "bench.db") as ledger:
                _fill(ledger, args.jobs)
                run = asyncio.run(_enrich(ledger, settings))
                counts = ledger.counts()["product"]
            drafted, dead = counts["drafted"], counts["dead"]
            lost = args.jobs - drafted - dead
            rpm = run["requests"] / (run["elapsed"] / 60)
            print(f"enrich worker: {args.jobs:,} jobs, {args.latency_ms} ms latency, limit "
                  f"{args.rpm:,} RPM, {args.fault_rate:.0%} faults, concurrency "
                  f"{args.concurrency}")
            print(f"  {run['elapsed']:.1f} s, {run['requests']:,} requests: {rpm:,.0f} RPM, "
                  f"achieved/limit = {rpm / args.rpm:.3f} (target >= 0.95)")
            print(f"  drafted {drafted:,}, dead {dead:,}, lost {lost} (must be 0); exit: "
                  f"{run['result'].exit_reason}")
            print(f"  ledger share of worker CPU: {run['ledger_cpu'] / run['cpu']:.1%} "
                  f"({run['ledger_cpu']:.1f} of {run['cpu']:.1f} CPU s)")
            if not args.skip_naive:
                with Ledger(Path(tmp) / "naive.db") as ledger:
                    _fill(ledger, args.jobs)
                    naive = asyncio.run(_naive(ledger, settings, args.jobs))
                naive_rpm = naive["requests"] / (naive["elapsed"] / 60)
                print(f"naive loop (50 + gather + sleep(1)): {naive['elapsed']:.1f} s, "
                      f"{naive_rpm:,.0f} RPM, achieved/limit = {naive_rpm / args.rpm:.3f}; "
                      f"lost {naive['lost']:,} of {args.jobs:,} (failed once, never retried)")
                print(f"  enrich finished in {run['elapsed'] / naive['elapsed']:.2f}x the "
                      f"naive loop's time")
    finally:
        llm.terminate()
        llm.wait(timeout=10)
    if os.environ.get("CI"):
        print("(figures from CI are noisy: shared 2-core machine)")


if __name__ == "__main__":
    main()
