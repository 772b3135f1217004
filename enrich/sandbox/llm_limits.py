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
    #: Anthropic's OTPM (``--otpm``): output tokens, charged as they are produced.
    output_limit: int | None = None
    output_remaining: int = 0
    output_reset: float = 0.0


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused: which limit, how long to wait, and whether waiting helps."""

    limit: str  # "requests" or "tokens"
    retry_after: float  # seconds; inf when the request alone exceeds the limit
    requested: int
    state: LimitState


class RateLimiter:
    """RPM, TPM and (Anthropic) OTPM together: a request is admitted only if every bucket
    has room.

    What the token bucket is charged depends on the provider being imitated, as each counts
    differently (see ``docs/sandbox-llm.md``): OpenAI charges the prompt plus ``max_tokens``
    when the request arrives; Anthropic's input bucket (ITPM) takes the prompt tokens that
    were not read from the cache, and its output bucket (OTPM) the tokens produced, after
    the fact, refusing new requests while it is empty.
    """

    def __init__(self, rpm: int | None, tpm: int | None, clock: Clock = time.monotonic, *,
                 otpm: int | None = None) -> None:
        self._lock = threading.Lock()
        self._requests = TokenBucket(rpm, clock) if rpm else None
        self._tokens = TokenBucket(tpm, clock) if tpm else None
        self._output = TokenBucket(otpm, clock) if otpm else None

    @property
    def enabled(self) -> bool:
        return any(b is not None for b in (self._requests, self._tokens, self._output))

    def admit(self, prompt_tokens: int, *, output_reserve: int = 0) -> LimitState | Refusal:
        """Take one request and ``prompt_tokens``, or refuse without taking anything.

        ``output_reserve``: also take that many tokens from the output bucket (OTPM), as
        Anthropic does with ``max_tokens`` until the answer's real length is known
        (``charge_output(..., reserved=...)`` settles it).
        """
        with self._lock:
            waits: list[tuple[float, str, int]] = []
            if self._requests is not None:
                waits.append((self._requests.wait_for(1), "requests", 1))
            if self._tokens is not None:
                waits.append((self._tokens.wait_for(prompt_tokens), "tokens", prompt_tokens))
            if output_reserve and self._output is not None:
                waits.append((self._output.wait_for(output_reserve), "output_tokens",
                              output_reserve))
            worst = max(waits, default=(0.0, "", 0))
            if worst[0] > 0:
                return Refusal(worst[1], worst[0], worst[2], self._state())
            if self._requests is not None:
                self._requests.take(1)
            if self._tokens is not None:
                self._tokens.take(prompt_tokens)
            if output_reserve and self._output is not None:
                self._output.take(output_reserve)
            return self._state()

    def charge_output(self, output_tokens: int, *, bucket: str = "tokens",
                      reserved: int = 0) -> LimitState:
        """Output tokens count once they are known: toward TPM (``bucket="tokens"``), or
        toward OTPM (``"output"``, Anthropic, less the ``reserved`` taken at admission:
        what the answer did not use goes back); ``"none"`` charges nothing (OpenAI took
        ``max_tokens`` up front)."""
        with self._lock:
            chosen = {"tokens": self._tokens, "output": self._output}.get(bucket)
            if chosen is not None and (output_tokens or reserved):
                chosen.take(output_tokens - (reserved if chosen is self._output else 0))
                chosen._level = min(float(chosen.capacity), chosen._level)
            return self._state()

    def state(self) -> LimitState:
        with self._lock:
            return self._state()

    def _state(self) -> LimitState:
        r, t, o = self._requests, self._tokens, self._output
        return LimitState(
            requests_limit=r.capacity if r else None,
            requests_remaining=r.remaining if r else 0,
            requests_reset=r.reset_after if r else 0.0,
            tokens_limit=t.capacity if t else None,
            tokens_remaining=t.remaining if t else 0,
            tokens_reset=t.reset_after if t else 0.0,
            output_limit=o.capacity if o else None,
            output_remaining=o.remaining if o else 0,
            output_reset=o.reset_after if o else 0.0,
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
