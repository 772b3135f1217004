"""Batch mode at scale: N jobs submitted, polled and ingested against the sandbox LLM.

    uv run python bench/batch.py [--jobs 50000] [--per-batch 10000] [--provider openai]

The sandbox runs in its own process (its CPU is not enrich's), with no processing delay, so
the figures are enrich's own work: rendering and serialising the requests, the ledger's
transactions, reading the results, the guards and the drafts. Prints wall time and CPU time per
1,000 jobs for submit and for poll (ingest), the batches made, and this process's peak RSS
(target <= 300 MB). Bounded: one submit and polls until every batch is collected.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sandbox_process import start_sandbox_llm
from enrich.config import LLMConfig, Secrets, Settings, SyncConfig
from enrich.ledger import Ledger
from enrich.worker.batch import BatchMode
from tests.batch_helpers import FIELDS, fill

SECRETS = Secrets({"OPENAI_API_KEY": "sk-bench", "ANTHROPIC_API_KEY": "sk-ant-bench",
                   "GEMINI_API_KEY": "AIza-bench"})
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5",
          "gemini": "gemini-2.5-flash"}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _bench(ledger: Ledger, settings: Settings, jobs: int) -> None:
    mode = BatchMode(ledger, settings, SECRETS)
    try:
        cpu0, t0 = time.process_time(), time.perf_counter()
        sent = await mode.submit()
        submit_wall, submit_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        print(f"submit: {sent.jobs:,} jobs in {len(sent.batches)} batch(es) of "
              f"{', '.join(str(b['jobs']) for b in sent.batches)}; "
              f"{submit_wall:.1f} s wall, {submit_cpu:.1f} s CPU "
              f"({submit_wall / jobs * 1000:.2f} s wall, {submit_cpu / jobs * 1000:.2f} s CPU "
              f"per 1,000 jobs); peak RSS {_rss_mb():.0f} MB")
        cpu0, t0 = time.process_time(), time.perf_counter()
        drafted = collected = 0
        waited = 0.0
        while collected < len(sent.batches):
            w0 = time.perf_counter()
            polled = await mode.poll()
            drafted += polled.drafted
            collected += polled.collected
            if not polled.collected:
                await asyncio.sleep(0.5)
                waited += time.perf_counter() - w0
        poll_wall, poll_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        print(f"poll + ingest: {drafted:,} drafted; {poll_wall:.1f} s wall (of which the "
              f"sandbox answering: see CPU), {poll_cpu:.1f} s CPU "
              f"({poll_cpu / jobs * 1000:.2f} s CPU per 1,000 jobs); peak RSS "
              f"{_rss_mb():.0f} MB")
        print(f"enrich's own work (CPU of this process, the sandbox runs apart): "
              f"{(submit_cpu + poll_cpu) / jobs * 1000:.2f} s per 1,000 jobs; peak RSS "
              f"{_rss_mb():.0f} MB (target <= 300)")
        counts = ledger.counts()["product"]
        lost = jobs - counts["drafted"] - counts["dead"] - counts["failed"] - counts["pending"]
        print(f"jobs lost: {lost} (must be 0); statuses: "
              f"{ {k: v for k, v in counts.items() if v} }")
    finally:
        await mode.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--per-batch", type=int, default=10_000,
                        help="llm.batch_max_requests (the sandbox takes uploads <= 64 MB)")
    parser.add_argument("--provider", choices=sorted(MODELS), default="openai")
    args = parser.parse_args()
    proc, url = start_sandbox_llm()
    try:
        with tempfile.TemporaryDirectory() as folder:
            ledger = Ledger(Path(folder) / "bench.db")
            t0 = time.perf_counter()
            fill(ledger, args.jobs)
            print(f"filled {args.jobs:,} jobs in {time.perf_counter() - t0:.1f} s "
                  f"(not counted); peak RSS {_rss_mb():.0f} MB")
            base = f"{url}/v1" if args.provider == "openai" else url
            settings = Settings(sync=SyncConfig(fields=FIELDS), llm=LLMConfig(
                provider=args.provider, model=MODELS[args.provider],  # type: ignore[arg-type]
                base_url=base, mode="batch", batch_max_requests=args.per_batch,
                max_output_tokens=2000, timeout_s=900))
            asyncio.run(_bench(ledger, settings, args.jobs))
            ledger.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
