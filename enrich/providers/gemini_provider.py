"""Google Gemini (the Gemini Developer API) through the official ``google-genai`` SDK.

Structured output is ``response_mime_type="application/json"`` with ``response_json_schema``:
the API constrains decoding to the schema, but it supports only a subset of JSON Schema (no
``minLength``/``maxLength``), so the schema sent is the strict one whose length limits are
moved into the descriptions, and the pydantic model checks the answer again here (one repair
request, as for the other providers).

The SDK's own retries are off (``HttpRetryOptions(attempts=1)``): the worker owns retries.
Gemini sends no rate-limit headers; a 429 says how long to wait in its ``RetryInfo`` detail,
and which quota ran out in ``QuotaFailure``: a per-minute limit is ``RateLimited``, a daily
quota is fatal for the run (the next night starts afresh).

The Batch API (half price) is reachable through plain methods, ``batch_submit``,
``batch_get``, ``batch_results``, ``batch_cancel`` and ``batch_find``, documented below; they
are the Gemini half of the batch machinery, to be adapted to its final interface.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx2
import pydantic
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from enrich.config import ENV_GEMINI_KEY, LLMConfig, Secrets
from enrich.errors import (
    FatalProviderError,
    PermanentProviderError,
    ProviderError,
    RateLimited,
    RetryableProviderError,
)
from enrich.providers.base import (
    InvalidOutput,
    LLMRequest,
    RateLimitInfo,
    SdkProvider,
    Usage,
    classify_status,
    endpoint,
    parse_duration,
    parse_retry_after,
    redact,
    repair_message,
    strict_json_schema,
    unusable,
    validate_fields,
    where,
)
from enrich.providers.images import gemini_parts
from enrich.providers.prices import price_for
from enrich.providers.tokens import MESSAGE_OVERHEAD, REQUEST_OVERHEAD, estimate_tokens

ENV_VAR = ENV_GEMINI_KEY
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
#: Pinned: the 3.x SDK defaults to ``v1`` (or GOOGLE_GENAI_API_VERSION), while the Batch API
#: and ``responseJsonSchema`` are documented on ``v1beta``; one version, whatever the
#: environment says, keeps the URLs (and the sandbox's routes) the same everywhere.
API_VERSION = "v1beta"

#: Finish reasons that mean the model would not write the answer (a safety block, not a bug).
_REFUSALS = frozenset({"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION",
                       "IMAGE_SAFETY", "LANGUAGE"})

#: The Batch API's limits (https://ai.google.dev/gemini-api/docs/batch-mode): inline requests
#: while the whole create request stays under 20 MB, else an uploaded JSONL file (up to 2 GB).
BATCH_INLINE_MAX_BYTES = 20_000_000
BATCH_FILE_MAX_BYTES = 2_000_000_000

#: ``JOB_STATE_*`` (what the SDK reports; the wire says ``BATCH_STATE_*``) to one word.
_STATES = {"JOB_STATE_PENDING": "pending", "JOB_STATE_QUEUED": "pending",
           "JOB_STATE_RUNNING": "running", "JOB_STATE_SUCCEEDED": "succeeded",
           "JOB_STATE_FAILED": "failed", "JOB_STATE_CANCELLING": "cancelling",
           "JOB_STATE_CANCELLED": "cancelled", "JOB_STATE_EXPIRED": "expired",
           "JOB_STATE_PARTIALLY_SUCCEEDED": "succeeded"}

#: google.rpc.Code numbers a per-request batch error carries, by what enrich does next.
_RPC_RETRYABLE = frozenset({1, 2, 4, 8, 10, 13, 14})  # cancelled, unknown, deadline, ...
_RPC_FATAL = frozenset({5, 7, 16})  # not found (model), permission denied, unauthenticated


class GeminiClient:
    """The SDK client, shaped as ``SdkProvider`` builds and closes its client.

    ``SdkProvider`` passes ``max_retries=0`` and ``timeout`` (seconds); the SDK takes retry
    options and a timeout in milliseconds, so they are translated here once.
    """

    def __init__(self, *, api_key: str, base_url: str | None, max_retries: int,
                 timeout: float, http_client: Any = None,
                 default_headers: dict[str, str] | None = None) -> None:
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        options = types.HttpOptions(
            base_url=self.base_url, api_version=API_VERSION,
            timeout=max(1, int(timeout * 1000)),
            headers=dict(default_headers or {}),
            retry_options=types.HttpRetryOptions(attempts=max_retries + 1))
        if http_client is not None:
            options.httpx_async_client = http_client
        self.sdk = genai.Client(api_key=api_key, http_options=options)
        self.aio = self.sdk.aio

    async def close(self) -> None:
        await self.aio.aclose()
        self.sdk.close()


def response_schema(schema: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The JSON schema Gemini's ``response_json_schema`` takes: the strict schema, whose
    ``minLength``/``maxLength`` (which Gemini does not support) are written into the
    descriptions, so the model still reads them."""
    return strict_json_schema(schema)


def request_config(request: LLMRequest) -> types.GenerateContentConfig:
    """The generation config of a live request (and of each inline batch request)."""
    return types.GenerateContentConfig(
        system_instruction=request.system or None,
        temperature=request.temperature,
        max_output_tokens=request.max_output_tokens,
        response_mime_type="application/json",
        response_json_schema=response_schema(request.schema),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        automatic_continuation=False,  # one call is one HTTP request, counted and costed
    )


def rest_request(request: LLMRequest) -> dict[str, Any]:
    """The same request as REST JSON (a GenerateContentRequest), for a batch's JSONL file."""
    body: dict[str, Any] = {
        "contents": [{"role": "user", "parts": [{"text": request.user}]}],
        "generationConfig": {
            "temperature": request.temperature,
            "maxOutputTokens": request.max_output_tokens,
            "responseMimeType": "application/json",
            "responseJsonSchema": response_schema(request.schema),
        },
    }
    if request.system:
        body["systemInstruction"] = {"parts": [{"text": request.system}]}
    return body


def _candidate(response: Any) -> Any:
    candidates = getattr(response, "candidates", None)
    return candidates[0] if candidates else None


def _finish(response: Any) -> str:
    candidate = _candidate(response)
    reason = getattr(candidate, "finish_reason", None) if candidate is not None else None
    return str(getattr(reason, "value", reason) or "")


def _text(response: Any) -> str:
    """The answer's text parts (thought summaries are not the answer)."""
    candidate = _candidate(response)
    content = getattr(candidate, "content", None) if candidate is not None else None
    parts = getattr(content, "parts", None) or []
    return "".join(p.text for p in parts if getattr(p, "text", None) and not p.thought)


def _error_details(body: Any) -> tuple[str | None, str, list[dict[str, Any]]]:
    """(status, message, details) of a google.rpc.Status error body, however nested."""
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    inner = body.get("error", body) if isinstance(body, dict) else {}
    if not isinstance(inner, dict):
        return None, str(inner)[:300], []
    details = inner.get("details")
    return (str(inner["status"]) if inner.get("status") else None,
            str(inner.get("message") or "")[:300],
            [d for d in details if isinstance(d, dict)] if isinstance(details, list) else [])


def _detail(details: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    for item in details:
        if str(item.get("@type", "")).endswith("google.rpc." + kind):
            return item
    return None


def retry_delay(details: list[dict[str, Any]]) -> float | None:
    """Seconds a ``RetryInfo`` detail asks to wait (``"37s"``, ``"1.5s"``)."""
    info = _detail(details, "RetryInfo")
    return parse_duration(str(info.get("retryDelay"))) if info else None


def _daily_quota(details: list[dict[str, Any]]) -> bool:
    """True when a ``QuotaFailure`` names a per-day quota: waiting minutes will not help."""
    failure = _detail(details, "QuotaFailure") or {}
    return any("PerDay" in str(v.get("quotaId", "")) for v in failure.get("violations") or []
               if isinstance(v, dict))


def classify_error(status: int, body: Any, headers: Mapping[str, str], *, model: str,
                   job_id: int | None, secrets: Sequence[str | None] = ()) -> ProviderError:
    """The ProviderError for a Gemini error response (a google.rpc.Status body).

    Gemini reports a rejected key as HTTP 400 ``API_KEY_INVALID`` and a missing one as 403,
    a daily quota and a per-minute limit both as 429 ``RESOURCE_EXHAUSTED``, and an
    overloaded model as 503 ``UNAVAILABLE``; those are told apart here. The rest maps like
    every other provider's (``classify_status``).
    """
    rpc_status, message, details = _error_details(body)
    message = redact(message, secrets)
    said = f": {message}" if message else ""
    at = where("gemini", model, job_id)
    info = _detail(details, "ErrorInfo") or {}
    reason = str(info.get("reason") or "")
    if reason.startswith("API_KEY_") or status == 401:
        return FatalProviderError(
            f"{at}: the API key was rejected (HTTP {status}{', ' + reason if reason else ''})"
            f"{said}", f"Check {ENV_VAR} in the environment that runs enrich (and "
            "llm.base_url if you use a proxy).", status=status, error_class="auth")
    if status == 429:
        if _daily_quota(details):
            return FatalProviderError(
                f"{at}: the daily quota is used up (HTTP 429, RESOURCE_EXHAUSTED){said}",
                "Wait for the quota to reset (midnight Pacific time) or raise the project's "
                "tier in Google AI Studio; the jobs not done stay pending.",
                status=status, error_class="quota")
        return RateLimited(
            f"{at}: rate limited (HTTP 429){said}",
            "enrich waits and retries by itself; lower llm.max_rpm / llm.max_tpm or "
            "llm.concurrency if this keeps happening.", status=status,
            retry_after=retry_delay(details) or parse_retry_after(headers),
            error_class="rate_limited")
    if status == 503:
        return RetryableProviderError(
            f"{at}: the model is overloaded (HTTP 503){said}",
            "Transient; enrich retries with backoff.", status=status,
            retry_after=retry_delay(details) or parse_retry_after(headers),
            error_class="overloaded")
    normalized = {"error": {"code": rpc_status, "message": message}}
    return classify_status(status, provider="gemini", model=model, job_id=job_id,
                           body=normalized, headers=headers, limits=None, secrets=secrets,
                           env_var=ENV_VAR)


def _no_rate_limits(headers: Mapping[str, str]) -> RateLimitInfo:
    """Gemini sends no rate-limit headers; its 429s carry the wait in the body instead."""
    return RateLimitInfo()


@dataclass(frozen=True)
class BatchStatus:
    """Where a provider batch stands. ``state`` is one of pending, running, succeeded,
    failed, cancelling, cancelled, expired; ``provider_state`` is the SDK's ``JOB_STATE_*``."""

    id: str  # "batches/..."
    state: str
    provider_state: str
    display_name: str | None
    model: str | None
    created_at: datetime | None
    ended_at: datetime | None
    output_file: str | None = None  # "files/..." when the results are in a file

    @property
    def done(self) -> bool:
        return self.state in ("succeeded", "failed", "cancelled", "expired")


@dataclass
class BatchResult:
    """One request's outcome. Exactly one of ``fields`` and ``error`` is set; ``usage`` and
    ``cost_usd`` (at the batch price) count what the request spent, also when it failed."""

    custom_id: str
    fields: dict[str, Any] | None
    error: ProviderError | None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    raw_text: str = ""
    usage_estimated: bool = False


class GeminiProvider(SdkProvider):
    name = "gemini"
    sdk = genai_errors
    sdk_client = GeminiClient
    env_var = ENV_VAR
    rate_limits = staticmethod(_no_rate_limits)

    # -- live -----------------------------------------------------------------------------

    async def _call(self, request: LLMRequest, messages: list[dict[str, Any]],
                    ) -> tuple[Any, RateLimitInfo, int]:
        """The SDK raises ``errors.APIError`` for a status and httpx2's own exceptions for a
        timeout or a broken connection; each maps to the same ProviderErrors as elsewhere."""
        try:
            response, headers, status = await self._send(request, messages)
        except genai_errors.APIError as exc:
            raise self._status_error(request, exc) from None
        except httpx2.TimeoutException:
            raise self._timeout_error(request) from None
        except httpx2.TransportError as exc:
            raise self._connection_error(request, exc) from None
        return response, self.rate_limits(headers), status

    def _status_error(self, request: LLMRequest, exc: Any) -> ProviderError:
        response = getattr(exc, "response", None)
        headers = dict(getattr(response, "headers", None) or {})
        return classify_error(int(exc.code or 0), exc.details, headers, model=self.model,
                              job_id=request.job_id, secrets=[self._api_key])

    def _connection_error(self, request: LLMRequest, exc: BaseException,
                          ) -> RetryableProviderError:
        return RetryableProviderError(
            f"{where(self.name, self.model, request.job_id)}: connection to "
            f"{endpoint(self._client.base_url)} failed ({type(exc).__name__})",
            "Transient; enrich retries. Check llm.base_url and that the server is up if it "
            "persists.", error_class="connection")

    def _first_messages(self, request: LLMRequest) -> list[dict[str, Any]]:
        if request.images:
            return [{"role": "user", "parts": gemini_parts(request.user, request.images)}]
        return [{"role": "user", "parts": [{"text": request.user}]}]  # system goes apart

    async def _send(self, request: LLMRequest, messages: list[dict[str, Any]],
                    ) -> tuple[Any, Mapping[str, str], int]:
        response = await self._client.aio.models.generate_content(
            model=self.model, contents=messages, config=request_config(request))
        http = getattr(response, "sdk_http_response", None)
        return response, dict(getattr(http, "headers", None) or {}), 200

    def _usage(self, response: Any, messages: list[dict[str, Any]]) -> tuple[Usage, bool]:
        """``promptTokenCount`` includes the cached tokens (as ours does); thinking tokens
        are billed as output, so they are added to the candidates' tokens."""
        meta = getattr(response, "usage_metadata", None)
        if meta is None or meta.prompt_token_count is None:
            prompt = sum(estimate_tokens(p.get("text") or "") + MESSAGE_OVERHEAD
                         for m in messages for p in m["parts"])
            return Usage(input_tokens=prompt + REQUEST_OVERHEAD,
                         output_tokens=estimate_tokens(_text(response))), True
        return Usage(input_tokens=meta.prompt_token_count or 0,
                     output_tokens=(meta.candidates_token_count or 0)
                     + (meta.thoughts_token_count or 0),
                     cached_tokens=meta.cached_content_token_count or 0), False

    def _refusal(self, response: Any) -> str | None:
        feedback = getattr(response, "prompt_feedback", None)
        blocked = getattr(feedback, "block_reason", None) if feedback is not None else None
        if blocked:
            return f"the prompt was blocked ({getattr(blocked, 'value', blocked)})"
        finish = _finish(response)
        if finish in _REFUSALS:
            return f"the model stopped for {finish.lower()} reasons (finishReason {finish})"
        return None

    def _truncated(self, response: Any) -> bool:
        return _finish(response) == "MAX_TOKENS"

    def _answer(self, request: LLMRequest, response: Any) -> str:
        return _text(response)

    def _repair_turn(self, answer: Any, detail: str) -> list[dict[str, Any]]:
        return [{"role": "model", "parts": [{"text": answer or "(no answer)"}]},
                {"role": "user", "parts": [{"text": repair_message(detail)}]}]

    async def aclose(self) -> None:
        if not getattr(self, "_closed", False):
            self._closed = True
            await self._client.close()

    # -- batch ----------------------------------------------------------------------------
    #
    # Every item carries its custom id in the request's metadata ("key"), so results are
    # joined on it, never on order; the batch carries the caller's local id as its display
    # name, so ``batch_find`` can tell, after a crash between submit and record, whether
    # the provider accepted it. Errors are the same ProviderError classes as in live mode.

    async def batch_submit(self, items: Sequence[tuple[str, LLMRequest]], *, local_id: str,
                           inline: bool | None = None) -> str:
        """Submit ``items`` (custom id, request) as one batch; the provider's batch id.

        Inline requests while the body stays under the 20 MB limit, else a JSONL file is
        uploaded first (``inline`` forces either). Raises a ProviderError like ``generate``.
        """
        if not items:
            raise ValueError("a batch needs at least one request")
        lines = [json.dumps({"key": cid, "request": rest_request(req)}, ensure_ascii=False)
                 for cid, req in items]
        size = sum(len(line.encode("utf-8")) + 1 for line in lines)
        if inline is None:
            inline = size < BATCH_INLINE_MAX_BYTES
        if size > BATCH_FILE_MAX_BYTES:
            raise ValueError(f"batch of {len(items)} requests is {size} bytes; Gemini takes "
                             f"at most {BATCH_FILE_MAX_BYTES} per input file: split it")
        config = types.CreateBatchJobConfig(display_name=local_id)
        first = items[0][1]
        try:
            if inline:
                src: Any = [types.InlinedRequest(
                    contents=[types.Content(role="user", parts=[types.Part(text=req.user)])],
                    config=request_config(req), metadata={"key": cid}) for cid, req in items]
            else:
                src = await self._upload_jsonl(lines, local_id)
            job = await self._client.aio.batches.create(model=self.model, src=src,
                                                        config=config)
        except genai_errors.APIError as exc:
            raise self._status_error(first, exc) from None
        except httpx2.TimeoutException:
            raise self._timeout_error(first) from None
        except httpx2.TransportError as exc:
            raise self._connection_error(first, exc) from None
        return str(job.name)

    async def _upload_jsonl(self, lines: list[str], local_id: str) -> str:
        handle, path = tempfile.mkstemp(prefix="enrich-gemini-", suffix=".jsonl")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                for line in lines:
                    out.write(line + "\n")
            uploaded = await self._client.aio.files.upload(
                file=path, config=types.UploadFileConfig(display_name=local_id,
                                                         mime_type="jsonl"))
        finally:
            os.unlink(path)
        return str(uploaded.name)

    async def batch_get(self, batch_id: str) -> BatchStatus:
        """The batch's state now."""
        return _status(await self._batch_call(self._client.aio.batches.get(name=batch_id)))

    async def batch_cancel(self, batch_id: str) -> BatchStatus:
        """Ask the provider to cancel; the state afterwards (cancelled, or already done)."""
        await self._batch_call(self._client.aio.batches.cancel(name=batch_id))
        return await self.batch_get(batch_id)

    async def batch_find(self, local_id: str) -> list[BatchStatus]:
        """Every batch of this key whose display name is ``local_id``, newest first: after
        a crash, whether (and as what) the provider accepted a batch enrich did not record."""
        found: list[BatchStatus] = []
        pager = await self._batch_call(self._client.aio.batches.list(
            config=types.ListBatchJobsConfig(page_size=100)))
        async for job in pager:
            if job.display_name == local_id:
                found.append(_status(job))
        found.sort(key=lambda s: s.created_at.timestamp() if s.created_at else 0.0,
                   reverse=True)
        return found

    async def batch_results(
        self, batch_id: str,
        schemas: type[pydantic.BaseModel] | Mapping[str, type[pydantic.BaseModel]],
    ) -> AsyncIterator[BatchResult]:
        """The outcome of every request the batch answered, validated against its schema
        (one for all, or by custom id), costed at the batch price.

        A batch that expired, failed or was cancelled yields nothing: its custom ids that
        have no result were not done and go back to the queue. No repair request is sent in
        batch mode; an invalid answer is an ``UnusableOutput`` with its cost.
        """
        status_job = await self._batch_call(self._client.aio.batches.get(name=batch_id))
        dest = getattr(status_job, "dest", None)
        if dest is None:
            return
        if dest.inlined_responses:
            for item in dest.inlined_responses:
                key = (item.metadata or {}).get("key", "")
                error = item.error.model_dump(mode="json") if item.error else None
                yield self._batch_item(key, item.response, error, schemas)
            return
        if dest.file_name:
            handle, path = tempfile.mkstemp(prefix="enrich-gemini-out-", suffix=".jsonl")
            os.close(handle)
            try:
                await self._batch_call(self._client.aio.files.download(
                    file=dest.file_name, destination=path))
                with open(path, encoding="utf-8") as lines:
                    for line in lines:
                        if not line.strip():
                            continue
                        row = json.loads(line)
                        response = (types.GenerateContentResponse._from_response(
                            response=row["response"], kwargs={})
                            if isinstance(row.get("response"), dict) else None)
                        yield self._batch_item(str(row.get("key", "")), response,
                                               row.get("error"), schemas)
            finally:
                os.unlink(path)

    async def _batch_call(self, awaitable: Any) -> Any:
        """A batch-management call, with the SDK's failures mapped like a request's."""
        probe = LLMRequest(system="", user="", schema=pydantic.BaseModel)
        try:
            return await awaitable
        except genai_errors.APIError as exc:
            raise self._status_error(probe, exc) from None
        except httpx2.TimeoutException:
            raise self._timeout_error(probe) from None
        except httpx2.TransportError as exc:
            raise self._connection_error(probe, exc) from None

    def _batch_item(self, key: str, response: Any, error: dict[str, Any] | None,
                    schemas: type[pydantic.BaseModel] | Mapping[str, type[pydantic.BaseModel]],
                    ) -> BatchResult:
        at = f"gemini {self.model} (batch item {key})"
        if error is not None or response is None:
            return BatchResult(key, None, _item_error(at, error or {}))
        usage, estimated = self._usage(response, [])
        cost = self.cost(usage, batch=True)
        refused = self._refusal(response)
        if refused is not None:
            return BatchResult(key, None, unusable(
                f"{at}: {refused}", "Write this one by hand or reject it.", status=None,
                error_class="refusal", usage=usage, cost_usd=cost), usage, cost)
        schema = schemas if isinstance(schemas, type) else schemas.get(key)
        if schema is None:
            return BatchResult(key, None, PermanentProviderError(
                f"{at}: no schema for this custom id", "A result enrich did not ask for; "
                "check the batch's custom ids.", error_class="unknown_item"), usage, cost)
        text = _text(response)
        try:
            fields = validate_fields(schema, text)
        except InvalidOutput as exc:
            detail = exc.detail + (" (cut off at max_output_tokens)"
                                   if self._truncated(response) else "")
            return BatchResult(key, None, unusable(
                f"{at}: invalid output: {detail}", "Retry it live (one repair) or fix the "
                "template's limits.", status=None, error_class="invalid_output",
                usage=usage, cost_usd=cost), usage, cost, text, estimated)
        return BatchResult(key, fields, None, usage, cost, text, estimated)


def _item_error(at: str, error: dict[str, Any]) -> ProviderError:
    """A per-request batch error (a google.rpc.Status) as the live error classes."""
    code = error.get("code")
    message = str(error.get("message") or "no answer")[:300]
    if isinstance(code, int) and code >= 100:  # an HTTP status rather than an RPC code
        return classify_error(code, {"error": error}, {}, model=at, job_id=None)
    if code in _RPC_FATAL:
        return FatalProviderError(f"{at}: {message} (code {code})",
                                  "Check the key, the model and the project's access.",
                                  error_class="permission" if code != 5 else "model_not_found")
    if code in _RPC_RETRYABLE or code is None:
        return RetryableProviderError(f"{at}: {message} (code {code})",
                                      "Transient; the job goes back to the queue.",
                                      error_class="server_error")
    return PermanentProviderError(f"{at}: the request was refused: {message} (code {code})",
                                  "Fix the template or the product data, then `enrich jobs "
                                  "retry`.", error_class="invalid_request")


def _status(job: Any) -> BatchStatus:
    state = getattr(job.state, "value", job.state) or "JOB_STATE_UNSPECIFIED"
    dest = getattr(job, "dest", None)
    return BatchStatus(id=str(job.name), state=_STATES.get(str(state), "pending"),
                       provider_state=str(state), display_name=job.display_name,
                       model=job.model, created_at=job.create_time, ended_at=job.end_time,
                       output_file=getattr(dest, "file_name", None) if dest else None)


def build(llm: LLMConfig, secrets: Secrets, *, http_client: Any = None,
          default_headers: dict[str, str] | None = None) -> GeminiProvider:
    """The Gemini provider (a ``ProviderFactory``); the price is checked before the key."""
    model = llm.model.removeprefix("models/")
    price = price_for("gemini", model, llm.prices)
    key = secrets.require(ENV_VAR, "to call the Gemini API")
    return GeminiProvider(model, price, api_key=key, base_url=llm.base_url,
                          timeout_s=llm.timeout_s, http_client=http_client,
                          default_headers=default_headers)
