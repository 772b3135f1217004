"""Batch mode: pending jobs go to the provider's batch API at half price, results come back later.

Three steps, each safe to kill at any moment and run again:

``submit``   claim pending jobs as a live run does, render them with the same prompts, split
             them into batches within the provider's limits (one model per batch), and for
             each: record the intent (``ledger.batches.record_intent``), send it, record the
             provider's answer with the jobs moved to ``submitted``.
``reconcile`` (first thing of every submit and poll) an intent without a provider id is a
             crash between the provider's answer and our record: find the provider's batch
             by the local id it carries (metadata, custom ids); record it if found, put the
             jobs back to pending if the provider has none, wait if it cannot tell yet.
``poll``     ask the provider about each submitted batch; for an ended one, stream its
             results, join each on ``custom_id`` (never on order), settle it through the same
             guards as a live answer (``record.record_answer``) and commit in chunks; a line
             already settled is skipped, so a poll killed half-way ingests each result once.

Errors per line follow live mode's classes: a 5xx-like error is ``failed`` (retried after
backoff, dead after ``max_attempts``), a refusal or a refused request is ``dead``, and an
expired or canceled line goes back to ``pending`` with its attempt refunded, as a 429 does.
An answer that does not fit the schema is ``failed`` (a batch has no repair turn; the next
try repairs or redrafts it).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from enrich.config import Secrets, Settings
from enrich.errors import (
    ConfigError,
    EnrichError,
    PermanentProviderError,
    ProviderError,
    RateLimited,
    RetryableProviderError,
    UnusableOutput,
)
from enrich.guards.duplicates import DuplicateIndex
from enrich.ledger import Attempt, Job, Ledger, owner_id
from enrich.ledger import batches as B
from enrich.ledger.inputs import product_input_flags
from enrich.prompts import PromptBook, RenderedPrompt
from enrich.providers import LLMRequest, Provider, make_provider
from enrich.providers.batches import (
    BatchApi,
    RawResult,
    Unsure,
    batch_api,
    settle,
)
from enrich.worker.limits import retry_delay
from enrich.worker.record import draft_rules, record_answer, remember

#: A test hook: the name of a point at which the process stops and waits to be killed
#: (``after-intent``: the intent is recorded, the provider not asked yet; ``after-create``:
#: the provider accepted a batch, the ledger has not recorded it; ``mid-ingest``: the first
#: chunk of a poll's results is committed, the rest is not).
PAUSE_ENV = "ENRICH_BATCH_PAUSE"
#: Jobs claimed (and held in memory as request lines) at a time; batches are split within it.
SUBMIT_CHUNK = 10_000
#: Results committed per ledger transaction while ingesting.
INGEST_CHUNK = 200

_PLACEHOLDER_BATCH = "e" + "0" * B.BATCH_ID_WIDTH


def _pause(point: str) -> None:
    if os.environ.get(PAUSE_ENV) == point:
        print(f"enrich: paused at {point} ({PAUSE_ENV})", file=sys.stderr, flush=True)
        time.sleep(3600)


@dataclass
class SubmitSummary:
    batches: list[dict[str, Any]] = field(default_factory=list)
    jobs: int = 0
    dead: int = 0  # jobs that could not be rendered (no snapshot, bad data)
    reconciled: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PollSummary:
    checked: int = 0
    collected: int = 0
    drafted: int = 0
    flagged: int = 0
    failed: int = 0
    dead: int = 0
    requeued: int = 0
    discarded: int = 0
    duplicate: int = 0
    cost_usd: float = 0.0
    live_cost_usd: float = 0.0
    in_flight: list[dict[str, Any]] = field(default_factory=list)
    reconciled: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cost_usd"] = round(self.cost_usd, 6)
        data["live_cost_usd"] = round(self.live_cost_usd, 6)
        return data


def _job_request(settings: Settings, prompts: PromptBook, ledger: Ledger, job: Job, *,
                 template: str | None = None) -> tuple[RenderedPrompt, dict[str, Any],
                                                       LLMRequest]:
    """The rendered prompt, snapshot and request of one job, exactly as a live run builds
    them; PermanentProviderError when its product is not in the ledger."""
    product = ledger.get_product(job.source_id)
    if product is None:
        raise PermanentProviderError(
            f"job {job.id}: product {job.source_id} is not in the ledger's snapshot",
            hint="Run `enrich sync` so the product is snapshotted, then retry the job.",
            error_class="MissingSnapshot")
    fields = job.payload.get("fields") or list(settings.sync.fields)
    snapshot = product["snapshot"]
    rendered = prompts.render_product(snapshot, fields, source_id=job.source_id,
                                      template=template)
    llm = settings.llm
    request = LLMRequest(system=rendered.system, user=rendered.user,
                         schema=rendered.output_model, job_id=job.id,
                         temperature=llm.temperature, max_output_tokens=llm.max_output_tokens,
                         source=snapshot)
    return rendered, snapshot, request


class BatchMode:
    """Submits, reconciles, polls and cancels the batches of one ledger."""

    def __init__(self, ledger: Ledger, settings: Settings, secrets: Secrets, *,
                 http_client: Any = None, default_headers: dict[str, str] | None = None,
                 on_event: Callable[[str], None] | None = None) -> None:
        self.ledger = ledger
        self.settings = settings
        self.secrets = secrets
        self.http_client = http_client
        self.default_headers = default_headers
        self.on_event = on_event or (lambda _text: None)
        self._apis: dict[tuple[str, str], BatchApi] = {}
        self._prompts: PromptBook | None = None
        self._sync_rules = draft_rules(ledger, settings)
        self.tag = B.ledger_tag(ledger)
        #: CPU seconds spent by enrich itself (rendering, guards, ledger): bench/batch.py.
        self.cpu_s = 0.0

    # -- plumbing ---------------------------------------------------------------------------

    def api(self, provider: str, model: str) -> BatchApi:
        key = (provider, model)
        if key not in self._apis:
            llm = self.settings.llm.model_copy(update={"provider": provider, "model": model})
            built: Provider = make_provider(llm, self.secrets, http_client=self.http_client,
                                            default_headers=self.default_headers)
            self._apis[key] = batch_api(built, max_requests=llm.batch_max_requests,
                                        max_bytes=llm.batch_max_bytes)
        return self._apis[key]

    @property
    def prompts(self) -> PromptBook:
        if self._prompts is None:
            self._prompts = PromptBook.from_settings(self.settings)
            self._prompts.check()  # a broken template stops here, before any spend
        return self._prompts

    async def aclose(self) -> None:
        for api in self._apis.values():
            await api.provider.aclose()
        self._apis.clear()

    # -- reconcile --------------------------------------------------------------------------

    async def reconcile(self) -> dict[str, int]:
        """Settle every intent left by a crash; see the module's docstring."""
        counts = {"recorded": 0, "abandoned": 0, "waiting": 0}
        for row in B.list_batches(self.ledger, states=("intent",)):
            api = self.api(row.provider, row.model)
            ids = B.item_ids(self.ledger, row.id)
            known = B.known_provider_ids(self.ledger, row.provider)
            found = await api.find(row.id, self.tag, ids, row.created_at, known)
            if isinstance(found, Unsure):
                counts["waiting"] += 1
                self.on_event(f"batch {row.id}: intent waits; provider batch(es) "
                              f"{', '.join(found.candidates)} still running may carry it")
            elif found is None:
                moved = B.abandon_intent(self.ledger, row.id, "the provider never accepted "
                                         f"batch {row.id} (enrich stopped while sending it)")
                counts["abandoned"] += 1
                self.on_event(f"batch {row.id}: never reached the provider; {moved} job(s) "
                              "back to pending")
            else:
                B.record_submitted(self.ledger, row.id, provider_batch_id=found.id,
                                   provider_status=found.status,
                                   submitted_at=found.created_at)
                counts["recorded"] += 1
                self.on_event(f"batch {row.id}: found as {found.id} at the provider; recorded")
        return counts

    # -- submit -----------------------------------------------------------------------------

    async def submit(self, *, limit: int | None = None) -> SubmitSummary:
        """Send pending jobs (at most ``limit``) in batches; returns what was sent."""
        summary = SubmitSummary()
        summary.reconciled = await self.reconcile()
        llm = self.settings.llm
        api = self.api(llm.provider, llm.model)
        prompts = self.prompts
        owner = owner_id()
        with self.ledger.hold_owner(owner):
            self.ledger.reclaim_dead_owners()
            run_id = self.ledger.start_run("batch", {
                "provider": llm.provider, "model": llm.model, "limit": limit,
                "max_requests": api.limits.max_requests, "max_bytes": api.limits.max_bytes})
            try:
                while limit is None or summary.jobs < limit:
                    want = min(SUBMIT_CHUNK, api.limits.max_requests)
                    if limit is not None:
                        want = min(want, limit - summary.jobs)
                    t0 = time.process_time()
                    jobs = self.ledger.claim(owner, want, kind="product")
                    if not jobs:
                        break
                    lines = self._lines(api, prompts, jobs, owner, run_id, summary)
                    del jobs
                    self.cpu_s += time.process_time() - t0
                    for chunk in _split(lines, api.limits.max_requests, api.limits.max_bytes):
                        await self._send(api, chunk, owner, run_id, summary)
                    del lines
            finally:
                self.ledger.release_all(owner)
                self.ledger.finish_run(run_id, exit_reason="completed", counts={
                    "jobs": summary.jobs, "batches": len(summary.batches),
                    "dead": summary.dead})
        return summary

    def _lines(self, api: BatchApi, prompts: PromptBook, jobs: list[Job], owner: str,
               run_id: int, summary: SubmitSummary) -> list[_Line]:
        """Each job's line, serialised with a placeholder batch number of the final width
        (only the bytes and the template are kept: the rendered prompt is in them)."""
        out = []
        for job in jobs:
            started = time.time()
            try:
                rendered, _, request = _job_request(self.settings, prompts, self.ledger, job)
            except ConfigError as exc:  # a template or field list: every job would fail
                self.ledger.release_all(owner)
                raise ConfigError(f"job {job.id}: {exc.message}", exc.hint) from None
            except EnrichError as exc:
                error = exc if isinstance(exc, ProviderError) else PermanentProviderError(
                    f"job {job.id}: {exc.message}", hint=exc.hint,
                    error_class=type(exc).__name__)
                self.ledger.fail(job.id, owner, Attempt(
                    started, "dead", error_class=getattr(error, "error_class", None),
                    error=error.message), max_attempts=self.settings.llm.max_attempts,
                    permanent=True, run_id=run_id)
                summary.dead += 1
                continue
            cid = B.custom_id(self.tag, 0, job.id, job.attempts)
            line = api.line(cid, request)
            text = json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode()
            out.append(_Line(job.id, job.attempts, rendered.template_name,
                             rendered.template_hash, text))
        return out

    async def _send(self, api: BatchApi, chunk: list[_Line], owner: str, run_id: int,
                    summary: SubmitSummary) -> None:
        provider = api.provider
        size = sum(len(line.text) + 1 for line in chunk)
        intent = B.record_intent(
            self.ledger, tag=self.tag, provider=provider.name, model=provider.model,
            claim_owner=owner, size_bytes=size, run_id=run_id,
            items=[B.IntentItem(line.job_id, line.attempt, line.template_name,
                                line.template_hash) for line in chunk])
        real = "e" + f"{intent.id:0{B.BATCH_ID_WIDTH}d}"
        marker = f"-{_PLACEHOLDER_BATCH}-".encode()
        lines = []
        for line in chunk:  # each placeholder swapped, and its old bytes let go at once
            lines.append(line.text.replace(marker, f"-{real}-".encode(), 1))
            line.text = b""
        _pause("after-intent")
        remote = await api.submit(intent.id, self.tag, lines)
        del lines
        _pause("after-create")
        B.record_submitted(self.ledger, intent.id, provider_batch_id=remote.id,
                           provider_status=remote.status)
        summary.jobs += len(chunk)
        summary.batches.append(B.get_batch(self.ledger, intent.id).as_dict())
        self.on_event(f"batch {intent.id}: {len(chunk)} job(s), {size:,} bytes, sent as "
                      f"{remote.id}")

    # -- poll -------------------------------------------------------------------------------

    async def poll(self) -> PollSummary:
        """Collect every ended batch; say which are still in flight."""
        summary = PollSummary()
        summary.reconciled = await self.reconcile()
        duplicates: DuplicateIndex | None = None
        try:
            for row in B.list_batches(self.ledger, states=("submitted", "ended")):
                api = self.api(row.provider, row.model)
                assert row.provider_batch_id is not None
                if row.state == "submitted":
                    remote = await api.get(row.provider_batch_id)
                    summary.checked += 1
                    B.update_remote(self.ledger, row.id, provider_status=remote.status,
                                    ended=remote.ended, error=remote.error)
                    if not remote.ended:
                        summary.in_flight.append(B.get_batch(self.ledger, row.id).as_dict())
                        continue
                if duplicates is None:
                    guards = self.settings.guards
                    duplicates = DuplicateIndex.from_ledger(
                        self.ledger, threshold=guards.duplicate_threshold,
                        min_words=guards.duplicate_min_words)
                await self._ingest(api, row, duplicates, summary)
        finally:
            if duplicates is not None:
                duplicates.close()
        return summary

    async def _ingest(self, api: BatchApi, row: B.BatchRow, duplicates: DuplicateIndex,
                      summary: PollSummary) -> None:
        items = B.open_items(self.ledger, row.id)
        pending: list[B.ItemOutcome] = []
        flagged: dict[str, tuple[int, str, Any]] = {}
        chunks = 0

        def commit() -> None:
            nonlocal chunks
            if not pending:
                return
            t0 = time.process_time()
            counts = B.ingest(self.ledger, row.id, pending,
                              max_attempts=self.settings.llm.max_attempts)
            for cid, settled in counts.settled.items():
                if settled == "drafted" and cid in flagged:
                    job_id, source_id, guard = flagged[cid]
                    remember(duplicates, job_id, source_id, guard)
                    summary.flagged += bool(guard.flags)
            for out in pending:
                if counts.settled.get(out.custom_id) not in (None, "discarded"):
                    summary.cost_usd += out.attempt.cost_usd
                    summary.live_cost_usd += out.live_cost_usd
            summary.drafted += counts.drafted
            summary.failed += counts.failed
            summary.dead += counts.dead
            summary.requeued += counts.requeued
            summary.discarded += counts.discarded
            summary.duplicate += counts.duplicate
            pending.clear()
            flagged.clear()
            chunks += 1
            self.cpu_s += time.process_time() - t0
            if chunks == 1:
                _pause("mid-ingest")

        assert row.provider_batch_id is not None
        async for raw in api.results(row.provider_batch_id):
            item = items.pop(raw.custom_id, None)
            if item is None:
                continue  # settled by an earlier poll, or not a line of ours
            t0 = time.process_time()
            out = self._outcome(api.provider, item, raw, duplicates, flagged)
            self.cpu_s += time.process_time() - t0
            pending.append(out)
            if len(pending) >= INGEST_CHUNK:
                commit()
        # Lines the provider returned nothing for (a batch that failed as a whole): they
        # were not run, so they go back to the queue as an expired line does.
        for item in items.values():
            pending.append(self._outcome(api.provider, item, RawResult(
                item.custom_id, "expired"), duplicates, flagged))
            if len(pending) >= INGEST_CHUNK:
                commit()
        commit()
        if B.mark_collected(self.ledger, row.id):
            summary.collected += 1
            done = B.get_batch(self.ledger, row.id)
            self.on_event(f"batch {row.id}: collected ({done.drafted} drafted, {done.failed} "
                          f"failed, {done.requeued} back to pending)")

    def _outcome(self, provider: Provider, item: B.OpenItem, raw: RawResult,
                 duplicates: DuplicateIndex, flagged: dict[str, tuple[int, str, Any]],
                 ) -> B.ItemOutcome:
        started = time.time()
        job = Job(id=item.job_id, kind=item.kind, source_id=item.source_id, input_hash="",
                  payload=item.payload, status=item.status, priority=0,
                  attempts=item.attempts, next_attempt_at=0, lease_owner=None,
                  lease_expires_at=None, last_error=None, run_id=None, created_at=0,
                  updated_at=0)
        try:
            rendered, snapshot, request = _job_request(
                self.settings, self.prompts, self.ledger, job, template=item.template_name)
            result = settle(provider, request, raw)
        except RateLimited as exc:
            return B.ItemOutcome(raw.custom_id, "pending", _attempt(
                started, "released", exc))
        except UnusableOutput as exc:
            live = provider.cost(exc.usage) if exc.usage is not None else 0.0
            if exc.error_class == "invalid_output":  # no repair in a batch: try again
                return B.ItemOutcome(raw.custom_id, "failed", _attempt(started, "retry", exc),
                                     retry_in_s=self._delay(item, exc), live_cost_usd=live)
            return B.ItemOutcome(raw.custom_id, "failed", _attempt(started, "dead", exc),
                                 permanent=True, live_cost_usd=live)
        except RetryableProviderError as exc:
            return B.ItemOutcome(raw.custom_id, "failed", _attempt(started, "retry", exc),
                                 retry_in_s=self._delay(item, exc))
        except ProviderError as exc:
            return B.ItemOutcome(raw.custom_id, "failed", _attempt(started, "dead", exc),
                                 permanent=True)
        except EnrichError as exc:
            return B.ItemOutcome(raw.custom_id, "failed", Attempt(
                started, "dead", error_class=type(exc).__name__, error=exc.message),
                permanent=True)
        recorded = record_answer(
            self.settings, source_id=item.source_id, snapshot=snapshot,
            expected=rendered.fields, template_name=item.template_name or
            rendered.template_name, template_hash=item.template_hash or rendered.template_hash,
            result=result, started=started, mode="batch", duplicates=duplicates,
            sync_rules=self._sync_rules,
            input_flags=product_input_flags(self.ledger, item.source_id))
        flagged[raw.custom_id] = (item.job_id, item.source_id, recorded.guard)
        return B.ItemOutcome(raw.custom_id, "drafted", recorded.attempt, draft=recorded.draft,
                             live_cost_usd=provider.cost(result.usage))

    def _delay(self, item: B.OpenItem, exc: ProviderError) -> float:
        llm = self.settings.llm
        return retry_delay(item.attempts, exc.retry_after, base_s=llm.retry_base_s,
                           cap_s=llm.retry_max_s)

    # -- cancel -----------------------------------------------------------------------------

    async def cancel(self, ref: str) -> B.BatchRow:
        """Ask the provider to cancel a batch; its unfinished lines come back as canceled
        at the next poll (and go back to pending then)."""
        row = B.find_batch(self.ledger, ref)
        if row.state != "submitted" or row.provider_batch_id is None:
            raise ConfigError(f"batch {row.id} is {row.state}: only a submitted batch can be "
                              "canceled", "See `enrich batches list`.")
        remote = await self.api(row.provider, row.model).cancel(row.provider_batch_id)
        B.update_remote(self.ledger, row.id, provider_status=remote.status, ended=False)
        return B.get_batch(self.ledger, row.id)


def _attempt(started: float, outcome: str, exc: ProviderError) -> Attempt:
    attempt = Attempt(started, outcome, error_class=exc.error_class, error=exc.message,
                      http_status=exc.status)
    if isinstance(exc, UnusableOutput):  # refused or invalid, but billed (at batch price)
        usage = exc.usage
        attempt.tokens_in = getattr(usage, "input_tokens", 0)
        attempt.tokens_out = getattr(usage, "output_tokens", 0)
        attempt.tokens_cached = getattr(usage, "cached_tokens", 0)
        attempt.cost_usd = exc.cost_usd
    return attempt


@dataclass
class _Line:
    """One job's serialised batch line, until it is sent."""

    job_id: int
    attempt: int
    template_name: str
    template_hash: str
    text: bytes


def _split(lines: list[_Line], max_requests: int, max_bytes: int) -> list[list[_Line]]:
    """Consecutive batches of at most ``max_requests`` lines and ``max_bytes`` bytes."""
    batches: list[list[_Line]] = []
    current: list[_Line] = []
    size = 0
    for entry in lines:
        need = len(entry.text) + 1
        if need > max_bytes:
            raise ConfigError(f"job {entry.job_id}: its batch line is {need:,} bytes, more than "
                              f"a batch may hold ({max_bytes:,})",
                              "Raise llm.batch_max_bytes (within the provider's limit) or "
                              "draft this job live.")
        if current and (len(current) >= max_requests or size + need > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(entry)
        size += need
    if current:
        batches.append(current)
    return batches


async def submit_batches(ledger: Ledger, settings: Settings, secrets: Secrets, *,
                         limit: int | None = None, **options: Any) -> SubmitSummary:
    """``enrich run --mode batch``: reconcile, then submit pending jobs (one at a time per
    ledger: ``AlreadyRunning`` while another batch command runs)."""
    with B.hold_batches(ledger):
        mode = BatchMode(ledger, settings, secrets, **options)
        try:
            return await mode.submit(limit=limit)
        finally:
            await mode.aclose()


async def poll_batches(ledger: Ledger, settings: Settings, secrets: Secrets,
                       **options: Any) -> PollSummary:
    """``enrich batches poll``: reconcile, then collect every ended batch."""
    with B.hold_batches(ledger):
        mode = BatchMode(ledger, settings, secrets, **options)
        try:
            return await mode.poll()
        finally:
            await mode.aclose()


async def cancel_batch(ledger: Ledger, settings: Settings, secrets: Secrets, ref: str,
                       **options: Any) -> B.BatchRow:
    """``enrich batches cancel ID``."""
    with B.hold_batches(ledger):
        mode = BatchMode(ledger, settings, secrets, **options)
        try:
            return await mode.cancel(ref)
        finally:
            await mode.aclose()


def batch_overview(ledger: Ledger, *, limit: int | None = 50) -> dict[str, Any]:
    """The batches (newest first), what is in flight and since when, and what batch mode
    saved against live prices: what ``batches list``, ``nightly`` and ``report`` show."""
    rows = B.list_batches(ledger, limit=limit)
    flight = B.list_batches(ledger, states=B.OPEN_STATES)
    return {
        "batches": [r.as_dict() for r in rows],
        "in_flight": {"batches": len(flight), "jobs": sum(r.jobs for r in flight),
                      "oldest_submitted_at": min((r.submitted_at or r.created_at
                                                  for r in flight), default=None)},
        "savings": B.savings(ledger),
    }
