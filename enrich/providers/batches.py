"""Provider batch APIs behind one small interface (``BatchApi``), each through its official SDK.

Batch mode (``enrich.worker.batch``) only ever speaks ``BatchApi``: submit lines under a local
batch id, get a batch's state, stream its raw results, cancel it, and find the batch that
carries a local id (the reconcile after a crash). A provider is one adapter here plus one
line in ``ADAPTERS``; a provider that exposes plain ``batch_submit / batch_get /
batch_results / batch_cancel / batch_find`` methods fits ``MethodsBatchApi`` as is.

What a line asks is built by the provider's own live-request code (``batch_body``) and what
it answers is read by the provider's own checks (``interpret``), so a batch draft and a live
draft are the same thing at half the price.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from enrich.errors import (
    ConfigError,
    FatalProviderError,
    ProviderError,
    RateLimited,
    RetryableProviderError,
)
from enrich.providers.base import LLMRequest, LLMResult, Provider, classify_status, where


@dataclass(frozen=True)
class BatchLimits:
    """The most one batch may hold; enrich splits before either is reached."""

    max_requests: int
    max_bytes: int
    source: str


#: No per-batch request count is documented (Gemini): the bytes bind first, and enrich claims
#: at most ``enrich.worker.batch.SUBMIT_CHUNK`` jobs at a time anyway.
NO_REQUEST_LIMIT = sys.maxsize

#: Per-batch limits from the providers' documentation (checked 2026-11-23). MB and GB are
#: taken as 10^6 and 10^9 bytes, the smaller reading. One model per batch for every provider
#: (OpenAI and Gemini require it; enrich keeps it everywhere so a batch's price is one
#: model's).
BATCH_LIMITS: dict[str, BatchLimits] = {
    "openai": BatchLimits(
        50_000, 200_000_000,
        "https://platform.openai.com/docs/guides/batch and the Batches.create reference: "
        "\"The file can contain up to 50,000 requests, and can be up to 200 MB in size.\""),
    "anthropic": BatchLimits(
        100_000, 256_000_000,
        "https://platform.claude.com/docs/en/build-with-claude/batch-processing: \"A Message "
        "Batch is limited to either 100,000 Message requests or 256 MB in size, whichever is "
        "reached first.\""),
    "gemini": BatchLimits(
        NO_REQUEST_LIMIT, 2_000_000_000,
        "https://ai.google.dev/gemini-api/docs/rate-limits, Batch API section: input "
        "file size limit 2 GB, 100 concurrent batch requests and 20 GB of file storage per "
        "project (as also summarised at rate-limits.apis.io/rate-limits/google-gemini); "
        "https://ai.google.dev/gemini-api/docs/batch-mode: inline requests suit batches "
        "whose total request size stays under 20 MB, larger ones go as a JSONL input file; "
        "no request count per batch is documented. enrich sends a batch inline when it "
        "fits (enrich.providers.gemini_provider.BATCH_INLINE_MAX_BYTES), else as a file."),
}

#: Metadata keys (OpenAI keeps up to 16 string pairs on a batch).
META_LOCAL_ID = "enrich_batch"
META_LEDGER = "enrich_ledger"


@dataclass
class RemoteBatch:
    """A provider batch as the provider describes it, in enrich's words."""

    id: str
    status: str  # the provider's own word
    ended: bool  # no more results will come (completed, failed, expired, canceled, ended)
    created_at: float | None = None
    local_id: int | None = None  # from the batch's metadata, where the provider keeps it
    total: int | None = None  # requests in the batch, where the provider says
    error: str | None = None  # why the whole batch failed, if it did


@dataclass
class RawResult:
    """One result line: ``kind`` is succeeded, errored, expired or canceled."""

    custom_id: str
    kind: str
    body: Any = None  # succeeded: the response body (dict) or SDK object
    status: int | None = None  # errored: the HTTP status of the line, where given
    error: Any = None  # errored: the error body


@dataclass
class Unsure:
    """``find`` could not tell yet (a candidate batch is still running and hides its ids)."""

    candidates: list[str] = field(default_factory=list)


class BatchApi(Protocol):
    """What batch mode needs from a provider's batch service."""

    provider: Provider
    limits: BatchLimits

    def line(self, custom_id: str, request: LLMRequest) -> dict[str, Any]:
        """One line of the batch, as the provider's batch format wants it."""

    async def submit(self, local_id: int, ledger_tag: str,
                     lines: Sequence[bytes]) -> RemoteBatch:
        """Create the batch from ``lines`` (each a ``line`` as compact JSON, kept serialised
        so a batch of tens of thousands costs its bytes in memory, not its dicts)."""

    async def get(self, remote_id: str) -> RemoteBatch: ...

    def results(self, remote_id: str) -> AsyncIterator[RawResult]: ...

    async def cancel(self, remote_id: str) -> RemoteBatch: ...

    async def find(self, local_id: int, ledger_tag: str, custom_ids: set[str], since: float,
                   known: set[str]) -> RemoteBatch | Unsure | None: ...


def line_bytes(line: Mapping[str, Any]) -> int:
    """The size a line takes in the upload (JSON plus its newline)."""
    return len(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode()) + 1


def settle(provider: Provider, request: LLMRequest, raw: RawResult) -> LLMResult:
    """The result of one line, or the ProviderError a live request would have raised.

    Expired and canceled lines raise ``RateLimited`` (class ``batch_expired`` /
    ``batch_canceled``): like a live 429, they were not the job's fault and cost nothing, so
    the job goes back to pending with its attempt refunded.
    """
    at = where(provider.name, provider.model, request.job_id)
    if raw.kind == "succeeded":
        response = raw.body if not isinstance(raw.body, Mapping) else \
            provider.response_model(raw.body)
        return provider.interpret(request, response, status=raw.status or 200)
    if raw.kind in ("expired", "canceled"):
        raise RateLimited(f"{at}: the batch {raw.kind} before this request ran",
                          "It is back in the queue; the next submit sends it again.",
                          error_class=f"batch_{raw.kind}")
    status = raw.status or _status_of(raw.error)
    error = classify_status(status, provider=provider.name, model=provider.model,
                            job_id=request.job_id, body=raw.error, headers={}, limits=None)
    if isinstance(error, FatalProviderError):
        # A key or quota problem inside one line: the line is not the job's fault either.
        return _raise(RateLimited(error.message, error.hint, status=status,
                                  error_class=error.error_class))
    return _raise(error)


def _raise(error: ProviderError) -> LLMResult:
    raise error


_ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401,
                 "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
                 "rate_limit_error": 429, "api_error": 500, "overloaded_error": 529,
                 "server_error": 500, "rate_limit_exceeded": 429}


def _status_of(error: Any) -> int:
    """The HTTP status an error line stands for (a line error carries a type, not a status)."""
    body = error.get("error", error) if isinstance(error, Mapping) else {}
    if not isinstance(body, Mapping):
        return 500
    for key in ("type", "code"):
        status = _ERROR_STATUS.get(str(body.get(key)))
        if status is not None:
            return status
    return 500


def _timestamp(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return float(value)


def _wrap(provider: Provider, what: str, exc: Exception) -> ProviderError:
    """An SDK failure of a batch endpoint as the error a live request would raise."""
    sdk = getattr(provider, "sdk", None)
    at = f"{provider.name} {provider.model} batch {what}"
    if sdk is not None and isinstance(exc, sdk.APIStatusError):
        error = classify_status(exc.status_code, provider=provider.name, model=provider.model,
                                job_id=None, body=exc.body, headers=exc.response.headers,
                                limits=None, env_var=getattr(provider, "env_var", ""),
                                secrets=[getattr(provider, "_api_key", None)])
        error.message = error.message.replace(f"{provider.name} {provider.model}", at, 1)
        return error
    if sdk is not None and isinstance(exc, sdk.APIConnectionError | sdk.APITimeoutError):
        return RetryableProviderError(f"{at}: the batch service did not answer "
                                      f"({type(exc).__name__})", "Transient; run the "
                                      "command again.", error_class="connection")
    raise exc


class OpenAIBatchApi:
    """OpenAI: a JSONL file (purpose ``batch``) of ``/v1/chat/completions`` lines, then a
    batch on it with ``completion_window="24h"``; results in an output and an error file."""

    endpoint = "/v1/chat/completions"

    def __init__(self, provider: Provider, limits: BatchLimits) -> None:
        self.provider = provider
        self.limits = limits
        self.client: Any = provider._client  # type: ignore[attr-defined]

    def line(self, custom_id: str, request: LLMRequest) -> dict[str, Any]:
        return {"custom_id": custom_id, "method": "POST", "url": self.endpoint,
                "body": self.provider.batch_body(request)}

    def _remote(self, batch: Any) -> RemoteBatch:
        meta = batch.metadata or {}
        local = meta.get(META_LOCAL_ID)
        errors = getattr(batch, "errors", None)
        said = None
        if errors is not None and getattr(errors, "data", None):
            said = "; ".join(str(e.message) for e in errors.data[:3])
        counts = getattr(batch, "request_counts", None)
        return RemoteBatch(
            id=batch.id, status=batch.status,
            ended=batch.status in ("completed", "failed", "expired", "cancelled"),
            created_at=_timestamp(batch.created_at),
            local_id=int(local) if local and str(local).isdigit() else None,
            total=getattr(counts, "total", None), error=said)

    async def submit(self, local_id: int, ledger_tag: str,
                     lines: Sequence[bytes]) -> RemoteBatch:
        data = b"\n".join(lines) + b"\n"
        try:
            uploaded = await self.client.files.create(
                file=(f"enrich-batch-{ledger_tag}-{local_id}.jsonl", data, "application/jsonl"),
                purpose="batch")
            batch = await self.client.batches.create(
                input_file_id=uploaded.id, endpoint=self.endpoint, completion_window="24h",
                metadata={META_LOCAL_ID: str(local_id), META_LEDGER: ledger_tag})
        except Exception as exc:
            raise _wrap(self.provider, "submit", exc) from None
        return self._remote(batch)

    async def get(self, remote_id: str) -> RemoteBatch:
        try:
            return self._remote(await self.client.batches.retrieve(remote_id))
        except Exception as exc:
            raise _wrap(self.provider, f"{remote_id} retrieve", exc) from None

    async def results(self, remote_id: str) -> AsyncIterator[RawResult]:
        try:
            batch = await self.client.batches.retrieve(remote_id)
        except Exception as exc:
            raise _wrap(self.provider, f"{remote_id} retrieve", exc) from None
        expired = "expired" if batch.status == "expired" else "canceled"
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            try:
                content = await self.client.files.content(file_id)
            except Exception as exc:
                raise _wrap(self.provider, f"{remote_id} results", exc) from None
            for text in content.text.splitlines():
                if text.strip():
                    yield self._raw(json.loads(text), expired)

    @staticmethod
    def _raw(data: dict[str, Any], ended_as: str) -> RawResult:
        custom = str(data.get("custom_id") or "")
        response = data.get("response") or {}
        error = data.get("error")
        status = response.get("status_code") if isinstance(response, dict) else None
        if error is None and status == 200:
            return RawResult(custom, "succeeded", body=response.get("body"), status=200)
        code = str((error or {}).get("code") or "")
        if code == "batch_expired":
            return RawResult(custom, "expired")
        if code == "batch_cancelled":
            return RawResult(custom, "canceled")
        if error is None and isinstance(response, dict):
            error = response.get("body")
        return RawResult(custom, "errored", status=status, error=error)

    async def cancel(self, remote_id: str) -> RemoteBatch:
        try:
            return self._remote(await self.client.batches.cancel(remote_id))
        except Exception as exc:
            raise _wrap(self.provider, f"{remote_id} cancel", exc) from None

    async def find(self, local_id: int, ledger_tag: str, custom_ids: set[str], since: float,
                   known: set[str]) -> RemoteBatch | Unsure | None:
        """The batch whose metadata names this ledger and local id (newest first; the
        listing stops at batches created well before the intent)."""
        try:
            async for batch in self.client.batches.list(limit=100):
                created = _timestamp(batch.created_at) or 0.0
                if created < since - 3600:
                    break
                meta = batch.metadata or {}
                if (meta.get(META_LOCAL_ID) == str(local_id)
                        and meta.get(META_LEDGER) == ledger_tag):
                    return self._remote(batch)
        except Exception as exc:
            raise _wrap(self.provider, "list", exc) from None
        return None


class AnthropicBatchApi:
    """Anthropic Message Batches: requests inline, results as JSONL by custom id. A batch
    keeps no metadata, so the local id travels in every custom id."""

    def __init__(self, provider: Provider, limits: BatchLimits) -> None:
        self.provider = provider
        self.limits = limits
        self.client: Any = provider._client  # type: ignore[attr-defined]

    def line(self, custom_id: str, request: LLMRequest) -> dict[str, Any]:
        return {"custom_id": custom_id, "params": self.provider.batch_body(request)}

    @staticmethod
    def _remote(batch: Any) -> RemoteBatch:
        counts = batch.request_counts
        total = sum(getattr(counts, name, 0) or 0 for name in
                    ("processing", "succeeded", "errored", "canceled", "expired"))
        return RemoteBatch(id=batch.id, status=batch.processing_status,
                           ended=batch.processing_status == "ended",
                           created_at=_timestamp(batch.created_at), total=total)

    async def submit(self, local_id: int, ledger_tag: str,
                     lines: Sequence[bytes]) -> RemoteBatch:
        try:
            batch = await self.client.messages.batches.create(
                requests=[json.loads(line) for line in lines])
        except Exception as exc:
            raise _wrap(self.provider, "submit", exc) from None
        return self._remote(batch)

    async def get(self, remote_id: str) -> RemoteBatch:
        try:
            return self._remote(await self.client.messages.batches.retrieve(remote_id))
        except Exception as exc:
            raise _wrap(self.provider, f"{remote_id} retrieve", exc) from None

    async def results(self, remote_id: str) -> AsyncIterator[RawResult]:
        try:
            decoder = await self.client.messages.batches.results(remote_id)
            async for item in decoder:
                result = item.result
                if result.type == "succeeded":
                    yield RawResult(item.custom_id, "succeeded", body=result.message,
                                    status=200)
                elif result.type == "errored":
                    error = result.error.model_dump() if hasattr(result.error, "model_dump") \
                        else result.error
                    yield RawResult(item.custom_id, "errored", error=error)
                else:
                    yield RawResult(item.custom_id, result.type)
        except ProviderError:
            raise
        except Exception as exc:
            raise _wrap(self.provider, f"{remote_id} results", exc) from None

    async def cancel(self, remote_id: str) -> RemoteBatch:
        try:
            return self._remote(await self.client.messages.batches.cancel(remote_id))
        except Exception as exc:
            raise _wrap(self.provider, f"{remote_id} cancel", exc) from None

    async def find(self, local_id: int, ledger_tag: str, custom_ids: set[str], since: float,
                   known: set[str]) -> RemoteBatch | Unsure | None:
        """A batch of the intent's size created after it, not recorded by this ledger, whose
        first result line carries one of the intent's custom ids. A candidate still running
        hides its lines: ``Unsure`` then (the intent waits; nothing is sent again)."""
        unsure: list[str] = []
        try:
            async for batch in self.client.messages.batches.list(limit=100):
                created = _timestamp(batch.created_at) or 0.0
                if created < since - 3600:
                    break
                remote = self._remote(batch)
                if remote.id in known or remote.total != len(custom_ids):
                    continue
                if not remote.ended:
                    unsure.append(remote.id)
                    continue
                async for raw in self.results(remote.id):
                    if raw.custom_id in custom_ids:
                        return remote
                    break
        except ProviderError:
            raise
        except Exception as exc:
            raise _wrap(self.provider, "list", exc) from None
        return Unsure(unsure) if unsure else None


class MethodsBatchApi:
    """A provider that exposes its batch service as plain methods
    (``batch_submit(local_id, tag, lines)``, ``batch_get(id)``, ``batch_results(id)``,
    ``batch_cancel(id)``, ``batch_find(local_id, tag, custom_ids, since, known)``, and
    ``batch_line(custom_id, request)``), each returning this module's types."""

    def __init__(self, provider: Provider, limits: BatchLimits) -> None:
        self.provider = provider
        self.limits = limits
        self._p: Any = provider

    def line(self, custom_id: str, request: LLMRequest) -> dict[str, Any]:
        return dict(self._p.batch_line(custom_id, request))

    async def submit(self, local_id: int, ledger_tag: str,
                     lines: Sequence[bytes]) -> RemoteBatch:
        return await self._p.batch_submit(local_id, ledger_tag, lines)  # type: ignore[no-any-return]

    async def get(self, remote_id: str) -> RemoteBatch:
        return await self._p.batch_get(remote_id)  # type: ignore[no-any-return]

    def results(self, remote_id: str) -> AsyncIterator[RawResult]:
        return self._p.batch_results(remote_id)  # type: ignore[no-any-return]

    async def cancel(self, remote_id: str) -> RemoteBatch:
        return await self._p.batch_cancel(remote_id)  # type: ignore[no-any-return]

    async def find(self, local_id: int, ledger_tag: str, custom_ids: set[str], since: float,
                   known: set[str]) -> RemoteBatch | Unsure | None:
        return await self._p.batch_find(  # type: ignore[no-any-return]
            local_id, ledger_tag, custom_ids, since, known)


#: Which adapter speaks each provider's batch service.
ADAPTERS: dict[str, type[OpenAIBatchApi] | type[AnthropicBatchApi] | type[MethodsBatchApi]] = {
    "openai": OpenAIBatchApi,
    "anthropic": AnthropicBatchApi,
    "gemini": MethodsBatchApi,  # enrich.providers.gemini_provider's batch_* methods
}


def batch_api(provider: Provider, *, max_requests: int | None = None,
              max_bytes: int | None = None) -> BatchApi:
    """The batch service of ``provider``, with the per-batch limits lowered by config."""
    adapter = ADAPTERS.get(provider.name)
    if adapter is None and hasattr(provider, "batch_submit"):
        adapter = MethodsBatchApi
    limits = BATCH_LIMITS.get(provider.name)
    if adapter is None or limits is None:
        raise ConfigError(
            f"llm.provider = {provider.name!r} has no batch API "
            f"(batch mode: {', '.join(sorted(BATCH_LIMITS))})",
            'Set [llm] mode = "live", or choose a provider with a batch API.')
    limits = BatchLimits(min(limits.max_requests, max_requests or limits.max_requests),
                         min(limits.max_bytes, max_bytes or limits.max_bytes), limits.source)
    return adapter(provider, limits)  # type: ignore[return-value]
