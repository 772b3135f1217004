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

The Batch API (half price) is the batch machinery's ``MethodsBatchApi`` contract, as plain
methods: ``batch_line``, ``batch_submit``, ``batch_get``, ``batch_results``, ``batch_cancel``
and ``batch_find`` (see ``enrich.providers.batches``; its ``BATCH_LIMITS`` has Gemini's limits).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
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
    ProviderError,
    RateLimited,
    RetryableProviderError,
)
from enrich.providers.base import (
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
    where,
)
from enrich.providers.batches import RawResult, RemoteBatch
from enrich.providers.images import gemini_parts
from enrich.providers.limit_model import gemini_limits
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

#: Inline requests suit batches whose total request size stays under 20 MB
#: (https://ai.google.dev/gemini-api/docs/batch-mode; MB read as 10^6 bytes); a bigger batch
#: goes up as a JSONL file, whose own limit (2 GB) is in ``batches.BATCH_LIMITS``.
BATCH_INLINE_MAX_BYTES = 20_000_000


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
    # The methods ``enrich.providers.batches.MethodsBatchApi`` calls. A line is the JSONL
    # file's ``{"key": custom id, "request": GenerateContentRequest}``; inline, the custom id
    # rides in the request's ``metadata.key``. Results are joined on that key, never on order.
    # The batch's display name (required by the API) names the ledger and the local batch id,
    # so ``batch_find`` can tell, after a crash between submit and record, whether the
    # provider accepted a batch.

    def batch_body(self, request: LLMRequest) -> dict[str, Any]:
        return rest_request(request)

    def response_model(self, body: Mapping[str, Any]) -> Any:
        return types.GenerateContentResponse.model_validate(dict(body))

    def batch_line(self, custom_id: str, request: LLMRequest) -> dict[str, Any]:
        return {"key": custom_id, "request": self.batch_body(request)}

    async def batch_submit(self, local_id: int, ledger_tag: str, lines: Sequence[bytes], *,
                           inline: bool | None = None) -> RemoteBatch:
        """Create the batch: its requests inline while the create request stays under the
        API's 20 MB, else uploaded first as a JSONL file (``inline`` forces either)."""
        if not lines:
            raise ValueError("a batch needs at least one request")
        name = batch_display_name(ledger_tag, local_id)
        src: Any = None
        if inline is not False:
            src = inline_requests(lines, limit=None if inline else BATCH_INLINE_MAX_BYTES)
        if src is None:
            src = await self._batch_call("upload", self._client.aio.files.upload(
                file=io.BytesIO(b"\n".join(lines) + b"\n"),
                config=types.UploadFileConfig(display_name=name, mime_type="jsonl")))
            src = str(src.name)
        job = await self._batch_call("submit", self._client.aio.batches.create(
            model=self.model, src=src, config=types.CreateBatchJobConfig(display_name=name)))
        return _remote(job)

    async def batch_get(self, remote_id: str) -> RemoteBatch:
        return _remote(await self._batch_call(
            f"{remote_id} get", self._client.aio.batches.get(name=remote_id)))

    async def batch_cancel(self, remote_id: str) -> RemoteBatch:
        """Ask for the cancel; the state afterwards (cancelled, or already ended)."""
        await self._batch_call(f"{remote_id} cancel",
                               self._client.aio.batches.cancel(name=remote_id))
        return await self.batch_get(remote_id)

    async def batch_find(self, local_id: int, ledger_tag: str, custom_ids: set[str],
                         since: float, known: set[str]) -> RemoteBatch | None:
        """The batch whose display name names this ledger and local id (the newest, should
        there be two). The listing's order is not documented, so every page is read; this
        runs only for an intent a crash left behind."""
        wanted = batch_display_name(ledger_tag, local_id)
        found: RemoteBatch | None = None
        with self._batch_errors("list"):  # every page is a request
            pager = await self._client.aio.batches.list(
                config=types.ListBatchJobsConfig(page_size=100))
            async for job in pager:
                if job.display_name != wanted or str(job.name) in known:
                    continue
                remote = _remote(job)
                if found is None or (remote.created_at or 0.0) > (found.created_at or 0.0):
                    found = remote
        return found

    async def batch_results(self, remote_id: str) -> AsyncIterator[RawResult]:
        """Every answered request of an ended batch: from ``dest.inlined_responses``, or
        from the results file, downloaded to a temporary file and read a line at a time. A
        batch that expired, failed or was cancelled has no results: the worker puts its
        lines back in the queue."""
        job = await self._batch_call(f"{remote_id} get",
                                     self._client.aio.batches.get(name=remote_id))
        dest = getattr(job, "dest", None)
        if dest is None:
            return
        if dest.inlined_responses:
            for item in dest.inlined_responses:
                key = str((item.metadata or {}).get("key", ""))
                error = item.error.model_dump(mode="json", exclude_none=True) \
                    if item.error else None
                yield raw_result(key, item.response, error)
            return
        if dest.file_name:
            with tempfile.TemporaryFile() as out:
                await self._batch_call(f"{remote_id} results", self._client.aio.files.download(
                    file=dest.file_name, destination=out))
                out.seek(0)
                for text in out:
                    if text.strip():
                        row = json.loads(text)
                        yield raw_result(str(row.get("key", "")), row.get("response"),
                                         row.get("error"))

    async def _batch_call(self, what: str, awaitable: Any) -> Any:
        """A batch-management call, with the SDK's failures mapped like a request's."""
        with self._batch_errors(what):
            return await awaitable

    @contextlib.contextmanager
    def _batch_errors(self, what: str) -> Iterator[None]:
        """The SDK's failures inside as the ProviderErrors a request's would be, naming the
        batch call (``gemini MODEL batch batches/x get: ...``)."""
        try:
            yield
        except genai_errors.APIError as exc:
            raise self._batch_error(what, exc) from None
        except httpx2.TimeoutException:
            raise RetryableProviderError(
                f"gemini {self.model} batch {what}: no answer within the timeout",
                "Transient; run the command again.", error_class="timeout") from None
        except httpx2.TransportError as exc:
            raise RetryableProviderError(
                f"gemini {self.model} batch {what}: connection to "
                f"{endpoint(self._client.base_url)} failed ({type(exc).__name__})",
                "Transient; run the command again. Check llm.base_url and that the server "
                "is up if it persists.", error_class="connection") from None

    def _batch_error(self, what: str, exc: Any) -> ProviderError:
        """Classified as a live response would be (a rejected key is still ``auth``), with
        the call named, since no job is."""
        response = getattr(exc, "response", None)
        headers = dict(getattr(response, "headers", None) or {})
        error = classify_error(int(exc.code or 0), exc.details, headers, model=self.model,
                               job_id=None, secrets=[self._api_key])
        error.message = error.message.replace(f"gemini {self.model}",
                                              f"gemini {self.model} batch {what}", 1)
        return error


#: ``JOB_STATE_*`` (what the SDK reports; the wire says ``BATCH_STATE_*``) that end a batch.
_ENDED = frozenset({"JOB_STATE_SUCCEEDED", "JOB_STATE_PARTIALLY_SUCCEEDED",
                    "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"})
_DISPLAY_NAME = re.compile(r"^enrich-([0-9a-zA-Z]+)-e(\d+)$")

#: google.rpc.Code to its HTTP status, as google/rpc/code.proto maps them ("HTTP Mapping"),
#: so a per-request error is classified by the same rules as a live response's.
_RPC_HTTP = {1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400,
             10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401}
_RPC_CANCELLED = 1


def batch_display_name(ledger_tag: str, local_id: int) -> str:
    """``enrich-<ledger tag>-e<local id>``: two ledgers on one key never take each other's
    batches for their own."""
    return f"enrich-{ledger_tag}-e{local_id}"


def inline_requests(lines: Sequence[bytes], *, limit: int | None,
                    ) -> list[types.InlinedRequest] | None:
    """The lines as the SDK's inline requests (custom id in ``metadata.key``), or None when
    the create request would exceed ``limit`` bytes. Measured as the SDK serialises it
    (``json.dumps``: non-ASCII escaped, ``", "`` separators), which can be three times the
    UTF-8 lines; a batch whose lines alone pass the limit is not parsed at all."""
    if limit is not None and sum(len(line) + 2 for line in lines) > limit:
        return None
    size = 200  # the wrapper: {"batch": {"displayName": ..., "inputConfig": {...}}}
    out = []
    for line in lines:
        row = json.loads(line)
        request = row["request"]
        wire = {"request": request, "metadata": {"key": row["key"]}}
        size += len(json.dumps(wire)) + 2
        if limit is not None and size > limit:
            return None
        config = dict(request.get("generationConfig") or {})
        if request.get("systemInstruction"):
            config["systemInstruction"] = request["systemInstruction"]
        out.append(types.InlinedRequest(
            contents=request["contents"],
            config=types.GenerateContentConfig.model_validate(config),
            metadata={"key": str(row["key"])}))
    return out


def raw_result(key: str, response: Any, error: Mapping[str, Any] | None) -> RawResult:
    """One answered request in the batch machinery's words. An error is a google.rpc.Status;
    its code becomes the HTTP status a live request would have had, so the line is retried,
    refused or requeued by the live error classes."""
    if error is None and response is not None:
        return RawResult(key, "succeeded", body=response, status=200)
    error = dict(error or {})
    code = error.get("code")
    if code == _RPC_CANCELLED:
        return RawResult(key, "canceled")
    status = code if isinstance(code, int) and code >= 100 else _RPC_HTTP.get(code, 500)
    message = str(error.get("message") or "no answer")[:300]
    return RawResult(key, "errored", status=status, error={"error": {
        "code": str(error.get("status") or code), "message": message}})


def _timestamp(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def _remote(job: Any) -> RemoteBatch:
    state = str(getattr(job.state, "value", job.state) or "JOB_STATE_UNSPECIFIED")
    match = _DISPLAY_NAME.match(job.display_name or "")
    error = getattr(job, "error", None)
    return RemoteBatch(id=str(job.name), status=state.removeprefix("JOB_STATE_").lower(),
                       ended=state in _ENDED, created_at=_timestamp(job.create_time),
                       local_id=int(match.group(2)) if match else None,
                       error=str(error.message)[:300] if error and error.message else None)


def build(llm: LLMConfig, secrets: Secrets, *, http_client: Any = None,
          default_headers: dict[str, str] | None = None) -> GeminiProvider:
    """The Gemini provider (a ``ProviderFactory``); the price is checked before the key."""
    model = llm.model.removeprefix("models/")
    price = price_for("gemini", model, llm.prices)
    key = secrets.require(ENV_VAR, "to call the Gemini API")
    provider = GeminiProvider(model, price, api_key=key, base_url=llm.base_url,
                              timeout_s=llm.timeout_s, http_client=http_client,
                              default_headers=default_headers)
    provider.limit_model = gemini_limits(model)  # RPM and input TPM per model, no headers
    return provider
