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
import time
from typing import Any

import anthropic
from anthropic import AsyncAnthropic

from enrich.errors import RetryableProviderError
from enrich.providers.base import (
    InvalidOutput,
    LLMRequest,
    LLMResult,
    Provider,
    RateLimitInfo,
    Usage,
    anthropic_rate_limits,
    classify_status,
    endpoint,
    repair_message,
    schema_name,
    tool_input_schema,
    unusable,
    validate_fields,
    where,
)
from enrich.providers.prices import ModelPrice

ENV_VAR = "ANTHROPIC_API_KEY"


def _usage(message: Any) -> Usage:
    raw = getattr(message, "usage", None)
    if raw is None:
        return Usage()
    read = getattr(raw, "cache_read_input_tokens", None) or 0
    write = getattr(raw, "cache_creation_input_tokens", None) or 0
    # Anthropic's input_tokens excludes cache reads and writes; ours includes them.
    return Usage(input_tokens=(raw.input_tokens or 0) + read + write,
                 output_tokens=raw.output_tokens or 0, cached_tokens=read,
                 cache_write_tokens=write)


class AnthropicProvider(Provider):
    name = "anthropic"

    def __init__(self, model: str, price: ModelPrice, *, api_key: str,
                 base_url: str | None = None, timeout_s: float = 60.0,
                 http_client: Any = None, default_headers: dict[str, str] | None = None,
                 ) -> None:
        super().__init__(model, price)
        self._api_key = api_key
        self._owns_http = http_client is None
        self._client = AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0,
                                      timeout=timeout_s, http_client=http_client,
                                      default_headers=default_headers)

    async def _call(self, request: LLMRequest, messages: list[dict[str, Any]],
                    ) -> tuple[Any, RateLimitInfo, int]:
        tool = schema_name(request.schema)
        try:
            raw = await self._client.messages.with_raw_response.create(
                model=self.model,
                max_tokens=request.max_output_tokens,
                system=([{"type": "text", "text": request.system,
                          "cache_control": {"type": "ephemeral"}}] if request.system
                        else anthropic.omit),
                tools=[{"name": tool,
                        "description": "Record the drafted fields. Call it exactly once.",
                        "input_schema": tool_input_schema(request.schema)}],
                tool_choice={"type": "tool", "name": tool},
                messages=messages,
            )
            return await raw.parse(), anthropic_rate_limits(raw.headers), raw.status_code
        except anthropic.APIStatusError as exc:
            raise classify_status(
                exc.status_code, provider=self.name, model=self.model, job_id=request.job_id,
                body=exc.body, headers=exc.response.headers,
                limits=anthropic_rate_limits(exc.response.headers),
                secrets=[self._api_key], env_var=ENV_VAR) from None
        except anthropic.APITimeoutError:
            raise RetryableProviderError(
                f"{where(self.name, self.model, request.job_id)}: no answer within the timeout",
                "Transient; enrich retries. Raise llm.timeout_s if it persists.",
                error_class="timeout") from None
        except anthropic.APIConnectionError as exc:
            cause = type(exc.__cause__).__name__ if exc.__cause__ else "connection error"
            raise RetryableProviderError(
                f"{where(self.name, self.model, request.job_id)}: connection to "
                f"{endpoint(self._client.base_url)} failed ({cause})", "Transient; enrich "
                "retries. "
                "Check llm.base_url and that the server is up if it persists.",
                error_class="connection") from None

    @staticmethod
    def _tool_input(message: Any, tool: str) -> tuple[Any, Any]:
        """(the tool_use block or None, its input or the text answered instead)."""
        texts = []
        for block in message.content or []:
            if block.type == "tool_use" and block.name == tool:
                return block, block.input
            if block.type == "text":
                texts.append(block.text)
        return None, "".join(texts)

    async def generate(self, request: LLMRequest) -> LLMResult:
        started = time.perf_counter()
        tool = schema_name(request.schema)
        messages: list[dict[str, Any]] = [{"role": "user", "content": request.user}]
        usage = Usage()
        repaired = False
        requests = 0
        while True:
            message, limits, status = await self._call(request, messages)
            requests += 1
            usage = usage + _usage(message)
            if message.stop_reason == "refusal":
                raise unusable(
                    f"{where(self.name, self.model, request.job_id)}: the model refused to "
                    "answer (stop_reason refusal)",
                    "Check the product data for content the model will not write about; "
                    "write this one by hand or reject it.",
                    status=status, error_class="refusal", usage=usage,
                    cost_usd=self.cost(usage))
            block, answer = self._tool_input(message, tool)
            try:
                if block is None:
                    raise InvalidOutput(f"no {tool} tool call in the answer")
                fields = validate_fields(request.schema, answer)
            except InvalidOutput as exc:
                if message.stop_reason == "max_tokens":
                    exc.detail += (f" (the answer was cut off at max_output_tokens = "
                                   f"{request.max_output_tokens}; raise llm.max_output_tokens "
                                   "if this repeats)")
                if repaired:
                    raise unusable(
                        f"{where(self.name, self.model, request.job_id)}: output still invalid "
                        f"after one repair: {exc.detail}",
                        "Check the template's length limits against the schema, or use a "
                        "stronger model; `enrich jobs retry` after fixing.",
                        status=status, error_class="invalid_output", usage=usage,
                        cost_usd=self.cost(usage)) from None
                repaired = True
                if block is not None:
                    messages = [
                        *messages,
                        {"role": "assistant", "content": [{
                            "type": "tool_use", "id": block.id, "name": block.name,
                            "input": block.input if isinstance(block.input, dict) else {}}]},
                        {"role": "user", "content": [{
                            "type": "tool_result", "tool_use_id": block.id, "is_error": True,
                            "content": repair_message(exc.detail)}]},
                    ]
                else:
                    messages = [
                        *messages,
                        {"role": "assistant", "content": str(answer) or "(no answer)"},
                        {"role": "user", "content": repair_message(exc.detail)},
                    ]
                continue
            return LLMResult(
                fields=fields, raw_text=json.dumps(answer, ensure_ascii=False), usage=usage,
                cost_usd=self.cost(usage), model=getattr(message, "model", None) or self.model,
                provider=self.name, latency_ms=(time.perf_counter() - started) * 1000.0,
                rate_limits=None if limits.is_empty() else limits, repaired=repaired,
                http_status=status, requests=requests)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._client.close()
