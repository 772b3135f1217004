"""Sandbox LLM endpoint capacity: can it carry the worker benchmark's load?

    uv run python bench/sandbox_llm.py [--requests 3000] [--concurrency 100] [--latency-ms 300]

The worker benchmark sends 10,000 requests at 6,000 RPM to a sandbox answering in 300 ms,
about 30 in flight. This drives the sandbox with the real ``AsyncOpenAI`` client (and the
Anthropic one for a second run) at a fixed concurrency and reports throughput, latency
percentiles and the peak number of requests the sandbox held at once. The sandbox runs in
its own process so its CPU does not compete with the client's event loop. Bounded: a
deadline stops every phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import time
from typing import Any

DEADLINE_S = 300.0
PRODUCT = {"name": "Merino Wool Beanie", "sku": "MWB-01", "categories": [{"name": "Hats"}],
           "attributes": [{"name": "Material", "options": ["100% merino wool"]},
                          {"name": "Color", "options": ["Navy", "Grey"]}]}
SCHEMA = {"type": "object", "additionalProperties": False,
          "required": ["title", "description", "meta_description"],
          "properties": {"title": {"type": "string"}, "description": {"type": "string"},
                         "meta_description": {"type": "string"}}}


def _serve(latency_ms: int, ready: Any, stop: Any) -> None:
    from enrich.sandbox.llm import LLMSandboxOptions, serve_llm

    with serve_llm(LLMSandboxOptions(latency_ms=latency_ms)) as served:
        ready.put(served.url)
        stop.wait(DEADLINE_S)


def _prompt(index: int) -> str:
    data = json.dumps({**PRODUCT, "sku": f"MWB-{index}"})
    return f"Write copy.\n<untrusted_product_data>\n{data}\n</untrusted_product_data>"


async def _drive(kind: str, url: str, total: int, concurrency: int) -> dict[str, float]:
    import anthropic
    import openai

    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(total):
        queue.put_nowait(index)
    if kind == "openai":
        oai = openai.AsyncOpenAI(api_key="sk-bench", base_url=url + "/v1", max_retries=0)
        client: Any = oai
    else:
        claude = anthropic.AsyncAnthropic(api_key="sk-bench", base_url=url, max_retries=0)
        client = claude

    async def one(index: int) -> None:
        if kind == "openai":
            await oai.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": _prompt(index)}],
                response_format={"type": "json_schema", "json_schema": {
                    "name": "copy", "schema": SCHEMA, "strict": True}})
        else:
            await claude.messages.create(
                model="claude-haiku-4-5", max_tokens=1024,
                messages=[{"role": "user", "content": _prompt(index)}],
                tools=[{"name": "copy", "input_schema": SCHEMA}],
                tool_choice={"type": "tool", "name": "copy"})

    async def worker() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            started = time.perf_counter()
            await one(index)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))),
                               DEADLINE_S)
    finally:
        await client.close()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"requests": len(latencies), "seconds": elapsed,
            "per_minute": len(latencies) / elapsed * 60,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--latency-ms", type=int, default=300)
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_serve, args=(args.latency_ms, ready, stop), daemon=True)
    server.start()
    try:
        url = ready.get(timeout=60)
        ideal = args.concurrency / (args.latency_ms / 1000) * 60 if args.latency_ms else 0
        print(f"sandbox {url}: {args.requests} requests, {args.concurrency} in flight, "
              f"{args.latency_ms} ms latency (ideal {ideal:,.0f}/min)")
        for kind in ("openai", "anthropic"):
            result = asyncio.run(_drive(kind, url, args.requests, args.concurrency))
            print(f"  {kind:9} {result['requests']:.0f} ok in {result['seconds']:.2f} s = "
                  f"{result['per_minute']:,.0f}/min, p50 {result['p50_ms']:.0f} ms, "
                  f"p99 {result['p99_ms']:.0f} ms")
    finally:
        stop.set()
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()


if __name__ == "__main__":
    main()
