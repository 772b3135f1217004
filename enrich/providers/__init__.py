"""LLM providers behind one interface: OpenAI (and compatible servers), Anthropic, offline.

``make_provider`` checks everything that can be checked before a request is sent (a price is
known for the model, the key is in the environment) so a misconfigured run stops before it
spends anything.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any

from enrich.config import LLMConfig, Secrets
from enrich.errors import ConfigError
from enrich.providers.base import (
    LLMRequest,
    LLMResult,
    Provider,
    ProviderFactory,
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
)

#: Every provider ``llm.provider`` can name: "module:function" of its ``ProviderFactory``.
#: A provider is one module plus one line here. Modules are imported only when chosen (an
#: SDK takes a while to import). The values are entry-point references, so a plugin group
#: (``importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)``) could be merged in as is.
PROVIDERS: dict[str, str] = {
    "offline": "enrich.providers.offline:build",
    "openai": "enrich.providers.openai_provider:build",
    "anthropic": "enrich.providers.anthropic_provider:build",
    "gemini": "enrich.providers.gemini_provider:build",
}
ENTRY_POINT_GROUP = "enrich.providers"


def make_provider(llm: LLMConfig, secrets: Secrets, *, http_client: Any = None,
                  default_headers: dict[str, str] | None = None) -> Provider:
    """The provider ``llm`` names, ready to call; ConfigError before any request if not.

    ``http_client`` is passed to the SDK unchanged; the installed SDKs (openai 3.x,
    anthropic 2.x) require an ``httpx2.AsyncClient``. ``default_headers`` are sent with every
    request (tests use them to ask the sandbox for a fault).
    """
    target = PROVIDERS.get(llm.provider)
    if target is None:
        raise ConfigError(
            f"llm.provider = {llm.provider!r} is not a provider enrich knows "
            f"({', '.join(sorted(PROVIDERS))}).",
            f"Set llm.provider to one of: {', '.join(sorted(PROVIDERS))}.")
    factory: ProviderFactory = EntryPoint(llm.provider, target, ENTRY_POINT_GROUP).load()
    return factory(llm, secrets, http_client=http_client, default_headers=default_headers)


__all__ = [
    "OFFLINE_MODEL",
    "PRICES_CHECKED",
    "PROVIDERS",
    "LLMRequest",
    "LLMResult",
    "ModelPrice",
    "OfflineProvider",
    "Provider",
    "ProviderFactory",
    "RateLimitInfo",
    "Usage",
    "estimate_output_tokens",
    "estimate_prompt_tokens",
    "estimate_tokens",
    "make_provider",
    "price_for",
    "strict_json_schema",
    "tool_input_schema",
]
