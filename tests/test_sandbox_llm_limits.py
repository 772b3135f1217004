"""The sandbox LLM's token buckets and prompt cache, on a clock the test moves by hand."""

from __future__ import annotations

import math

import pytest

from enrich.sandbox.llm_limits import (
    LimitState,
    PromptCache,
    RateLimiter,
    Refusal,
    estimate_tokens,
    go_duration,
    rfc3339_after,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_requests_bucket_refills_continuously() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=60, tpm=None, clock=clock)
    for expected in range(59, -1, -1):
        state = limiter.admit(0)
        assert isinstance(state, LimitState) and state.requests_remaining == expected
    refused = limiter.admit(0)
    assert isinstance(refused, Refusal) and refused.limit == "requests"
    assert refused.retry_after == pytest.approx(1.0)  # 60 rpm: one request a second
    assert refused.state.requests_reset == pytest.approx(60.0)
    clock.now += 0.5
    assert isinstance(limiter.admit(0), Refusal)  # refused requests take nothing
    clock.now += 0.5
    assert isinstance(limiter.admit(0), LimitState)
    clock.now += 600
    assert limiter.state().requests_remaining == 60  # never above the minute's allowance


def test_tokens_bucket_takes_prompt_then_output() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=None, tpm=600, clock=clock)
    state = limiter.admit(400)
    assert isinstance(state, LimitState) and state.tokens_remaining == 200
    assert state.requests_limit is None and state.tokens_limit == 600
    assert limiter.charge_output(300).tokens_remaining == 0  # below zero shows as zero
    refused = limiter.admit(100)
    assert isinstance(refused, Refusal) and refused.limit == "tokens"
    # The bucket is at -100 and refills 10 tokens a second: 200 more tokens take 20 s.
    assert refused.retry_after == pytest.approx(20.0)
    clock.now += 20
    assert isinstance(limiter.admit(100), LimitState)
    too_big = limiter.admit(601)
    assert isinstance(too_big, Refusal) and math.isinf(too_big.retry_after)


def test_both_limits_must_have_room() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=2, tpm=1000, clock=clock)
    assert isinstance(limiter.admit(900), LimitState)
    refused = limiter.admit(200)
    assert isinstance(refused, Refusal) and refused.limit == "tokens"
    assert refused.state.requests_remaining == 1  # nothing was taken from the other bucket


def test_no_limits_means_always_admitted() -> None:
    limiter = RateLimiter(rpm=None, tpm=None)
    assert not limiter.enabled
    assert isinstance(limiter.admit(10**9), LimitState)


def test_prompt_cache_expires_and_refreshes() -> None:
    clock = Clock()
    cache = PromptCache(clock, max_entries=2)
    assert cache.hit("a", ttl=300) is False
    clock.now += 299
    assert cache.hit("a", ttl=300) is True  # and the hit refreshes the lifetime
    clock.now += 299
    assert cache.contains("a")
    clock.now += 301
    assert not cache.contains("a")
    cache.hit("b", 300)
    cache.hit("c", 300)
    cache.hit("d", 300)
    assert not cache.contains("b") and cache.contains("d")  # bounded: oldest out first


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.0061, "7ms"), (0.5, "500ms"), (1, "1s"), (1.5, "1.5s"), (59.9181, "59.918s"),
    (60, "1m0s"), (90.25, "1m30.25s"),
])
def test_go_durations(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_estimates_and_timestamps() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1 and estimate_tokens("abcde") == 2
    assert rfc3339_after(0).endswith("Z") and "T" in rfc3339_after(5)
