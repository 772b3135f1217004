"""Staying under the provider's limits: token buckets, a shared pause, and backoff.

The buckets pace requests *before* they are sent, so a run at the configured RPM/TPM does not
rely on 429s to find the limit. When the provider says otherwise (a 429 with retry-after, or
rate-limit headers showing little remaining), every request pauses, not just the one that
was told, because they all draw on the same quota.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Literal

from enrich.providers import RateLimitInfo

#: Fraction of the window's quota below which the worker pauses until the window resets.
LOW_REMAINING = 0.02
#: Seconds of output tokens (OTPM) requests may hold at once. Each holds its ``max_tokens``
#: only while it is answered and gives most of it back, so the one second of burst the
#: other buckets allow would let barely one request in flight.
OUTPUT_BURST_S = 10.0


class TokenBucket:
    """``rate`` units a second, bursting to ``capacity``."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.capacity = max(1.0, capacity)
        self._clock = clock
        self._level = self.capacity
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._at) * self.rate)
        self._at = now

    def wait_for(self, units: float) -> float:
        """Seconds until ``units`` are available (0 if they are now)."""
        self._refill()
        units = min(units, self.capacity)
        return 0.0 if self._level >= units else (units - self._level) / self.rate

    def take(self, units: float) -> None:
        self._refill()
        self._level -= min(units, self.capacity)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute pacing shared by every in-flight request.

    A third bucket, ``output`` (Anthropic's OTPM), is paced on the tokens really produced:
    a request reserves its ``max_tokens`` and ``settle_output`` gives back what the answer
    did not use. Limits the config leaves unset are ``learn``-ed from the provider's
    rate-limit headers; ``fixed`` ones never move.
    """

    def __init__(self, max_rpm: int, max_tpm: int, *, max_otpm: int | None = None,
                 learn_rpm: bool = False, learn_tpm: bool = False,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        # One second of burst: smooth pacing that still lets a refill go out at once.
        self.requests = TokenBucket(max_rpm / 60.0, max_rpm / 60.0, clock)
        self.tokens = TokenBucket(max_tpm / 60.0, max_tpm / 60.0, clock)
        self.output = (TokenBucket(max_otpm / 60.0, max_otpm * OUTPUT_BURST_S / 60.0, clock)
                       if max_otpm else None)
        self.learn_rpm = learn_rpm
        self.learn_tpm = learn_tpm
        self.rpm, self.tpm, self.otpm = max_rpm, max_tpm, max_otpm
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.waited_s = 0.0
        self.pauses = 0
        self.learned: dict[str, int] = {}  # what the headers said, for the run's record

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (a 429's retry-after, a window running out)."""
        until = self._clock() + max(0.0, seconds)
        if until > self._paused_until:
            self._paused_until = until
            self.pauses += 1

    def observe(self, info: RateLimitInfo | None) -> None:
        """Slow down on our own when the provider says the window is nearly used up.

        A response that reports no output limit drops the output bucket (unless an earlier
        one reported it): that server does not count output apart, and the tier-1 start
        would otherwise hold a proxy or a compatible server to 10,000 output tokens a minute.
        """
        if (info is None or not info.output_tokens_limit) and "otpm" not in self.learned:
            self.output = None
        if info is None:
            return
        self.learn(info)
        for limit, remaining, reset in (
                (info.requests_limit, info.requests_remaining, info.reset_requests_s),
                (info.tokens_limit, info.tokens_remaining, info.reset_tokens_s),
                (info.output_tokens_limit, info.output_tokens_remaining,
                 info.reset_output_tokens_s)):
            if limit and remaining is not None and remaining <= max(1, limit * LOW_REMAINING):
                self.pause(reset if reset is not None else 1.0)

    def learn(self, info: RateLimitInfo) -> None:
        """Take the key's real limits from the headers, for the limits the config left unset
        (the output limit is never in the config)."""
        if self.learn_rpm and info.requests_limit:
            self.learned["rpm"] = info.requests_limit
            if info.requests_limit != self.rpm:
                self.rpm = info.requests_limit
                self._resize(self.requests, self.rpm)
        if self.learn_tpm and info.tokens_limit:
            self.learned["tpm"] = info.tokens_limit
            if info.tokens_limit != self.tpm:
                self.tpm = info.tokens_limit
                self._resize(self.tokens, self.tpm)
        if info.output_tokens_limit:
            self.learned["otpm"] = info.output_tokens_limit
            if info.output_tokens_limit != self.otpm:
                self.otpm = info.output_tokens_limit
                if self.output is None:
                    self.output = TokenBucket(self.otpm / 60.0,
                                              self.otpm * OUTPUT_BURST_S / 60.0, self._clock)
                else:
                    self._resize(self.output, self.otpm, OUTPUT_BURST_S)

    @staticmethod
    def _resize(bucket: TokenBucket, per_minute: int, burst_s: float = 1.0) -> None:
        bucket._refill()
        bucket.rate = per_minute / 60.0
        bucket.capacity = max(1.0, per_minute * burst_s / 60.0)
        bucket._level = min(bucket._level, bucket.capacity)

    async def acquire(self, tokens: int, output: int = 0) -> None:
        """Wait for a request slot, ``tokens`` and (with an output bucket) ``output``
        tokens; callers are served in arrival order."""
        async with self._lock:
            while True:
                now = self._clock()
                out_wait = self.output.wait_for(output) if self.output and output else 0.0
                wait = max(self._paused_until - now, self.requests.wait_for(1),
                           self.tokens.wait_for(tokens), out_wait)
                if wait <= 1e-6:  # float rounding must not leave us spinning on 1e-16 s
                    self.requests.take(1)
                    self.tokens.take(tokens)
                    if self.output is not None and output:
                        self.output.take(output)
                    return
                self.waited_s += wait
                await self._sleep(wait)

    def settle_output(self, reserved: int, produced: int) -> None:
        """The answer is in: charge the output bucket what was produced, not what was
        reserved (a bucket that went below zero makes the next requests wait)."""
        if self.output is None:
            return
        self.output._refill()
        charged = min(reserved, self.output.capacity)
        self.output._level = min(self.output.capacity,
                                 self.output._level + charged - produced)


def retry_delay(attempt: int, retry_after: float | None = None, *, base_s: float = 2.0,
                cap_s: float = 300.0) -> float:
    """Exponential backoff with full jitter, never sooner than the server asked.

    The retry loop itself is the ledger's (a failed job waits in ``failed`` until
    ``next_attempt_at``), so it survives a crash; this only computes the wait.
    """
    ceiling = min(cap_s, base_s * (2 ** max(0, attempt - 1)))
    delay = random.uniform(0, ceiling)
    return max(delay, retry_after or 0.0)


#: What one finished attempt tells the breaker (429s tell it nothing: they are pacing).
Outcome = Literal["ok", "systematic", "transient"]

#: Share of the window that transient failures must reach before they stop a run: a
#: majority of failures is a provider outage, anything less is weather the retries absorb.
TRANSIENT_SHARE = 0.5
#: Fewest transient failures in a row that stop a run, whatever the window says.
MIN_CONSECUTIVE = 10


def consecutive_limit(concurrency: int) -> int:
    """Transient failures in a row that mean an outage rather than a blip.

    One blip (a dropped connection pool, a second of 503s) can fail every request in flight
    at once, so a streak shorter than two full rounds of in-flight requests proves nothing.
    At least ``MIN_CONSECUTIVE``: at a 10 % random fault rate ten in a row happen about once
    in 10^10 attempts (at 30 %, once in 170,000), while an endpoint that is down reaches it
    in seconds, before the window fills.
    """
    return max(MIN_CONSECUTIVE, 2 * concurrency)


class Breaker:
    """Stops a run that cannot succeed, never one that is only unlucky.

    Failures are of two kinds. A *systematic* one (an answer still unusable after the repair,
    a refusal, a permanent 4xx, a record the template cannot render) repeats on every retry,
    so a small share of them means something to fix: the breaker trips once more than
    ``threshold`` of the last ``window`` attempts failed that way. A *transient* one (5xx,
    529, timeout, dropped connection) usually succeeds when the ledger retries it, so it
    counts only when it looks like an outage: ``TRANSIENT_SHARE`` of the window, or
    ``consecutive`` in a row. Both rules are counts over the window, so the breaker trips as
    soon as the window can no longer stay under the limit, without waiting for it to fill.
    """

    def __init__(self, window: int, threshold: float, *,
                 consecutive: int = MIN_CONSECUTIVE) -> None:
        self.window = window
        self.threshold = threshold
        self.consecutive = consecutive
        self._outcomes: deque[Outcome] = deque(maxlen=window)
        self._streak = 0  # transient failures since the last other outcome
        self._last: dict[Outcome, str] = {}

    def record(self, outcome: Outcome, error: str = "") -> None:
        """One finished attempt; ``error`` is the failure's message, quoted when it trips."""
        self._outcomes.append(outcome)
        self._streak = self._streak + 1 if outcome == "transient" else 0
        if outcome != "ok":
            self._last[outcome] = error

    def count(self, outcome: Outcome) -> int:
        return sum(1 for seen in self._outcomes if seen == outcome)

    @property
    def reason(self) -> str | None:
        """Why the breaker tripped, naming the failure that tripped it; None while closed."""
        systematic = self.count("systematic")
        if systematic > self.threshold * self.window:
            return (f"{systematic} of the last {self.window} attempts failed in a way a "
                    f"retry does not fix (limit {self.threshold:.0%}); last: "
                    f"{self._last['systematic']}")
        if self._streak >= self.consecutive:
            return (f"{self._streak} attempts in a row failed with transient errors (limit "
                    f"{self.consecutive}); last: {self._last['transient']}")
        transient = self.count("transient")
        if transient >= TRANSIENT_SHARE * self.window:
            return (f"{transient} of the last {self.window} attempts failed with transient "
                    f"errors (limit {TRANSIENT_SHARE:.0%}); last: {self._last['transient']}")
        return None

    @property
    def tripped(self) -> bool:
        return self.reason is not None


class Budget:
    """Spend so far plus what in-flight requests may cost; refuses what would pass the cap."""

    def __init__(self, cap_usd: float, spent_usd: float = 0.0) -> None:
        self.cap = cap_usd
        self.spent = spent_usd
        self.reserved = 0.0

    def reserve(self, estimate: float) -> bool:
        if self.spent + self.reserved + estimate > self.cap:
            return False
        self.reserved += estimate
        return True

    def settle(self, estimate: float, actual: float) -> None:
        self.reserved = max(0.0, self.reserved - estimate)
        self.spent += actual
