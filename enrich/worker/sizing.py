"""How many output tokens to ask for: enough for the answer, not a token more.

OpenAI charges a request's ``max_tokens`` against the tokens-per-minute limit when it is
sent, so the shipped ``max_output_tokens = 1200`` paced a run at a fifth of its request limit
while the drafts averaged 144 output tokens. Each request's limit is therefore sized:

* from the **output schema** while there is no history: each string field's ``maxLength``
  (``estimate_output_tokens``), which is generous, never below the smallest valid answer
  (every field at its ``minLength``) and never above ``[llm] max_output_tokens``;
* from **recorded answers** once there are ``MIN_SAMPLE`` of them for the template, field
  set and model (the ledger's, then this run's): the ``QUANTILE`` of recent answers times
  ``MARGIN`` plus ``SLACK`` tokens, within the same bounds;
* an answer **cut off** at its limit is asked again once at ``grow`` (twice the limit, at
  least the schema figure, at most the ceiling) without using an attempt, and its length
  is learned, so the next requests ask for more.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from enrich.providers import estimate_output_tokens

#: Recorded answers needed before they replace the schema figure.
MIN_SAMPLE = 20
#: Recent answers kept per (template, fields).
WINDOW = 500
#: The share of recent answers the limit must fit.
QUANTILE = 0.99
#: Head room over that quantile: a longer product or a wordier day.
MARGIN = 1.25
SLACK = 16

Key = tuple[str, tuple[str, ...]]


def smallest_answer_tokens(schema: Mapping[str, Any]) -> int:
    """Output tokens of the smallest valid answer: every string at its ``minLength``, the
    JSON keys and quotes, at 4 characters per token (the limit may never go below it)."""
    chars = 2
    for name, prop in (schema.get("properties") or {}).items():
        low = prop.get("minLength")
        items = prop.get("items") or {}
        if low is None and isinstance(items, Mapping):
            low = items.get("minLength")
        chars += len(name) + 6 + int(low or 0)
    return max(16, math.ceil(chars / 4.0))


def quantile(values: list[int], share: float) -> int:
    """The nearest-rank ``share`` quantile of ``values`` (not empty)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


class OutputSizer:
    """``max_tokens`` per (template, fields), learned from recorded answers."""

    def __init__(self, ceiling: int,
                 recorded: Mapping[Key, list[int]] | None = None) -> None:
        self.ceiling = ceiling
        self._seen: dict[Key, deque[int]] = {
            key: deque(values[-WINDOW:], maxlen=WINDOW) for key, values in
            (recorded or {}).items()}
        self.grown = 0  # answers cut off and asked again

    def _bounds(self, schema: Mapping[str, Any]) -> tuple[int, int]:
        floor = min(self.ceiling, smallest_answer_tokens(schema))
        return floor, estimate_output_tokens(dict(schema), self.ceiling)

    def limit(self, key: Key, schema: Mapping[str, Any]) -> int:
        """The ``max_tokens`` to ask for now."""
        floor, prior = self._bounds(schema)
        seen = self._seen.get(key)
        if seen is None or len(seen) < MIN_SAMPLE:
            return max(floor, prior)
        learned = math.ceil(quantile(list(seen), QUANTILE) * MARGIN) + SLACK
        return max(floor, min(self.ceiling, learned))

    def sample_size(self, key: Key) -> int:
        return len(self._seen.get(key, ()))

    def grow(self, key: Key, schema: Mapping[str, Any], cut_at: int) -> int | None:
        """The larger limit to ask again with after an answer was cut off at ``cut_at``;
        None when the ceiling was already asked for."""
        if cut_at >= self.ceiling:
            return None
        _, prior = self._bounds(schema)
        return min(self.ceiling, max(2 * cut_at, prior))

    def record(self, key: Key, output_tokens: int) -> None:
        """One answer's length (a cut-off one's retry included): the next limits fit it."""
        if output_tokens > 0:
            self._seen.setdefault(key, deque(maxlen=WINDOW)).append(output_tokens)
