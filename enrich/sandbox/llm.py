"""A local LLM endpoint that speaks OpenAI Chat Completions and Anthropic Messages (and
Gemini's REST API, live and batch: ``llm_gemini``, routed by its ``/v1beta`` prefix).

It lets a store owner try ``enrich run`` without a key or a bill, and lets the tests and
benchmarks drive the official ``openai`` and ``anthropic`` SDKs, unmodified, over real
HTTP against something that behaves, and misbehaves, like the real services.

Routes (on 127.0.0.1 only)::

    POST /v1/chat/completions   OpenAI    (SDK base_url = <url>/v1)
    POST /v1/messages           Anthropic (SDK base_url = <url>)
    GET  /v1/models[/{id}]      model list / lookup, in the caller's format
    GET  /health                {"status": "ok"}: for scripts waiting for the server
    /v1/files, /v1/batches, /v1/messages/batches...   the batch APIs: see ``llm_batches``

Auth: any non-empty key is accepted (``Authorization: Bearer`` or ``x-api-key``), except
the keys in ``INVALID_KEYS`` (401) and ``NO_QUOTA_KEYS`` (429 insufficient_quota / spend
limit). No key at all is a 401.

Answers are deterministic functions of the prompt that satisfy the requested schema and are
grounded in the fenced record data; the model is gullible by default (it obeys injected
instructions): see ``llm_answers``. Limits are token buckets refilled per minute, tokens
are estimated at 4 characters per token: see ``llm_limits``.

Faults, in the order a request meets them:

1. ``x-sandbox-fault`` request header, to demand one failure deterministically (tests):
   ``401 400 404 429 quota 500 503 529 timeout drop malformed missing refusal``. ``429``
   sends ``retry-after`` from ``x-sandbox-retry-after`` (seconds, default 1). ``timeout``
   holds the connection ``timeout_s`` seconds and closes it without an answer; ``drop``
   closes it at once. ``malformed`` answers 200 with truncated JSON (for a tool call: input
   missing a required field); ``missing`` answers valid JSON missing a required field;
   ``refusal`` answers a refusal (OpenAI ``message.refusal``, Anthropic
   ``stop_reason: "refusal"``).
2. ``--rpm``/``--tpm``: 429 with ``retry-after`` (whole seconds, rounded up) and
   ``retry-after-ms`` when a bucket lacks room; nothing is taken from the buckets then.
3. Random faults at ``fail_rate`` (500), ``overload_rate`` (Anthropic 529, OpenAI 503),
   ``timeout_rate``, ``drop_rate``, ``rate_limit_rate`` (429 with ``retry-after: 1``,
   answered before the buckets and the latency), then ``malformed_rate`` on the answers.
   Each draw is a hash of the seed, the route, the request body and how many times that
   body was seen before, so a run is reproducible under ``--seed`` whatever the
   concurrency, and a retry of the same request draws again.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enrich.httpserver import DropConnection, LoopbackServer, Request, Response
from enrich.sandbox import llm_anthropic, llm_batches, llm_gemini, llm_openai
from enrich.sandbox.llm_answers import (
    answer_object,
    answer_text,
    fill_schema,
    read_grounding,
)
from enrich.sandbox.llm_images import SeenImage
from enrich.sandbox.llm_limits import LimitState, PromptCache, RateLimiter, Refusal, estimate_tokens
from enrich.sandbox.llm_wire import Answer, Ask, BadRequest, Usage

ROUTES = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic"}
FAULT_HEADER = "x-sandbox-fault"
RETRY_AFTER_HEADER = "x-sandbox-retry-after"
FAULTS = ("401", "400", "404", "429", "quota", "500", "503", "529", "timeout", "drop",
          "malformed", "missing", "refusal")
INVALID_KEYS = frozenset({"sk-invalid", "sk-ant-invalid", "invalid"})
NO_QUOTA_KEYS = frozenset({"sk-no-quota", "sk-ant-no-quota"})
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "claude-haiku-4-5",
                  "claude-sonnet-4-6", "claude-opus-4-6")
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."


@dataclass
class LLMSandboxOptions:
    """How the sandbox behaves; every field is a CLI option of ``enrich sandbox llm``."""

    latency_ms: int = 0
    rpm: int | None = None
    tpm: int | None = None  # OpenAI: prompt + max_tokens; Anthropic: ITPM (uncached input)
    otpm: int | None = None  # Anthropic's output tokens per minute (the other routes: none)
    fail_rate: float = 0.0
    overload_rate: float = 0.0
    rate_limit_rate: float = 0.0  # random 429s with retry-after: 1 (besides --rpm/--tpm)
    malformed_rate: float = 0.0
    timeout_rate: float = 0.0
    drop_rate: float = 0.0
    seed: int = 0
    gullible: bool = True
    timeout_s: float = 120.0  # how long a "timeout" fault holds the connection
    models: frozenset[str] | None = None  # None: any model name; else others are a 404
    cache_min_tokens: int = 0  # real APIs cache only prefixes of 1024+ tokens
    max_prompts_kept: int = 1000
    # The batch APIs (OpenAI and Anthropic in llm_batches, Gemini's in llm_gemini_batch):
    # seconds until a batch ends, the share of lines answered with an error, expiry (a share
    # of lines for OpenAI/Anthropic, seconds after creation for Gemini), and the JSON file
    # batches persist in across restarts (Gemini's beside it, suffixed ".gemini"; None:
    # memory only).
    batch_delay_s: float = 0.0
    batch_error_rate: float = 0.0
    batch_expire_rate: float = 0.0
    batch_expire_s: float | None = None
    state_path: Path | None = None

    def __post_init__(self) -> None:
        rates = {"fail_rate": self.fail_rate, "overload_rate": self.overload_rate,
                 "rate_limit_rate": self.rate_limit_rate,
                 "malformed_rate": self.malformed_rate, "timeout_rate": self.timeout_rate,
                 "drop_rate": self.drop_rate, "batch_error_rate": self.batch_error_rate,
                 "batch_expire_rate": self.batch_expire_rate}
        for name, value in rates.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        hard = (self.fail_rate + self.overload_rate + self.timeout_rate + self.drop_rate
                + self.rate_limit_rate)
        if hard > 1.0:
            raise ValueError(f"fail, overload, rate-limit, timeout and drop rates add up to "
                             f"{hard} > 1")
        for name, limit in (("rpm", self.rpm), ("tpm", self.tpm), ("otpm", self.otpm)):
            if limit is not None and limit <= 0:
                raise ValueError(f"{name} must be a positive number of units per minute")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        if not 0.0 <= self.batch_error_rate <= 1.0:
            raise ValueError(f"batch_error_rate must be between 0 and 1, not "
                             f"{self.batch_error_rate}")
        if self.batch_delay_s < 0 or (self.batch_expire_s is not None
                                      and self.batch_expire_s <= 0):
            raise ValueError("batch_delay_s must not be negative, batch_expire_s must be "
                             "positive")


@dataclass(frozen=True)
class SeenPrompt:
    """One request's prompt as the sandbox model read it (for tests to assert on)."""

    route: str
    model: str
    system: str
    user: str
    images: tuple[SeenImage, ...] = ()  # what each image part carried (never its pixels)


@dataclass
class _Call:
    """One request in progress."""

    route: str
    request: Request
    request_id: str = ""
    draw: float = 0.0
    draw_malformed: float = 1.0
    fault: str | None = None
    ask: Ask | None = None
    limits: LimitState | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


class SandboxLLM:
    """The request handler: ``handle(Request) -> Response``, plus counters for tests."""

    def __init__(self, options: LLMSandboxOptions | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.options = options or LLMSandboxOptions()
        self.limiter = RateLimiter(self.options.rpm, self.options.tpm, clock,
                                   otpm=self.options.otpm)
        self.cache = PromptCache(clock)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._outcomes: Counter[tuple[str, str]] = Counter()
        self._prompts: deque[SeenPrompt] = deque(maxlen=self.options.max_prompts_kept)
        self._seen_bodies: OrderedDict[str, int] = OrderedDict()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.gemini = llm_gemini.GeminiAPI(self, _Call)  # the /v1beta routes
        o = self.options
        self.batches = llm_batches.BatchStore(
            self.answer_body, delay_s=o.batch_delay_s, error_rate=o.batch_error_rate,
            expire_rate=o.batch_expire_rate, seed=o.seed, state_path=o.state_path)

    # -- counters ------------------------------------------------------------------------

    @property
    def counters(self) -> dict[str, dict[str, int]]:
        """Requests by route and outcome, e.g. ``{"openai": {"ok": 3, "rate_limited": 1}}``.

        Outcomes: ok, malformed, refusal, rate_limited, quota, server_error, overloaded,
        timeout, dropped, auth_error, bad_request, not_found, models (a model lookup),
        internal_error (a bug in the sandbox itself, answered as a 500 naming it).
        """
        with self._lock:
            found: dict[str, dict[str, int]] = {}
            for (route, outcome), count in sorted(self._outcomes.items()):
                found.setdefault(route, {})[outcome] = count
            return found

    def count(self, route: str | None = None, outcome: str | None = None) -> int:
        with self._lock:
            return sum(n for (r, o), n in self._outcomes.items()
                       if (route is None or r == route) and (outcome is None or o == outcome))

    @property
    def prompts(self) -> list[SeenPrompt]:
        """The most recent prompts (at most ``max_prompts_kept``), oldest first."""
        with self._lock:
            return list(self._prompts)

    def reset_counters(self) -> None:
        with self._lock:
            self._outcomes.clear()
            self._prompts.clear()
            self.peak_in_flight = self.in_flight

    def close(self) -> None:
        """Wake requests sleeping in a latency or timeout fault, so a server stops quickly."""
        self._closing.set()

    def _record(self, call: _Call, outcome: str) -> None:
        with self._lock:
            self._outcomes[(call.route, outcome)] += 1

    # -- the request ---------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/health":
            return Response.json({"status": "ok"})
        if request.method == "GET" and (request.path == "/v1/models"
                                        or request.path.startswith("/v1/models/")):
            return self._models(request)
        if request.path.startswith(llm_gemini.API_PREFIXES):
            return self._handle_gemini(request)
        if llm_batches.handles(request.path):
            return self._batches(request)
        route = ROUTES.get(request.path)
        if route is None:
            return self._unknown_url(request)
        if request.method != "POST":
            return Response.json({"error": {"message": f"Method {request.method} not allowed",
                                            "type": "invalid_request_error", "param": None,
                                            "code": None}}, 405, [("Allow", "POST")])
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        call = _Call(route, request)
        try:
            return self._handle(call)
        except DropConnection:
            raise
        except Exception as exc:  # a sandbox bug: say so in a 500 rather than hang up
            self._record(call, "internal_error")
            return self._error(call, 500, f"enrich sandbox internal error: "
                               f"{type(exc).__name__}: {exc}",
                               kind="server_error" if route == "openai" else "api_error")
        finally:
            with self._lock:
                self.in_flight -= 1

    def _handle_gemini(self, request: Request) -> Response:
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return self.gemini.handle(request)
        except DropConnection:
            raise
        except Exception as exc:  # a sandbox bug: say so in a 500 rather than hang up
            self._record(_Call(llm_gemini.ROUTE, request), "internal_error")
            return llm_gemini.error(500, f"enrich sandbox internal error: "
                                    f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self.in_flight -= 1

    def _handle(self, call: _Call) -> Response:
        self._draw(call)
        id_header = "x-request-id" if call.route == "openai" else "request-id"
        call.headers.append((id_header, f"req_{call.request_id[:24]}"))
        fault = (call.request.headers.get(FAULT_HEADER) or "").strip().lower() or None
        if fault is not None and fault not in FAULTS:
            self._record(call, "bad_request")
            return self._error(call, 400, f"{FAULT_HEADER}: unknown fault {fault!r}; use one "
                               f"of {', '.join(FAULTS)}.", param=FAULT_HEADER)
        call.fault = fault

        key = self._api_key(call.request)
        if not key or key in INVALID_KEYS or fault == "401":
            self._record(call, "auth_error")
            return self._auth_error(call, key)

        try:
            body = call.request.json()
        except (ValueError, UnicodeDecodeError):
            self._record(call, "bad_request")
            return self._error(call, 400, "We could not parse the JSON body of your request. "
                               "(HINT: This likely means you aren't using your HTTP library "
                               "correctly.)")
        try:
            ask = (llm_openai if call.route == "openai" else llm_anthropic).parse(body)
        except BadRequest as exc:
            self._record(call, "bad_request")
            return self._error(call, 400, exc.message, param=exc.param, code=exc.code)
        call.ask = ask
        with self._lock:
            self._prompts.append(SeenPrompt(call.route, ask.model, ask.system, ask.user,
                                            tuple(ask.images)))
        if fault == "400":
            self._record(call, "bad_request")
            return self._error(call, 400, f"Invalid request (forced by {FAULT_HEADER}: 400).")
        models = self.options.models
        if fault == "404" or (models is not None and ask.model not in models):
            self._record(call, "not_found")
            return self._model_not_found(call)
        if fault == "quota" or key in NO_QUOTA_KEYS:
            self._record(call, "quota")
            return self._quota(call)
        if fault == "429":
            self._record(call, "rate_limited")
            wait = float(call.request.headers.get(RETRY_AFTER_HEADER) or 1)
            return self._rate_limited(call, "requests", wait, 1, why=f"forced by {FAULT_HEADER}")

        failure = fault if fault in ("500", "503", "529", "timeout", "drop") else self._roll(call)
        if failure == "429":  # a random 429 answers at once, like a real one: no bucket, no wait
            self._record(call, "rate_limited")
            return self._rate_limited(call, "requests", 1.0, 1, why="sandbox --rate-limit-rate")

        if self.limiter.enabled:
            admitted = self.limiter.admit(self._charged_at_request(ask),
                                          output_reserve=self._output_reserve(ask))
            if isinstance(admitted, Refusal):
                call.limits = admitted.state
                self._record(call, "rate_limited")
                return self._rate_limited(call, admitted.limit, admitted.retry_after,
                                          admitted.requested)
            call.limits = admitted

        if self.options.latency_ms:
            self._closing.wait(self.options.latency_ms / 1000)

        if failure is not None:
            return self._failure(call, failure)

        answer, outcome = self._answer(call, ask)
        usage = self._usage(ask, answer)
        if self.limiter.enabled:
            call.limits = self.limiter.charge_output(usage.output_tokens,
                                                     bucket=self._output_bucket(ask),
                                                     reserved=self._output_reserve(ask))
        self._record(call, outcome)
        module = llm_openai if call.route == "openai" else llm_anthropic
        body_out = module.success(ask, answer, usage, call.request_id)
        headers = [*call.headers, *module.limit_headers(call.limits)]
        if call.route == "openai":
            headers.append(("openai-processing-ms", str(self.options.latency_ms)))
        return Response.json(body_out, 200, headers)

    def _batches(self, request: Request) -> Response:
        """The batch routes: the same keys as the live ones, then ``llm_batches``."""
        call = _Call("anthropic" if request.path.startswith("/v1/messages") else "openai",
                     request)
        key = self._api_key(request)
        if not key or key in INVALID_KEYS:
            self._record(call, "auth_error")
            return self._auth_error(call, key)
        self._record(call, "batch_api")
        return self.batches.handle(request)

    def answer_body(self, route: str, body: Any) -> tuple[int, dict[str, Any]]:
        """One batch line answered by the code that answers a live request (the batch has
        its own faults: no header faults, buckets or latency here)."""
        raw = json.dumps(body, sort_keys=True).encode()
        call = _Call(route, Request("POST", "/batch-line", "", {}, raw))
        self._draw(call)
        module = llm_openai if route == "openai" else llm_anthropic
        try:
            ask = module.parse(body)
        except BadRequest as exc:
            self._record(call, "batch_bad_request")
            if route == "openai":
                return 400, {"error": {"message": exc.message, "type": "invalid_request_error",
                                       "param": exc.param, "code": None}}
            return 400, {"type": "error", "error": {"type": "invalid_request_error",
                                                    "message": exc.message}}
        answer, outcome = self._answer(call, ask)
        self._record(call, f"batch_{outcome}")
        return 200, module.success(ask, answer, self._usage(ask, answer), call.request_id)

    def _charged_at_request(self, ask: Ask) -> int:
        """Tokens a request takes from the TPM bucket when it arrives, as each provider
        counts them: OpenAI the prompt plus ``max_tokens`` (the answer may use them all);
        Anthropic (ITPM) the prompt tokens not read from the prompt cache."""
        if ask.route == "openai" and ask.max_tokens is not None:
            return ask.prompt_tokens + ask.max_tokens
        if ask.route == "anthropic":
            return max(0, ask.prompt_tokens - self._cache_read(ask))
        return ask.prompt_tokens

    @staticmethod
    def _output_reserve(ask: Ask) -> int:
        """Anthropic's OTPM holds ``max_tokens`` while the answer is written, then keeps
        only what was produced."""
        return (ask.max_tokens or 0) if ask.route == "anthropic" else 0

    @staticmethod
    def _output_bucket(ask: Ask) -> str:
        """Where the produced tokens are charged (see ``_charged_at_request``)."""
        if ask.route == "anthropic":
            return "output"  # OTPM; ITPM never counts output
        return "none" if ask.max_tokens is not None else "tokens"

    def _models(self, request: Request) -> Response:
        """``GET /v1/models[/{id}]`` in the caller's format (the Anthropic SDK sends
        ``anthropic-version``), so a preflight check can ask whether a model exists."""
        call = _Call("anthropic" if "anthropic-version" in request.headers else "openai",
                     request)
        self._draw(call)
        key = self._api_key(request)
        if not key or key in INVALID_KEYS:
            self._record(call, "auth_error")
            return self._auth_error(call, key)
        self._record(call, "models")
        known = sorted(self.options.models) if self.options.models is not None else list(
            DEFAULT_MODELS)
        wanted = request.path[len("/v1/models/"):] if request.path.startswith(
            "/v1/models/") else None
        if wanted is not None and self.options.models is not None and wanted not in known:
            call.ask = Ask(route=call.route, model=wanted, system="", user="", prompt_tokens=0)
            return self._model_not_found(call)
        ids = [wanted] if wanted is not None else known
        if call.route == "openai":
            items: list[dict[str, Any]] = [{"id": i, "object": "model", "created": 1700000000,
                                            "owned_by": "enrich-sandbox"} for i in ids]
            return Response.json(items[0] if wanted is not None else {"object": "list",
                                                                      "data": items})
        items = [{"type": "model", "id": i, "display_name": i, "lifecycle": "active",
                  "created_at": "2025-01-01T00:00:00Z"} for i in ids]
        if wanted is not None:
            return Response.json(items[0])
        return Response.json({"data": items, "has_more": False,
                              "first_id": ids[0] if ids else None,
                              "last_id": ids[-1] if ids else None})

    # -- pieces --------------------------------------------------------------------------

    def _draw(self, call: _Call) -> None:
        """Two uniform draws and an id, from the seed, the body and its occurrence count."""
        body_key = hashlib.sha256(call.route.encode() + b"\0" + call.request.body).hexdigest()
        with self._lock:
            seen = self._seen_bodies.pop(body_key, 0) + 1
            self._seen_bodies[body_key] = seen
            if len(self._seen_bodies) > 100_000:
                self._seen_bodies.popitem(last=False)
        digest = hashlib.sha256(f"{self.options.seed}:{seen}:{body_key}".encode()).digest()
        call.request_id = digest.hex()
        call.draw = int.from_bytes(digest[:8], "big") / 2**64
        call.draw_malformed = int.from_bytes(digest[8:16], "big") / 2**64

    def _roll(self, call: _Call) -> str | None:
        o = self.options
        point = call.draw
        for rate, failure in ((o.fail_rate, "500"),
                              (o.overload_rate, "529" if call.route == "anthropic" else "503"),
                              (o.timeout_rate, "timeout"), (o.drop_rate, "drop"),
                              (o.rate_limit_rate, "429")):
            if point < rate:
                return failure
            point -= rate
        return None

    def _failure(self, call: _Call, failure: str) -> Response:
        if failure == "timeout":
            self._record(call, "timeout")
            self._closing.wait(self.options.timeout_s)
            raise DropConnection
        if failure == "drop":
            self._record(call, "dropped")
            raise DropConnection
        status = int(failure)
        if status == 500:
            self._record(call, "server_error")
            if call.route == "openai":
                return self._error(call, 500, "The server had an error while processing your "
                                   "request. Sorry about that!", kind="server_error")
            return self._error(call, 500, "Internal server error", kind="api_error")
        self._record(call, "overloaded")
        if call.route == "openai":
            return self._error(call, status, "The server is overloaded or not ready yet.",
                               kind="server_error")
        return self._error(call, status, "Overloaded", kind="overloaded_error")

    def _answer(self, call: _Call, ask: Ask) -> tuple[Answer, str]:
        if call.fault == "refusal":
            return Answer(refusal=REFUSAL_TEXT, finish="refusal"), "refusal"
        grounding = read_grounding(ask.user or ask.system, gullible=self.options.gullible,
                                   images=len(ask.images))
        broken: str | None = None
        if call.fault in ("malformed", "missing"):
            broken = call.fault
        elif call.draw_malformed < self.options.malformed_rate:
            broken = "malformed" if call.draw_malformed < self.options.malformed_rate / 2 \
                else "missing"
        if ask.mode in ("tool", "json_schema") and ask.schema is not None:
            value = fill_schema(ask.schema, grounding)
            if broken and isinstance(value, dict):
                value = _without_required(value, ask.schema)
            if ask.mode == "tool":
                answer = Answer(tool_input=value if isinstance(value, dict) else {"value": value})
            else:
                text = json.dumps(value, ensure_ascii=False)
                if broken == "malformed":
                    text = text[: max(1, len(text) // 2)]
                answer = Answer(text=text)
        elif ask.mode == "json_object":
            text = json.dumps(answer_object(grounding), ensure_ascii=False)
            if broken == "malformed":
                text = text[: max(1, len(text) // 2)]
            elif broken == "missing":
                text = json.dumps({k: v for k, v in answer_object(grounding).items()
                                   if k != "description"}, ensure_ascii=False)
            answer = Answer(text=text)
        else:
            answer = Answer(text=answer_text(grounding))
            broken = None  # plain text has no shape to break
        if ask.max_tokens is not None and estimate_tokens(answer.output_text) > ask.max_tokens:
            answer.finish = "length"
            if answer.tool_input is not None:
                answer.tool_input = {}
            else:
                answer.text = (answer.text or "")[: ask.max_tokens * 4]
        return answer, "malformed" if broken else "ok"

    def _breakpoints(self, ask: Ask) -> list[tuple[int, str, float]]:
        """(prefix tokens, digest, ttl) of every cacheable prefix of the request."""
        minimum = self.options.cache_min_tokens
        total = 0
        breakpoints: list[tuple[int, str, float]] = []
        for segment in ask.segments:
            total += segment.tokens
            if segment.breakpoint and total >= max(1, minimum):
                breakpoints.append((total, segment.digest, segment.ttl))
        return breakpoints

    def _cache_read(self, ask: Ask) -> int:
        """Prompt tokens this request would read from the cache now (nothing is stored)."""
        return max((size for size, digest, _ in self._breakpoints(ask)
                    if self.cache.contains(digest)), default=0)

    def _usage(self, ask: Ask, answer: Answer) -> Usage:
        breakpoints = self._breakpoints(ask)
        read = max((size for size, digest, _ in breakpoints if self.cache.contains(digest)),
                   default=0)
        for _, digest, ttl in breakpoints:
            self.cache.hit(digest, ttl)
        write, ttl = 0, 300.0
        if breakpoints and ask.route == "anthropic":
            largest, _, ttl = breakpoints[-1]
            write = max(0, largest - read)
        return Usage(prompt_tokens=ask.prompt_tokens,
                     output_tokens=max(1, estimate_tokens(answer.output_text)),
                     cache_read=read, cache_write=write, cache_write_ttl=ttl)

    @staticmethod
    def _api_key(request: Request) -> str:
        key = request.headers.get("x-api-key", "").strip()
        if key:
            return key
        auth = request.headers.get("authorization", "").strip()
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return ""

    # -- error bodies --------------------------------------------------------------------

    def _error(self, call: _Call, status: int, message: str, *, kind: str | None = None,
               code: str | None = None, param: str | None = None,
               extra: list[tuple[str, str]] | None = None,
               details: dict[str, Any] | None = None) -> Response:
        if call.route == "openai":
            headers = [*call.headers, *llm_openai.limit_headers(call.limits), *(extra or [])]
            return llm_openai.error(status, message, kind or "invalid_request_error", code,
                                    param, headers)
        headers = [*call.headers, *llm_anthropic.limit_headers(call.limits), *(extra or [])]
        return llm_anthropic.error(status, kind or "invalid_request_error", message,
                                   call.request_id, headers, details)

    def _auth_error(self, call: _Call, key: str) -> Response:
        if call.route == "anthropic":
            message = "invalid x-api-key" if key else "x-api-key header is required"
            return self._error(call, 401, message, kind="authentication_error")
        if not key:
            return self._error(call, 401, "You didn't provide an API key. You need to provide "
                               "your API key in an Authorization header using Bearer auth "
                               "(i.e. Authorization: Bearer YOUR_KEY).")
        masked = f"{key[:3]}*****{key[-3:]}" if len(key) > 6 else "*****"
        return self._error(call, 401, f"Incorrect API key provided: {masked}. You can find "
                           "your API key at https://platform.openai.com/account/api-keys.",
                           code="invalid_api_key")

    def _model_not_found(self, call: _Call) -> Response:
        model = call.ask.model if call.ask else ""
        if call.route == "openai":
            return self._error(call, 404, f"The model `{model}` does not exist or you do not "
                               "have access to it.", code="model_not_found", param="model")
        return self._error(call, 404, f"model: {model}", kind="not_found_error")

    def _quota(self, call: _Call) -> Response:
        if call.route == "openai":
            return self._error(call, 429, "You exceeded your current quota, please check your "
                               "plan and billing details. For more information on this error, "
                               "read the docs: https://platform.openai.com/docs/guides/"
                               "error-codes/api-errors.", kind="insufficient_quota",
                               code="insufficient_quota")
        return self._error(call, 429, "You have reached your specified API usage limits. You "
                           "will regain access on the first day of next month at 00:00 UTC.",
                           kind="rate_limit_error",
                           details={"error_code": "enforced_spend_limit_reached"})

    def _rate_limited(self, call: _Call, limit: str, wait: float, requested: int,
                      why: str = "") -> Response:
        extra: list[tuple[str, str]] = []
        if math.isfinite(wait):
            extra = [("retry-after", str(max(1, math.ceil(wait)))),
                     ("retry-after-ms", str(max(1, math.ceil(wait * 1000))))]
        model = call.ask.model if call.ask else ""
        state = call.limits
        cap = (state.requests_limit if limit == "requests" else state.tokens_limit) if state \
            else None
        if why:  # forced or random: not a configured limit
            message = (f"Rate limit reached for {model} ({why}). Please try again in "
                       f"{wait:.3f}s.")
            if call.route == "openai":
                return self._error(call, 429, message, kind=limit, code="rate_limit_exceeded",
                                   extra=extra)
            return self._error(call, 429, message, kind="rate_limit_error", extra=extra)
        if call.route == "openai":
            unit = "requests per min (RPM)" if limit == "requests" else "tokens per min (TPM)"
            if math.isfinite(wait):
                message = (f"Rate limit reached for {model} in organization org-sandbox on "
                           f"{unit}: Limit {cap}, Requested {requested}. Please try "
                           f"again in {wait:.3f}s.")
            else:
                message = (f"Request too large for {model} in organization org-sandbox on "
                           f"{unit}: Limit {cap}, Requested {requested}. The input or output "
                           "tokens must be reduced in order to run successfully.")
            return self._error(call, 429, message, kind=limit, code="rate_limit_exceeded",
                               extra=extra)
        if limit == "requests":
            message = (f"This request would exceed the rate limit for your organization of "
                       f"{cap} requests per minute.")
        elif limit == "output_tokens":
            message = (f"This request would exceed the rate limit for your organization of "
                       f"{state.output_limit if state else None} output tokens per minute.")
        else:
            message = (f"This request would exceed the rate limit for your organization of "
                       f"{cap} input tokens per minute (requested {requested}).")
        return self._error(call, 429, message, kind="rate_limit_error", extra=extra)

    def _unknown_url(self, request: Request) -> Response:
        if request.path.startswith("/v1/messages"):
            return llm_anthropic.error(404, "not_found_error", "Not found", "0" * 24)
        return llm_openai.error(404, f"Unknown request URL: {request.method} {request.path}. "
                                "Please check the URL for typos.", "invalid_request_error",
                                "unknown_url")


def _without_required(value: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The answer minus its first required field: valid JSON, invalid against the schema."""
    required = schema.get("required") or list(value)
    broken = dict(value)
    for name in required:
        if name in broken:
            del broken[name]
            return broken
    broken["unexpected_field"] = "not in the schema"
    return broken


@dataclass
class RunningLLM:
    """A sandbox serving in a background thread."""

    url: str  # http://127.0.0.1:PORT
    llm: SandboxLLM
    server: LoopbackServer

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    @property
    def gemini_base_url(self) -> str:
        return self.url


@contextmanager
def serve_llm(options: LLMSandboxOptions | None = None, *, port: int = 0) -> Iterator[RunningLLM]:
    """Serve the sandbox on 127.0.0.1 (port 0: a free port) for the ``with`` block."""
    llm = SandboxLLM(options)
    with LoopbackServer(llm.handle, port=port) as server:
        try:
            yield RunningLLM(server.url, llm, server)
        finally:
            llm.close()


def serve_llm_forever(options: LLMSandboxOptions, *, port: int,
                      announce: Callable[[str], None]) -> None:
    """Serve in the foreground until interrupted (``enrich sandbox llm``)."""
    llm = SandboxLLM(options)
    server = LoopbackServer(llm.handle, port=port)
    announce(server.url)
    try:
        server.serve_forever()
    finally:
        llm.close()
        server.stop()
