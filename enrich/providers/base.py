"""The one interface every provider speaks, and the helpers they share.

A provider turns an ``LLMRequest`` (static system prefix, per-record user prompt with the
fenced product data, pydantic output schema) into an ``LLMResult`` (validated fields, usage,
cost, model, latency, rate-limit headers), or raises exactly one of the three provider error
classes from ``enrich.errors``. The worker decides what to do with each class; the provider
never retries on its own (the SDKs run with ``max_retries=0``), except for the single repair
request that shows the model its invalid output.
"""

from __future__ import annotations

import copy
import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import Any, Protocol
from urllib.parse import urlsplit

import pydantic

from enrich.config import LLMConfig, Secrets
from enrich.errors import (
    FatalProviderError,
    OutputTruncated,
    PermanentProviderError,
    ProviderError,
    RateLimited,
    RetryableProviderError,
    UnusableOutput,
)
from enrich.providers.images import PageImage
from enrich.providers.limit_model import OPENAI, LimitModel
from enrich.providers.prices import ModelPrice
from enrich.providers.tokens import estimate_tokens


@dataclass(frozen=True)
class LLMRequest:
    """One record's request. ``system`` is the static, cacheable prefix."""

    system: str
    user: str
    schema: type[pydantic.BaseModel]
    job_id: int | None = None
    temperature: float = 0.4
    max_output_tokens: int = 1200
    source: dict[str, Any] | None = None  # the structured record; the offline provider uses it
    #: A larger limit the caller would ask again with when the answer is cut off at
    #: ``max_output_tokens``: then ``generate`` raises ``OutputTruncated`` instead of sending
    #: the repair request (a repair cannot fit more into the same limit).
    retry_output_tokens: int | None = None
    #: Rendered pages of a scan, for a model that takes images (never stored).
    images: tuple[PageImage, ...] = ()


@dataclass
class Usage:
    """Tokens of one or more requests.

    ``input_tokens`` counts every prompt token; ``cached_tokens`` (read from the provider's
    prompt cache) and ``cache_write_tokens`` (written to it) are parts of it, billed at their
    own rates. The same convention for OpenAI and Anthropic, whatever their wire formats say.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens,
                     self.output_tokens + other.output_tokens,
                     self.cached_tokens + other.cached_tokens,
                     self.cache_write_tokens + other.cache_write_tokens)


@dataclass
class RateLimitInfo:
    """What the provider's rate-limit headers said on the last response (None = not sent)."""

    requests_limit: int | None = None
    requests_remaining: int | None = None
    tokens_limit: int | None = None
    tokens_remaining: int | None = None
    reset_requests_s: float | None = None
    reset_tokens_s: float | None = None
    #: Anthropic's separate output-token limit (OTPM); its ``tokens_*`` are the input
    #: limit (ITPM) when the response names it (``anthropic-ratelimit-input-tokens-*``).
    output_tokens_limit: int | None = None
    output_tokens_remaining: int | None = None
    reset_output_tokens_s: float | None = None

    def is_empty(self) -> bool:
        return all(v is None for v in (self.requests_limit, self.requests_remaining,
                                        self.tokens_limit, self.tokens_remaining,
                                        self.reset_requests_s, self.reset_tokens_s,
                                        self.output_tokens_limit,
                                        self.output_tokens_remaining))


@dataclass
class LLMResult:
    fields: dict[str, Any]
    raw_text: str
    usage: Usage
    cost_usd: float
    model: str
    provider: str
    latency_ms: float
    rate_limits: RateLimitInfo | None = None
    repaired: bool = False
    http_status: int | None = None
    requests: int = 1  # HTTP requests this result took (2 when repaired)
    usage_estimated: bool = False  # the server reported no usage; tokens are enrich's estimate


class Provider(ABC):
    """One LLM service. Subclasses implement ``generate``; cost and estimates are shared."""

    name: str
    model: str
    #: False for providers that call no service (offline): no RPM/TPM pacing applies.
    paced: bool = True
    #: How the service counts its per-minute limits, and where pacing starts (see
    #: ``limit_model``); an instance may set its own (Gemini's differ per model).
    limit_model: LimitModel = OPENAI

    def __init__(self, model: str, price: ModelPrice) -> None:
        self.model = model
        self.price = price

    @abstractmethod
    async def generate(self, request: LLMRequest) -> LLMResult:
        """Draft the fields of ``request.schema``, or raise a ProviderError subclass."""

    def estimate_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def cost(self, usage: Usage, *, batch: bool = False) -> float:
        return self.price.cost(usage.input_tokens, usage.output_tokens,
                               cached_tokens=usage.cached_tokens,
                               cache_write_tokens=usage.cache_write_tokens, batch=batch)

    def estimate_cost(self, input_tokens: int, output_tokens: int, *,
                      batch: bool = False) -> float:
        return self.price.cost(input_tokens, output_tokens, batch=batch)

    async def aclose(self) -> None:  # noqa: B027 - optional hook: offline holds nothing
        """Release connections. Safe to call twice."""


class ProviderFactory(Protocol):
    """What a provider module registers (``build``): the provider ``llm`` asks for, ready to
    call, or a ConfigError before any request (an unknown model's price, a missing key).

    ``http_client`` goes to the SDK unchanged; ``default_headers`` are sent with every request
    (tests use them to ask the sandbox for a fault). A provider that calls no service
    ignores both.
    """

    def __call__(self, llm: LLMConfig, secrets: Secrets, *, http_client: Any = None,
                 default_headers: dict[str, str] | None = None) -> Provider: ...


class SdkProvider(Provider):
    """A service behind its official SDK: the client it owns, and the one repair policy.

    ``generate`` is written once so that every service follows the same policy: one repair
    request that shows the model its invalid answer, usage and cost of both requests
    accounted, the same error classes and messages. ``_call`` is written once too, so both
    SDKs' failures (status errors, timeouts, dropped connections) map to the same
    ProviderErrors with the same messages. Subclasses say only what differs: how to build the
    messages and send them, how to read usage, how to spot a refusal and a truncation, how to
    extract the answer, and how to phrase the repair turn.
    """

    #: The SDK's module: its APIStatusError, APITimeoutError and APIConnectionError are mapped.
    sdk: ModuleType
    #: The SDK's async client class; built with ``max_retries=0`` (the worker owns retries).
    sdk_client: Any
    #: The environment variable of the API key, named when the key is rejected.
    env_var: str
    #: Reads the service's rate-limit headers (a staticmethod: the spelling differs).
    rate_limits: Callable[[Mapping[str, str]], RateLimitInfo]

    def __init__(self, model: str, price: ModelPrice, *, api_key: str,
                 base_url: str | None = None, timeout_s: float = 60.0,
                 http_client: Any = None, default_headers: dict[str, str] | None = None,
                 ) -> None:
        super().__init__(model, price)
        self._api_key = api_key
        self._owns_http = http_client is None
        self._client = self.sdk_client(api_key=api_key, base_url=base_url, max_retries=0,
                                       timeout=timeout_s, http_client=http_client,
                                       default_headers=default_headers)
        self._configure(base_url)

    def _configure(self, base_url: str | None) -> None:
        """Per-service state that depends on the server (none unless a subclass says so)."""

    async def _call(self, request: LLMRequest, messages: list[dict[str, Any]],
                    ) -> tuple[Any, RateLimitInfo, int]:
        """One HTTP request: (parsed response, rate limits, status), or its ProviderError."""
        for _ in range(4):  # at most three parameter fallbacks, never a retry of a failure
            try:
                response, headers, status = await self._send(request, messages)
                return response, self.rate_limits(headers), status
            except self.sdk.APIStatusError as exc:
                if self._adapt(exc):
                    continue
                raise self._status_error(request, exc) from None
            except self.sdk.APITimeoutError:
                raise self._timeout_error(request) from None
            except self.sdk.APIConnectionError as exc:
                raise self._connection_error(request, exc) from None
        raise PermanentProviderError(  # pragma: no cover - the loop returns or raises
            f"{where(self.name, self.model, request.job_id)}: request parameters refused",
            error_class="invalid_request")

    def _adapt(self, exc: Any) -> bool:
        """True to send again after a status error the server explained (a parameter it
        does not take, now dropped); no service adapts unless a subclass says so."""
        return False

    def _status_error(self, request: LLMRequest, exc: Any) -> ProviderError:
        """The ProviderError for either SDK's APIStatusError (status, body and response)."""
        headers = exc.response.headers
        return classify_status(
            exc.status_code, provider=self.name, model=self.model, job_id=request.job_id,
            body=exc.body, headers=headers, limits=self.rate_limits(headers),
            secrets=[self._api_key], env_var=self.env_var)

    def _timeout_error(self, request: LLMRequest) -> RetryableProviderError:
        return RetryableProviderError(
            f"{where(self.name, self.model, request.job_id)}: no answer within the timeout",
            "Transient; enrich retries. Raise llm.timeout_s if it persists.",
            error_class="timeout")

    def _connection_error(self, request: LLMRequest, exc: BaseException,
                          ) -> RetryableProviderError:
        """Names the server (never its credentials) and what failed underneath."""
        cause = type(exc.__cause__).__name__ if exc.__cause__ else "connection error"
        return RetryableProviderError(
            f"{where(self.name, self.model, request.job_id)}: connection to "
            f"{endpoint(self._client.base_url)} failed ({cause})", "Transient; enrich "
            "retries. Check llm.base_url and that the server is up if it persists.",
            error_class="connection")

    @abstractmethod
    def _first_messages(self, request: LLMRequest) -> list[dict[str, Any]]:
        """The conversation of the first request."""

    @abstractmethod
    async def _send(self, request: LLMRequest, messages: list[dict[str, Any]],
                    ) -> tuple[Any, Mapping[str, str], int]:
        """One SDK call: (parsed response, headers, status); SDK errors propagate as raised."""

    @abstractmethod
    def _usage(self, response: Any, messages: list[dict[str, Any]]) -> tuple[Usage, bool]:
        """The usage of one response, and True when it is enrich's estimate (none reported)."""

    @abstractmethod
    def _refusal(self, response: Any) -> str | None:
        """What to say after ``where`` when the model refused; None when it did not."""

    @abstractmethod
    def _truncated(self, response: Any) -> bool:
        """True when the answer stopped at the output token limit."""

    @abstractmethod
    def _answer(self, request: LLMRequest, response: Any) -> Any:
        """The answer as given, from which the content, raw text and repair turn are made."""

    def _content(self, request: LLMRequest, answer: Any) -> Any:
        """What is validated against the schema; raises InvalidOutput when there is none."""
        return answer

    def _raw_text(self, answer: Any) -> str:
        """The answer as recorded on the attempt."""
        return str(answer)

    @abstractmethod
    def _repair_turn(self, answer: Any, detail: str) -> list[dict[str, Any]]:
        """The messages that show the model its answer and ask for a corrected one."""

    async def generate(self, request: LLMRequest) -> LLMResult:
        started = time.perf_counter()
        messages = self._first_messages(request)
        usage = Usage()
        repaired = False
        estimated = False
        requests = 0
        at = where(self.name, self.model, request.job_id)
        while True:
            response, limits, status = await self._call(request, messages)
            requests += 1
            spent, guessed = self._usage(response, messages)
            usage, estimated = usage + spent, estimated or guessed
            refused = self._refusal(response)
            if refused is not None:
                raise unusable(
                    f"{at}: {refused}",
                    "Check the product data for content the model will not write about; "
                    "write this one by hand or reject it.",
                    status=status, error_class="refusal", usage=usage,
                    cost_usd=self.cost(usage))
            answer = self._answer(request, response)
            try:
                fields = validate_fields(request.schema, self._content(request, answer))
            except InvalidOutput as exc:
                if (self._truncated(response) and request.retry_output_tokens is not None
                        and request.retry_output_tokens > request.max_output_tokens):
                    raise OutputTruncated(
                        f"{at}: the answer was cut off at max_output_tokens = "
                        f"{request.max_output_tokens}", "enrich asks again with a larger "
                        "limit by itself.", limit=request.max_output_tokens, status=status,
                        usage=usage, cost_usd=self.cost(usage)) from None
                if self._truncated(response):
                    exc.detail += (f" (the answer was cut off at max_output_tokens = "
                                   f"{request.max_output_tokens}; raise llm.max_output_tokens "
                                   "if this repeats)")
                if repaired:
                    raise unusable(
                        f"{at}: output still invalid after one repair: {exc.detail}",
                        "Check the template's length limits against the schema, or use a "
                        "stronger model; `enrich jobs retry` after fixing.",
                        status=status, error_class="invalid_output", usage=usage,
                        cost_usd=self.cost(usage)) from None
                repaired = True
                messages = [*messages, *self._repair_turn(answer, exc.detail)]
                continue
            return LLMResult(
                fields=fields, raw_text=self._raw_text(answer), usage=usage,
                cost_usd=self.cost(usage), model=getattr(response, "model", None) or self.model,
                provider=self.name, latency_ms=(time.perf_counter() - started) * 1000.0,
                rate_limits=None if limits.is_empty() else limits, repaired=repaired,
                http_status=status, requests=requests, usage_estimated=estimated)

    def batch_body(self, request: LLMRequest) -> dict[str, Any]:
        """The body of ``request``'s first (and, in a batch, only) request: what a batch line
        carries, built by the code that builds a live request, so both ask the same thing."""
        raise NotImplementedError(f"{self.name} has no batch request body")

    def response_model(self, body: Mapping[str, Any]) -> Any:
        """A batch line's successful response body as the SDK's own response object."""
        raise NotImplementedError(f"{self.name} reads no batch responses")

    def interpret(self, request: LLMRequest, response: Any, *, status: int | None = 200,
                  batch: bool = True) -> LLMResult:
        """An answer that arrived without a request of ours to repair it (a batch line):
        the same refusal, truncation and schema checks as ``generate``, costed at the batch
        price. An invalid answer raises UnusableOutput ``invalid_output`` (no repair turn)."""
        at = where(self.name, self.model, request.job_id)
        messages = self._first_messages(request)
        usage, estimated = self._usage(response, messages)
        cost = self.cost(usage, batch=batch)
        refused = self._refusal(response)
        if refused is not None:
            raise unusable(f"{at}: {refused}", "Check the product data for content the model "
                           "will not write about; write this one by hand or reject it.",
                           status=status, error_class="refusal", usage=usage, cost_usd=cost)
        answer = self._answer(request, response)
        try:
            fields = validate_fields(request.schema, self._content(request, answer))
        except InvalidOutput as exc:
            cut = (f" (cut off at max_output_tokens = {request.max_output_tokens})"
                   if self._truncated(response) else "")
            raise unusable(f"{at}: batch answer invalid: {exc.detail}{cut}",
                           "enrich retries it in the next batch (a batch has no repair "
                           "turn); raise llm.max_output_tokens if it was cut off.",
                           status=status, error_class="invalid_output", usage=usage,
                           cost_usd=cost) from None
        return LLMResult(fields=fields, raw_text=self._raw_text(answer), usage=usage,
                         cost_usd=cost, model=getattr(response, "model", None) or self.model,
                         provider=self.name, latency_ms=0.0, http_status=status,
                         usage_estimated=estimated)

    async def aclose(self) -> None:
        if self._owns_http:  # an injected client belongs to the caller, who closes it
            await self._client.close()


# ---------------------------------------------------------------------------------------
# Output schemas and validation


class InvalidOutput(Exception):
    """The model's answer does not satisfy the schema; ``detail`` says how, for the repair."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# Keywords OpenAI strict structured outputs refuse; their meaning moves into the description.
_STRICT_UNSUPPORTED = ("minLength", "maxLength", "default", "examples", "const", "title",
                       "uniqueItems", "minProperties", "maxProperties", "patternProperties")


def _length_note(node: Mapping[str, Any]) -> str:
    lo, hi = node.get("minLength"), node.get("maxLength")
    if lo is not None and hi is not None:
        return f"{lo} to {hi} characters."
    if hi is not None:
        return f"At most {hi} characters."
    if lo is not None:
        return f"At least {lo} characters."
    return ""


def _strictify(node: Any, drop: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_strictify(item, drop) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    note = _length_note(node) if "maxLength" in drop else ""
    for key, value in node.items():
        if key in drop:
            continue
        if key in ("properties", "$defs", "definitions"):
            out[key] = {name: _strictify(sub, drop) for name, sub in value.items()}
        else:
            out[key] = _strictify(value, drop)
    said = str(out.get("description", ""))
    if note and not (str(node.get("maxLength", "")) in said
                     or str(node.get("minLength", "")) in said):
        out["description"] = (said + " " + note).strip()
    if out.get("type") == "object" or "properties" in out:
        out["additionalProperties"] = False
        out["required"] = list(out.get("properties", {}))
    return out


def strict_json_schema(schema: type[pydantic.BaseModel], *,
                       keep_lengths: bool = False) -> dict[str, Any]:
    """A JSON schema for strict structured outputs: every property required, no extras.

    Optional fields stay nullable (``anyOf`` with null) instead of optional. api.openai.com
    refuses minLength/maxLength in strict mode, so by default they move into the description
    (the pydantic model still enforces them on the answer); compatible servers whose guided
    decoding understands them (vLLM, llama.cpp) get them with ``keep_lengths``.
    """
    drop = tuple(k for k in _STRICT_UNSUPPORTED
                 if not (keep_lengths and k in ("minLength", "maxLength")))
    return _strictify(schema.model_json_schema(), drop)


def tool_input_schema(schema: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The JSON schema for an Anthropic tool's ``input_schema`` (constraints kept)."""
    raw = copy.deepcopy(schema.model_json_schema())
    raw.pop("title", None)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object":
                node.setdefault("additionalProperties", False)
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for item in node:
                close(item)

    close(raw)
    return raw


def schema_name(schema: type[pydantic.BaseModel]) -> str:
    """A name both APIs accept (letters, digits, _ and -, at most 64 characters)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", schema.__name__)[:64] or "output"


def _describe_errors(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors()[:8]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def validate_fields(schema: type[pydantic.BaseModel], data: Any) -> dict[str, Any]:
    """The validated fields of an answer (text or already-parsed JSON), or InvalidOutput."""
    if isinstance(data, str):
        text = data.strip()
        if text.startswith("```"):  # some compatible servers wrap JSON in a code fence
            text = re.sub(r"^```(?:json)?\s*|\s*```$", "", text)
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, ValueError) as exc:
            raise InvalidOutput(f"not valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(data, dict):
        raise InvalidOutput(f"expected a JSON object, got {type(data).__name__}")
    try:
        model = schema.model_validate(data)
    except pydantic.ValidationError as exc:
        raise InvalidOutput(_describe_errors(exc)) from None
    return model.model_dump(mode="json")


def repair_message(detail: str) -> str:
    """The second request's instruction after an invalid answer."""
    return (
        "Your previous answer could not be used: " + detail + ". Answer again with the "
        "corrected result only, satisfying every field and length limit of the schema. Do not "
        "add facts that are not in the product data."
    )


# ---------------------------------------------------------------------------------------
# HTTP metadata: retry-after and rate-limit headers

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(value: str | None) -> float | None:
    """OpenAI's reset format ("1s", "6m0s", "59.5s", "20ms", "1h2m") or plain seconds."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    total = 0.0
    pos = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        amount, unit = float(match.group(1)), match.group(2)
        total += amount * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]
        pos = match.end()
    return total if pos == len(text) and pos > 0 else None


def seconds_until(value: str | None, now: float | None = None) -> float | None:
    """Seconds until an RFC 3339 (Anthropic reset headers) or HTTP date; 0 if past."""
    if value is None or not value.strip():
        return None
    now = time.time() if now is None else now
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return value if value is None else str(value)


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None and value.strip() else None
    except ValueError:
        return None


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait: retry-after-ms, then retry-after (secs or date)."""
    ms = _header(headers, "retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = _header(headers, "retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return seconds_until(value)


def _rate_limits(headers: Mapping[str, str], spelling: Callable[[str, str], str],
                 reset: Callable[[str | None], float | None]) -> RateLimitInfo:
    """The six rate-limit headers, named by ``spelling(what, of)`` (what: limit, remaining or
    reset; of: requests or tokens), resets read by ``reset``."""
    def get(what: str, of: str) -> str | None:
        return _header(headers, spelling(what, of))

    return RateLimitInfo(
        requests_limit=_int(get("limit", "requests")),
        requests_remaining=_int(get("remaining", "requests")),
        tokens_limit=_int(get("limit", "tokens")),
        tokens_remaining=_int(get("remaining", "tokens")),
        reset_requests_s=reset(get("reset", "requests")),
        reset_tokens_s=reset(get("reset", "tokens")),
    )


def openai_rate_limits(headers: Mapping[str, str]) -> RateLimitInfo:
    """``x-ratelimit-limit-requests`` ... ``x-ratelimit-reset-tokens``; resets as "6m0s"."""
    return _rate_limits(headers, lambda what, of: f"x-ratelimit-{what}-{of}", parse_duration)


def anthropic_rate_limits(headers: Mapping[str, str]) -> RateLimitInfo:
    """``anthropic-ratelimit-requests-limit`` ... ``anthropic-ratelimit-tokens-reset``;
    resets as RFC 3339 times.

    Anthropic counts input (ITPM) and output (OTPM) apart and says so in
    ``-input-tokens-*`` and ``-output-tokens-*``; when those are sent, ``tokens_*`` holds the
    input limit (``-tokens-*`` is only the more restrictive of the two) and ``output_*``
    the output one.
    """
    info = _rate_limits(headers, lambda what, of: f"anthropic-ratelimit-{of}-{what}",
                        seconds_until)
    split = _rate_limits(headers, lambda what, of: f"anthropic-ratelimit-{of}-{what}"
                         .replace("-tokens-", "-input-tokens-"), seconds_until)
    if split.tokens_limit is not None:
        info.tokens_limit, info.tokens_remaining = split.tokens_limit, split.tokens_remaining
        info.reset_tokens_s = split.reset_tokens_s
    out = _rate_limits(headers, lambda what, of: f"anthropic-ratelimit-{of}-{what}"
                       .replace("-tokens-", "-output-tokens-"), seconds_until)
    info.output_tokens_limit = out.tokens_limit
    info.output_tokens_remaining = out.tokens_remaining
    info.reset_output_tokens_s = out.reset_tokens_s
    return info


def retry_after_from(headers: Mapping[str, str], limits: RateLimitInfo | None) -> float | None:
    """retry-after when given; else, for a 429, when the exhausted limit resets."""
    explicit = parse_retry_after(headers)
    if explicit is not None:
        return explicit
    if limits is None:
        return None
    resets = []
    if limits.requests_remaining == 0 and limits.reset_requests_s is not None:
        resets.append(limits.reset_requests_s)
    if limits.tokens_remaining == 0 and limits.reset_tokens_s is not None:
        resets.append(limits.reset_tokens_s)
    if not resets:
        resets = [v for v in (limits.reset_requests_s, limits.reset_tokens_s) if v is not None]
    return max(resets) if resets else None


# ---------------------------------------------------------------------------------------
# Error mapping

_KEYISH = re.compile(r"\b(sk|sk-ant|sk-proj)-[A-Za-z0-9_*.\-]{3,}")

_QUOTA_CODES = frozenset({"insufficient_quota", "enforced_spend_limit_reached",
                          "billing_hard_limit_reached", "billing_not_active", "billing_error",
                          "quota_exceeded", "credit_balance_too_low"})
_QUOTA_WORDS = ("credit balance", "spend limit", "spending limit", "insufficient_quota",
                "exceeded your current quota", "billing")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with the API key and anything shaped like one replaced."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return _KEYISH.sub("[redacted key]", text)


def error_fields(body: Any) -> tuple[str | None, str | None, str]:
    """(code, type, message) from an OpenAI or Anthropic error body, whatever its nesting."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if not isinstance(body, dict):
        return None, None, str(body or "")[:300]
    code = body.get("code")
    details = body.get("details")
    if code is None and isinstance(details, dict):
        code = details.get("error_code")
    err_type = body.get("type")
    message = body.get("message") or ""
    return (str(code) if code is not None else None,
            str(err_type) if err_type is not None else None, str(message)[:300])


def where(provider: str, model: str, job_id: int | None) -> str:
    return f"{provider} {model}" + (f" (job {job_id})" if job_id is not None else "")


def endpoint(base_url: object) -> str:
    """The address a connection failure names: scheme, host, port and path, never the
    user:password@ a base_url may carry."""
    parts = urlsplit(str(base_url))
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path.rstrip('/')}"


def classify_status(
    status: int, *, provider: str, model: str, job_id: int | None, body: Any,
    headers: Mapping[str, str], limits: RateLimitInfo | None,
    secrets: Iterable[str | None] = (), env_var: str = "",
) -> ProviderError:
    """The ProviderError for an HTTP error response, with status, class and retry-after."""
    code, err_type, message = error_fields(body)
    message = redact(message, secrets)
    said = f": {message}" if message else ""
    at = where(provider, model, job_id)
    kinds = {code, err_type}
    lowered = message.lower()
    quota = bool(kinds & _QUOTA_CODES) or (
        status in (400, 402, 403, 429) and any(w in lowered for w in _QUOTA_WORDS))

    if quota or status == 402:
        return FatalProviderError(
            f"{at}: the account is out of credit or over its spend limit "
            f"(HTTP {status}{', ' + code if code else ''}){said}",
            "Add credit or raise the spend limit in the provider's console, then run again; "
            "the jobs not done stay pending.",
            status=status, error_class="quota")
    if status == 401:
        return FatalProviderError(
            f"{at}: the API key was rejected (HTTP 401){said}",
            f"Check {env_var or 'the API key variable'} in the environment that runs enrich "
            "(and llm.base_url if you use a compatible server).",
            status=status, error_class="auth")
    if status == 403:
        return FatalProviderError(
            f"{at}: the key may not use this model or endpoint (HTTP 403){said}",
            "Check the key's project/workspace permissions and the model's availability.",
            status=status, error_class="permission")
    if status == 404:
        return FatalProviderError(
            f"{at}: model or endpoint not found (HTTP 404){said}",
            "Check llm.model (exact id, e.g. gpt-4.1-mini or claude-haiku-4-5) and "
            "llm.base_url (OpenAI-compatible servers usually end in /v1).",
            status=status, error_class="model_not_found")
    if status == 429:
        return RateLimited(
            f"{at}: rate limited (HTTP 429){said}",
            "enrich waits and retries by itself; lower llm.max_rpm / llm.max_tpm or "
            "llm.concurrency if this keeps happening.",
            status=status, retry_after=retry_after_from(headers, limits),
            error_class="rate_limited")
    if status == 529 or err_type == "overloaded_error":
        return RetryableProviderError(
            f"{at}: the provider is overloaded (HTTP {status}){said}",
            "Transient; enrich retries with backoff.", status=status,
            retry_after=parse_retry_after(headers), error_class="overloaded")
    if status >= 500 or status in (408, 409):
        return RetryableProviderError(
            f"{at}: server error (HTTP {status}){said}",
            "Transient; enrich retries with backoff.", status=status,
            retry_after=parse_retry_after(headers), error_class="server_error")
    return PermanentProviderError(
        f"{at}: the request was refused (HTTP {status}{', ' + code if code else ''}){said}",
        "This record's request is invalid as built (too long, unsupported parameter?); fix "
        "the template or the product data, then `enrich jobs retry`.",
        status=status, error_class="invalid_request")


def unusable(message: str, hint: str, *, status: int | None, error_class: str,
             usage: Usage, cost_usd: float) -> UnusableOutput:
    return UnusableOutput(message, hint, status=status, error_class=error_class,
                          usage=usage, cost_usd=cost_usd)
