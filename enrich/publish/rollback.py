"""``enrich rollback``: put back what a publish replaced, unless the store moved on since.

The backup is the ``previous`` of each confirmed publishes row: the store's values for
exactly the keys publish wrote, with ``None`` for meta keys that did not exist (sending
``value: null`` deletes them again). A rollback is itself a write, so it goes through the
same write-ahead rows, batch writer and crash recovery as publish; its conflict check asks
"does the store still hold what we published, with the ``date_modified_gmt`` the store gave
our write?". If not, a person edited the product after our publish and their edit wins: the
product is reported, not rolled back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from enrich.config import Settings
from enrich.errors import InputError, UsageError
from enrich.ledger import JobStatus, Ledger
from enrich.publish import fields as F
from enrich.publish import records as R
from enrich.publish.writer import BatchWriter, Entry, ProductStore, Settled, recover
from enrich.woo.validate import check_product_update


@dataclass
class RollbackItem:
    """What rollback does (or did) for one product."""

    job_id: int
    source_id: str
    publish_row: int
    publish_run: int
    action: str  # restore | nothing | conflict | error
    name: str | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)  # {field, old, new}
    reason: str | None = None
    outcome: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "source_id": self.source_id, "name": self.name,
                "publish_row": self.publish_row, "publish_run": self.publish_run,
                "action": self.action, "outcome": self.outcome, "changes": self.changes,
                "reason": self.reason}


@dataclass
class RollbackReport:
    run_id: int | None
    dry_run: bool
    items: list[RollbackItem] = field(default_factory=list)
    settled: Settled = field(default_factory=Settled)
    recovered: Settled = field(default_factory=Settled)
    exit_reason: str = "completed"
    #: Product ids asked for that have no published write to undo.
    not_found: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"selected": len(self.items), "restore": 0, "nothing": 0, "conflict": 0,
               "error": 0}
        for item in self.items:
            out[item.action] += 1
        if not self.dry_run:
            out["rolled_back"] = sum(1 for i in self.items if i.outcome == "rolled_back")
            out["conflict"] = sum(1 for i in self.items if i.outcome == "conflict")
            out["error"] = sum(1 for i in self.items if i.outcome == "error")
            out["batch_requests"] = self.settled.batch_requests
        return out

    @property
    def ok(self) -> bool:
        c = self.counts()
        return c["conflict"] == 0 and c["error"] == 0

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "dry_run": self.dry_run, "counts": self.counts(),
                "exit_reason": self.exit_reason, "not_found": self.not_found,
                "items": [i.as_dict() for i in self.items]}


def _decide(row: R.WrittenRow, product: dict[str, Any] | None) -> tuple[RollbackItem, dict]:
    """The rollback decision for one published product, and the item that restores it."""
    item = RollbackItem(job_id=row.job_id, source_id=row.source_id, publish_row=row.id,
                        publish_run=row.run_id, action="restore",
                        name=(product or {}).get("name"))
    restore = dict(row.previous.get("item") or {})
    if not row.written:
        item.action = "nothing"
        item.reason = "the publish wrote nothing (the store already held the text)"
        return item, {}
    if product is None:
        item.action, item.reason = "conflict", "the product no longer exists in the store"
        return item, {}
    now = F.values_in(product, row.written)
    date = product.get("date_modified_gmt")
    if not F.same(now, row.written):
        item.action = "conflict"
        item.changes = [{"field": c["field"], "old": c["old"], "new": c["new"]}
                        for c in F.changes(now, F.normalized(row.written))
                        if c["old"] != c["new"]]
        names = ", ".join(c["field"] for c in item.changes) or "the published fields"
        item.reason = f"edited in the store after the publish ({names}); the edit is kept"
        return item, {}
    if date != row.store_date:
        item.action = "conflict"
        item.changes = [{"field": "date_modified_gmt", "old": row.store_date, "new": date}]
        item.reason = (f"saved in the store after the publish (date_modified_gmt "
                       f"{row.store_date} -> {date}); not rolled back")
        return item, {}
    item.changes = F.changes(restore, now)
    try:
        check_product_update(restore, f"product {row.source_id}")
    except InputError as exc:
        item.action, item.reason = "error", exc.message
        return item, {}
    return item, restore


def rollback(ledger: Ledger, store: ProductStore, settings: Settings, *,
             run_id: int | None = None, source_ids: Sequence[str] | None = None,
             dry_run: bool = False, max_rounds: int = 3, pause_s: float = 1.0,
             settle_s: float | None = None,
             on_batch: Callable[[int, int], None] | None = None) -> RollbackReport:
    """Restore what publish run ``run_id`` (or the last publish of ``source_ids``) replaced."""
    batch_size = settings.publish.batch_size
    if settle_s is None:
        settle_s = settings.store.timeout_s
    if (run_id is None) == (not source_ids):
        raise UsageError("rollback needs either a publish run id or product ids, not both",
                         "Use `enrich rollback --run ID` or `enrich rollback --product ID`.")
    if run_id is not None:
        run = ledger.get_run(run_id)
        if run["kind"] != "publish":
            raise UsageError(f"run {run_id} is a {run['kind']} run, not a publish",
                             "List publish runs with `enrich report` and pass one of those.")
    rows = R.written_rows(ledger, run_id=run_id,
                          source_ids=[str(s) for s in source_ids] if source_ids else None)
    report = RollbackReport(run_id=None, dry_run=dry_run)
    found = {r.source_id for r in rows}
    report.not_found = [str(s) for s in source_ids or () if str(s) not in found]
    reader = BatchWriter(ledger, store, run_id=0, mode="rollback", settled=Settled())
    if dry_run:
        for start in range(0, len(rows), 100):
            chunk = rows[start:start + 100]
            current = reader.read([r.source_id for r in chunk])
            report.items += [_decide(r, current.get(r.source_id))[0] for r in chunk]
        return report
    rb_run = ledger.start_run("rollback", {"run": run_id, "products": list(source_ids or [])})
    report.run_id = rb_run
    try:
        R.acquire_lock(ledger, rb_run)
    except BaseException:
        ledger.finish_run(rb_run, exit_reason="error", counts={"refused": "locked"})
        raise
    exit_reason = "error"
    try:
        recover(ledger, store, run_id=rb_run, settled=report.recovered,
                settle_s=settle_s)
        # Recovery may have settled rows: select again.
        rows = R.written_rows(ledger, run_id=run_id,
                              source_ids=[str(s) for s in source_ids] if source_ids else None)
        writer = BatchWriter(ledger, store, run_id=rb_run, mode="rollback",
                             settled=report.settled, max_rounds=max_rounds, pause_s=pause_s,
                             settle_s=settle_s, on_batch=on_batch)
        for batch_no, start in enumerate(range(0, len(rows), batch_size), start=1):
            chunk = rows[start:start + batch_size]
            current = writer.read([r.source_id for r in chunk])
            entries: list[Entry] = []
            decided: list[RollbackItem] = []
            with ledger.transaction() as c:
                for row in chunk:
                    product = current.get(row.source_id)
                    item, restore = _decide(row, product)
                    decided.append(item)
                    common = {"run_id": rb_run, "job_id": row.job_id, "draft_id": row.draft_id,
                              "source_id": row.source_id, "batch_no": batch_no}
                    previous = {"item": F.values_in(product or {}, restore),
                                "date_modified_gmt": (product or {}).get("date_modified_gmt"),
                                "publish_row": row.id}
                    if item.action == "restore":
                        row_id = R.insert_row(c, **common, written=restore, previous=previous,
                                              outcome="planned")
                        entries.append(Entry(row_id, row.job_id, row.draft_id, row.source_id,
                                             restore, previous, batch_no))
                    elif item.action == "nothing":
                        R.insert_row(c, **common, written={}, previous=previous,
                                     outcome="rolled_back", error=item.reason)
                        R.move_if(ledger, c, row.job_id, JobStatus.PUBLISHED,
                                  JobStatus.ROLLED_BACK)
                        item.outcome = "rolled_back"
                    else:
                        previous["changes"] = item.changes
                        R.insert_row(c, **common, written={}, previous=previous,
                                     outcome=item.action, error=item.reason)
                        item.outcome = item.action
            if entries:
                writer.send(entries)
            for item in decided:
                if item.action != "restore":
                    continue
                if item.source_id in report.settled.rolled_back:
                    item.outcome = "rolled_back"
                elif item.source_id in report.settled.conflicts:
                    item.outcome = "conflict"
                    item.reason = report.settled.conflicts[item.source_id]
                else:
                    item.outcome = "error"
                    item.reason = report.settled.errors.get(item.source_id,
                                                            "not confirmed by the store")
            report.items += decided
        exit_reason = "completed"  # conflicts and errors are outcomes; see report.ok
    except KeyboardInterrupt:
        exit_reason = "signal"
        raise
    finally:
        ledger.finish_run(rb_run, exit_reason=exit_reason, counts=report.counts())
        R.release_lock(ledger, rb_run)
    report.exit_reason = exit_reason
    return report
