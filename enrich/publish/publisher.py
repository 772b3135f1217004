"""``enrich publish``: approved drafts to the store, in batches, never over a person's edit.

One batch at a time: read the batch's products back from the store (``include=``, edit
context), decide each (``plan.plan_item``), commit the decisions and the previous values as
``planned`` rows, send, settle each row from the response (``writer``). Reading per batch
keeps the window between the conflict check and the write to one request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from enrich.config import Settings
from enrich.ledger import JobStatus, Ledger
from enrich.missing import Rules
from enrich.publish import records as R
from enrich.publish.plan import PlanItem, plan_item
from enrich.publish.writer import BatchWriter, Entry, ProductStore, Settled, recover


@dataclass
class PublishReport:
    """What a publish did (or, for a dry run, would do)."""

    run_id: int | None
    dry_run: bool
    items: list[PlanItem] = field(default_factory=list)
    settled: Settled = field(default_factory=Settled)
    recovered: Settled = field(default_factory=Settled)
    pending_recovery: int = 0  # dry run: interrupted writes the next real run settles first
    exit_reason: str = "completed"

    def counts(self) -> dict[str, int]:
        out = {"approved": len(self.items), "write": 0, "unchanged": 0, "conflict": 0,
               "error": 0}
        for item in self.items:
            out[item.action] += 1
        if not self.dry_run:
            out["written"] = len(self.settled.written)
            out["conflict"] = sum(1 for i in self.items if i.outcome == "conflict")
            out["error"] = sum(1 for i in self.items if i.outcome == "error")
            out["batch_requests"] = self.settled.batch_requests
            out["recovered_written"] = len(self.recovered.written)
            out["recovered_conflicts"] = len(self.recovered.conflicts)
            out["recovered_resent"] = len(self.recovered.requeued)
        return out

    @property
    def ok(self) -> bool:
        """False when something approved was not published (conflict or error)."""
        c = self.counts()
        return c["conflict"] == 0 and c["error"] == 0 and not self.recovered.conflicts

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "dry_run": self.dry_run, "counts": self.counts(),
                "exit_reason": self.exit_reason, "pending_recovery": self.pending_recovery,
                "recovered": self.recovered.as_dict(),
                "items": [i.as_dict() for i in self.items]}


def plan_publish(ledger: Ledger, store: ProductStore, settings: Settings, *,
                 limit: int | None = None,
                 on_read: Callable[[int], None] | None = None) -> PublishReport:
    """The dry run: read the store, decide every approved draft, write nothing anywhere.

    ``on_read(n)`` hears how many products have been read back so far, after each page:
    on a large catalog the reading takes minutes."""
    report = PublishReport(run_id=None, dry_run=True)
    rules = Rules.from_settings(settings)
    report.pending_recovery = len(R.planned_rows(ledger))
    reader = BatchWriter(ledger, store, run_id=0, mode="publish", settled=Settled())
    for chunk in R.iter_approved(ledger, page=100, limit=limit):
        current = reader.read([d.source_id for d in chunk])
        for draft in chunk:
            report.items.append(plan_item(draft, current.get(draft.source_id), rules))
        if on_read is not None:
            on_read(len(report.items))
    return report


def publish(ledger: Ledger, store: ProductStore, settings: Settings, *,
            limit: int | None = None, max_rounds: int = 3, pause_s: float = 1.0,
            settle_s: float | None = None,
            on_batch: Callable[[int, int], None] | None = None) -> PublishReport:
    """Write every approved draft (at most ``limit``) in batches of ``publish.batch_size``.

    Interrupted writes of an earlier run are settled first (``writer.recover``; rows younger
    than ``settle_s``, default ``store.timeout_s``, get that long to land), so running it
    again after a crash is always right, and running it twice writes nothing new.
    """
    batch_size = settings.publish.batch_size
    rules = Rules.from_settings(settings)
    if settle_s is None:
        settle_s = settings.store.timeout_s
    run_id = ledger.start_run("publish", {"limit": limit, "batch_size": batch_size})
    report = PublishReport(run_id=run_id, dry_run=False)
    try:
        R.acquire_lock(ledger, run_id)
    except BaseException:
        ledger.finish_run(run_id, exit_reason="error", counts={"refused": "locked"})
        raise
    exit_reason = "error"
    try:
        recover(ledger, store, run_id=run_id, settled=report.recovered,
                settle_s=settle_s)
        writer = BatchWriter(ledger, store, run_id=run_id, mode="publish",
                             settled=report.settled, max_rounds=max_rounds, pause_s=pause_s,
                             settle_s=settle_s,
                             on_batch=on_batch)
        pages = R.iter_approved(ledger, page=batch_size, limit=limit)
        for batch_no, chunk in enumerate(pages, start=1):
            current = writer.read([d.source_id for d in chunk])
            plans = [plan_item(d, current.get(d.source_id), rules) for d in chunk]
            report.items.extend(plans)
            entries = _record_plans(ledger, run_id, batch_no, plans)
            if entries:
                writer.send(entries)
            _outcomes(plans, report.settled)
            for plan in plans:  # recorded in the ledger; keep only the report's part
                plan.item, plan.previous = {}, {}
        exit_reason = "completed"  # conflicts and errors are outcomes; see report.ok
    except KeyboardInterrupt:
        exit_reason = "signal"
        raise
    finally:
        ledger.finish_run(run_id, exit_reason=exit_reason, counts=report.counts())
        R.release_lock(ledger, run_id)
    report.exit_reason = exit_reason
    return report


def _record_plans(ledger: Ledger, run_id: int, batch_no: int,
                  plans: list[PlanItem]) -> list[Entry]:
    """One transaction: every decision of the batch, and the planned rows to send."""
    entries: list[Entry] = []
    with ledger.transaction() as c:
        for plan in plans:
            previous = {"item": plan.previous, "date_modified_gmt": plan.store_date,
                        "content_hash": plan.store_hash}
            common = {"run_id": run_id, "job_id": plan.job_id, "draft_id": plan.draft_id,
                      "source_id": plan.source_id, "batch_no": batch_no}
            if plan.action == "write":
                row_id = R.insert_row(c, **common, written=plan.item, previous=previous,
                                      outcome="planned")
                entries.append(Entry(row_id, plan.job_id, plan.draft_id, plan.source_id,
                                     plan.item, previous, batch_no))
            elif plan.action == "conflict":
                previous["changes"] = plan.changes
                previous["seen_at_conflict"] = {"content_hash": plan.store_hash,
                                                "date_modified_gmt": plan.store_date}
                R.insert_row(c, **common, written=plan.item, previous=previous,
                             outcome="conflict", error=plan.reason)
                R.move_if(ledger, c, plan.job_id, JobStatus.APPROVED, JobStatus.CONFLICT,
                          last_error=plan.reason, run_id=run_id)
                plan.outcome = "conflict"
            elif plan.action == "error":
                R.insert_row(c, **common, written=plan.item, previous=previous,
                             outcome="error", error=plan.reason)
                R.note_error(c, plan.job_id, f"publish: {plan.reason}")
                plan.outcome = "error"
            else:  # unchanged: the store already holds the approved text
                R.insert_row(c, **common, written={}, previous=previous, outcome="written",
                             error=plan.reason, store_date=plan.store_date)
                R.move_if(ledger, c, plan.job_id, JobStatus.APPROVED, JobStatus.PUBLISHED,
                          last_error=None, run_id=run_id)
                plan.outcome = "unchanged"
    return entries


def _outcomes(plans: list[PlanItem], settled: Settled) -> None:
    written = set(settled.written)
    for plan in plans:
        if plan.action != "write":
            continue
        if plan.source_id in written:
            plan.outcome = "written"
        elif plan.source_id in settled.conflicts:
            plan.outcome, plan.reason = "conflict", settled.conflicts[plan.source_id]
        else:
            plan.outcome = "error"
            plan.reason = settled.errors.get(plan.source_id, "not confirmed by the store")
