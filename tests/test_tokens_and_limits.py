"""Right-sized max_tokens, each provider's limit model, limits learned from headers, and
estimates priced from recorded usage: real ledger, sandbox LLM over HTTP, official SDKs."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
import pytest

from enrich.estimate import estimate_queue
from enrich.ledger import Ledger
from enrich.prompts import PromptBook, output_model
from enrich.providers import RateLimitInfo, make_provider
from enrich.providers.base import anthropic_rate_limits
from enrich.providers.limit_model import ANTHROPIC, OPENAI, gemini_limits
from enrich.report import run_report
from enrich.sandbox.llm import LLMSandboxOptions, serve_llm
from enrich.worker import RateLimiter, Worker, run_jobs
from enrich.worker.sizing import MIN_SAMPLE, OutputSizer, quantile, smallest_answer_tokens
from tests.worker_helpers import SECRETS, llm_settings, synced_ledger

FIELDS = ("description", "short_description")
SCHEMA = output_model(list(FIELDS)).model_json_schema()
KEY = ("product.j2", FIELDS)


def _run(ledger: Ledger, settings: Any, **kw: Any) -> Any:
    kw.setdefault("handle_signals", False)
    return asyncio.run(run_jobs(ledger, settings, SECRETS, **kw))


def _settings(url: str, wire: str, **llm: Any) -> Any:
    if wire == "openai":
        return llm_settings(url + "/v1", **llm)
    return llm_settings(url, provider="anthropic", model="claude-haiku-4-5", **llm)


# -- sizing ---------------------------------------------------------------------------------


def test_sizer_starts_from_the_schema_then_fits_recorded_answers() -> None:
    sizer = OutputSizer(1200)
    prior = sizer.limit(KEY, SCHEMA)
    assert prior == math.ceil((2 + sum(len(f) + 6 for f in FIELDS) + 4000 + 400) / 4)
    for n in range(MIN_SAMPLE - 1):
        sizer.record(KEY, 100 + n)
    assert sizer.limit(KEY, SCHEMA) == prior  # too few answers to trust yet
    sizer.record(KEY, 150)
    assert sizer.limit(KEY, SCHEMA) == math.ceil(150 * 1.25) + 16
    # Never below the smallest valid answer, never above the ceiling.
    tiny = OutputSizer(1200, {KEY: [1] * MIN_SAMPLE})
    assert tiny.limit(KEY, SCHEMA) == smallest_answer_tokens(SCHEMA) > 30
    huge = OutputSizer(300, {KEY: [5000] * MIN_SAMPLE})
    assert huge.limit(KEY, SCHEMA) == 300
    assert huge.grow(KEY, SCHEMA, 300) is None  # the ceiling was asked: nothing larger
    assert OutputSizer(1200).grow(KEY, SCHEMA, 50) == prior  # at least the schema's figure
    assert OutputSizer(1200).grow(KEY, SCHEMA, 700) == 1200  # twice, capped


def test_worker_asks_for_what_answers_need_and_learns_it(ledger: Ledger) -> None:
    with synced_ledger(ledger, 40), serve_llm(LLMSandboxOptions(seed=3)) as llm:
        result = _run(ledger, llm_settings(llm.url + "/v1", concurrency=4))
    assert result.exit_reason == "completed", result.message
    rows = ledger.conn.execute(
        "SELECT json_extract(params, '$.max_output_tokens'), tokens_out, "
        "json_extract(params, '$.fields') FROM drafts ORDER BY id").fetchall()
    asked = [r[0] for r in rows]
    assert asked[0] == OutputSizer(1200).limit(KEY, SCHEMA)  # the schema's figure first
    longest = max(r[1] for r in rows)
    assert longest < asked[-1] < asked[0] / 3  # then what the answers need, with room
    # A new worker starts from what the ledger recorded, not from the schema again.
    provider = make_provider(llm_settings("http://127.0.0.1:1/v1").llm, SECRETS)
    worker = Worker(ledger, llm_settings("http://127.0.0.1:1/v1"), provider,
                    PromptBook(), handle_signals=False)
    answers = [r[1] for r in rows]
    assert worker.sizer.sample_size(KEY) == len(answers)
    assert worker.sizer.limit(KEY, SCHEMA) == math.ceil(quantile(answers, 0.99) * 1.25) + 16
    asyncio.run(provider.aclose())


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_an_answer_cut_off_is_asked_again_larger_without_using_an_attempt(
        ledger: Ledger, wire: str) -> None:
    with synced_ledger(ledger, 3), serve_llm(LLMSandboxOptions(seed=3)) as llm:
        settings = _settings(llm.url, wire, concurrency=1)
        provider = make_provider(settings.llm, SECRETS)
        worker = Worker(ledger, settings, provider, PromptBook.from_settings(settings),
                        handle_signals=False)
        # History says answers are tiny: the first requests ask for too little.
        worker.sizer = OutputSizer(settings.llm.max_output_tokens, {KEY: [1] * MIN_SAMPLE})
        small = worker.sizer.limit(KEY, SCHEMA)

        async def go() -> Any:
            try:
                return await worker.run()
            finally:
                await provider.aclose()

        result = asyncio.run(go())
        requests = llm.llm.count(wire)
    assert result.exit_reason == "completed", result.message
    drafted = ledger.conn.execute(
        "SELECT d.job_id, json_extract(d.params, '$.max_output_tokens'), d.tokens_out, "
        "json_extract(d.params, '$.answer_tokens'), j.attempts FROM drafts d "
        "JOIN jobs j ON j.id = d.job_id ORDER BY d.id").fetchall()
    assert len(drafted) == 3 and worker.sizer.grown >= 1
    first = drafted[0]
    assert first[1] > small and first[4] == 1  # asked again larger, one attempt used
    assert first[2] > first[3] > small  # the cut-off answer's tokens are billed too
    assert requests == 3 + worker.sizer.grown
    assert worker.stats.requests == requests
    # Learned: after the retry the limit fits the answers, so the last job was not cut.
    assert worker.sizer.limit(KEY, SCHEMA) > first[3]


# -- limit models and headers ---------------------------------------------------------------


def test_each_provider_counts_tokens_its_own_way() -> None:
    assert OPENAI.request_tokens(4000, 2000, 300) == 1000 + 300  # prompt + max_tokens
    assert ANTHROPIC.request_tokens(4000, 2000, 300) == 500  # uncached input only
    assert ANTHROPIC.otpm == 10_000
    flash = gemini_limits("gemini-2.5-flash")
    assert (flash.rpm, flash.tpm, flash.output_at_request) == (1000, 1_000_000, False)
    assert gemini_limits("gemini-2.5-flash-lite").rpm == 4000
    assert gemini_limits("gemini-9-ultra").rpm == 150  # unknown: the most restrictive


def test_anthropic_input_and_output_limits_are_read_apart() -> None:
    info = anthropic_rate_limits({
        "anthropic-ratelimit-requests-limit": "4000",
        "anthropic-ratelimit-tokens-limit": "80000",
        "anthropic-ratelimit-input-tokens-limit": "400000",
        "anthropic-ratelimit-input-tokens-remaining": "399000",
        "anthropic-ratelimit-output-tokens-limit": "80000",
        "anthropic-ratelimit-output-tokens-remaining": "1000"})
    assert (info.requests_limit, info.tokens_limit, info.tokens_remaining) == (
        4000, 400000, 399000)
    assert (info.output_tokens_limit, info.output_tokens_remaining) == (80000, 1000)


def test_unset_limits_are_learned_from_headers_and_set_ones_kept() -> None:
    learning = RateLimiter(500, 200_000, learn_rpm=True, learn_tpm=True)
    learning.observe(RateLimitInfo(requests_limit=5000, tokens_limit=2_000_000,
                                   requests_remaining=4000, tokens_remaining=1_000_000,
                                   output_tokens_limit=90_000))
    assert (learning.rpm, learning.tpm, learning.otpm) == (5000, 2_000_000, 90_000)
    assert learning.requests.rate == pytest.approx(5000 / 60)
    assert learning.output is not None and learning.output.rate == pytest.approx(1500)
    learning.observe(None)  # a response without headers changes nothing learned
    assert learning.output is not None and learning.otpm == 90_000
    # A server that never reports an output limit does not count output apart.
    anthropic_start = RateLimiter(50, 50_000, max_otpm=10_000)
    anthropic_start.observe(RateLimitInfo(requests_limit=50, tokens_limit=50_000))
    assert anthropic_start.output is None
    fixed = RateLimiter(60, 1000)
    fixed.observe(RateLimitInfo(requests_limit=5000, tokens_limit=2_000_000))
    assert (fixed.rpm, fixed.tpm, fixed.requests.rate) == (60, 1000, 1.0)


def test_a_run_with_unset_limits_uses_the_sandbox_limits(ledger: Ledger) -> None:
    with synced_ledger(ledger, 12), serve_llm(LLMSandboxOptions(rpm=6000, tpm=900_000,
                                                                otpm=70_000)) as llm:
        result = _run(ledger, _settings(llm.url, "anthropic", max_rpm=None, max_tpm=None))
        limited = llm.llm.count("anthropic", "rate_limited")
    assert result.exit_reason == "completed", result.message
    counts = ledger.get_run(result.run_id)["counts"]
    assert counts["limits_learned"] == {"rpm": 6000, "tpm": 900_000, "otpm": 70_000}
    assert limited == 0


# -- the sandbox counts like the providers ----------------------------------------------------


def test_sandbox_charges_openai_max_tokens_and_anthropic_uncached_input() -> None:
    body = {"model": "gpt-4o-mini", "max_completion_tokens": 400,
            "messages": [{"role": "system", "content": "s" * 4000},
                         {"role": "user", "content": "u" * 400}]}
    with serve_llm(LLMSandboxOptions(tpm=60_000, otpm=60_000)) as s, httpx.Client() as http:
        ok = http.post(s.url + "/v1/chat/completions", json=body,
                       headers={"Authorization": "Bearer sk-x"})
        prompt = ok.json()["usage"]["prompt_tokens"]
        left = int(ok.headers["x-ratelimit-remaining-tokens"])
        assert 60_000 - prompt - 400 <= left <= 60_000 - prompt - 400 + 20
        claude = {"model": "claude-haiku-4-5", "max_tokens": 500,
                  "system": [{"type": "text", "text": "s" * 4000,
                              "cache_control": {"type": "ephemeral"}}],
                  "messages": [{"role": "user", "content": "u" * 400}]}
        headers = {"x-api-key": "sk-ant-x", "anthropic-version": "2023-06-01"}
        first = http.post(s.url + "/v1/messages", json=claude, headers=headers)
        before = int(first.headers["anthropic-ratelimit-input-tokens-remaining"])
        second = http.post(s.url + "/v1/messages", json=claude, headers=headers)
        usage = second.json()["usage"]
        assert usage["cache_read_input_tokens"] >= 1000
        after = int(second.headers["anthropic-ratelimit-input-tokens-remaining"])
        # Only the uncached input counts against ITPM (the bucket refills 1,000 a second).
        assert before - after <= usage["input_tokens"] + usage["cache_creation_input_tokens"]
        out_left = int(second.headers["anthropic-ratelimit-output-tokens-remaining"])
        produced = first.json()["usage"]["output_tokens"] + usage["output_tokens"]
        assert 60_000 - produced <= out_left <= 60_000 - produced + 50  # max_tokens given back
    with serve_llm(LLMSandboxOptions(otpm=400)) as s, httpx.Client() as http:
        refused = http.post(s.url + "/v1/messages", json=claude, headers=headers)
        assert refused.status_code == 429  # 500 max_tokens cannot fit a 400 OTPM bucket
        assert "output tokens per minute" in refused.json()["error"]["message"]


# -- estimates --------------------------------------------------------------------------------


def test_estimate_prices_from_recorded_usage_and_report_shows_it(ledger: Ledger) -> None:
    with synced_ledger(ledger, 60), serve_llm(LLMSandboxOptions(seed=2)) as llm:
        settings = llm_settings(llm.url + "/v1", concurrency=4)
        provider = make_provider(settings.llm, SECRETS)
        prompts = PromptBook.from_settings(settings)
        fields = list(settings.sync.fields)
        before = estimate_queue(ledger, provider, prompts, fields, 1200)
        sample = _run(ledger, settings, limit=20)
        after = estimate_queue(ledger, provider, prompts, fields, 1200)
        rest = _run(ledger, settings)
        asyncio.run(provider.aclose())
    assert before.method == "rendered prompts" and before.recorded == 0
    assert "output schema" in before.basis
    assert after.method == "recorded usage" and after.recorded == sample.stats.drafted == 20
    assert "20 gpt-4o-mini draft(s)" in after.basis and after.retry_buffer == 0
    report = {r["id"]: r for r in run_report(ledger)["runs"]}
    actual = report[rest.run_id]["cost_usd"]
    assert actual == pytest.approx(after.cost_live_usd, rel=0.10)
    assert before.cost_live_usd > 2 * actual  # the schema's figure is the generous one
    assert report[rest.run_id]["estimate_usd"] == pytest.approx(after.cost_live_usd, rel=0.02)
    assert report[rest.run_id]["actual_vs_estimate"] == pytest.approx(
        actual / report[rest.run_id]["estimate_usd"], rel=0.01)
    assert report[sample.run_id]["estimate_usd"] > 0
