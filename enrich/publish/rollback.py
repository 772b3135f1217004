"""``enrich rollback``: put back what a publish replaced, unless the store moved on since.

The backup is the ``previous`` of each confirmed publishes row: the store's values for
exactly the keys publish wrote, with ``None`` for meta keys that did not exist (sending
``value: null`` deletes them again). A rollback is itself a write, so it goes through the
same write-ahead rows, batch writer and crash recovery as publish; its conflict check asks
"does the store still hold what it held right after our write (``publishes.stored``: the
store rewrites copy on the way in, so never what was sent), with the ``date_modified_gmt``
the store gave our write?". The restore is sent with the two HTML fields slashed
(``fields.wire``), so the store ends up holding the old values byte for byte. If not, a
person edited the product after our publish and their edit wins: the product is reported,
not rolled back. (A variable product's date may also have moved to the date of enrich's own
write to one of its variations: WooCommerce saves the parent with each variation. That move
alone is not a conflict.) Variations are restored through their
parent's ``/variations/batch``, products first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from enrich.config import Settings
from enrich.errors import InputError, UsageError
from enrich.ledger import JobStatus, Ledger
from enrich.ledger import publishes as P
from enrich.publish import fields as F
from enrich.publish import records as R
from enrich.publish.reports import RollbackReport
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


def _decide(row: P.WrittenRow, product: dict[str, Any] | None,
            own_dates: frozenset[str] = frozenset()) -> tuple[RollbackItem, dict]:
    """The rollback decision for one published product, and the item that restores it.

    ``own_dates``: the dates enrich's own variation writes gave this (variable) product.
    """
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
    # The store rewrites copy on the way in (unslash, kses, entities): what it held right
    # after the write is the baseline, not what was sent (older rows have only the latter).
    baseline = row.stored if row.stored is not None else row.written
    if not F.same(now, baseline, variation=row.parent_id is not None):
        item.action = "conflict"
        item.changes = [{"field": c["field"], "old": c["old"], "new": c["new"]}
                        for c in F.changes(now, F.normalized(baseline))
                        if c["old"] != c["new"]]
        names = ", ".join(c["field"] for c in item.changes) or "the published fields"
        item.reason = f"edited in the store after the publish ({names}); the edit is kept"
        return item, {}
    if date != row.store_date and date not in own_dates:
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
    rows = P.written_rows(ledger, run_id=run_id,
                          source_ids=[str(s) for s in source_ids] if source_ids else None)
    report = RollbackReport(run_id=None, dry_run=dry_run)
    found = {r.source_id for r in rows}
    report.not_found = [str(s) for s in source_ids or () if str(s) not in found]
    reader = BatchWriter(ledger, store, run_id=0, mode="rollback", settled=Settled())
    if dry_run:
        for start in range(0, len(rows), 100):
            chunk = rows[start:start + 100]
            report.items += [item for item, _ in _decide_chunk(ledger, reader, chunk)]
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
        rows = P.written_rows(ledger, run_id=run_id,
                              source_ids=[str(s) for s in source_ids] if source_ids else None)
        writer = BatchWriter(ledger, store, run_id=rb_run, mode="rollback",
                             settled=report.settled, max_rounds=max_rounds, pause_s=pause_s,
                             settle_s=settle_s, on_batch=on_batch)
        batch_no = 0
        for start in range(0, len(rows), batch_size):
            page = rows[start:start + batch_size]
            for chunk, decisions in _by_endpoint(page, _decide_chunk(ledger, writer, page)):
                batch_no += 1
                report.items += _restore(ledger, writer, rb_run, batch_no, chunk, decisions)
        exit_reason = "completed"  # conflicts and errors are outcomes; see report.ok
    except KeyboardInterrupt:
        exit_reason = "signal"
        raise
    finally:
        ledger.finish_run(rb_run, exit_reason=exit_reason, counts=report.counts())
        R.release_lock(ledger, rb_run)
    report.exit_reason = exit_reason
    return report


Decision = tuple[RollbackItem, dict[str, Any], dict[str, Any] | None]


def _decide_chunk(ledger: Ledger, reader: BatchWriter, chunk: Sequence[P.WrittenRow]
                  ) -> list[tuple[RollbackItem, Decision]]:
    """Read the chunk's products back and decide each; (item, (item, restore, product))."""
    current = reader.read([(r.source_id, r.parent_id) for r in chunk])
    own = P.variation_write_dates(ledger, [r.source_id for r in chunk if r.parent_id is None])
    out = []
    for row in chunk:
        product = current.get(row.source_id)
        item, restore = _decide(row, product, own.get(row.source_id, frozenset()))
        out.append((item, (item, restore, product)))
    return out


def _by_endpoint(rows: Sequence[P.WrittenRow], decided: list[tuple[RollbackItem, Decision]]
                 ) -> list[tuple[list[P.WrittenRow], list[Decision]]]:
    """Rows and their decisions per batch request: products first, then each parent's
    variations."""
    groups: dict[str | None, tuple[list[P.WrittenRow], list[Decision]]] = {None: ([], [])}
    for row, (_, decision) in zip(rows, decided, strict=True):
        members, decisions = groups.setdefault(row.parent_id, ([], []))
        members.append(row)
        decisions.append(decision)
    return [group for group in groups.values() if group[0]]


def _restore(ledger: Ledger, writer: BatchWriter, rb_run: int, batch_no: int,
             chunk: list[P.WrittenRow], decisions: list[Decision]) -> list[RollbackItem]:
    """Record one batch's decisions (planned rows for the restores), send, settle."""
    settled = writer.settled
    entries: list[Entry] = []
    decided: list[RollbackItem] = []
    with ledger.transaction() as c:
        for row, (item, restore, product) in zip(chunk, decisions, strict=True):
            decided.append(item)
            common = {"run_id": rb_run, "job_id": row.job_id, "draft_id": row.draft_id,
                      "source_id": row.source_id, "batch_no": batch_no}
            previous = {"item": F.values_in(product or {}, restore),
                        "date_modified_gmt": (product or {}).get("date_modified_gmt"),
                        "publish_row": row.id}
            if row.parent_id is not None:
                previous["parent_id"] = row.parent_id
            if item.action == "restore":
                row_id = P.insert_row(c, **common, written=restore, previous=previous,
                                      outcome="planned")
                entries.append(Entry(row_id, row.job_id, row.draft_id, row.source_id,
                                     restore, previous, batch_no))
            elif item.action == "nothing":
                P.insert_row(c, **common, written={}, previous=previous,
                             outcome="rolled_back", error=item.reason)
                P.move_if(ledger, c, row.job_id, JobStatus.PUBLISHED, JobStatus.ROLLED_BACK)
                item.outcome = "rolled_back"
            else:
                previous["changes"] = item.changes
                P.insert_row(c, **common, written={}, previous=previous,
                             outcome=item.action, error=item.reason)
                item.outcome = item.action
    if entries:
        writer.send(entries)
    for item in decided:
        if item.action != "restore":
            continue
        if item.source_id in settled.rolled_back:
            item.outcome = "rolled_back"
        elif item.source_id in settled.conflicts:
            item.outcome = "conflict"
            item.reason = settled.conflicts[item.source_id]
        else:
            item.outcome = "error"
            item.reason = settled.errors.get(item.source_id, "not confirmed by the store")
    return decided
