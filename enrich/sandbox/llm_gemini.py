"""The Gemini REST wire format of the sandbox (``/v1beta/...``), for the official
``google-genai`` SDK pointed at it with ``http_options=HttpOptions(base_url=<url>)``.

Routes::

    POST   /v1beta/models/{model}:generateContent        live requests
    POST   /v1beta/models/{model}:batchGenerateContent   create a batch (inline or file)
    GET    /v1beta/batches[/{id}]   POST .../{id}:cancel   DELETE /v1beta/batches/{id}
    POST   /upload/v1beta/files    resumable upload (start, then upload + finalize)
    GET    /v1beta/files/{id}[:download?alt=media]        DELETE /v1beta/files/{id}
    GET    /v1beta/models[/{model}]

Shapes follow the SDK's converters (``models._GenerateContentResponse_from_mldev``,
``batches._BatchJob_from_mldev``, ``files.upload``) and the REST reference: structured
output through ``generationConfig.responseMimeType`` = ``application/json`` with
``responseJsonSchema`` (or the OpenAPI-style ``responseSchema``), usage in
``usageMetadata`` (``promptTokenCount`` includes ``cachedContentTokenCount``, implicit
caching of an identical prefix), errors as ``google.rpc.Status`` bodies.

Limits, latency, random faults and the ``x-sandbox-fault`` header work as on the other two
formats (``llm``), with Gemini's own answers: a rejected key is HTTP 400 ``API_KEY_INVALID``
(a missing one 403), a 429 carries ``QuotaFailure`` and ``RetryInfo`` details instead of
headers (a per-minute quota; ``quota`` names a per-day one), an overload is 503
``UNAVAILABLE``, and ``403`` is one more forced fault. The key is ``x-goog-api-key`` (or
``?key=``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from enrich.httpserver import DropConnection, Request, Response
from enrich.sandbox.llm_gemini_batch import GeminiBatches
from enrich.sandbox.llm_images import gemini_image
from enrich.sandbox.llm_wire import (
    Answer,
    Ask,
    BadRequest,
    Usage,
    require_object,
    segments_of,
    text_of_content,
)

if TYPE_CHECKING:  # the core imports this module
    from enrich.sandbox.llm import SandboxLLM

ROUTE = "gemini"
DEFAULT_MODELS = ("gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro",
                  "gemini-3.5-flash")
API_PREFIXES = ("/v1beta/", "/upload/v1beta/")
CACHE_TTL = 300.0
_MODEL_CALL = re.compile(r"^/v1beta/models/([^/:]+):(generateContent|batchGenerateContent)$")
_BATCH = re.compile(r"^/v1beta/batches/([^/:]+)(:cancel)?$")
_FILE = re.compile(r"^/v1beta/files/([^/:]+)(:download)?$")
_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 409: "ALREADY_EXISTS",
                 413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
RPC = "type.googleapis.com/google.rpc."
HELP_URL = "https://ai.google.dev/gemini-api/docs/rate-limits"


def api_key(request: Request) -> str:
    return (request.headers.get("x-goog-api-key", "").strip()
            or (request.arg("key") or "").strip())


def error(status: int, message: str, details: list[dict[str, Any]] | None = None,
          headers: list[tuple[str, str]] | None = None,
          rpc_status: str | None = None) -> Response:
    body: dict[str, Any] = {"code": status, "message": message,
                            "status": rpc_status or _STATUS_NAMES.get(status, "UNKNOWN")}
    if details:
        body["details"] = details
    return Response.json({"error": body}, status, headers)


def quota_details(model: str, quota_id: str, limit: int | None, wait: float | None,
                  ) -> list[dict[str, Any]]:
    """QuotaFailure (which quota), Help, and RetryInfo (how long to wait) for a 429."""
    metric = ("generate_content_paid_tier_input_token_count" if "Token" in quota_id
              else "generate_content_paid_tier_requests")
    violation: dict[str, Any] = {
        "quotaMetric": f"generativelanguage.googleapis.com/{metric}", "quotaId": quota_id,
        "quotaDimensions": {"location": "global", "model": model}}
    if limit is not None:
        violation["quotaValue"] = str(limit)
    details: list[dict[str, Any]] = [
        {"@type": RPC + "QuotaFailure", "violations": [violation]},
        {"@type": RPC + "Help", "links": [{"description": "Learn more about Gemini API "
                                                           "quotas", "url": HELP_URL}]}]
    if wait is not None and math.isfinite(wait):
        details.append({"@type": RPC + "RetryInfo", "retryDelay": f"{max(1, math.ceil(wait))}s"})
    return details


def _parts_text(content: Any) -> str:
    if not isinstance(content, dict):
        return ""
    return text_of_content(content.get("parts") or [])


def _lower_types(schema: Any) -> Any:
    """An OpenAPI-style ``responseSchema`` (``"type": "OBJECT"``) as JSON Schema."""
    if isinstance(schema, list):
        return [_lower_types(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _lower_types(v) for k, v in schema.items()}
    if isinstance(out.get("type"), str):
        out["type"] = out["type"].lower()
    if out.pop("nullable", False) and "type" in out:
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def parse(model: str, raw: Any) -> Ask:
    """A GenerateContentRequest as an ``Ask``; BadRequest with Gemini's wording if invalid."""
    body = require_object(raw)
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise BadRequest("* GenerateContentRequest.contents: contents is not specified\n")
    for index, content in enumerate(contents):
        if not isinstance(content, dict):
            raise BadRequest(f"Invalid value at 'contents[{index}]', expected an object.")
        if content.get("role", "user") not in ("user", "model"):
            raise BadRequest("Please use a valid role: user, model.")
        if not isinstance(content.get("parts"), list) or not content["parts"]:
            raise BadRequest(f"* GenerateContentRequest.contents[{index}].parts: contents.parts "
                             "must not be empty.\n")
    config = body.get("generationConfig") or {}
    if not isinstance(config, dict):
        raise BadRequest("Invalid value at 'generation_config', expected an object.")
    mime = config.get("responseMimeType")
    schema = config.get("responseJsonSchema")
    legacy = config.get("responseSchema")
    if schema is not None and legacy is not None:
        raise BadRequest("* GenerateContentRequest.generation_config: only one of "
                         "response_schema and response_json_schema may be set.\n")
    if (schema is not None or legacy is not None) and mime != "application/json":
        raise BadRequest("* GenerateContentRequest.generation_config.response_mime_type: "
                         "must be application/json when a response schema is set.\n")
    system = _parts_text(body.get("systemInstruction"))
    user = "\n".join(_parts_text(c) for c in contents if c.get("role", "user") == "user")
    ask = Ask(route=ROUTE, model=model, system=system, user=user, prompt_tokens=0)
    max_tokens = config.get("maxOutputTokens")
    if max_tokens is not None:
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise BadRequest("* GenerateContentRequest.generation_config.max_output_tokens: "
                             "must be a positive integer.\n")
        ask.max_tokens = max_tokens
    chosen = schema if schema is not None else (_lower_types(legacy) if legacy else None)
    if chosen is not None:
        if not isinstance(chosen, dict):
            raise BadRequest("* GenerateContentRequest.generation_config.response_schema: "
                             "must be an object.\n")
        ask.mode, ask.schema = "json_schema", chosen
    elif mime == "application/json":
        ask.mode = "json_object"
    # Implicit caching: the system instruction and each turn before the last are prefixes.
    pieces: list[tuple[Any, bool, float]] = []
    if system:
        pieces.append((system, True, CACHE_TTL))
    if chosen is not None:
        pieces.append((chosen, False, CACHE_TTL))
    last = len(contents) - 1
    for index, content in enumerate(contents):
        pieces.append(({"role": content.get("role", "user"), "content": _parts_text(content)},
                       index < last, CACHE_TTL))
    ask.segments = segments_of(model, pieces)
    ask.images = [gemini_image(part, f"contents[{index}].parts[{number}]")
                  for index, content in enumerate(contents)
                  for number, part in enumerate(content["parts"])
                  if isinstance(part, dict) and ("inlineData" in part or "inline_data" in part)]
    ask.prompt_tokens = sum(s.tokens for s in ask.segments) + sum(i.tokens for i in ask.images)
    return ask


def success(ask: Ask, answer: Answer, usage: Usage, request_id: str) -> dict[str, Any]:
    """A GenerateContentResponse: the answer, or a blocked prompt for a refusal."""
    meta: dict[str, Any] = {
        "promptTokenCount": usage.prompt_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": usage.prompt_tokens}]}
    if usage.cache_read:
        meta["cachedContentTokenCount"] = usage.cache_read
        meta["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": usage.cache_read}]
    body: dict[str, Any] = {"usageMetadata": meta, "modelVersion": ask.model,
                            "responseId": request_id[:22]}
    if answer.refusal is not None:
        meta["totalTokenCount"] = usage.prompt_tokens
        body["promptFeedback"] = {"blockReason": "PROHIBITED_CONTENT"}
        return body
    meta["candidatesTokenCount"] = usage.output_tokens
    meta["totalTokenCount"] = usage.prompt_tokens + usage.output_tokens
    body["candidates"] = [{
        "content": {"parts": [{"text": answer.output_text}], "role": "model"},
        "finishReason": "MAX_TOKENS" if answer.finish == "length" else "STOP",
        "index": 0}]
    return body


class GeminiAPI:
    """Serves the Gemini routes with the core's limits, faults, answers and counters."""

    def __init__(self, core: SandboxLLM, make_call: Callable[[str, Request], Any]) -> None:
        self.core = core
        self.make_call = make_call
        self.batches = GeminiBatches(core, self._answer_body)

    def handle(self, request: Request) -> Response:
        call = self.make_call(ROUTE, request)
        if request.path == "/upload/v1beta/files" and request.arg("upload_id"):
            return self.batches.upload(request)  # the upload URL is the credential
        key = api_key(request)
        if not key:
            self.core._record(call, "auth_error")
            return error(403, "Method doesn't allow unregistered callers (callers without "
                         "established identity). Please use API Key or other form of API "
                         "consumer identity to call this API.")
        from enrich.sandbox.llm import INVALID_KEYS  # the core imports this module
        if key in INVALID_KEYS:
            self.core._record(call, "auth_error")
            return self._invalid_key()
        path, method = request.path, request.method
        found = _MODEL_CALL.match(path)
        if found and method == "POST":
            if found.group(2) == "generateContent":
                return self._generate(call, found.group(1), key)
            return self.batches.create(request, found.group(1))
        if path == "/v1beta/batches" and method == "GET":
            return self.batches.list(request)
        found = _BATCH.match(path)
        if found:
            if found.group(2) and method == "POST":
                return self.batches.cancel(found.group(1))
            if not found.group(2) and method == "GET":
                return self.batches.get(found.group(1))
            if not found.group(2) and method == "DELETE":
                return self.batches.delete(found.group(1))
        if path == "/upload/v1beta/files" and method == "POST":
            return self.batches.upload(request)
        found = _FILE.match(path)
        if found:
            if found.group(2) and method == "GET":
                return self.batches.download(found.group(1))
            if not found.group(2) and method == "GET":
                return self.batches.file_info(request, found.group(1))
            if not found.group(2) and method == "DELETE":
                return self.batches.delete_file(found.group(1))
        if method == "GET" and (path == "/v1beta/models" or path.startswith("/v1beta/models/")):
            return self._models(call, path)
        return error(404, f"Requested entity was not found: {method} {path}.")

    # -- generateContent -----------------------------------------------------------------

    def _generate(self, call: Any, model: str, key: str) -> Response:
        from enrich.sandbox.llm import FAULT_HEADER, FAULTS, NO_QUOTA_KEYS, RETRY_AFTER_HEADER
        core = self.core
        core._draw(call)
        fault = (call.request.headers.get(FAULT_HEADER) or "").strip().lower() or None
        if fault is not None and fault not in (*FAULTS, "403"):
            core._record(call, "bad_request")
            return error(400, f"{FAULT_HEADER}: unknown fault {fault!r}; use one of "
                         f"{', '.join((*FAULTS, '403'))}.")
        call.fault = fault
        if fault == "401":
            core._record(call, "auth_error")
            return error(401, "Request had invalid authentication credentials. Expected OAuth "
                         "2 access token, login cookie or other valid authentication "
                         "credential.")
        if fault == "403":
            core._record(call, "auth_error")
            return error(403, "Permission denied: Consumer has been suspended.", [
                {"@type": RPC + "ErrorInfo", "reason": "CONSUMER_SUSPENDED",
                 "domain": "googleapis.com"}])
        try:
            ask = parse(model, call.request.json())
        except (ValueError, UnicodeDecodeError):
            core._record(call, "bad_request")
            return error(400, "Invalid JSON payload received. Unexpected token.")
        except BadRequest as exc:
            core._record(call, "bad_request")
            return error(400, exc.message)
        call.ask = ask
        from enrich.sandbox.llm import SeenPrompt
        with core._lock:
            core._prompts.append(SeenPrompt(ROUTE, ask.model, ask.system, ask.user,
                                            tuple(ask.images)))
        if fault == "400":
            core._record(call, "bad_request")
            return error(400, f"Invalid request (forced by {FAULT_HEADER}: 400).")
        models = core.options.models
        if fault == "404" or (models is not None and model not in models):
            core._record(call, "not_found")
            return error(404, f"models/{model} is not found for API version v1beta, or is "
                         "not supported for generateContent. Call ListModels to see the list "
                         "of available models and their supported methods.")
        if fault == "quota" or key in NO_QUOTA_KEYS:
            core._record(call, "quota")
            return error(429, "You exceeded your current quota, please check your plan and "
                         f"billing details. For more information on this error, head to: "
                         f"{HELP_URL}.", quota_details(
                             model, "GenerateRequestsPerDayPerProjectPerModel", 250, None))
        if fault == "429":
            core._record(call, "rate_limited")
            wait = float(call.request.headers.get(RETRY_AFTER_HEADER) or 1)
            return self._rate_limited(model, "requests", wait, None)
        failure = fault if fault in ("500", "503", "529", "timeout", "drop") else core._roll(call)
        if failure == "429":
            core._record(call, "rate_limited")
            return self._rate_limited(model, "requests", 1.0, None)
        if core.limiter.enabled:
            from enrich.sandbox.llm_limits import Refusal
            admitted = core.limiter.admit(ask.prompt_tokens)
            if isinstance(admitted, Refusal):
                core._record(call, "rate_limited")
                state = admitted.state
                cap = state.requests_limit if admitted.limit == "requests" else \
                    state.tokens_limit
                return self._rate_limited(model, admitted.limit, admitted.retry_after, cap)
            call.limits = admitted
        if core.options.latency_ms:
            core._closing.wait(core.options.latency_ms / 1000)
        if failure is not None:
            return self._failure(call, failure)
        body, outcome, usage = self._answer_body(call, ask)
        if core.limiter.enabled:
            core.limiter.charge_output(usage.output_tokens)
        core._record(call, outcome)
        return Response.json(body)

    def _answer_body(self, call: Any, ask: Ask) -> tuple[dict[str, Any], str, Usage]:
        """The response body of an admitted request (live, or one item of a batch)."""
        answer, outcome = self.core._answer(call, ask)
        usage = self.core._usage(ask, answer)
        return success(ask, answer, usage, call.request_id), outcome, usage

    def _failure(self, call: Any, failure: str) -> Response:
        if failure == "timeout":
            self.core._record(call, "timeout")
            self.core._closing.wait(self.core.options.timeout_s)
            raise DropConnection
        if failure == "drop":
            self.core._record(call, "dropped")
            raise DropConnection
        if failure == "500":
            self.core._record(call, "server_error")
            return error(500, "An internal error has occurred. Please retry or report in "
                         "https://developers.generativeai.google/guide/troubleshooting")
        self.core._record(call, "overloaded")
        return error(503, "The model is overloaded. Please try again later.")

    def _rate_limited(self, model: str, limit: str, wait: float, cap: int | None) -> Response:
        quota = ("GenerateContentInputTokensPerModelPerMinute-PaidTier" if limit == "tokens"
                 else "GenerateRequestsPerMinutePerProjectPerModel-PaidTier")
        retry = f"\nPlease retry in {wait:.6f}s." if math.isfinite(wait) else ""
        return error(429, "You exceeded your current quota, please check your plan and "
                     f"billing details. For more information on this error, head to: "
                     f"{HELP_URL}.\n* Quota exceeded for metric: {quota}, limit: {cap}, "
                     f"model: {model}{retry}", quota_details(model, quota, cap, wait))

    def _invalid_key(self) -> Response:
        message = "API key not valid. Please pass a valid API key."
        return error(400, message, [
            {"@type": RPC + "ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
             "metadata": {"service": "generativelanguage.googleapis.com"}},
            {"@type": RPC + "LocalizedMessage", "locale": "en-US", "message": message}])

    def _models(self, call: Any, path: str) -> Response:
        self.core._record(call, "models")
        known = sorted(self.core.options.models) if self.core.options.models is not None \
            else list(DEFAULT_MODELS)

        def model(name: str) -> dict[str, Any]:
            return {"name": f"models/{name}", "version": "001", "displayName": name,
                    "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
                    "supportedGenerationMethods": ["generateContent", "batchGenerateContent",
                                                   "countTokens"]}

        wanted = path[len("/v1beta/models/"):] if path.startswith("/v1beta/models/") else None
        if wanted is not None:
            if self.core.options.models is not None and wanted not in known:
                return error(404, f"models/{wanted} is not found for API version v1beta.")
            return Response.json(model(wanted))
        return Response.json({"models": [model(m) for m in known]})


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
