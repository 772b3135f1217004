"""Rate limits, token estimates and the prompt cache of the sandbox LLM endpoint.

The limits are token buckets, the way both real APIs describe theirs: a bucket holds at
most one minute's allowance (``rpm`` requests, ``tpm`` tokens) and refills continuously at
``limit / 60`` per second. So ``remaining`` in the headers is the bucket's level right
now, ``reset`` is when it will be full again, and ``retry-after`` on a 429 is when the
refused request would fit. A client that paces itself by those headers never sees a 429.

Tokens are estimated, not tokenized: one token per four characters of text, rounded up
(``estimate_tokens``). The same estimate feeds usage, TPM and the prompt cache, so the
numbers a client sees add up.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

CHARS_PER_TOKEN = 4
Clock = Callable[[], float]


def estimate_tokens(text: str) -> int:
    """One token per four characters, rounded up: close enough to real tokenizers for
    English product copy, and simple enough for a client to reproduce exactly."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def go_duration(seconds: float) -> str:
    """OpenAI's reset format: ``"6ms"``, ``"1.5s"``, ``"6m0s"``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, math.ceil(seconds * 1000))}ms"
    if seconds < 60:
        return f"{_trim(seconds)}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{_trim(rest)}s"


def _trim(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def rfc3339_after(seconds: float) -> str:
    """Anthropic's reset format: the instant, in UTC, with second precision."""
    instant = datetime.now(UTC) + timedelta(seconds=max(0.0, seconds))
    return instant.replace(microsecond=0).isoformat().replace("+00:00", "Z")


class TokenBucket:
    """``capacity`` units that refill at ``capacity / 60`` per second. Not thread-safe on
    its own: ``RateLimiter`` holds the lock around both buckets."""

    def __init__(self, capacity: int, clock: Clock) -> None:
        if capacity <= 0:
            raise ValueError(f"a per-minute limit must be positive, not {capacity}")
        self.capacity = capacity
        self.rate = capacity / 60.0
        self._clock = clock
        self._level = float(capacity)
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(float(self.capacity), self._level + (now - self._updated) * self.rate)
        self._updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` fits (0 when it fits now; inf when it never can)."""
        self._refill()
        if amount > self.capacity:
            return math.inf
        return max(0.0, (amount - self._level) / self.rate)

    def take(self, amount: float) -> None:
        self._refill()
        self._level -= amount  # may go below zero: output tokens are charged after the fact

    @property
    def remaining(self) -> int:
        self._refill()
        return max(0, math.floor(self._level))

    @property
    def reset_after(self) -> float:
        self._refill()
        return max(0.0, (self.capacity - self._level) / self.rate)


@dataclass(frozen=True)
class LimitState:
    """What the rate-limit headers report after a request was admitted or refused."""

    requests_limit: int | None
    requests_remaining: int
    requests_reset: float
    tokens_limit: int | None
    tokens_remaining: int
    tokens_reset: float


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused: which limit, how long to wait, and whether waiting helps."""

    limit: str  # "requests" or "tokens"
    retry_after: float  # seconds; inf when the request alone exceeds the limit
    requested: int
    state: LimitState


class RateLimiter:
    """RPM and TPM together: a request is admitted only if both buckets have room."""

    def __init__(self, rpm: int | None, tpm: int | None, clock: Clock = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._requests = TokenBucket(rpm, clock) if rpm else None
        self._tokens = TokenBucket(tpm, clock) if tpm else None

    @property
    def enabled(self) -> bool:
        return self._requests is not None or self._tokens is not None

    def admit(self, prompt_tokens: int) -> LimitState | Refusal:
        """Take one request and the prompt's tokens, or refuse without taking anything."""
        with self._lock:
            waits: list[tuple[float, str, int]] = []
            if self._requests is not None:
                waits.append((self._requests.wait_for(1), "requests", 1))
            if self._tokens is not None:
                waits.append((self._tokens.wait_for(prompt_tokens), "tokens", prompt_tokens))
            worst = max(waits, default=(0.0, "", 0))
            if worst[0] > 0:
                return Refusal(worst[1], worst[0], worst[2], self._state())
            if self._requests is not None:
                self._requests.take(1)
            if self._tokens is not None:
                self._tokens.take(prompt_tokens)
            return self._state()

    def charge_output(self, output_tokens: int) -> LimitState:
        """Output tokens count toward TPM once they are known."""
        with self._lock:
            if self._tokens is not None and output_tokens:
                self._tokens.take(output_tokens)
            return self._state()

    def state(self) -> LimitState:
        with self._lock:
            return self._state()

    def _state(self) -> LimitState:
        r, t = self._requests, self._tokens
        return LimitState(
            requests_limit=r.capacity if r else None,
            requests_remaining=r.remaining if r else 0,
            requests_reset=r.reset_after if r else 0.0,
            tokens_limit=t.capacity if t else None,
            tokens_remaining=t.remaining if t else 0,
            tokens_reset=t.reset_after if t else 0.0,
        )


class PromptCache:
    """Prefixes seen recently, keyed by a digest of their content, with a time to live.

    A hit refreshes the entry's lifetime, as Anthropic's ephemeral cache does. Bounded so a
    long benchmark cannot grow it without end (oldest entries go first).
    """

    def __init__(self, clock: Clock = time.monotonic, max_entries: int = 10_000) -> None:
        self._clock = clock
        self._max = max_entries
        self._entries: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str, ttl: float) -> bool:
        """True if ``key`` is cached (and refresh it); else store it and return False."""
        now = self._clock()
        with self._lock:
            expires = self._entries.get(key)
            found = expires is not None and expires > now
            self._entries[key] = now + ttl
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
            return found

    def contains(self, key: str) -> bool:
        now = self._clock()
        with self._lock:
            expires = self._entries.get(key)
            return expires is not None and expires > now
