"""Prices: dated defaults, config overrides, snapshot ids, and no silent $0 for paid models."""

from __future__ import annotations

import pytest

from enrich.config import LLMConfig, PriceConfig, Secrets, parse_settings
from enrich.errors import ConfigError
from enrich.providers import Usage, make_provider
from enrich.providers.prices import BUILTIN_PRICES, PRICES_CHECKED, price_for
from enrich.providers.tokens import estimate_output_tokens, estimate_tokens


def test_builtin_table_is_dated_and_consistent() -> None:
    assert PRICES_CHECKED.count("-") == 2
    assert {"openai", "anthropic"} <= set(BUILTIN_PRICES)
    for provider, table in BUILTIN_PRICES.items():
        assert len(table) >= 8, provider
        for model, price in table.items():
            assert 0 < price.cached_input <= price.input < price.output, model
            assert price.batch_discount == 0.5
            if provider == "anthropic":
                assert price.cache_write is not None and price.cache_write > price.input


def test_known_models_and_dated_snapshots() -> None:
    mini = price_for("openai", "gpt-4o-mini")
    assert (mini.input, mini.cached_input, mini.output) == (0.15, 0.075, 0.60)
    assert price_for("openai", "gpt-4o-mini-2024-07-18") == mini
    haiku = price_for("anthropic", "claude-haiku-4-5-20251001")
    assert (haiku.input, haiku.output, haiku.cache_write, haiku.cached_input) == (
        1.0, 5.0, 1.25, 0.10)
    assert price_for("anthropic", "claude-sonnet-4-20250514").input == 3.0
    assert price_for("offline", "offline-v1").cost(10**6, 10**6) == 0.0


def test_unknown_model_is_a_config_error_naming_the_fix() -> None:
    with pytest.raises(ConfigError) as info:
        price_for("openai", "llama3.1:8b")
    assert "no price known for model 'llama3.1:8b'" in info.value.message
    assert '[llm.prices."llama3.1:8b"]' in info.value.hint
    # a model of the other provider is not silently priced either
    with pytest.raises(ConfigError):
        price_for("anthropic", "gpt-4o")
    # make_provider checks before anything is sent, even with a key at hand
    llm = LLMConfig(provider="openai", model="llama3.1:8b", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="no price known"):
        make_provider(llm, Secrets({"OPENAI_API_KEY": "sk-test"}))


def test_config_prices_override_and_extend(tmp_path) -> None:
    text = """
[llm]
provider = "openai"
model = "llama3.1:8b"
base_url = "http://127.0.0.1:11434/v1"

[llm.prices."llama3.1:8b"]
input = 0
output = 0

[llm.prices."gpt-4o-mini"]
input = 0.10
output = 0.40
batch_discount = 0.6
"""
    settings = parse_settings(text, tmp_path / "config.toml")
    local = price_for("openai", "llama3.1:8b", settings.llm.prices)
    assert local.origin == "config" and local.cost(5000, 5000) == 0.0
    mini = price_for("openai", "gpt-4o-mini-2024-07-18", settings.llm.prices)
    assert mini.input == 0.10 and mini.cached_input == 0.10  # cached defaults to input
    assert mini.cost(1_000_000, 1_000_000, batch=True) == pytest.approx(0.5 * 0.4)
    provider = make_provider(settings.llm, Secrets({}))  # local server: no key needed
    assert provider.name == "openai" and provider.estimate_cost(10**6, 10**6) == 0.0


def test_cost_prices_every_kind_of_token() -> None:
    price = price_for("anthropic", "claude-sonnet-4-5",
                      {"x": PriceConfig(input=1, output=1)})
    # 1M prompt tokens of which 200k cache reads and 100k cache writes, 10k output
    dollars = price.cost(1_000_000, 10_000, cached_tokens=200_000, cache_write_tokens=100_000)
    expected = (700_000 * 3.0 + 200_000 * 0.30 + 100_000 * 3.75 + 10_000 * 15.0) / 1e6
    assert dollars == pytest.approx(expected)
    assert price.cost(1_000_000, 10_000, batch=True) == pytest.approx(
        (3.0 + 0.15) / 2)
    with_write = price_for("anthropic", "m", {"m": PriceConfig(input=2, output=4,
                                                               cache_write=2.5)})
    assert with_write.cost(10, 0, cache_write_tokens=10) == pytest.approx(25 / 1e6)


def test_provider_cost_uses_usage_convention() -> None:
    llm = LLMConfig(provider="anthropic", model="claude-haiku-4-5")
    provider = make_provider(llm, Secrets({"ANTHROPIC_API_KEY": "sk-ant-test"}))
    usage = Usage(input_tokens=3000, output_tokens=200, cached_tokens=2000)
    assert provider.cost(usage) == pytest.approx((1000 * 1.0 + 2000 * 0.10 + 200 * 5.0) / 1e6)


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        make_provider(LLMConfig(provider="anthropic", model="claude-haiku-4-5"), Secrets({}))
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        make_provider(LLMConfig(provider="openai", model="gpt-4o-mini"), Secrets({}))


# Published exact counts (cl100k_base, OpenAI cookbook "How to count tokens with tiktoken").
_COOKBOOK_CONTENT = [
    "You are a helpful, pattern-following assistant that translates corporate jargon into "
    "plain English.",
    "New synergies will help drive top-line growth.",
    "Things working well together will increase revenue.",
    "Let's circle back when we have more bandwidth to touch base on opportunities for "
    "increased leverage.",
    "Let's talk later when we're less busy about how to do better.",
    "This late pivot means we don't have time to boil the ocean for the client deliverable.",
]
# 129 prompt tokens reported by the API for these six messages, less 3 per message, 1 per
# name, 3 for the reply primer, 1 per role and 2 per name value ("example" + "_user").
_COOKBOOK_CONTENT_TOKENS = 129 - 6 * 3 - 4 - 3 - 6 - 4 * 2


def test_token_estimates_match_published_counts() -> None:
    assert estimate_tokens("") == 0
    assert _COOKBOOK_CONTENT_TOKENS == 90
    prose = sum(estimate_tokens(text) for text in _COOKBOOK_CONTENT)
    assert abs(prose - 90) <= 9  # within 10% on English prose
    assert sum(len(t) for t in _COOKBOOK_CONTENT) / 4 > 110  # chars/4 would say 111
    # short strings: "tiktoken is great!" and "Generative AI is great!" are 6 tokens each
    for text in ("tiktoken is great!", "Generative AI is great!"):
        assert 4 <= estimate_tokens(text) <= 7
    assert estimate_tokens("2024-11-23") == 2 + 1 + 1 + 2  # digits in groups of three
    assert estimate_tokens('{"name":"Trail Hoodie","sku":"TH"}') == 10  # 5 words, 5 runs
    assert estimate_tokens("お誕生日おめでとう") == 9  # cl100k: 9
    schema = {"properties": {"seo_title": {"type": "string", "maxLength": 60},
                             "description": {"type": "string"}}}
    assert estimate_output_tokens(schema, 1200) == pytest.approx((2 + 15 + 60 + 17 + 600) / 4,
                                                                 abs=1)
    assert estimate_output_tokens(schema, 50) == 50
