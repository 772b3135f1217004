"""``enrich publish``: approved drafts to the store, in batches, never over a person's edit.

One page of approved drafts at a time: read its products back from the store
(``include=``, edit context; variations through their parent's list), decide each
(``plan.plan_item``), then per batch request (the page's products, then each parent's
variations) commit the decisions and the previous values as ``planned`` rows, send, settle
each row from the response (``writer``). Reading per page keeps the window between the
conflict check and the write short.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from enrich.config import Settings
from enrich.ledger import JobStatus, Ledger
from enrich.ledger import publishes as P
from enrich.missing import Rules
from enrich.publish import records as R
from enrich.publish.plan import PlanItem, plan_item
from enrich.publish.reports import PublishReport
from enrich.publish.writer import (
    BatchWriter,
    Entry,
    ProductStore,
    Settled,
    recover,
    remember_published,
)


def plan_publish(ledger: Ledger, store: ProductStore, settings: Settings, *,
                 limit: int | None = None,
                 on_read: Callable[[int], None] | None = None) -> PublishReport:
    """The dry run: read the store, decide every approved draft, write nothing anywhere.

    ``on_read(n)`` hears how many products have been read back so far, after each page:
    on a large catalog the reading takes minutes."""
    report = PublishReport(run_id=None, dry_run=True)
    rules = Rules.from_settings(settings)
    report.pending_recovery = len(P.planned_rows(ledger))
    reader = BatchWriter(ledger, store, run_id=0, mode="publish", settled=Settled())
    for chunk in P.iter_approved(ledger, page=100, limit=limit):
        report.items += _plan_page(ledger, reader, chunk, rules)
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
        batch_no = 0
        for chunk in P.iter_approved(ledger, page=batch_size, limit=limit):
            plans = _plan_page(ledger, writer, chunk, rules)
            report.items.extend(plans)
            for group in _by_endpoint(plans):
                batch_no += 1
                entries = _record_plans(ledger, run_id, batch_no, group)
                if entries:
                    writer.send(entries)
                _outcomes(group, report.settled)
                for plan in group:  # recorded in the ledger; keep only the report's part
                    plan.item, plan.previous, plan.held = {}, {}, {}
        exit_reason = "completed"  # conflicts and errors are outcomes; see report.ok
    except KeyboardInterrupt:
        exit_reason = "signal"
        raise
    finally:
        ledger.finish_run(run_id, exit_reason=exit_reason, counts=report.counts())
        R.release_lock(ledger, run_id)
    report.exit_reason = exit_reason
    return report


def _plan_page(ledger: Ledger, reader: BatchWriter, chunk: Sequence[P.ApprovedDraft],
               rules: Rules) -> list[PlanItem]:
    """Read one page of approved drafts back from the store and decide each."""
    current = reader.read([(d.source_id, d.parent_id) for d in chunk])
    own = P.variation_write_dates(ledger, [d.source_id for d in chunk
                                           if d.product_type == "variable"])
    return [plan_item(d, current.get(d.source_id), rules, own.get(d.source_id, frozenset()))
            for d in chunk]


def _by_endpoint(plans: list[PlanItem]) -> list[list[PlanItem]]:
    """The page's plans per batch request: products first, then each parent's variations.

    Products go first so that a parent's own write is settled before its variations' writes
    move its ``date_modified_gmt`` (WooCommerce saves the parent with each variation).
    """
    groups: dict[str | None, list[PlanItem]] = {None: []}
    for plan in plans:
        groups.setdefault(plan.parent_id, []).append(plan)
    return [group for group in groups.values() if group]


def _record_plans(ledger: Ledger, run_id: int, batch_no: int,
                  plans: list[PlanItem]) -> list[Entry]:
    """One transaction: every decision of the batch, and the planned rows to send."""
    entries: list[Entry] = []
    with ledger.transaction() as c:
        for plan in plans:
            previous = {"item": plan.previous, "date_modified_gmt": plan.store_date,
                        "content_hash": plan.store_hash}
            if plan.parent_id is not None:
                previous["parent_id"] = plan.parent_id
            common = {"run_id": run_id, "job_id": plan.job_id, "draft_id": plan.draft_id,
                      "source_id": plan.source_id, "batch_no": batch_no}
            if plan.action == "write":
                row_id = P.insert_row(c, **common, written=plan.item, previous=previous,
                                      outcome="planned")
                entries.append(Entry(row_id, plan.job_id, plan.draft_id, plan.source_id,
                                     plan.item, previous, batch_no))
            elif plan.action == "conflict":
                previous["changes"] = plan.changes
                previous["seen_at_conflict"] = {"content_hash": plan.store_hash,
                                                "date_modified_gmt": plan.store_date}
                P.insert_row(c, **common, written=plan.item, previous=previous,
                             outcome="conflict", error=plan.reason)
                P.move_if(ledger, c, plan.job_id, JobStatus.APPROVED, JobStatus.CONFLICT,
                          last_error=plan.reason, run_id=run_id)
                plan.outcome = "conflict"
            elif plan.action == "error":
                P.insert_row(c, **common, written=plan.item, previous=previous,
                             outcome="error", error=plan.reason)
                P.note_error(c, plan.job_id, f"publish: {plan.reason}")
                plan.outcome = "error"
            else:  # unchanged: the store already holds the approved text
                row_id = P.insert_row(c, **common, written={}, previous=previous,
                                      outcome="written", error=plan.reason,
                                      store_date=plan.store_date)
                if P.move_if(ledger, c, plan.job_id, JobStatus.APPROVED, JobStatus.PUBLISHED,
                             last_error=None, run_id=run_id):
                    remember_published(c, plan.source_id, row_id, plan.held)
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
