"""The worker: claim → render → call → guard → record, for as long as there is work.

One asyncio task per in-flight job, at most ``concurrency`` of them, each holding a lease in
the ledger. What happens to a job after each kind of outcome:

    ok / guard flags   → drafted (flags stored with the draft)
    429                → back to pending after retry-after; every request pauses; no attempt used
    5xx, 529, timeout  → failed, retried after exponential backoff with jitter; dead after
                         ``max_attempts``
    400, refusal, bad output after one repair → dead at once, reason kept
    401/403, quota, unknown model, template error → the run stops (nothing else can succeed)

The run also stops on the breaker (systematic failures over ``breaker_threshold`` of the
window, or transient ones that look like an outage: see ``limits.Breaker``), the budget,
``--until``, ``--limit`` and
SIGINT/SIGTERM; each stop lets in-flight requests finish within a grace period, then gives
the leases of anything unfinished back, so nothing is lost and nothing is drafted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from enrich.config import Settings
from enrich.errors import (
    ConfigError,
    EnrichError,
    FatalProviderError,
    OutputTruncated,
    PermanentProviderError,
    ProviderError,
    RateLimited,
    RetryableProviderError,
    UnusableOutput,
)
from enrich.guards.duplicates import DuplicateIndex
from enrich.invoices import jobs as invoice_jobs
from enrich.ledger import Attempt, DraftRecord, Job, LeaseLost, Ledger, owner_id
from enrich.ledger.inputs import product_input_flags
from enrich.ledger.usage import recent_output_tokens
from enrich.prompts import PromptBook, RenderedPrompt
from enrich.providers import (
    LLMRequest,
    Provider,
    estimate_output_tokens,
    estimate_prompt_tokens,
)
from enrich.providers.images import images_tokens
from enrich.worker.estimating import QueueFigures, estimate_waiting
from enrich.worker.limits import Breaker, Budget, RateLimiter, consecutive_limit, retry_delay
from enrich.worker.record import draft_rules, record_answer, remember
from enrich.worker.sizing import OutputSizer

#: Prompts rendered for the estimate a run records when it starts (``enrich report``).
RUN_ESTIMATE_SAMPLE = 100
#: Characters of a request's framing beyond its messages and schema (the response_format or
#: tool wrapper, role markers), counted against TPM like the rest of the prompt.
REQUEST_CHARS = 120

#: Stops after which in-flight requests are still worth finishing (they are paid for).
_GRACEFUL = {"limit", "until", "signal", "budget", "breaker"}

EXIT_REASONS = ("completed", "limit", "until", "signal", "budget", "breaker", "fatal")


@dataclass
class RunStats:
    """Counts of this run, for progress lines, the summary and the runs table."""

    total: int = 0  # jobs waiting when the run started (for the ETA)
    drafted: int = 0
    flagged: int = 0
    retried: int = 0  # failed attempts that will be retried
    dead: int = 0
    rate_limited: int = 0
    discarded: int = 0  # results dropped because the lease had moved on
    requests: int = 0
    cost_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> int:
        return self.drafted + self.dead

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def eta_s(self) -> float | None:
        if self.done == 0 or self.total <= self.done:
            return None
        return self.elapsed_s / self.done * (self.total - self.done)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("started")
        data["done"] = self.done
        return data


@dataclass
class RunResult:
    run_id: int
    exit_reason: str
    message: str
    hint: str
    stats: RunStats

    @property
    def ok(self) -> bool:
        clean = self.exit_reason in ("completed", "limit", "until", "signal")
        # Every attempt failed and nothing was drafted (a model server that is down, say):
        # the jobs wait for a retry, but a night that achieved nothing needs a look.
        futile = self.stats.retried > 0 and self.stats.drafted == 0
        return clean and self.stats.dead == 0 and not futile


ProgressCallback = Callable[[RunStats], None]


class Worker:
    """Drafts the ledger's pending jobs of one kind (product or invoice) with one provider."""

    def __init__(self, ledger: Ledger, settings: Settings, provider: Provider,
                 prompts: PromptBook, *, limit: int | None = None, until: float | None = None,
                 concurrency: int | None = None, grace_s: float = 30.0,
                 duplicates: DuplicateIndex | None = None,
                 on_progress: ProgressCallback | None = None,
                 handle_signals: bool = True, kind: str = "product") -> None:
        self.ledger = ledger
        self.kind = kind
        self.settings = settings
        self.llm = settings.llm
        self.provider = provider
        self.prompts = prompts
        self.limit = limit
        self.until = until
        self.concurrency = concurrency or self.llm.concurrency
        self.grace_s = grace_s
        self.duplicates = duplicates
        self.sync_rules = draft_rules(ledger, settings)
        self.on_progress = on_progress
        self.handle_signals = handle_signals
        self.owner = owner_id()
        start = provider.limit_model
        self.limiter = RateLimiter(
            self.llm.max_rpm or start.rpm, self.llm.max_tpm or start.tpm, max_otpm=start.otpm,
            learn_rpm=self.llm.max_rpm is None, learn_tpm=self.llm.max_tpm is None)
        self.sizer = OutputSizer(self.llm.max_output_tokens, recent_output_tokens(
            ledger, provider.name, provider.model))
        #: System prompts the provider has cached (Anthropic's ITPM does not count reads).
        self._cached_systems: set[str] = set()
        #: The run's cost estimate, recorded with the run for ``enrich report``.
        self.estimate: QueueFigures | None = None
        self.breaker = Breaker(self.llm.breaker_window, self.llm.breaker_threshold,
                               consecutive=consecutive_limit(self.concurrency))
        self.budget = Budget(self.llm.budget_usd)
        self.stats = RunStats()
        self.run_id = 0
        self._stop: tuple[str, str, str] | None = None  # reason, message, hint
        self._claimed = 0
        self._in_flight: dict[asyncio.Task[None], Job] = {}
        self._wake = asyncio.Event()
        #: CPU seconds spent in ledger calls (bench/worker.py reports the share).
        self.ledger_cpu_s = 0.0

    # -- control ----------------------------------------------------------------------------

    def stop(self, reason: str, message: str, hint: str = "") -> None:
        """Stop claiming; the first reason given is the one reported."""
        if self._stop is None:
            self._stop = (reason, message, hint)
        self._wake.set()

    def _ledger(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        t0 = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            self.ledger_cpu_s += time.process_time() - t0

    def _progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.stats)

    # -- the run ----------------------------------------------------------------------------

    async def run(self) -> RunResult:
        """Draft until the queue, the limit or the deadline ends, holding our owner lock.

        The lock is taken before the first claim and held for the whole run: the kernel drops
        it when this process ends, however it ends, which is how the next run knows our
        leases are free.
        """
        with self.ledger.hold_owner(self.owner):
            return await self._run()

    async def _run(self) -> RunResult:
        params = {"provider": self.provider.name, "model": self.provider.model,
                  "limit": self.limit, "until": self.until, "concurrency": self.concurrency,
                  "max_rpm": self.llm.max_rpm, "max_tpm": self.llm.max_tpm,
                  "budget_usd": self.llm.budget_usd, "owner": self.owner, "kind": self.kind}
        if self.estimate is None and self.kind == "product":
            self.estimate = self._ledger(
                estimate_waiting, self.ledger, self.provider, self.prompts,
                list(self.settings.sync.fields), self.llm.max_output_tokens, jobs=self.limit,
                sample=RUN_ESTIMATE_SAMPLE)
        if self.estimate is not None:
            params.update(estimate_usd=self.estimate.cost_usd,
                          estimate_jobs=self.estimate.jobs,
                          estimate_basis=self.estimate.basis)
        self.run_id = self._ledger(self.ledger.start_run, "run", params)
        self._ledger(self.ledger.reclaim_dead_owners)
        counts = self._ledger(self.ledger.counts)[self.kind]
        self.stats.total = counts["pending"] + counts["failed"]
        if self.limit is not None:
            self.stats.total = min(self.stats.total, self.limit)
        loop = asyncio.get_running_loop()
        installed = self._install_signals(loop)
        extender = asyncio.create_task(self._extend_leases())
        try:
            await self._claim_loop()
            await self._drain()
        finally:
            extender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await extender
            for sig in installed:
                loop.remove_signal_handler(sig)
            self._ledger(self.ledger.release_all, self.owner)
            reason, message, hint = self._stop or ("completed", "queue empty", "")
            counts = self.stats.as_dict()
            if self.limiter.learned:  # the key's limits, as the headers said
                counts["limits_learned"] = dict(self.limiter.learned)
            self._ledger(self.ledger.finish_run, self.run_id, exit_reason=reason,
                         counts=counts)
            self._progress()
        return RunResult(self.run_id, reason, message, hint, self.stats)

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        if not self.handle_signals:
            return []
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread: the caller handles signals
        return installed

    def _on_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if self._stop is not None and self._stop[0] == "signal":
            for task in self._in_flight:  # a second signal: do not wait for the grace period
                task.cancel()
            return
        self.stop("signal", f"stopped by {name}",
                  "Run `enrich run` again to continue where this run stopped.")

    async def _claim_loop(self) -> None:
        while self._stop is None:
            if self.until is not None and time.time() >= self.until:
                self.stop("until", "reached the --until time",
                          "Run again (e.g. tomorrow night) to continue.")
                break
            if self.limit is not None and self._claimed >= self.limit:
                if not self._in_flight:
                    self.stop("limit", f"took the --limit of {self.limit} job(s)",
                              "Review them (`enrich review export`), then run again."
                              if self.stats.drafted else "None was drafted: see why with "
                              "`enrich jobs list --status failed`, fix it, then run again.")
                    break
                await self._wait_any()
                continue
            free = self.concurrency - len(self._in_flight)
            if free <= 0:
                await self._wait_any()
                continue
            want = free if self.limit is None else min(free, self.limit - self._claimed)
            jobs = self._ledger(self.ledger.claim, self.owner, want, kind=self.kind)
            if not jobs:
                if self._in_flight:
                    await self._wait_any(timeout=1.0)
                    continue
                due = self._ledger(self.ledger.next_due_at, self.kind)
                if due is None:
                    break  # nothing left at all: completed
                wait = due - time.time()
                if self.until is not None:
                    wait = min(wait, self.until - time.time())
                await self._sleep(max(0.05, min(wait, 5.0)))
                continue
            for job in jobs:
                self._claimed += 1
                task = asyncio.create_task(self._process(job))
                self._in_flight[task] = job

    async def _wait_any(self, timeout: float | None = None) -> None:
        if not self._in_flight:
            return
        self._wake.clear()
        waker = asyncio.create_task(self._wake.wait())
        done, _ = await asyncio.wait([*self._in_flight, waker], timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        waker.cancel()
        self._reap(done)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    def _reap(self, done: set[asyncio.Future[Any]]) -> None:
        for task in done:
            job = self._in_flight.pop(task, None)  # type: ignore[call-overload]
            if job is None:
                continue
            if not task.cancelled() and task.exception() is not None:
                # A bug, not a provider error: stop rather than loop over every record.
                exc = task.exception()
                self.stop("fatal", f"job {job.id}: unexpected {type(exc).__name__}: {exc}",
                          "This is a bug in enrich; run with ENRICH_DEBUG=1 and report it.")

    async def _drain(self) -> None:
        """Let in-flight requests finish (within the grace period), then cancel the rest."""
        if not self._in_flight:
            return
        hard = self._stop is not None and self._stop[0] not in _GRACEFUL
        timeout = 0.0 if hard else self.grace_s
        if timeout > 0:
            done, _ = await asyncio.wait(list(self._in_flight), timeout=timeout)
            self._reap(done)
        for task in list(self._in_flight):
            task.cancel()
        if self._in_flight:
            done, _ = await asyncio.wait(list(self._in_flight))
            for task in done:
                self._in_flight.pop(task, None)  # type: ignore[call-overload]

    async def _extend_leases(self) -> None:
        interval = max(1.0, self.settings.ledger.lease_s / 3)
        while True:
            await asyncio.sleep(interval)
            ids = [job.id for job in self._in_flight.values()]
            if ids:
                self._ledger(self.ledger.extend_lease, ids, self.owner)

    # -- one job ----------------------------------------------------------------------------

    def _render(self, job: Job) -> tuple[RenderedPrompt, dict[str, Any]]:
        if job.kind == "invoice":
            return invoice_jobs.render_invoice(job, self.settings)
        product = self._ledger(self.ledger.get_product, job.source_id)
        if product is None:
            raise PermanentProviderError(
                f"job {job.id}: product {job.source_id} is not in the ledger's snapshot",
                hint="Run `enrich sync` so the product is snapshotted, then retry the job.",
                error_class="MissingSnapshot")
        fields = job.payload.get("fields") or list(self.settings.sync.fields)
        snapshot = product["snapshot"]
        return self.prompts.render_product(snapshot, fields, source_id=job.source_id), snapshot

    async def _process(self, job: Job) -> None:
        started = time.time()
        if job.kind == "invoice" and self._embedded_invoice(job, started):
            return
        try:
            rendered, snapshot = self._render(job)
            images = (invoice_jobs.page_images(job, self.settings) if job.kind == "invoice"
                      else ())
        except ConfigError as exc:  # a template or field-list problem: every job would fail
            self._ledger(self.ledger.release, job.id, self.owner, refund_attempt=True)
            self.stop("fatal", f"job {job.id}: {exc.message}", exc.hint)
            return
        except PermanentProviderError as exc:
            self._dead(job, started, exc)
            return
        except EnrichError as exc:
            self._dead(job, started, PermanentProviderError(
                f"job {job.id}: {exc.message}", hint=exc.hint, error_class=type(exc).__name__))
            return
        schema = rendered.output_model.model_json_schema()
        key = (rendered.template_name, rendered.fields)
        max_out = self.sizer.limit(key, schema)
        pictured = images_tokens(self.llm.provider, self.llm.model,
                                 [(i.width, i.height) for i in images])
        prompt_tokens = estimate_prompt_tokens(rendered.system, rendered.user, schema) + pictured
        estimate = self.provider.estimate_cost(prompt_tokens,
                                               estimate_output_tokens(schema, max_out))
        if not self.budget.reserve(estimate):
            self._ledger(self.ledger.release, job.id, self.owner, refund_attempt=True)
            self.stop("budget", f"stopped before spending past the budget of "
                      f"${self.llm.budget_usd:.2f} (${self.budget.spent:.4f} spent this run)",
                      "Raise [llm] budget_usd, or run again to continue under a new budget.")
            return
        try:
            reserved = await self._pace(rendered, schema, max_out, pictured)
            if self._stop is not None and self._stop[0] not in _GRACEFUL:
                self.budget.settle(estimate, 0.0)
                self._ledger(self.ledger.release, job.id, self.owner, refund_attempt=True)
                return
            request = LLMRequest(system=rendered.system, user=rendered.user,
                                 schema=rendered.output_model, job_id=job.id,
                                 temperature=self.llm.temperature, max_output_tokens=max_out,
                                 source=snapshot, images=images,
                                 retry_output_tokens=self.sizer.grow(key, schema, max_out))
            result = await self._generate(job, request, rendered, schema, reserved, pictured)
        except RateLimited as exc:
            self.budget.settle(estimate, 0.0)
            self._rate_limited(job, started, exc)
            return
        except RetryableProviderError as exc:
            self.budget.settle(estimate, 0.0)
            self._retry_or_die(job, started, exc)
            return
        except PermanentProviderError as exc:
            self.budget.settle(estimate, float(getattr(exc, "cost_usd", 0.0) or 0.0))
            self._dead(job, started, exc)
            return
        except FatalProviderError as exc:
            self.budget.settle(estimate, 0.0)
            self._ledger(self.ledger.release, job.id, self.owner, refund_attempt=True,
                         attempt=Attempt(started, "released", error_class=exc.error_class,
                                         error=exc.message, http_status=exc.status))
            self.stop("fatal", exc.message, exc.hint)
            return
        except asyncio.CancelledError:
            self.budget.settle(estimate, 0.0)
            self._ledger(self.ledger.release, job.id, self.owner, refund_attempt=True,
                         reason="the run stopped before the answer came")
            raise
        result.prompt_estimate = prompt_tokens  # type: ignore[attr-defined]
        self.budget.settle(estimate, result.cost_usd)
        self.limiter.observe(result.rate_limits)
        self.breaker.record("ok")
        self.stats.requests += result.requests - 1
        self._record_draft(job, started, rendered, snapshot, result)

    async def _pace(self, rendered: RenderedPrompt, schema: dict[str, Any],
                    max_out: int, pictured: int = 0) -> int:
        """Wait until the provider's limits have room for this request, counted the way the
        provider counts it (``LimitModel``), page images (``pictured`` tokens) included; the
        output tokens reserved, if any."""
        if not self.provider.paced:
            return 0
        model = self.provider.limit_model
        schema_chars = len(json.dumps(schema, separators=(",", ":")))
        prompt_chars = len(rendered.system) + len(rendered.user) + schema_chars + REQUEST_CHARS
        cached = (len(rendered.system) + schema_chars
                  if rendered.system_hash in self._cached_systems else 0)
        output = max_out if self.limiter.output is not None else 0
        await self.limiter.acquire(model.request_tokens(prompt_chars, cached, max_out)
                                   + pictured, output=output)
        return output

    async def _generate(self, job: Job, request: LLMRequest, rendered: RenderedPrompt,
                        schema: dict[str, Any], reserved: int, pictured: int = 0) -> Any:
        """The provider's answer, asked once more with a larger ``max_tokens`` (same attempt,
        paced again) when the first was cut off; both requests' usage and cost are kept."""
        key = (rendered.template_name, rendered.fields)
        cut: OutputTruncated | None = None
        self.stats.requests += 1  # a cut-off answer's second request is in result.requests
        while True:
            try:
                result = await asyncio.wait_for(self.provider.generate(request),
                                                timeout=self.llm.timeout_s * 2 + 5)
            except TimeoutError:
                raise RetryableProviderError(
                    f"job {job.id}: no answer within {self.llm.timeout_s * 2 + 5:.0f} s",
                    error_class="Timeout") from None
            except OutputTruncated as exc:
                self.limiter.settle_output(reserved, getattr(exc.usage, "output_tokens", 0))
                if cut is not None or request.retry_output_tokens is None:
                    raise  # pragma: no cover - generate raises it only with a larger limit
                cut = exc
                self.sizer.grown += 1
                bigger = request.retry_output_tokens
                request = dataclasses.replace(request, max_output_tokens=bigger,
                                              retry_output_tokens=None)
                reserved = await self._pace(rendered, schema, bigger, pictured)
                continue
            except UnusableOutput as exc:
                if cut is not None:  # the cut-off answer was billed too
                    exc.usage = cut.usage + exc.usage if exc.usage is not None else cut.usage
                    exc.cost_usd += cut.cost_usd
                raise
            self.limiter.settle_output(reserved, result.usage.output_tokens)
            answer_tokens = result.usage.output_tokens
            if not result.repaired:
                self.sizer.record(key, answer_tokens)
            if result.usage.cached_tokens or result.usage.cache_write_tokens:
                self._cached_systems.add(rendered.system_hash)
            result.answer_tokens = answer_tokens  # type: ignore[attr-defined]
            result.max_output_tokens = request.max_output_tokens  # type: ignore[attr-defined]
            if cut is not None:
                result.usage = cut.usage + result.usage
                result.cost_usd += cut.cost_usd
                result.requests += 1
            return result

    def _embedded_invoice(self, job: Job, started: float) -> bool:
        """An invoice whose PDF carries its own CII XML: drafted from it, no call, no cost."""
        invoice = invoice_jobs.embedded_invoice(job, self.settings)
        if invoice is None:
            return False
        fields, flags = invoice_jobs.check(invoice.model_dump(mode="json"), job.payload)
        draft = DraftRecord(fields=fields, provider="embedded_xml", model="cii",
                            params={"mode": "live", "source": "embedded_xml"}, flags=flags)
        attempt = Attempt(started, "flagged" if flags else "ok")
        try:
            self._ledger(self.ledger.complete, job.id, self.owner, draft, attempt,
                         run_id=self.run_id)
        except LeaseLost:
            self.stats.discarded += 1
            return True
        self.stats.drafted += 1
        self.stats.flagged += bool(flags)
        self._progress()
        return True

    def _record_draft(self, job: Job, started: float, rendered: RenderedPrompt,
                      snapshot: dict[str, Any], result: Any) -> None:
        recorded = record_answer(
            self.settings, source_id=job.source_id, snapshot=snapshot,
            expected=rendered.fields, template_name=rendered.template_name,
            template_hash=rendered.template_hash, result=result, started=started,
            mode="live", duplicates=self.duplicates, kind=job.kind, payload=job.payload,
            sync_rules=self.sync_rules,
            input_flags=(self._ledger(product_input_flags, self.ledger, job.source_id)
                         if job.kind == "product" else None))
        usage = result.usage
        self.stats.cost_usd += result.cost_usd
        self.stats.tokens_in += usage.input_tokens
        self.stats.tokens_out += usage.output_tokens
        self.stats.tokens_cached += usage.cached_tokens
        try:
            self._ledger(self.ledger.complete, job.id, self.owner, recorded.draft,
                         recorded.attempt, run_id=self.run_id)
        except LeaseLost:
            self.stats.discarded += 1
            return
        self.stats.drafted += 1
        self.stats.flagged += recorded.flagged
        remember(self.duplicates, job.id, job.source_id, recorded.guard)
        self._progress()

    def _attempt(self, started: float, outcome: str, exc: ProviderError) -> Attempt:
        attempt = Attempt(started, outcome, error_class=exc.error_class, error=exc.message,
                          http_status=exc.status, latency_ms=(time.time() - started) * 1000)
        if isinstance(exc, UnusableOutput):  # refused or unrepairable, but billed
            usage = exc.usage
            attempt.tokens_in = getattr(usage, "input_tokens", 0)
            attempt.tokens_out = getattr(usage, "output_tokens", 0)
            attempt.tokens_cached = getattr(usage, "cached_tokens", 0)
            attempt.cost_usd = exc.cost_usd
            self.stats.cost_usd += exc.cost_usd
        return attempt

    def _rate_limited(self, job: Job, started: float, exc: RateLimited) -> None:
        wait = exc.retry_after if exc.retry_after is not None else 1.0
        self.limiter.pause(wait)
        self.stats.rate_limited += 1
        try:
            self._ledger(self.ledger.release, job.id, self.owner, delay_s=wait,
                         refund_attempt=True, reason=f"rate limited: {exc.message}",
                         attempt=self._attempt(started, "rate_limited", exc),
                         run_id=self.run_id)
        except LeaseLost:
            self.stats.discarded += 1

    def _retry_or_die(self, job: Job, started: float, exc: RetryableProviderError) -> None:
        self.breaker.record("transient", exc.message)
        self._check_breaker()
        delay = retry_delay(job.attempts, exc.retry_after, base_s=self.llm.retry_base_s,
                            cap_s=self.llm.retry_max_s)
        try:
            status = self._ledger(self.ledger.fail, job.id, self.owner,
                                  self._attempt(started, "retry", exc),
                                  max_attempts=self.llm.max_attempts, retry_in_s=delay,
                                  run_id=self.run_id)
        except LeaseLost:
            self.stats.discarded += 1
            return
        if status == "dead":
            self.stats.dead += 1
        else:
            self.stats.retried += 1
        self._progress()

    def _dead(self, job: Job, started: float, exc: ProviderError) -> None:
        """A job no retry can help; systematic for the breaker (see ``limits.Breaker``)."""
        self.breaker.record("systematic", exc.message)
        self._check_breaker()
        try:
            self._ledger(self.ledger.fail, job.id, self.owner,
                         self._attempt(started, "dead", exc),
                         max_attempts=self.llm.max_attempts, permanent=True,
                         run_id=self.run_id)
        except LeaseLost:
            self.stats.discarded += 1
            return
        self.stats.dead += 1
        self._progress()

    def _check_breaker(self) -> None:
        reason = self.breaker.reason  # names the failure that tripped it
        if reason is not None:
            self.stop("breaker", reason,
                      "See `enrich jobs list --status failed` (or `--status dead`) and `enrich "
                      "report` for the errors; fix the cause (provider outage, bad base_url, "
                      "model, prompt template), then run again.")
