"""Publish's queries: the approved drafts it reads and the ``publishes`` rows it writes.

Why a module of its own: these queries serve only publish and rollback (approved drafts
joined to their sync snapshot, the publishes log), so they live beside ``Ledger`` rather
than in it, and ``enrich.publish`` holds no SQL. Functions that write take the connection of
an open ``Ledger.transaction()``, so a caller commits a whole batch's decisions at once.
Status changes still go through ``Ledger.move`` (``move_if``): the state machine stays the
one guard.

A ``publishes`` row is the backup and the write-ahead record at once. It is committed with
outcome ``planned`` before the batch request that carries it is sent; ``written`` holds the
item body sent (without id) and ``previous`` holds ``{"item": <the store's values for the
same keys>, "date_modified_gmt": <the store's before the write>, "content_hash": <sync's
hash of the product then>}`` (a conflict row adds ``changes`` and ``seen_at_conflict``; a
rollback row adds ``publish_row``, the publish it undoes; a variation's row adds
``parent_id``, which names the endpoint it is written through). After the store answers,
the row becomes ``written`` / ``error`` / ``conflict`` (rollback rows: ``rolled_back``). A
row still ``planned`` when no publish is running is the trace of a crash; publish's
``recover`` settles it by reading the store.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from enrich.errors import UsageError
from enrich.ledger.drafts import DRAFT_VIEW_COLUMNS, DRAFT_VIEW_FROM, DraftView
from enrich.ledger.ledger import Ledger, _dumps, _loads, _placeholders
from enrich.ledger.states import JobStatus


@dataclass
class ApprovedDraft(DraftView):
    """An approved draft (the record review shows) and the store state it was approved
    against: publish writes it only while the store still holds that state."""

    baseline_hash: str | None = None
    baseline_date: str | None = None
    baseline_from: str = "sync"  # or "conflict": re-approved after a conflict


def approved_drafts(ledger: Ledger, *, after_id: int = 0,
                    limit: int | None = None) -> list[ApprovedDraft]:
    """Approved product jobs with id > ``after_id``, in id order, at most ``limit``.

    Paged by job id so a publish of a whole catalog never holds it in memory. Should a
    product have two approved jobs, only the newest is published (the older one stays
    approved and is superseded by the next sync).

    When the job was re-approved after a conflict found by the check before writing, the
    baseline is the store state that conflict recorded (``seen_at_conflict``: what the
    reviewer looked at), not the older sync snapshot.
    """
    rows = ledger.conn.execute(
        f"""SELECT {DRAFT_VIEW_COLUMNS},
                  (SELECT previous FROM publishes c WHERE c.job_id = j.id
                     AND c.outcome = 'conflict' ORDER BY c.id DESC LIMIT 1) AS conflict_prev
           {DRAFT_VIEW_FROM}
           WHERE j.kind = 'product' AND j.status = 'approved' AND j.id > ?
             AND NOT EXISTS (SELECT 1 FROM jobs n WHERE n.kind = 'product'
                             AND n.source_id = j.source_id AND n.status = 'approved'
                             AND n.id > j.id)
           ORDER BY j.id LIMIT ?""",
        (after_id, -1 if limit is None else limit)).fetchall()
    result = []
    for row in rows:
        view = DraftView.from_row(row)
        product = view.product or {}
        draft = ApprovedDraft(**vars(view), baseline_hash=product.get("content_hash"),
                              baseline_date=product.get("date_modified_gmt"))
        seen = (_loads(row["conflict_prev"]) or {}).get("seen_at_conflict")
        if seen and seen.get("content_hash"):
            draft.baseline_hash = seen["content_hash"]
            draft.baseline_date = seen.get("date_modified_gmt")
            draft.baseline_from = "conflict"
        result.append(draft)
    return result


def iter_approved(ledger: Ledger, *, page: int, limit: int | None = None
                  ) -> Iterator[list[ApprovedDraft]]:
    """Pages of approved drafts (at most ``limit`` in all), read as they are needed."""
    after, left = 0, limit
    while left is None or left > 0:
        size = page if left is None else min(page, left)
        chunk = approved_drafts(ledger, after_id=after, limit=size)
        if not chunk:
            return
        yield chunk
        after = chunk[-1].job_id
        if left is not None:
            left -= len(chunk)


def insert_row(c: sqlite3.Connection, *, run_id: int, job_id: int, draft_id: int | None,
               source_id: str, batch_no: int | None, written: dict[str, Any],
               previous: dict[str, Any], outcome: str, error: str | None = None,
               store_date: str | None = None) -> int:
    """A publishes row; ``planned`` ones stay open until ``settle_row``."""
    now = time.time()
    cur = c.execute(
        "INSERT INTO publishes (run_id, job_id, draft_id, source_id, batch_no, written, "
        "previous, outcome, error, store_date_modified_gmt, created_at, finished_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, job_id, draft_id, str(source_id), batch_no, _dumps(written),
         _dumps(previous), outcome, error, store_date, now,
         None if outcome == "planned" else now))
    return int(cur.lastrowid or 0)


def settle_row(c: sqlite3.Connection, row_id: int, outcome: str, *, error: str | None = None,
               store_date: str | None = None, stored: dict[str, Any] | None = None) -> None:
    """planned -> its outcome; refuses to touch a row that is no longer planned.

    ``stored``: the written keys as the store holds them after the write (it rewrites copy
    on the way in), which is what a later rollback compares the store with."""
    cur = c.execute(
        "UPDATE publishes SET outcome = ?, error = ?, store_date_modified_gmt = ?, "
        "finished_at = ?, stored = ? WHERE id = ? AND outcome = 'planned'",
        (outcome, error, store_date, time.time(), None if stored is None else _dumps(stored),
         row_id))
    if cur.rowcount != 1:
        raise UsageError(f"publishes row {row_id} was settled by someone else",
                         "Another publish or rollback is running on this ledger; "
                         "let it finish and run the command again.")


def move_if(ledger: Ledger, c: sqlite3.Connection, job_id: int, old: JobStatus,
            new: JobStatus, **columns: Any) -> bool:
    """Move the job when it is still ``old`` (sync may have superseded it meanwhile)."""
    row = c.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None or row["status"] != old.value:
        return False
    ledger.move(c, job_id, old, new, **columns)
    return True


def note_error(c: sqlite3.Connection, job_id: int, message: str) -> None:
    """Keep the reason on the job (its status stays approved: the next publish retries)."""
    c.execute("UPDATE jobs SET last_error = ?, updated_at = ? WHERE id = ?",
              (message, time.time(), job_id))


# -- what enrich published, as the store kept it ------------------------------------------

def record_published(c: sqlite3.Connection, source_id: str, publish_id: int | None,
                     values: dict[str, tuple[Any, str | None]]) -> None:
    """Remember, per field, the value the store holds after enrich's write and its
    fingerprint (``{field: (value, fingerprint)}``); a newer publish replaces the row."""
    now = time.time()
    c.executemany(
        "INSERT INTO published_values (source_id, field, value, fingerprint, publish_id, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source_id, field) DO UPDATE SET "
        "value = excluded.value, fingerprint = excluded.fingerprint, "
        "publish_id = excluded.publish_id, created_at = excluded.created_at",
        [(str(source_id), name, _dumps(value), fp, publish_id, now)
         for name, (value, fp) in values.items()])


def forget_published(c: sqlite3.Connection, source_id: str) -> None:
    """A rollback put the old values back: nothing of enrich's is in the store any more."""
    c.execute("DELETE FROM published_values WHERE source_id = ?", (str(source_id),))


def published_values(ledger: Ledger, source_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """source id -> {field: the value enrich published, as stored}, for the given products."""
    ids = [str(s) for s in source_ids]
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        for row in ledger.conn.execute(
                f"SELECT source_id, field, value FROM published_values "
                f"WHERE source_id IN ({_placeholders(part)})", part):
            out.setdefault(row[0], {})[row[1]] = _loads(row[2])
    return out


@dataclass
class PendingRow:
    """A publishes row left ``planned``: a publish or rollback stopped before settling it."""

    id: int
    run_id: int
    run_kind: str
    job_id: int
    source_id: str
    written: dict[str, Any]
    previous: dict[str, Any]
    created_at: float

    @property
    def parent_id(self) -> str | None:
        return self.previous.get("parent_id")


def planned_rows(ledger: Ledger) -> list[PendingRow]:
    rows = ledger.conn.execute(
        "SELECT p.id, p.run_id, r.kind AS run_kind, p.job_id, p.source_id, p.written, "
        "p.previous, p.created_at FROM publishes p LEFT JOIN runs r ON r.id = p.run_id "
        "WHERE p.outcome = 'planned' ORDER BY p.id").fetchall()
    return [PendingRow(id=r["id"], run_id=r["run_id"], run_kind=r["run_kind"] or "publish",
                       job_id=r["job_id"], source_id=r["source_id"],
                       written=_loads(r["written"]) or {}, previous=_loads(r["previous"]) or {},
                       created_at=r["created_at"])
            for r in rows]


@dataclass
class WrittenRow:
    """A confirmed publish write that a rollback may undo."""

    id: int
    run_id: int
    job_id: int
    draft_id: int | None
    source_id: str
    written: dict[str, Any]
    previous: dict[str, Any]
    store_date: str | None
    #: The written keys as the store held them right after the write (None: an older row).
    stored: dict[str, Any] | None = None

    @property
    def parent_id(self) -> str | None:
        return self.previous.get("parent_id")


def written_rows(ledger: Ledger, *, run_id: int | None = None,
                 source_ids: list[str] | None = None) -> list[WrittenRow]:
    """The last confirmed publish write of each product whose job is still published."""
    where = ["p.outcome = 'written'", "j.status = 'published'", "r.kind = 'publish'"]
    args: list[Any] = []
    if run_id is not None:
        where.append("p.run_id = ?")
        args.append(run_id)
    if source_ids:
        where.append(f"p.source_id IN ({_placeholders(source_ids)})")
        args += [str(s) for s in source_ids]
    rows = ledger.conn.execute(
        f"SELECT p.* FROM publishes p JOIN jobs j ON j.id = p.job_id "
        f"JOIN runs r ON r.id = p.run_id WHERE {' AND '.join(where)} ORDER BY p.id",
        args).fetchall()
    last: dict[str, sqlite3.Row] = {}
    for row in rows:
        last[row["source_id"]] = row
    return [WrittenRow(id=r["id"], run_id=r["run_id"], job_id=r["job_id"],
                       draft_id=r["draft_id"], source_id=r["source_id"],
                       written=_loads(r["written"]) or {}, previous=_loads(r["previous"]) or {},
                       store_date=r["store_date_modified_gmt"], stored=_loads(r["stored"]))
            for r in sorted(last.values(), key=lambda r: r["id"])]


def rows_for_run(ledger: Ledger, run_id: int) -> list[dict[str, Any]]:
    """Every publishes row of one run, JSON columns decoded (reports and tests read it)."""
    rows = ledger.conn.execute("SELECT * FROM publishes WHERE run_id = ? ORDER BY id",
                               (run_id,)).fetchall()
    out = []
    for row in rows:
        data = dict(row)
        data["written"] = _loads(data["written"])
        data["previous"] = _loads(data["previous"])
        data["stored"] = _loads(data.get("stored"))
        out.append(data)
    return out


def variation_write_dates(ledger: Ledger, parent_ids: Sequence[str]
                          ) -> dict[str, frozenset[str]]:
    """Per variable product, the ``date_modified_gmt`` values our own variation writes got.

    WooCommerce saves the parent whenever one of its variations is saved, so the parent's
    date moves to the variation's. Publish and rollback accept that one move on the parent
    (its copy still compared by hash) instead of calling enrich's own write a conflict.
    """
    ids = sorted({str(p) for p in parent_ids if p})
    if not ids:
        return {}
    rows = ledger.conn.execute(
        "SELECT json_extract(previous, '$.parent_id') AS parent, store_date_modified_gmt "
        "FROM publishes WHERE outcome IN ('written', 'rolled_back') AND written != '{}' "
        "AND store_date_modified_gmt IS NOT NULL "
        f"AND json_extract(previous, '$.parent_id') IN ({_placeholders(ids)})", ids).fetchall()
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(str(row["parent"]), set()).add(row["store_date_modified_gmt"])
    return {parent: frozenset(dates) for parent, dates in found.items()}


# -- who is writing ------------------------------------------------------------------------
# The lock itself is an flock (``enrich.publish.records``); this meta row only names the run
# that holds it, so the next holder can tell a run that was killed mid-way from one that
# finished.

WRITER_KEY = "publish.lock"


def take_writer_slot(ledger: Ledger, run_id: int) -> None:
    """Record ``run_id`` as the writer; a previous writer's unfinished run is closed as killed."""
    with ledger.transaction() as c:
        row = c.execute("SELECT value FROM meta WHERE key = ?", (WRITER_KEY,)).fetchone()
        last = _loads(row[0]) if row and row[0] else None
        if last and last.get("run_id") is not None:
            # Its holder died without finishing its run (SIGKILL, power loss): say so.
            c.execute("UPDATE runs SET finished_at = ?, exit_reason = 'signal' "
                      "WHERE id = ? AND finished_at IS NULL", (time.time(), last["run_id"]))
        c.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                  "SET value = excluded.value",
                  (WRITER_KEY, _dumps({"pid": os.getpid(), "run_id": run_id})))


def leave_writer_slot(ledger: Ledger, run_id: int) -> None:
    with ledger.transaction() as c:
        row = c.execute("SELECT value FROM meta WHERE key = ?", (WRITER_KEY,)).fetchone()
        holder = _loads(row[0]) if row and row[0] else None
        if holder and holder.get("run_id") == run_id:
            c.execute("DELETE FROM meta WHERE key = ?", (WRITER_KEY,))
