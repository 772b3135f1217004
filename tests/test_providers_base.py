"""The providers' shared helpers: schemas, header parsing, error mapping, redaction."""

from __future__ import annotations

import asyncio
import time
import typing
from email.utils import formatdate

import pytest
from pydantic import BaseModel, ConfigDict, Field

from enrich.config import LLMConfig, Secrets
from enrich.errors import (
    ConfigError,
    FatalProviderError,
    PermanentProviderError,
    RateLimited,
    RetryableProviderError,
)
from enrich.providers import PROVIDERS, make_provider
from enrich.providers.base import (
    InvalidOutput,
    anthropic_rate_limits,
    classify_status,
    openai_rate_limits,
    parse_duration,
    parse_retry_after,
    redact,
    retry_after_from,
    strict_json_schema,
    tool_input_schema,
    validate_fields,
)


class Dimensions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    length: float = Field(ge=0)
    unit: str | None = None


class Copy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seo_title: str = Field(min_length=10, max_length=60)
    note: str | None = None
    sizes: list[Dimensions] = Field(default_factory=list)


def _walk(node: object) -> list[dict]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_walk(item))
    return found


def test_strict_schema_meets_openai_strict_rules() -> None:
    schema = strict_json_schema(Copy)
    objects = [n for n in _walk(schema) if n.get("type") == "object"]
    assert len(objects) == 2  # Copy and the Dimensions definition
    for obj in objects:
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])
    assert not any("minLength" in n or "maxLength" in n or "default" in n
                   for n in _walk(schema))
    title = schema["properties"]["seo_title"]
    assert "10 to 60 characters" in title["description"]
    kept = strict_json_schema(Copy, keep_lengths=True)["properties"]["seo_title"]
    assert (kept["minLength"], kept["maxLength"]) == (10, 60)
    # a property may itself be called "title" or "default": names are not keywords
    class Odd(BaseModel):
        title: str
        default: str

    assert set(strict_json_schema(Odd)["properties"]) == {"title", "default"}


def test_tool_schema_keeps_constraints_and_closes_objects() -> None:
    schema = tool_input_schema(Copy)
    assert schema["properties"]["seo_title"]["maxLength"] == 60
    assert all(n["additionalProperties"] is False for n in _walk(schema)
               if n.get("type") == "object")


def test_validate_fields_explains_what_is_wrong() -> None:
    assert validate_fields(Copy, '{"seo_title": "Trail Hoodie | Hoodies"}')["note"] is None
    assert validate_fields(Copy, '```json\n{"seo_title": "Trail Hoodie | Hoodies"}\n```')
    with pytest.raises(InvalidOutput, match="not valid JSON"):
        validate_fields(Copy, '{"seo_title": "Trail')
    with pytest.raises(InvalidOutput, match="seo_title: String should have at least 10"):
        validate_fields(Copy, {"seo_title": "short"})
    with pytest.raises(InvalidOutput, match="price: Extra inputs are not permitted"):
        validate_fields(Copy, {"seo_title": "Trail Hoodie", "price": "9"})
    with pytest.raises(InvalidOutput, match="expected a JSON object"):
        validate_fields(Copy, "[1, 2]")


def test_durations_and_retry_after() -> None:
    assert parse_duration("6m0s") == 360.0
    assert parse_duration("1.5s") == 1.5
    assert parse_duration("20ms") == pytest.approx(0.02)
    assert parse_duration("1h2m3s") == 3723.0
    assert parse_duration("7") == 7.0
    assert parse_duration("soon") is None and parse_duration("") is None
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    date = formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after({"retry-after": date}) or 0) <= 31
    assert parse_retry_after({}) is None


def test_rate_limit_headers_of_both_formats() -> None:
    openai = openai_rate_limits({
        "x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "12s", "x-ratelimit-limit-tokens": "200000",
        "x-ratelimit-remaining-tokens": "150000", "x-ratelimit-reset-tokens": "6m0s"})
    assert (openai.requests_limit, openai.requests_remaining, openai.tokens_limit,
            openai.tokens_remaining, openai.reset_requests_s, openai.reset_tokens_s) == (
        500, 0, 200000, 150000, 12.0, 360.0)
    # no retry-after: wait for the exhausted bucket (requests), not the other one
    assert retry_after_from({}, openai) == 12.0
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 20))
    anthropic = anthropic_rate_limits({
        "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "3",
        "anthropic-ratelimit-requests-reset": reset,
        "anthropic-ratelimit-tokens-limit": "40000",
        "anthropic-ratelimit-tokens-remaining": "0", "anthropic-ratelimit-tokens-reset": reset})
    assert (anthropic.requests_limit, anthropic.requests_remaining, anthropic.tokens_limit,
            anthropic.tokens_remaining) == (50, 3, 40000, 0)
    assert 15 <= (anthropic.reset_tokens_s or 0) <= 21
    assert 15 <= (anthropic.reset_requests_s or 0) <= 21
    assert openai_rate_limits({}).is_empty()


def _classify(status: int, body: object, headers: dict[str, str] | None = None,
              ) -> Exception:
    return classify_status(status, provider="openai", model="m", job_id=9, body=body,
                           headers=headers or {}, limits=None, secrets=["sk-secret-123"],
                           env_var="OPENAI_API_KEY")


def test_status_mapping_reads_the_body() -> None:
    quota = _classify(429, {"message": "You exceeded your current quota",
                            "type": "insufficient_quota", "code": "insufficient_quota"})
    assert isinstance(quota, FatalProviderError) and quota.error_class == "quota"
    spend = _classify(429, {"type": "error", "error": {
        "type": "rate_limit_error", "message": "limit",
        "details": {"error_code": "enforced_spend_limit_reached"}}})
    assert isinstance(spend, FatalProviderError) and spend.error_class == "quota"
    credit = _classify(400, {"type": "error", "error": {
        "type": "invalid_request_error",
        "message": "Your credit balance is too low to access the Anthropic API."}})
    assert isinstance(credit, FatalProviderError)
    limited = _classify(429, {"message": "slow down"}, {"retry-after": "2"})
    assert isinstance(limited, RateLimited) and limited.retry_after == 2.0
    assert "job 9" in limited.message
    for status in (408, 409, 500, 502, 503, 504):
        err = _classify(status, {})
        assert isinstance(err, RetryableProviderError), status
    overloaded = _classify(529, {"type": "error", "error": {"type": "overloaded_error"}})
    assert overloaded.error_class == "overloaded"
    for status, cls in ((401, "auth"), (403, "permission"), (404, "model_not_found"),
                        (402, "quota")):
        err = _classify(status, {})
        assert isinstance(err, FatalProviderError) and err.error_class == cls
    too_long = _classify(400, {"message": "maximum context length exceeded",
                               "code": "context_length_exceeded"})
    assert type(too_long) is PermanentProviderError


def test_keys_never_reach_messages() -> None:
    err = _classify(401, {"message": "Incorrect API key provided: sk-secret-123. You can "
                                     "find your key at ...", "code": "invalid_api_key"})
    assert "sk-secret-123" not in err.message and "[redacted]" in err.message
    assert "OPENAI_API_KEY" in err.hint
    assert redact("key sk-proj-abc***xyz used") == "key [redacted key] used"
    assert redact("nothing secret") == "nothing secret"


def test_every_provider_the_config_accepts_is_registered() -> None:
    accepted = set(typing.get_args(LLMConfig.model_fields["provider"].annotation))
    assert accepted == set(PROVIDERS)


@pytest.mark.parametrize(("name", "model"), [("offline", "offline-v1"),
                                             ("openai", "gpt-4o-mini"),
                                             ("anthropic", "claude-haiku-4-5")])
def test_the_registry_builds_each_provider_by_name(name: str, model: str) -> None:
    provider = make_provider(LLMConfig(provider=name, model=model),
                             Secrets({"OPENAI_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "sk-ant-x"}))
    try:
        assert provider.name == name and provider.model == model
    finally:
        asyncio.run(provider.aclose())


def test_an_unregistered_provider_lists_the_known_ones() -> None:
    # The config's Literal refuses the name first; a config built without validation (as a
    # plugin-loaded name would arrive) reaches the registry, which says what it knows.
    llm = LLMConfig().model_copy(update={"provider": "mistral"})
    with pytest.raises(ConfigError) as err:
        make_provider(llm, Secrets({}))
    assert err.value.message == ("llm.provider = 'mistral' is not a provider enrich knows "
                                 "(anthropic, gemini, offline, openai).")
    assert "anthropic, gemini, offline, openai" in err.value.hint
