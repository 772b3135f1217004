"""What each model costs, so a run's spend is known before, during and after it.

Prices are USD per million tokens, dated, and can be overridden or extended in config
(``[llm.prices."model"]``). A model with no known price is a ConfigError before the first
request: a $0 report for a paid model is worse than no report, because the budget cap would
never trip. Offline drafting is free and needs no price.

Token accounting convention (the same for every provider, see ``Usage``):
``input_tokens`` counts every prompt token, including those read from the cache
(``cached_tokens``) and those written to it (``cache_write_tokens``); the three are billed
at the input, cached-input and cache-write rates respectively.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from enrich.config import PriceConfig
from enrich.errors import ConfigError

#: When the built-in table was last checked against the providers' pricing pages.
PRICES_CHECKED = "2026-11-23"

#: Where the numbers come from (stated in docs/providers.md too).
PRICE_SOURCES = {
    "openai": "https://developers.openai.com/api/docs/pricing (standard tier, short context)",
    "anthropic": "https://platform.claude.com/docs/en/about-claude/pricing (5-minute cache writes)",
    "gemini": "https://ai.google.dev/gemini-api/docs/pricing (Standard tier, prompts <= 200k "
              "tokens; cached input at the 90 % caching discount of "
              "https://ai.google.dev/gemini-api/docs/optimization; Batch 50 % of Standard)",
}


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens for one model."""

    input: float
    cached_input: float
    output: float
    batch_discount: float = 0.5
    cache_write: float | None = None  # Anthropic 5-minute cache writes; None = input rate
    origin: str = "built-in"  # "built-in", "config" or "offline": shown by `estimate`

    def cost(self, input_tokens: int, output_tokens: int, *, cached_tokens: int = 0,
             cache_write_tokens: int = 0, batch: bool = False) -> float:
        """Dollars for one request; cached and cache-write tokens are part of input_tokens."""
        plain = max(0, input_tokens - cached_tokens - cache_write_tokens)
        write_rate = self.cache_write if self.cache_write is not None else self.input
        dollars = (plain * self.input + cached_tokens * self.cached_input
                   + cache_write_tokens * write_rate + output_tokens * self.output) / 1_000_000
        if batch:
            dollars *= 1.0 - self.batch_discount
        return dollars


def _p(input: float, cached: float, output: float, cache_write: float | None = None,
       ) -> ModelPrice:
    return ModelPrice(input=input, cached_input=cached, output=output, cache_write=cache_write)


#: Built-in prices, checked on PRICES_CHECKED. Batch APIs are 50% off for all three providers.
BUILTIN_PRICES: dict[str, dict[str, ModelPrice]] = {
    "openai": {
        "gpt-5.5": _p(5.00, 0.50, 30.00),
        "gpt-5.4": _p(2.50, 0.25, 15.00),
        "gpt-5.4-mini": _p(0.75, 0.075, 4.50),
        "gpt-5.4-nano": _p(0.20, 0.02, 1.25),
        "gpt-5.2": _p(1.75, 0.175, 14.00),
        "gpt-5.1": _p(1.25, 0.125, 10.00),
        "gpt-5": _p(1.25, 0.125, 10.00),
        "gpt-5-mini": _p(0.25, 0.025, 2.00),
        "gpt-5-nano": _p(0.05, 0.005, 0.40),
        "gpt-4.1": _p(2.00, 0.50, 8.00),
        "gpt-4.1-mini": _p(0.40, 0.10, 1.60),
        "gpt-4.1-nano": _p(0.10, 0.025, 0.40),
        "gpt-4o": _p(2.50, 1.25, 10.00),
        "gpt-4o-mini": _p(0.15, 0.075, 0.60),
        "o3": _p(2.00, 0.50, 8.00),
        "o4-mini": _p(1.10, 0.275, 4.40),
    },
    "anthropic": {
        "claude-opus-5": _p(5.00, 0.50, 25.00, 6.25),
        "claude-opus-4-7": _p(5.00, 0.50, 25.00, 6.25),
        "claude-opus-4-6": _p(5.00, 0.50, 25.00, 6.25),
        "claude-opus-4-5": _p(5.00, 0.50, 25.00, 6.25),
        "claude-opus-4-1": _p(15.00, 1.50, 75.00, 18.75),
        "claude-opus-4-0": _p(15.00, 1.50, 75.00, 18.75),
        "claude-sonnet-5-5": _p(2.00, 0.10, 10.00, 2.50),
        "claude-sonnet-5": _p(2.00, 0.20, 10.00, 2.50),
        "claude-sonnet-4-6": _p(3.00, 0.30, 15.00, 3.75),
        "claude-sonnet-4-5": _p(3.00, 0.30, 15.00, 3.75),
        "claude-sonnet-4-0": _p(3.00, 0.30, 15.00, 3.75),
        # Haiku 5.5: the rate for prompts up to 100k tokens (product copy is far below that).
        "claude-haiku-5-5": _p(0.10, 0.01, 0.50, 0.125),
        "claude-haiku-4-5": _p(1.00, 0.10, 5.00, 1.25),
        "claude-3-5-haiku": _p(0.80, 0.08, 4.00, 1.00),
    },
    # Gemini Developer API (not Vertex AI). Output includes thinking tokens, which Gemini
    # bills at the output rate. Rates are for prompts up to 200k tokens (product copy is far
    # below); cached input is implicit caching at 10 % of the input rate. Looked up on
    # 2026-11-23 through transcriptions of the pricing page dated 2026-09-20 and 2026-10-07
    # (github.com/api-evangelist/gemini, api-evangelist/deepmind: plans/*-pricing.yml, each
    # price quoted verbatim from the page) and morphllm.com/gemini-api-pricing.
    "gemini": {
        # Introductory price "through December 31, 2026"; $1.50 / $7.50 from 2027-01-01.
        "gemini-3.8-flash": _p(0.75, 0.075, 3.75),
        "gemini-3.5-flash": _p(1.50, 0.15, 9.00),
        "gemini-3.5-flash-lite": _p(0.30, 0.03, 2.50),
        "gemini-3.1-pro-preview": _p(2.00, 0.20, 12.00),
        "gemini-3.1-flash-lite": _p(0.25, 0.025, 1.50),
        "gemini-3-flash": _p(0.50, 0.05, 3.00),
        "gemini-2.5-pro": _p(1.25, 0.125, 10.00),
        "gemini-2.5-flash": _p(0.30, 0.03, 2.50),
        "gemini-2.5-flash-lite": _p(0.10, 0.01, 0.40),
    },
}

#: Model ids that name the same model as a table key (Anthropic's dateless short forms).
_ALIASES = {
    "claude-opus-4": "claude-opus-4-0",
    "claude-sonnet-4": "claude-sonnet-4-0",
}

OFFLINE_PRICE = ModelPrice(0.0, 0.0, 0.0, batch_discount=0.0, origin="offline")

# A dated snapshot id: gpt-4o-mini-2024-07-18, claude-sonnet-4-5-20250929, ...-latest,
# and Gemini's numbered versions (gemini-2.5-flash-001).
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{3}|latest)$")


def _from_config(price: PriceConfig) -> ModelPrice:
    cached = price.cached_input if price.cached_input is not None else price.input
    return ModelPrice(input=price.input, cached_input=cached, output=price.output,
                      batch_discount=price.batch_discount,
                      cache_write=price.cache_write, origin="config")


def price_for(provider: str, model: str,
              overrides: Mapping[str, PriceConfig] | None = None) -> ModelPrice:
    """The price of ``model``: config first, then the built-in table, else ConfigError.

    A dated snapshot (``gpt-4o-2024-08-06``, ``claude-haiku-4-5-20251001``) is priced as its
    base model; an exact entry in config wins over that.
    """
    if provider == "offline":
        return OFFLINE_PRICE
    overrides = overrides or {}
    if model in overrides:
        return _from_config(overrides[model])
    table = BUILTIN_PRICES.get(provider, {})
    base = _SNAPSHOT.sub("", model)
    for candidate in (model, base, _ALIASES.get(base, base)):
        if candidate in overrides:
            return _from_config(overrides[candidate])
        if candidate in table:
            return table[candidate]
    raise ConfigError(
        f"no price known for model {model!r} (llm.provider = {provider!r}); enrich will not "
        "run a model whose spend it cannot count.",
        f'Add [llm.prices."{model}"] with input and output (USD per million tokens) to '
        "config.toml; input = 0 and output = 0 are fine for a free local server.",
    )
