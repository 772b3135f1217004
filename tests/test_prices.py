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


def test_token_estimates_are_in_a_sane_band() -> None:
    assert estimate_tokens("") == 0
    prose = ("The Trail Hoodie is a midweight pullover in soft cotton with a kangaroo pocket "
             "and ribbed cuffs. ") * 20
    words = len(prose.split())
    # English prose runs about 1.3 tokens per word with OpenAI's and Anthropic's tokenizers
    assert 1.1 * words <= estimate_tokens(prose) <= 1.6 * words
    spec = "Size: 12.5 x 30 x 4 cm, 0.45 kg, SKU 24-MB01"
    assert estimate_tokens(spec) >= len(spec) / 4
    assert estimate_tokens("Größe: élégant café") > estimate_tokens("Grosse: elegant cafe")
    schema = {"properties": {"seo_title": {"type": "string", "maxLength": 60},
                             "description": {"type": "string"}}}
    assert estimate_output_tokens(schema, 1200) == pytest.approx((2 + 15 + 60 + 17 + 600) / 4,
                                                                 abs=1)
    assert estimate_output_tokens(schema, 50) == 50
