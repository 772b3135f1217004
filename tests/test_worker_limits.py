"""Pacing, backoff, breaker and budget, with a fake clock (no sleeping)."""

from __future__ import annotations

import asyncio

import pytest

from enrich.errors import UsageError
from enrich.providers import RateLimitInfo
from enrich.worker import Breaker, Budget, RateLimiter, parse_until, retry_delay
from enrich.worker.limits import consecutive_limit
from enrich.worker.progress import progress_line
from enrich.worker.runner import RunStats


class FakeClock:
    """Time that moves only when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def _limiter(rpm: int, tpm: int, clock: FakeClock) -> RateLimiter:
    return RateLimiter(rpm, tpm, clock=clock, sleep=clock.sleep)


def _acquire_all(limiter: RateLimiter, clock: FakeClock, n: int, tokens: int) -> float:
    """Acquire n slots; returns how much (fake) time that took."""

    async def go() -> None:
        for _ in range(n):
            await limiter.acquire(tokens)

    start = clock.now
    asyncio.run(go())
    return clock.now - start


def test_requests_are_paced_at_the_rpm() -> None:
    clock = FakeClock()
    limiter = _limiter(600, 10**9, clock)  # 10 per second, 1 s of burst
    took = _acquire_all(limiter, clock, 110, 1)
    assert took == pytest.approx(10.0, abs=0.2)  # 10 burst + 100 at 10/s


def test_tokens_are_paced_at_the_tpm() -> None:
    clock = FakeClock()
    limiter = _limiter(10**6, 60_000, clock)  # 1,000 tokens a second
    took = _acquire_all(limiter, clock, 11, 1000)
    assert took == pytest.approx(10.0, abs=0.2)


def test_pause_and_low_remaining_headers_hold_every_request() -> None:
    clock = FakeClock()
    limiter = _limiter(10**6, 10**9, clock)
    limiter.observe(RateLimitInfo(requests_limit=500, requests_remaining=3,
                                  reset_requests_s=7.0))
    assert _acquire_all(limiter, clock, 1, 1) == pytest.approx(7.0)
    limiter.observe(RateLimitInfo(requests_limit=500, requests_remaining=400,
                                  reset_requests_s=7.0))
    assert _acquire_all(limiter, clock, 1, 1) == pytest.approx(0.0)
    limiter.pause(2.5)
    assert _acquire_all(limiter, clock, 1, 1) == pytest.approx(2.5)


def test_retry_delay_has_full_jitter_and_honours_retry_after() -> None:
    delays = [retry_delay(3, base_s=1.0, cap_s=100) for _ in range(500)]
    assert all(0 <= d <= 4.0 for d in delays) and max(delays) > 3 and min(delays) < 1
    assert all(retry_delay(1, 9.0, base_s=1.0) >= 9.0 for _ in range(50))
    assert all(retry_delay(30, base_s=1.0, cap_s=60) <= 60 for _ in range(50))


def test_breaker_trips_on_systematic_failures_over_the_threshold() -> None:
    breaker = Breaker(window=10, threshold=0.2)
    breaker.record("systematic", "job 1: output still invalid after one repair")
    breaker.record("systematic", "job 2: output still invalid after one repair")
    for _ in range(7):
        breaker.record("ok")
    assert not breaker.tripped  # 2 of 10 is the limit, not over it
    breaker.record("systematic", "job 3: the model refused")
    assert breaker.reason == ("3 of the last 10 attempts failed in a way a retry does not fix "
                              "(limit 20%); last: job 3: the model refused")
    for _ in range(10):
        breaker.record("ok")  # the failures slid out of the window
    assert not breaker.tripped


def test_breaker_trips_as_soon_as_the_window_cannot_stay_under_the_limit() -> None:
    breaker = Breaker(window=50, threshold=0.1)
    for i in range(5):
        breaker.record("systematic", f"job {i}: 400")
    assert not breaker.tripped
    breaker.record("systematic", "job 5: 400")  # 6 > 5: whatever comes next, it stays over
    assert breaker.tripped and "6 of the last 50" in (breaker.reason or "")


def test_breaker_lets_transient_weather_through() -> None:
    breaker = Breaker(window=50, threshold=0.1, consecutive=10)
    for i in range(1000):  # 20 % transient, never 10 in a row: far over the old 10 % rule
        breaker.record("transient" if i % 5 == 0 else "ok", f"job {i}: HTTP 500")
        assert not breaker.tripped, i
    for _ in range(9):
        breaker.record("transient", "job x: HTTP 503")
    assert not breaker.tripped  # 9 in a row, 17 of the window: still weather


def test_breaker_trips_on_a_transient_majority_of_the_window() -> None:
    breaker = Breaker(window=20, threshold=0.1, consecutive=100)
    for i in range(18):
        breaker.record("transient" if i % 2 else "ok", f"job {i}: no answer within 60 s")
    assert not breaker.tripped  # 9 of 20
    breaker.record("transient", "job 18: HTTP 529 overloaded")
    assert breaker.reason == ("10 of the last 20 attempts failed with transient errors "
                              "(limit 50%); last: job 18: HTTP 529 overloaded")


def test_breaker_trips_on_a_transient_streak_and_a_success_resets_it() -> None:
    breaker = Breaker(window=50, threshold=0.1, consecutive=consecutive_limit(4))
    assert breaker.consecutive == 10  # the floor, at a low concurrency
    assert consecutive_limit(8) == 16  # two rounds of in-flight requests at the default
    for _ in range(9):
        breaker.record("transient", "connection refused")
    breaker.record("ok")
    for _ in range(9):
        breaker.record("transient", "connection refused")
    assert not breaker.tripped  # 18 of 50, never 10 in a row
    breaker.record("transient", "job 7: HTTP 500")
    assert breaker.reason == ("10 attempts in a row failed with transient errors (limit 10); "
                              "last: job 7: HTTP 500")


def test_budget_refuses_what_would_pass_the_cap() -> None:
    budget = Budget(1.0)
    assert budget.reserve(0.6)
    assert not budget.reserve(0.5)  # 0.6 in flight + 0.5 > 1.0
    budget.settle(0.6, 0.3)
    assert budget.reserve(0.5) and budget.spent == pytest.approx(0.3)


def test_until_is_the_next_occurrence() -> None:
    import datetime as dt

    now = dt.datetime(2026, 11, 23, 22, 0).astimezone()
    assert dt.datetime.fromtimestamp(parse_until("06:00", now)).day == 24
    assert dt.datetime.fromtimestamp(parse_until("23:30", now)).day == 23
    with pytest.raises(UsageError, match="not a time of day") as err:
        parse_until("6am")
    assert "HH:MM" in err.value.hint


def test_progress_line_reads_like_the_issue() -> None:
    stats = RunStats(total=10_000, drafted=717, dead=3, cost_usd=1.42)
    stats.started -= 45 * 60 * 720 / 9280  # as if 720 took this long
    line = progress_line(stats)
    assert line.startswith("720/10,000 done, 3 failed, $1.42 spent, ETA 45 min")
