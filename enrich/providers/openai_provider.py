"""OpenAI (and any OpenAI-compatible server) through the official SDK.

Structured output uses ``response_format`` json_schema in strict mode, so api.openai.com
constrains decoding to the schema; compatible servers (Ollama, vLLM, LM Studio, OpenRouter)
may honour it loosely, which is why every answer is validated again here and repaired once.
The SDK's own retries are off: the worker owns retries and records every attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

from enrich.config import ENV_OPENAI_KEY, LLMConfig, Secrets
from enrich.providers.base import (
    LLMRequest,
    SdkProvider,
    Usage,
    openai_rate_limits,
    repair_message,
    schema_name,
    strict_json_schema,
)
from enrich.providers.images import openai_content
from enrich.providers.prices import price_for
from enrich.providers.tokens import MESSAGE_OVERHEAD, REQUEST_OVERHEAD, estimate_tokens

ENV_VAR = ENV_OPENAI_KEY
#: Used as the key for an OpenAI-compatible local server that needs none (Ollama, vLLM).
NO_KEY = "no-key-needed"


def _text(content: Any) -> str:
    """A message's text, whether a string or content parts (images are not text)."""
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def _choice(completion: Any) -> Any:
    return completion.choices[0] if getattr(completion, "choices", None) else None


class OpenAIProvider(SdkProvider):
    name = "openai"
    sdk = openai
    sdk_client = AsyncOpenAI
    env_var = ENV_VAR
    rate_limits = staticmethod(openai_rate_limits)

    def _configure(self, base_url: str | None) -> None:
        # Parameters the server told us it does not take (gpt-5 family and o-series refuse a
        # temperature; older compatible servers know max_tokens but not its successor).
        self._dropped: set[str] = set()
        self._max_tokens_param = "max_completion_tokens"
        # api.openai.com refuses length keywords in strict schemas; other servers constrain
        # decoding with them. A server that refuses them is remembered (see _adapt).
        self._keep_lengths = base_url is not None and "api.openai.com" not in base_url

    def _kwargs(self, request: LLMRequest, messages: list[dict[str, Any]]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": schema_name(request.schema), "strict": True,
                                "schema": strict_json_schema(
                                    request.schema, keep_lengths=self._keep_lengths)},
            },
            self._max_tokens_param: request.max_output_tokens,
        }
        if "temperature" not in self._dropped:
            kwargs["temperature"] = request.temperature
        return kwargs

    def batch_body(self, request: LLMRequest) -> dict[str, Any]:
        return self._kwargs(request, self._first_messages(request))

    def response_model(self, body: Mapping[str, Any]) -> Any:
        return ChatCompletion.model_validate(body)

    def _first_messages(self, request: LLMRequest) -> list[dict[str, Any]]:
        user: Any = (openai_content(request.user, request.images) if request.images
                     else request.user)
        return [{"role": "system", "content": request.system},
                {"role": "user", "content": user}]

    async def _send(self, request: LLMRequest, messages: list[dict[str, Any]],
                    ) -> tuple[Any, Mapping[str, str], int]:
        raw = await self._client.chat.completions.with_raw_response.create(
            **self._kwargs(request, messages))
        return raw.parse(), raw.headers, raw.status_code

    def _adapt(self, exc: openai.APIStatusError) -> bool:
        """Drop a parameter the server says it does not support; True to send again."""
        if exc.status_code != 400:
            return False
        param = getattr(exc, "param", None) or ""
        code = getattr(exc, "code", None) or ""
        said = str(getattr(exc, "message", ""))
        if self._keep_lengths and ("minLength" in said or "maxLength" in said):
            self._keep_lengths = False
            return True
        if code not in ("unsupported_value", "unsupported_parameter"):
            return False
        if param == "temperature" and "temperature" not in self._dropped:
            self._dropped.add("temperature")
            return True
        if param == "max_completion_tokens" and self._max_tokens_param != "max_tokens":
            self._max_tokens_param = "max_tokens"
            return True
        return False

    def _usage(self, completion: Any, messages: list[dict[str, Any]]) -> tuple[Usage, bool]:
        """The reported usage, or an estimate (flagged) when a compatible server sends none:
        a $0 cost for tokens that were spent would let a run sail past its budget."""
        raw = getattr(completion, "usage", None)
        if raw is None:
            choice = _choice(completion)
            answer = (choice.message.content or "") if choice is not None else ""
            prompt = sum(estimate_tokens(_text(m["content"])) + MESSAGE_OVERHEAD
                         for m in messages)
            return Usage(input_tokens=prompt + REQUEST_OVERHEAD,
                         output_tokens=estimate_tokens(answer)), True
        details = getattr(raw, "prompt_tokens_details", None)
        cached = getattr(details, "cached_tokens", None) or 0
        return Usage(input_tokens=raw.prompt_tokens or 0,
                     output_tokens=raw.completion_tokens or 0, cached_tokens=cached), False

    def _refusal(self, completion: Any) -> str | None:
        """A refusal, or an answer the content filter stopped."""
        choice = _choice(completion)
        if choice is None:
            return None
        refusal = getattr(choice.message, "refusal", None)
        if refusal or choice.finish_reason == "content_filter":
            return f"the model refused: {str(refusal or 'content filter')[:200]}"
        return None

    def _truncated(self, completion: Any) -> bool:
        choice = _choice(completion)
        return choice is not None and choice.finish_reason == "length"

    def _answer(self, request: LLMRequest, completion: Any) -> str:
        """The message text (JSON in strict structured-output mode)."""
        choice = _choice(completion)
        return (choice.message.content or "") if choice is not None else ""

    def _repair_turn(self, answer: Any, detail: str) -> list[dict[str, Any]]:
        return [{"role": "assistant", "content": answer or ""},
                {"role": "user", "content": repair_message(detail)}]


def build(llm: LLMConfig, secrets: Secrets, *, http_client: Any = None,
          default_headers: dict[str, str] | None = None) -> OpenAIProvider:
    """The OpenAI provider (a ``ProviderFactory``). The price is checked before the key, so
    an unknown model fails first; a compatible server at ``llm.base_url`` may need no key."""
    price = price_for("openai", llm.model, llm.prices)
    key = secrets.get(ENV_VAR)
    if key is None:  # a local compatible server needs none; a real one answers 401 (fatal)
        key = (NO_KEY if llm.base_url is not None
               else secrets.require(ENV_VAR, "to call the OpenAI API"))
    return OpenAIProvider(llm.model, price, api_key=key, base_url=llm.base_url,
                          timeout_s=llm.timeout_s, http_client=http_client,
                          default_headers=default_headers)
