"""LLM providers behind one interface: OpenAI (and compatible servers), Anthropic, offline.

``make_provider`` checks everything that can be checked before a request is sent (a price is
known for the model, the key is in the environment) so a misconfigured run stops before it
spends anything.
"""

from __future__ import annotations

from typing import Any

from enrich.config import ENV_ANTHROPIC_KEY, ENV_OPENAI_KEY, LLMConfig, Secrets
from enrich.errors import ConfigError
from enrich.providers.base import (
    LLMRequest,
    LLMResult,
    Provider,
    RateLimitInfo,
    Usage,
    strict_json_schema,
    tool_input_schema,
)
from enrich.providers.offline import OFFLINE_MODEL, OfflineProvider
from enrich.providers.prices import PRICES_CHECKED, ModelPrice, price_for
from enrich.providers.tokens import (
    estimate_output_tokens,
    estimate_prompt_tokens,
    estimate_tokens,
    rate_limit_tokens,
)

#: Used as the key for an OpenAI-compatible local server that needs none (Ollama, vLLM).
NO_KEY = "no-key-needed"


def make_provider(llm: LLMConfig, secrets: Secrets, *, http_client: Any = None,
                  default_headers: dict[str, str] | None = None) -> Provider:
    """The provider ``llm`` names, ready to call; ConfigError before any request if not.

    ``http_client`` is passed to the SDK unchanged; the installed SDKs (openai 3.x,
    anthropic 2.x) require an ``httpx2.AsyncClient``. ``default_headers`` are sent with every
    request (tests use them to ask the sandbox for a fault).
    """
    if llm.provider == "offline":
        if llm.model not in (OFFLINE_MODEL, "offline"):
            raise ConfigError(
                f"llm.model = {llm.model!r} does not exist for llm.provider = \"offline\".",
                f'Set llm.model = "{OFFLINE_MODEL}" (or pick another provider).')
        return OfflineProvider()
    price = price_for(llm.provider, llm.model, llm.prices)
    if llm.provider == "openai":
        from enrich.providers.openai_provider import OpenAIProvider

        key = secrets.get(ENV_OPENAI_KEY)
        if key is None:
            if llm.base_url is None:
                key = secrets.require(ENV_OPENAI_KEY, "to call the OpenAI API")
            else:
                key = NO_KEY  # a local compatible server; a real one answers 401 (fatal)
        return OpenAIProvider(llm.model, price, api_key=key, base_url=llm.base_url,
                              timeout_s=llm.timeout_s, http_client=http_client,
                              default_headers=default_headers)
    if llm.provider == "anthropic":
        from enrich.providers.anthropic_provider import AnthropicProvider

        key = secrets.require(ENV_ANTHROPIC_KEY, "to call the Anthropic API")
        return AnthropicProvider(llm.model, price, api_key=key, base_url=llm.base_url,
                                 timeout_s=llm.timeout_s, http_client=http_client,
                                 default_headers=default_headers)
    raise ConfigError(f"llm.provider = {llm.provider!r} is not a provider enrich knows.")


__all__ = [
    "NO_KEY",
    "OFFLINE_MODEL",
    "PRICES_CHECKED",
    "LLMRequest",
    "LLMResult",
    "ModelPrice",
    "OfflineProvider",
    "Provider",
    "RateLimitInfo",
    "Usage",
    "estimate_output_tokens",
    "estimate_prompt_tokens",
    "estimate_tokens",
    "make_provider",
    "price_for",
    "rate_limit_tokens",
    "strict_json_schema",
    "tool_input_schema",
]
