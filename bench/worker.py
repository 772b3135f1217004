"""The worker against the sandbox LLM at a realistic latency, limit and fault rate.

    uv run python bench/worker.py [--jobs 10000] [--latency-ms 300] [--rpm 6000]
                                  [--fault-rate 0.05] [--skip-naive]
    uv run python bench/worker.py --defaults [--wire openai|anthropic] [--seconds 90]

``--defaults`` runs the *shipped* config (config.example.toml: no max_rpm/max_tpm, the
default concurrency and max_output_tokens, the four default fields) against a sandbox that
enforces 500 RPM and 200,000 TPM the way the chosen provider counts them (OpenAI: prompt +
max_tokens when the request arrives; Anthropic: uncached input, cache reads free, plus an
output limit on the tokens produced), for ``--seconds``, and prints what share of the
binding limit the run used (target >= 0.9) and the jobs lost (must be 0).

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
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sandbox_process import start_sandbox_llm
from enrich.config import LLMConfig, Secrets, Settings, SyncConfig, load_settings
from enrich.errors import ProviderError
from enrich.guards.duplicates import DuplicateIndex
from enrich.ledger import Ledger
from enrich.prompts import PromptBook
from enrich.providers import LLMRequest, make_provider
from enrich.scaffold import shipped_config_example
from enrich.worker import Worker
from tests.batch_helpers import fill

FIELDS = ["description", "short_description"]
SECRETS = Secrets({"OPENAI_API_KEY": "sk-bench"})


def _start_llm(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    fail = args.fault_rate * 0.6  # 500s
    overload = args.fault_rate * 0.4  # 503s on the OpenAI route
    return start_sandbox_llm("--latency-ms", str(args.latency_ms), "--rpm", str(args.rpm),
                             "--fail-rate", str(fail), "--overload-rate", str(overload),
                             "--seed", "7")


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


def _start_limited_llm(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    """The sandbox LLM in its own process, enforcing the --defaults limits."""
    options = ["--latency-ms", str(args.latency_ms), "--rpm", str(args.rpm),
               "--tpm", str(args.tpm), "--seed", "7"]
    if args.wire == "anthropic":
        options += ["--otpm", str(args.otpm)]
    return start_sandbox_llm(*options)


def _shipped_settings(url: str, wire: str, folder: Path) -> Settings:
    """config.example.toml as shipped, pointed at the sandbox with the chosen wire format."""
    text = shipped_config_example()
    model = "gpt-4o-mini" if wire == "openai" else "claude-haiku-4-5"
    base = url + "/v1" if wire == "openai" else url
    text = text.replace('provider = "offline"', f'provider = "{wire}"', 1)
    text = text.replace('model = "offline-v1"', f'model = "{model}"\nbase_url = "{base}"', 1)
    config = folder / "config.toml"
    config.write_text(text, encoding="utf-8")
    settings = load_settings(config, required=True)
    assert settings.llm.max_rpm is None and settings.llm.max_tpm is None, "not the defaults"
    return settings


def _charged(ledger: Ledger, run_id: int, wire: str) -> dict[str, int]:
    """What the run's requests cost against each limit, as the sandbox counts them: the
    prompt tokens the sandbox reported, plus max_tokens (OpenAI) or minus the cache reads
    (Anthropic), and the output tokens produced."""
    rows = ledger.conn.execute(
        "SELECT a.tokens_in, a.tokens_cached, a.tokens_out, a.outcome, "
        "json_extract(d.params, '$.max_output_tokens') FROM attempts a "
        "LEFT JOIN drafts d ON d.job_id = a.job_id WHERE a.run_id = ?", (run_id,)).fetchall()
    tokens = output = requests = limited = 0
    for t_in, cached, t_out, outcome, max_out in rows:
        if outcome == "rate_limited":
            limited += 1
            continue
        requests += 1
        if wire == "openai":
            tokens += t_in + int(max_out or 0)
        else:
            tokens += t_in - cached
            output += t_out
    return {"requests": requests, "tokens": tokens, "output": output, "rate_limited": limited}


def defaults(args: argparse.Namespace) -> None:
    """The shipped config against limits enforced like the provider's (see the docstring)."""
    llm, url = _start_limited_llm(args)
    secrets = Secrets({"OPENAI_API_KEY": "sk-bench", "ANTHROPIC_API_KEY": "sk-ant-bench"})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = _shipped_settings(url, args.wire, Path(tmp))
            fields = list(settings.sync.fields)
            with Ledger(Path(tmp) / "bench.db") as ledger:
                fill(ledger, args.jobs, fields)
                provider = make_provider(settings.llm, secrets)
                prompts = PromptBook.from_settings(settings)
                worker = Worker(ledger, settings, provider, prompts,
                                until=time.time() + args.seconds, handle_signals=False)


                async def go() -> Any:
                    try:
                        return await worker.run()
                    finally:
                        await provider.aclose()

                t0 = time.perf_counter()
                result = asyncio.run(go())
                elapsed = time.perf_counter() - t0
                counts = ledger.counts()["product"]
                charged = _charged(ledger, result.run_id, args.wire)
                asked = [int(r[0]) for r in ledger.conn.execute(
                    "SELECT json_extract(params, '$.max_output_tokens') FROM drafts "
                    "ORDER BY id")]
                outs = [int(r[0]) for r in ledger.conn.execute(
                    "SELECT tokens_out FROM drafts ORDER BY id")]
        minutes = elapsed / 60
        rpm = charged["requests"] / minutes
        tpm = charged["tokens"] / minutes
        shares = {"requests": rpm / args.rpm, "tokens": tpm / args.tpm}
        if args.wire == "anthropic":
            shares["output"] = charged["output"] / minutes / args.otpm
        binding = max(shares, key=lambda k: shares[k])
        done = counts["drafted"] + counts["dead"]
        lost = args.jobs - done - counts["pending"] - counts["failed"]
        learned = worker.limiter.learned
        print(f"shipped config, {args.wire} wire format, sandbox enforcing {args.rpm:,} RPM and "
              f"{args.tpm:,} TPM" + (f" (input) and {args.otpm:,} output TPM"
                                     if args.wire == "anthropic" else "")
              + f", {args.latency_ms} ms latency, {args.seconds:.0f} s")
        print(f"  limits learned from headers: {learned or 'none'}; concurrency "
              f"{settings.llm.concurrency}, max_output_tokens ceiling "
              f"{settings.llm.max_output_tokens}")
        print(f"  {elapsed:.1f} s, {charged['requests']:,} requests ({rpm:,.0f} RPM, "
              f"{shares['requests']:.3f} of the limit), {tpm:,.0f} TPM as counted "
              f"({shares['tokens']:.3f})" + (f", {charged['output'] / minutes:,.0f} output TPM "
                                            f"({shares['output']:.3f})"
                                            if "output" in shares else ""))
        print(f"  binding limit: {binding}, achieved/limit = {shares[binding]:.3f} "
              f"(target >= 0.9); 429s: {charged['rate_limited']}")
        if asked:
            print(f"  max_tokens asked: first {asked[0]}, last {asked[-1]}; output tokens "
                  f"mean {sum(outs) / len(outs):.0f}, max {max(outs)}; answers cut off and "
                  f"asked again: {worker.sizer.grown}")
        print(f"  drafted {counts['drafted']:,}, dead {counts['dead']:,}, still queued "
              f"{counts['pending'] + counts['failed']:,}, lost {lost} (must be 0); exit: "
              f"{result.exit_reason}")
    finally:
        llm.terminate()
        llm.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--defaults", action="store_true",
                        help="the shipped config against 500 RPM / 200,000 TPM")
    parser.add_argument("--wire", choices=("openai", "anthropic"), default="openai")
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--tpm", type=int, default=200_000)
    parser.add_argument("--otpm", type=int, default=80_000)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--rpm", type=int, default=6000)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()
    if args.defaults:
        if "--rpm" not in sys.argv:
            args.rpm = 500
        if "--jobs" not in sys.argv:
            args.jobs = 3000
        defaults(args)
        return
    llm, url = _start_llm(args)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = _settings(url, args)
            with Ledger(Path(tmp) / "bench.db") as ledger:
                fill(ledger, args.jobs)
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
                    fill(ledger, args.jobs)
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
