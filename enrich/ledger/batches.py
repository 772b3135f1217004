"""Batch mode's queries: the ``batches`` and ``batch_items`` rows, and the job moves they make.

Why a module of its own: only batch mode (``enrich.worker.batch``) reads and writes these
tables, and each of its steps is one transaction whose order is what makes a crash harmless:

1. ``record_intent``: the batch row (state ``intent``) and one item per job, with the custom
   ids sent to the provider; the jobs, claimed as for a live run, are re-leased to
   ``batch:<id>`` with no expiry, so neither lease expiry nor a dead-owner sweep hands them to
   another worker while the provider may already hold them.
2. ``record_submitted``: the provider's batch id, and the jobs ``processing -> submitted``,
   in the transaction that records the provider's answer.
3. ``abandon_intent``: reconcile found no provider batch for an intent; its jobs go back to
   ``pending`` with their attempt refunded (nothing was sent, nothing was paid).
4. ``ingest``: results, joined on ``custom_id``; an item is settled once (``outcome`` set in
   the same transaction as the job's move), so a poll killed half-way and run again ingests
   each result exactly once.

Status changes go through ``Ledger.move``: the state machine stays the one guard.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from enrich.errors import LedgerError, NotFound
from enrich.ledger import locks
from enrich.ledger.ledger import Attempt, DraftRecord, Ledger, _loads, _placeholders
from enrich.ledger.states import JobStatus, check_transition

#: Batch states, in the order a batch goes through them.
STATES = ("intent", "submitted", "ended", "collected", "abandoned")
#: States whose batch still needs the provider (reconcile, poll or ingest).
OPEN_STATES = ("intent", "submitted", "ended")
#: A lease that never expires by itself: an intent's jobs wait for reconcile, not the clock.
INTENT_LEASE_EXPIRES = 1e12

_CUSTOM_ID = re.compile(r"^([0-9a-f]{8})-e(\d+)-j(\d+)-a(\d+)$")
#: Width of the batch number in a custom id: lines are written before the intent has its id,
#: with a placeholder of this width, so a batch's size is known before it is recorded.
BATCH_ID_WIDTH = 8


def custom_id(tag: str, batch_id: int, job_id: int, attempt: int) -> str:
    """``<ledger tag>-e<batch>-j<job>-a<attempt>``: fits every provider's custom id rules
    (Anthropic: ``^[a-zA-Z0-9_-]{1,64}$``), names this ledger and the local batch, so a
    provider batch the ledger never recorded can be recognised from any of its lines, and
    joins a result to the one try of the one job it answers."""
    return f"{tag}-e{batch_id:0{BATCH_ID_WIDTH}d}-j{job_id}-a{attempt}"


def parse_custom_id(text: str) -> tuple[str, int, int, int] | None:
    """(ledger tag, batch id, job id, attempt) of an id from ``custom_id``; None if foreign."""
    match = _CUSTOM_ID.match(text or "")
    if match is None:
        return None
    return match[1], int(match[2]), int(match[3]), int(match[4])


def ledger_tag(ledger: Ledger) -> str:
    """This ledger's tag in custom ids and batch metadata (made once, kept in ``meta``): two
    ledgers on one provider account never take each other's batches for their own."""
    tag = ledger.get_meta("batch_tag")
    if tag is None:
        tag = secrets.token_hex(4)
        ledger.set_meta("batch_tag", tag)
    return tag


def hold_batches(ledger: Ledger) -> locks.HeldLock:
    """One batch command at a time per ledger (submit, poll, cancel): a reconcile must never
    see another process's intent whose create request is still on its way."""
    try:
        return locks.acquire(locks.lock_file(ledger.path, "batches"), command="batches")
    except locks.Locked as busy:
        raise locks.AlreadyRunning(busy.path, busy.holder) from None


def intent_owner(batch_id: int) -> str:
    return f"batch:{batch_id}"


@dataclass
class BatchRow:
    id: int
    provider: str
    model: str
    provider_batch_id: str | None
    state: str
    provider_status: str | None
    jobs: int
    bytes: int
    run_id: int | None
    created_at: float
    submitted_at: float | None
    ended_at: float | None
    collected_at: float | None
    drafted: int
    failed: int
    requeued: int
    discarded: int
    cost_usd: float
    live_cost_usd: float
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IntentItem:
    """One job's line in a batch about to be sent."""

    job_id: int
    attempt: int
    template_name: str | None = None
    template_hash: str | None = None


@dataclass
class OpenItem:
    """A line of a batch whose result is not ingested yet, with its job as it is now."""

    custom_id: str
    job_id: int
    attempt: int
    template_name: str | None
    template_hash: str | None
    kind: str
    source_id: str
    status: str
    attempts: int
    payload: dict[str, Any]

    @property
    def current(self) -> bool:
        """Still the job's live try: submitted, and no retry or redraft since."""
        return self.status == JobStatus.SUBMITTED and self.attempts == self.attempt


@dataclass
class ItemOutcome:
    """How one result settles its job; built by batch mode from the provider's line.

    ``status`` is ``drafted`` (with ``draft``), ``failed`` (``permanent`` for a dead letter
    at once; else failed or, out of attempts, dead), or ``pending`` (expired, canceled, rate
    limited: the attempt is refunded, as a live 429's is).
    """

    custom_id: str
    status: str
    attempt: Attempt
    draft: DraftRecord | None = None
    permanent: bool = False
    retry_in_s: float = 0.0
    live_cost_usd: float = 0.0


@dataclass
class IngestCounts:
    drafted: int = 0
    failed: int = 0
    dead: int = 0
    requeued: int = 0
    discarded: int = 0
    duplicate: int = 0  # results already ingested by an earlier poll
    settled: dict[str, str] = field(default_factory=dict)  # custom_id -> outcome

    def add(self, other: IngestCounts) -> None:
        for name in ("drafted", "failed", "dead", "requeued", "discarded", "duplicate"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.settled.update(other.settled)


def _row(row: sqlite3.Row) -> BatchRow:
    return BatchRow(**dict(row))


# -- the submit side ----------------------------------------------------------------------

def record_intent(ledger: Ledger, *, tag: str, provider: str, model: str, claim_owner: str,
                  items: Sequence[IntentItem], size_bytes: int,
                  run_id: int | None = None) -> BatchRow:
    """Write the intent (batch row and items) and re-lease its jobs to ``batch:<id>``.

    The jobs must be ``processing`` and leased to ``claim_owner`` (the submitter's claim);
    anything else is a LedgerError and nothing is written.
    """
    if not items:
        raise LedgerError("a batch needs at least one job")

    def go(c: sqlite3.Connection) -> int:
        now = time.time()
        batch_id = int(c.execute(
            "INSERT INTO batches (provider, model, state, jobs, bytes, run_id, created_at) "
            "VALUES (?, ?, 'intent', ?, ?, ?, ?) RETURNING id",
            (provider, model, len(items), size_bytes, run_id, now)).fetchone()[0])
        ids = [item.job_id for item in items]
        moved = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            moved += c.execute(
                f"UPDATE jobs SET lease_owner = ?, lease_expires_at = ?, updated_at = ? "
                f"WHERE status = 'processing' AND lease_owner = ? "
                f"AND id IN ({_placeholders(chunk)})",
                (intent_owner(batch_id), INTENT_LEASE_EXPIRES, now, claim_owner, *chunk),
            ).rowcount
        if moved != len(ids):
            raise LedgerError(f"batch intent: {len(ids) - moved} of {len(ids)} job(s) are no "
                              f"longer leased to {claim_owner}",
                              "Another process took them; run the command again.")
        c.executemany(
            "INSERT INTO batch_items (custom_id, batch_id, job_id, attempt, template_name, "
            "template_hash) VALUES (?, ?, ?, ?, ?, ?)",
            [(custom_id(tag, batch_id, i.job_id, i.attempt), batch_id, i.job_id, i.attempt,
              i.template_name, i.template_hash) for i in items])
        return batch_id
    return get_batch(ledger, int(ledger._write(go)))


def record_submitted(ledger: Ledger, batch_id: int, *, provider_batch_id: str,
                     provider_status: str | None, submitted_at: float | None = None) -> int:
    """The provider accepted the batch: its id, and the jobs ``processing -> submitted``, in
    one transaction. Returns how many jobs moved (an intent's jobs that sync superseded in
    the meantime stay superseded; their results will be discarded)."""
    check_transition(0, JobStatus.PROCESSING, JobStatus.SUBMITTED)

    def go(c: sqlite3.Connection) -> int:
        now = time.time()
        cur = c.execute(
            "UPDATE batches SET state = 'submitted', provider_batch_id = ?, "
            "provider_status = ?, submitted_at = ? WHERE id = ? AND state = 'intent'",
            (provider_batch_id, provider_status, submitted_at or now, batch_id))
        if cur.rowcount != 1:
            raise LedgerError(f"batch {batch_id} is not an intent any more",
                              "See `enrich batches list`.")
        return int(c.execute(
            "UPDATE jobs SET status = 'submitted', lease_owner = NULL, lease_expires_at = NULL,"
            " updated_at = ? WHERE status = 'processing' AND lease_owner = ?",
            (now, intent_owner(batch_id))).rowcount)
    return int(ledger._write(go))


def abandon_intent(ledger: Ledger, batch_id: int, reason: str) -> int:
    """No provider batch carries this intent: its jobs go back to pending, attempt refunded."""
    def go(c: sqlite3.Connection) -> int:
        now = time.time()
        c.execute("UPDATE batches SET state = 'abandoned', error = ?, ended_at = ? "
                  "WHERE id = ? AND state = 'intent'", (reason, now, batch_id))
        rows = c.execute(
            "UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, "
            "attempts = MAX(attempts - 1, 0), last_error = ?, updated_at = ? "
            "WHERE status = 'processing' AND lease_owner = ? RETURNING id",
            (reason, now, intent_owner(batch_id))).fetchall()
        c.execute("UPDATE batch_items SET outcome = 'pending', ingested_at = ? "
                  "WHERE batch_id = ? AND outcome IS NULL", (now, batch_id))
        return len(rows)
    return int(ledger._write(go))


# -- reads --------------------------------------------------------------------------------

def get_batch(ledger: Ledger, batch_id: int) -> BatchRow:
    row = ledger.conn.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone()
    if row is None:
        raise NotFound(f"no batch with id {batch_id}", "List them with `enrich batches list`.")
    return _row(row)


def find_batch(ledger: Ledger, ref: str) -> BatchRow:
    """A batch by local id or by the provider's id (what a user copies from a console)."""
    row = ledger.conn.execute("SELECT * FROM batches WHERE provider_batch_id = ?",
                              (ref,)).fetchone()
    if row is None and ref.isdigit():
        row = ledger.conn.execute("SELECT * FROM batches WHERE id = ?", (int(ref),)).fetchone()
    if row is None:
        raise NotFound(f"no batch {ref!r} in the ledger (neither a local nor a provider id)",
                       "List them with `enrich batches list`.")
    return _row(row)


def list_batches(ledger: Ledger, *, states: Sequence[str] | None = None,
                 limit: int | None = None) -> list[BatchRow]:
    sql = "SELECT * FROM batches"
    args: list[Any] = []
    if states:
        sql += f" WHERE state IN ({_placeholders(states)})"
        args += list(states)
    sql += " ORDER BY id DESC LIMIT ?"
    args.append(limit if limit is not None else -1)
    return [_row(r) for r in ledger.conn.execute(sql, args)]


def known_provider_ids(ledger: Ledger, provider: str) -> set[str]:
    return {r[0] for r in ledger.conn.execute(
        "SELECT provider_batch_id FROM batches WHERE provider = ? "
        "AND provider_batch_id IS NOT NULL", (provider,))}


def item_ids(ledger: Ledger, batch_id: int) -> set[str]:
    """Every custom id of a batch (what ``find`` looks for at the provider)."""
    return {r[0] for r in ledger.conn.execute(
        "SELECT custom_id FROM batch_items WHERE batch_id = ?", (batch_id,))}


def open_items(ledger: Ledger, batch_id: int) -> dict[str, OpenItem]:
    """The batch's lines not ingested yet, by custom id, with their jobs as they are now."""
    rows = ledger.conn.execute(
        "SELECT i.custom_id, i.job_id, i.attempt, i.template_name, i.template_hash, j.kind, "
        "j.source_id, j.status, j.attempts, j.payload FROM batch_items i "
        "JOIN jobs j ON j.id = i.job_id WHERE i.batch_id = ? AND i.outcome IS NULL",
        (batch_id,)).fetchall()
    found = {}
    for r in rows:
        data = dict(r)
        data["payload"] = _loads(data["payload"]) or {}
        found[r["custom_id"]] = OpenItem(**data)
    return found


def update_remote(ledger: Ledger, batch_id: int, *, provider_status: str | None,
                  ended: bool, error: str | None = None) -> None:
    """What the provider says of a submitted batch; ``ended`` moves it to ``ended``."""
    def go(c: sqlite3.Connection) -> None:
        if ended:
            c.execute("UPDATE batches SET provider_status = ?, error = COALESCE(?, error), "
                      "state = 'ended', ended_at = COALESCE(ended_at, ?) "
                      "WHERE id = ? AND state = 'submitted'",
                      (provider_status, error, time.time(), batch_id))
        else:
            c.execute("UPDATE batches SET provider_status = ?, error = COALESCE(?, error) "
                      "WHERE id = ?", (provider_status, error, batch_id))
    ledger._write(go)


# -- ingest -------------------------------------------------------------------------------

def ingest(ledger: Ledger, batch_id: int, outcomes: Sequence[ItemOutcome], *,
           max_attempts: int, run_id: int | None = None) -> IngestCounts:
    """Settle results in one transaction: each item at most once, each job only if this
    line is still its live try (else the result is discarded: a superseded or retried job)."""
    def go(c: sqlite3.Connection) -> IngestCounts:
        counts = IngestCounts()
        now = time.time()
        cost = live = 0.0
        for out in outcomes:
            item = c.execute(
                "SELECT i.outcome, i.job_id, i.attempt, j.status, j.attempts, j.kind, "
                "j.source_id FROM batch_items i JOIN jobs j ON j.id = i.job_id "
                "WHERE i.custom_id = ? AND i.batch_id = ?", (out.custom_id, batch_id),
            ).fetchone()
            if item is None:
                continue  # not ours (the caller checks custom ids before)
            if item["outcome"] is not None:
                counts.duplicate += 1
                continue
            settled = _settle(ledger, c, item, out, max_attempts, run_id, now)
            cost += out.attempt.cost_usd
            live += out.live_cost_usd
            setattr(counts, settled, getattr(counts, settled) + 1)
            counts.settled[out.custom_id] = settled
            c.execute("UPDATE batch_items SET outcome = ?, ingested_at = ? WHERE custom_id = ?",
                      ("pending" if settled == "requeued" else settled, now, out.custom_id))
        c.execute(
            "UPDATE batches SET drafted = drafted + ?, failed = failed + ?, "
            "requeued = requeued + ?, discarded = discarded + ?, cost_usd = cost_usd + ?, "
            "live_cost_usd = live_cost_usd + ? WHERE id = ?",
            (counts.drafted, counts.failed + counts.dead, counts.requeued, counts.discarded,
             cost, live, batch_id))
        return counts
    return ledger._write(go)  # type: ignore[no-any-return]


def _settle(ledger: Ledger, c: sqlite3.Connection, item: sqlite3.Row, out: ItemOutcome,
            max_attempts: int, run_id: int | None, now: float) -> str:
    job_id = int(item["job_id"])
    if item["status"] != JobStatus.SUBMITTED or item["attempts"] != item["attempt"]:
        # Paid for all the same: the attempt is kept for the report, the draft is not.
        ledger._insert_attempt(c, job_id, run_id, Attempt(
            out.attempt.started_at, "discarded", finished_at=out.attempt.finished_at,
            error_class="Superseded", error=f"the job is {item['status']} now; this batch "
            "result came too late", tokens_in=out.attempt.tokens_in,
            tokens_out=out.attempt.tokens_out, tokens_cached=out.attempt.tokens_cached,
            cost_usd=out.attempt.cost_usd))
        return "discarded"
    if out.status == "drafted" and out.draft is not None:
        ledger.move(c, job_id, JobStatus.SUBMITTED, JobStatus.DRAFTED, last_error=None,
                    run_id=run_id)
        ledger._insert_attempt(c, job_id, run_id, out.attempt)
        ledger.insert_draft(c, job_id, item["kind"], item["source_id"], out.draft, out.attempt)
        return "drafted"
    reason = f"{out.attempt.error_class or 'Error'}: {out.attempt.error or 'failed'}"
    if out.status == "pending":
        ledger.move(c, job_id, JobStatus.SUBMITTED, JobStatus.PENDING, last_error=reason,
                    attempts=max(0, int(item["attempts"]) - 1), next_attempt_at=now,
                    run_id=run_id)
        ledger._insert_attempt(c, job_id, run_id, out.attempt)
        return "requeued"
    dead = out.permanent or int(item["attempts"]) >= max_attempts
    if dead and not out.permanent:
        reason = f"gave up after {item['attempts']} attempts; last: {reason}"
    ledger.move(c, job_id, JobStatus.SUBMITTED, JobStatus.DEAD if dead else JobStatus.FAILED,
                last_error=reason, next_attempt_at=now + max(0.0, out.retry_in_s),
                run_id=run_id)
    ledger._insert_attempt(c, job_id, run_id, out.attempt)
    return "dead" if dead else "failed"


def mark_collected(ledger: Ledger, batch_id: int) -> bool:
    """``ended -> collected`` once every line is settled; False while some are not."""
    def go(c: sqlite3.Connection) -> bool:
        left = c.execute("SELECT COUNT(*) FROM batch_items WHERE batch_id = ? "
                         "AND outcome IS NULL", (batch_id,)).fetchone()[0]
        if left:
            return False
        c.execute("UPDATE batches SET state = 'collected', collected_at = ? "
                  "WHERE id = ? AND state = 'ended'", (time.time(), batch_id))
        return True
    return bool(ledger._write(go))


def savings(ledger: Ledger) -> dict[str, Any]:
    """What batch mode cost and what the same usage would have cost live."""
    row = ledger.conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(drafted), 0), COALESCE(SUM(cost_usd), 0), "
        "COALESCE(SUM(live_cost_usd), 0) FROM batches WHERE state != 'abandoned'").fetchone()
    cost, live = float(row[2]), float(row[3])
    return {"batches": int(row[0]), "drafted": int(row[1]), "cost_usd": round(cost, 6),
            "live_cost_usd": round(live, 6), "saved_usd": round(live - cost, 6)}
