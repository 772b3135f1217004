"""Anthropic through the official SDK.

Structured output is a forced tool call: one tool whose ``input_schema`` is the output
schema, and ``tool_choice`` naming it, so the answer arrives as parsed JSON in a
``tool_use`` block. The static system prefix carries ``cache_control`` so that, from the
second record on, it is read from the prompt cache at a tenth of the input price; the cache
write (first record) and reads are accounted at their own rates.

No temperature is sent: API version 2026-10-21 (the default of the 2.x SDK) refuses every
sampling parameter with a 400, whatever its value, so ``llm.temperature`` applies to OpenAI
only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import anthropic
from anthropic import AsyncAnthropic
from anthropic.types import Message

from enrich.config import ENV_ANTHROPIC_KEY, LLMConfig, Secrets
from enrich.providers.base import (
    InvalidOutput,
    LLMRequest,
    SdkProvider,
    Usage,
    anthropic_rate_limits,
    repair_message,
    schema_name,
    tool_input_schema,
)
from enrich.providers.images import anthropic_content
from enrich.providers.limit_model import ANTHROPIC
from enrich.providers.prices import price_for

ENV_VAR = ENV_ANTHROPIC_KEY


class AnthropicProvider(SdkProvider):
    name = "anthropic"
    sdk = anthropic
    sdk_client = AsyncAnthropic
    env_var = ENV_VAR
    rate_limits = staticmethod(anthropic_rate_limits)
    limit_model = ANTHROPIC

    def _first_messages(self, request: LLMRequest) -> list[dict[str, Any]]:
        if request.images:
            return [{"role": "user", "content": anthropic_content(request.user,
                                                                  request.images)}]
        return [{"role": "user", "content": request.user}]  # the system prefix goes apart

    def _kwargs(self, request: LLMRequest, messages: list[dict[str, Any]]) -> dict[str, Any]:
        tool = schema_name(request.schema)
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_output_tokens,
            "tools": [{"name": tool,
                       "description": "Record the drafted fields. Call it exactly once.",
                       "input_schema": tool_input_schema(request.schema)}],
            "tool_choice": {"type": "tool", "name": tool},
            "messages": messages,
        }
        if request.system:
            kwargs["system"] = [{"type": "text", "text": request.system,
                                 "cache_control": {"type": "ephemeral"}}]
        return kwargs

    async def _send(self, request: LLMRequest, messages: list[dict[str, Any]],
                    ) -> tuple[Any, Mapping[str, str], int]:
        raw = await self._client.messages.with_raw_response.create(
            **self._kwargs(request, messages))
        return await raw.parse(), raw.headers, raw.status_code

    def batch_body(self, request: LLMRequest) -> dict[str, Any]:
        return self._kwargs(request, self._first_messages(request))

    def response_model(self, body: Mapping[str, Any]) -> Any:
        return Message.model_validate(body)

    def _usage(self, message: Any, messages: list[dict[str, Any]]) -> tuple[Usage, bool]:
        raw = getattr(message, "usage", None)
        if raw is None:
            return Usage(), False
        read = getattr(raw, "cache_read_input_tokens", None) or 0
        write = getattr(raw, "cache_creation_input_tokens", None) or 0
        # Anthropic's input_tokens excludes cache reads and writes; ours includes them.
        return Usage(input_tokens=(raw.input_tokens or 0) + read + write,
                     output_tokens=raw.output_tokens or 0, cached_tokens=read,
                     cache_write_tokens=write), False

    def _refusal(self, message: Any) -> str | None:
        if message.stop_reason == "refusal":
            return "the model refused to answer (stop_reason refusal)"
        return None

    def _truncated(self, message: Any) -> bool:
        return bool(message.stop_reason == "max_tokens")

    def _answer(self, request: LLMRequest, message: Any) -> Any:
        """The forced tool's tool_use block, or the text answered instead of calling it."""
        tool = schema_name(request.schema)
        texts = []
        for block in message.content or []:
            if block.type == "tool_use" and block.name == tool:
                return block
            if block.type == "text":
                texts.append(block.text)
        return "".join(texts)

    def _content(self, request: LLMRequest, answer: Any) -> Any:
        if isinstance(answer, str):
            raise InvalidOutput(f"no {schema_name(request.schema)} tool call in the answer")
        return answer.input

    def _raw_text(self, answer: Any) -> str:
        return json.dumps(answer.input, ensure_ascii=False)

    def _repair_turn(self, answer: Any, detail: str) -> list[dict[str, Any]]:
        """A tool_result marked as an error answers the tool call; plain text otherwise."""
        if isinstance(answer, str):
            return [{"role": "assistant", "content": answer or "(no answer)"},
                    {"role": "user", "content": repair_message(detail)}]
        return [
            {"role": "assistant", "content": [{
                "type": "tool_use", "id": answer.id, "name": answer.name,
                "input": answer.input if isinstance(answer.input, dict) else {}}]},
            {"role": "user", "content": [{
                "type": "tool_result", "tool_use_id": answer.id, "is_error": True,
                "content": repair_message(detail)}]},
        ]


def build(llm: LLMConfig, secrets: Secrets, *, http_client: Any = None,
          default_headers: dict[str, str] | None = None) -> AnthropicProvider:
    """The Anthropic provider (a ``ProviderFactory``); the price is checked before the key."""
    price = price_for("anthropic", llm.model, llm.prices)
    key = secrets.require(ENV_VAR, "to call the Anthropic API")
    return AnthropicProvider(llm.model, price, api_key=key, base_url=llm.base_url,
                             timeout_s=llm.timeout_s, http_client=http_client,
                             default_headers=default_headers)
