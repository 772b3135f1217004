"""The job ledger: one SQLite file that is the truth about every record.

Why it looks like this:
- WAL mode and short ``BEGIN IMMEDIATE`` transactions let several worker processes and a
  reviewer share one file; ``busy_timeout`` plus a retry loop keep "database is locked"
  from ever reaching a caller.
- A claim is one transaction that first returns expired leases to ``pending`` (recording
  the lost attempt) and then leases up to N due jobs with ``UPDATE … RETURNING``, so no two
  workers ever hold the same job and a worker killed with SIGKILL loses nothing.
- Completing a job checks the lease owner, so a worker whose lease expired cannot write a
  second draft for a job someone else has taken over.
- Every status change goes through ``states.check_transition`` or SQL built from
  ``states.sources_of``.
"""

from __future__ import annotations

import os
import random
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database

from enrich.errors import LedgerError, LedgerUnusable, LedgerVersionError, NotFound
from enrich.ledger import locks
from enrich.ledger.codec import dumps as _dumps
from enrich.ledger.codec import loads as _loads
from enrich.ledger.rows import ProductRow
from enrich.ledger.schema import KNOWN, migrations
from enrich.ledger.states import (
    CLAIMABLE,
    SUPERSEDABLE,
    JobStatus,
    check_transition,
    sources_of,
)

KINDS = ("product", "invoice")


def owner_id() -> str:
    """A lease owner name that says which process on which machine holds the job."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


# sqlite3 binds str, int, float and bytearray as they are, and looks every other value up in
# its adapter registry; for None (which this ledger binds for every NULL) that lookup ends
# in an AttributeError raised and swallowed per value (CPython 3.11): 5.5 % of the
# instructions of a sync's ledger writes, counted by callgrind. With an adapter it is one
# dict lookup, and the value still binds as NULL.
sqlite3.register_adapter(type(None), lambda _none: None)


class LeaseLost(LedgerError):
    """The job is no longer leased to this worker (its lease expired and it moved on)."""


#: Columns in ``ProductRow``'s order, then ``synced_at`` (and ``input_flags`` when given).
_UPSERT_PRODUCT = """INSERT INTO products (source_id, parent_id, type, sku, name, status, snapshot,
       content_hash, date_modified_gmt, state, missing, reason, stock_status,
       total_sales, fingerprints, synced_at{columns})
   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?{values})
   ON CONFLICT (source_id) DO UPDATE SET
       parent_id = excluded.parent_id, type = excluded.type, sku = excluded.sku,
       name = excluded.name, status = excluded.status,
       snapshot = excluded.snapshot, content_hash = excluded.content_hash,
       date_modified_gmt = excluded.date_modified_gmt, state = excluded.state,
       missing = excluded.missing, reason = excluded.reason,
       synced_at = excluded.synced_at, stock_status = excluded.stock_status,
       total_sales = excluded.total_sales, fingerprints = excluded.fingerprints{flags}"""


def _now() -> float:
    return time.time()


def _read_only(path: Path, why: str) -> LedgerUnusable:
    return LedgerUnusable(
        f"cannot write to ledger {path} ({why})",
        f"enrich writes to the ledger and keeps {path.name}-wal and {path.name}-shm beside "
        "it: make the file and its folder writable by the user that runs enrich, or point "
        "--db at a writable copy.")


def _unusable(path: Path, exc: sqlite3.Error) -> LedgerError:
    """What SQLite said on opening, as the one line a user can act on."""
    text = str(exc)
    if "not a database" in text:
        return LedgerUnusable(
            f"{path} is not an enrich ledger (not a SQLite database: {text})",
            "Point --db or [ledger] path at the ledger file (enrich.db), or move this file "
            "away to start a new ledger.")
    if "malformed" in text or "corrupt" in text:
        return LedgerUnusable(
            f"ledger {path} is damaged ({text})",
            f"Restore it from a backup, or rescue what is readable with "
            f"`sqlite3 {path} .recover | sqlite3 recovered.db` and point --db at that.")
    if "readonly" in text or "unable to open" in text or "read-only" in text:
        return _read_only(path, text)
    if "locked" in text or "busy" in text:
        return LedgerError(
            f"ledger {path} stayed locked by another process ({text})",
            "Wait for the other enrich command to finish, then run this one again.")
    return LedgerUnusable(f"cannot use ledger {path}: {text}")


def _placeholders(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    source_id: str
    input_hash: str
    payload: dict[str, Any]
    status: str
    priority: int
    attempts: int
    next_attempt_at: float
    lease_owner: str | None
    lease_expires_at: float | None
    last_error: str | None
    run_id: int | None
    created_at: float
    updated_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        data = dict(row)
        data["payload"] = _loads(data["payload"]) or {}
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class EnqueueItem:
    kind: str
    source_id: str
    input_hash: str
    payload: dict[str, Any] = field(default_factory=dict)
    priority: int = 0
    status: str = JobStatus.PENDING  # or needs_data / invalid, recorded but not claimable
    reason: str | None = None


@dataclass
class EnqueueCounts:
    queued: int = 0
    unchanged: int = 0
    superseded: int = 0
    revived: int = 0


@dataclass
class Attempt:
    """What one try at a job cost and how it ended; written in the same transaction."""

    started_at: float
    outcome: str
    finished_at: float = field(default_factory=_now)
    error_class: str | None = None
    error: str | None = None
    http_status: int | None = None
    latency_ms: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    cost_usd: float = 0.0


@dataclass
class DraftRecord:
    fields: dict[str, Any]
    template_name: str | None = None
    template_hash: str | None = None
    provider: str | None = None
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    flags: list[dict[str, str]] = field(default_factory=list)


_JOB_COLUMNS = (
    "id, kind, source_id, input_hash, payload, status, priority, attempts, next_attempt_at, "
    "lease_owner, lease_expires_at, last_error, run_id, created_at, updated_at"
)


#: The jobs a worker may take now, in the order it takes them. The status list is spelled
#: exactly as the partial index ``jobs_due`` (priority DESC, id) spells its WHERE, literally:
#: SQLite uses a partial index only when it can see the query implies the index's condition,
#: which it cannot with bound parameters, and without the index every claim sorted all
#: waiting jobs (64 ms per claim at 100,000). ``INDEXED BY`` makes a mismatch an error, not
#: a silent slowdown.
_DUE = ("INDEXED BY jobs_due WHERE status IN ("
        + ", ".join(f"'{s.value}'" for s in CLAIMABLE) + ") AND next_attempt_at <= ?")
_DUE_ORDER = "ORDER BY priority DESC, id"


T = TypeVar("T")

#: The page cache of a ledger connection, in KiB (SQLite's default is 2,000).
CACHE_KIB = 32_768
#: The page size of a new ledger (SQLite's default is 4,096; an existing file keeps its own).
#: A product row carries its snapshot, and sync reads the whole products table after every
#: stream (duplicate SKUs, flag counts, boilerplate, counts by state): in 16 kB pages those
#: scans took 0.15 s against 0.20-0.22 s for 50,000 products, and writing the products
#: 18.0-18.4 against 19.5-21.3 µs each, for the same bytes written to the disk.
PAGE_BYTES = 16_384


class CommitGroup:
    """Write transactions committed together (``Ledger.commit_group``).

    The caller's thread holds the group's lock, so only it uses the connection, except
    while it waits in ``between`` for its next item (sync waiting for the store's next
    page): then a watcher thread commits the group once it is due, and the write lock
    goes to other writers instead of being held for as long as the store takes.
    """

    def __init__(self, ledger: Ledger, seconds: float) -> None:
        self._ledger = ledger
        self._seconds = seconds
        #: When the open group began (None: no group is open).
        self._since: float | None = None
        self._lock = threading.Lock()
        self._lock.acquire()
        self._failed: BaseException | None = None
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="enrich-commit-group",
                                         daemon=True)
        self._watcher.start()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write of the group: a savepoint of it, opening the group if none is open."""
        conn = self._ledger.conn
        if self._since is None or not conn.in_transaction:
            self._ledger._retrying(lambda: conn.execute("BEGIN IMMEDIATE"))
            self._since = time.monotonic()
        with self._ledger.transaction() as c:
            yield c

    def between(self, items: Iterable[T]) -> Iterator[T]:
        """``items``, the group being committed when due while the next one is awaited."""
        iterator = iter(items)
        while True:
            self._lock.release()
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                self._lock.acquire()
                self._raise_failure()
            yield item

    def commit_if_due(self) -> None:
        if self._since is not None and time.monotonic() - self._since >= self._seconds:
            self.commit()

    def commit(self) -> None:
        """Commit the open group, if there is one (rolled back if the commit fails)."""
        conn = self._ledger.conn
        was_open, self._since = self._since is not None, None
        if not (was_open and conn.in_transaction):
            return
        try:
            self._ledger._retrying(lambda: conn.execute("COMMIT"))
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Stop the watcher, then commit what is open."""
        self._stop.set()
        self._watcher.join()
        try:
            self._raise_failure()
            self.commit()
        finally:
            self._lock.release()

    def _raise_failure(self) -> None:
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise failed

    def _watch(self) -> None:
        # A look a few times per ``seconds``, never so rarely that closing waits on it.
        poll = min(max(self._seconds / 4, 0.01), 0.1)
        while not self._stop.is_set():
            if not self._lock.acquire(timeout=poll):
                continue  # the caller is at work on the connection
            try:
                if self._failed is None and not self._stop.is_set():
                    self.commit_if_due()
            except BaseException as exc:  # the caller raises it when it next takes over
                self._failed = exc
            finally:
                self._lock.release()
            self._stop.wait(poll)


class Ledger:
    """The ledger file. Open one per process (or thread); it is cheap."""

    def __init__(self, path: str | Path, *, lease_s: float = 300.0,
                 busy_timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.lease_s = lease_s
        if self.path.parent and not self.path.parent.exists():
            raise LedgerUnusable(
                f"ledger folder {self.path.parent} does not exist",
                "Create the folder, or set [ledger] path / --db to a file in an existing one.",
            )
        if self.path.is_dir():
            raise LedgerUnusable(f"ledger path {self.path} is a folder, not a file",
                                 f"Set [ledger] path (or --db) to a file, e.g. "
                                 f"{self.path / 'enrich.db'}.")
        if self.path.is_file() and not os.access(self.path, os.W_OK):
            # SQLite would open it and fail at the first write, halfway through a command.
            raise _read_only(self.path, "the file is read-only")
        try:
            self.conn = sqlite3.connect(
                str(self.path), timeout=busy_timeout_s, isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise _unusable(self.path, exc) from None
        try:
            self.conn.row_factory = sqlite3.Row
            self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            # Before the WAL: switching to it writes a new file's header, page size included.
            self.conn.execute(f"PRAGMA page_size = {PAGE_BYTES}")
            self._retrying(lambda: self.conn.execute("PRAGMA journal_mode = WAL"))
            self.conn.execute("PRAGMA synchronous = NORMAL")
            # Room for a sync's commit group (``commit_group``) of some 25 pages of products:
            # at the default 2 MB, SQLite spills them to the WAL before the commit and then
            # writes them again.
            self.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.db = Database(self.conn)
            self._migrate()
        except (sqlite3.Error, LedgerError) as exc:
            self.conn.close()
            if isinstance(exc, LedgerError):
                raise
            raise _unusable(self.path, exc) from None

    # -- plumbing ---------------------------------------------------------------------------

    def _migrate(self) -> None:
        # Tables first, then migrations: another process creating this ledger commits each
        # migration with its record, so a fresh ledger never looks like a foreign database.
        tables = [t for t in self.db.table_names()
                  if not t.startswith("sqlite_") and t != "_sqlite_migrations"]
        applied = [m.name for m in migrations.applied(self.db)]
        if tables and not applied:
            shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
            raise LedgerUnusable(
                f"{self.path} is a SQLite database but not an enrich ledger (it holds "
                f"{shown}); enrich will not add its tables to another program's database.",
                "Point --db or [ledger] path at the ledger file (enrich.db), or at a new file "
                "for a new ledger.")
        unknown = [name for name in applied if name not in KNOWN]
        if unknown:
            raise LedgerVersionError(
                f"ledger {self.path} was written by a newer enrich (it has migration "
                f"{unknown[-1]}, this version knows up to {KNOWN[-1]}); refusing to touch it."
            )
        if len(applied) < len(KNOWN):
            def apply() -> None:
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.execute("COMMIT")
                migrations.apply(self.db)
            self._retrying(apply)

    def schema_version(self) -> list[str]:
        return [m.name for m in migrations.applied(self.db)]

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _retrying(fn: Any, attempts: int = 50) -> Any:
        """Retry on SQLITE_BUSY/LOCKED that outlived busy_timeout (e.g. WAL checkpoints)."""
        for i in range(attempts):
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                msg = str(exc)
                if ("locked" not in msg and "busy" not in msg) or i == attempts - 1:
                    raise
                time.sleep(min(0.5, 0.01 * (2 ** min(i, 6))) * random.random())
        raise AssertionError("unreachable")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction; it takes the write lock up front (no upgrade deadlock).

        Inside another one it is a savepoint of it: its writes commit with the outer ones,
        and an error rolls back only its own (which is how sync writes a page's jobs and
        product rows, inside a ``commit_group``).
        """
        if self.conn.in_transaction:
            self.conn.execute("SAVEPOINT inner")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK TO inner")
                self.conn.execute("RELEASE inner")
                raise
            self.conn.execute("RELEASE inner")
            return
        self._retrying(lambda: self.conn.execute("BEGIN IMMEDIATE"))
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self._retrying(lambda: self.conn.execute("COMMIT"))

    @contextmanager
    def commit_group(self, seconds: float) -> Iterator[CommitGroup]:
        """Several write transactions committed as one, about every ``seconds``.

        For a stream of small writes (sync's pages): each commit appends every page it
        changed to the WAL, and the pages a stream shares between writes (index leaves and
        interior pages, the table's last leaf) are written again at each one. One commit
        per page of 100 products wrote 1.7 times the final ledger to the WAL; grouping
        them writes 40 % less to the disk and leaves that CPU to the work.

        Each ``group.transaction()`` is a savepoint of the open group; the group commits
        when ``group.commit_if_due()`` finds it older than ``seconds``, while the caller
        waits in ``group.between(items)`` for its next item and the group is due, and
        when the block ends. An error rolls back the failing transaction, and what the
        group held before it is committed (as separate commits would have kept it). A
        process killed loses at most the open group, about ``seconds`` of work; the ledger
        is consistent at every commit, as before. Other writers wait for the write lock
        about ``seconds`` at most, however long the caller waits for its next item.
        """
        group = CommitGroup(self, seconds)
        try:
            yield group
        except BaseException:
            with suppress(sqlite3.Error):  # the error that ended the group is the one to see
                group.close()
            raise
        group.close()

    def _write(self, fn: Any) -> Any:
        """Run ``fn(conn)`` in a write transaction, retried whole if the lock is contended."""
        def once() -> Any:
            with self.transaction() as conn:
                return fn(conn)
        return self._retrying(once)

    # -- meta -------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str | None) -> None:
        self._write(lambda c: c.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value)))

    # -- runs -------------------------------------------------------------------------------

    def start_run(self, kind: str, params: dict[str, Any] | None = None) -> int:
        def go(c: sqlite3.Connection) -> int:
            cur = c.execute(
                "INSERT INTO runs (kind, started_at, pid, params) VALUES (?, ?, ?, ?)",
                (kind, _now(), os.getpid(), _dumps(params or {})))
            return int(cur.lastrowid or 0)
        return int(self._write(go))

    def finish_run(self, run_id: int, *, exit_reason: str,
                   counts: dict[str, Any] | None = None, cost_usd: float | None = None) -> None:
        def go(c: sqlite3.Connection) -> None:
            cost = cost_usd
            if cost is None:
                cost = c.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM attempts "
                                 "WHERE run_id = ?", (run_id,)).fetchone()[0]
            c.execute("UPDATE runs SET finished_at = ?, exit_reason = ?, counts = ?, "
                      "cost_usd = ? WHERE id = ?",
                      (_now(), exit_reason, _dumps(counts or {}), cost, run_id))
        self._write(go)

    def get_run(self, run_id: int) -> dict[str, Any]:
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise NotFound(f"no run with id {run_id}", "List runs with `enrich report`.")
        return self._run_dict(row)

    def last_run(self, kind: str | None = None) -> dict[str, Any] | None:
        sql = "SELECT * FROM runs" + (" WHERE kind = ?" if kind else "")
        row = self.conn.execute(sql + " ORDER BY id DESC LIMIT 1",
                                (kind,) if kind else ()).fetchone()
        return None if row is None else self._run_dict(row)

    def list_runs(self, kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        sql = "SELECT * FROM runs" + (" WHERE kind = ?" if kind else "")
        rows = self.conn.execute(sql + " ORDER BY id DESC LIMIT ?",
                                 ((kind,) if kind else ()) + (limit,)).fetchall()
        return [self._run_dict(r) for r in rows]

    @staticmethod
    def _run_dict(row: sqlite3.Row) -> dict[str, Any]:
        data = dict(row)
        data["params"] = _loads(data["params"]) or {}
        data["counts"] = _loads(data["counts"]) or {}
        return data

    # -- products ---------------------------------------------------------------------------

    def upsert_products(self, products: Iterable[ProductRow | dict[str, Any]]) -> None:
        """Insert or replace product snapshots (one transaction for the whole page).

        A row with ``input_flags`` (the list to store) replaces the product's flags; a row
        without keeps the ones stored. A dict may leave out what it does not know, and
        gives ``snapshot`` as a value or ``snapshot_json`` as the ledger spells it (with
        ``fingerprints_json`` then spelling its fingerprints).
        """
        now = _now()
        flagged, kept = [], []
        for p in products:
            if type(p) is ProductRow:
                if p.input_flags is None:
                    kept.append((*p[:15], now))
                else:
                    flagged.append((*p[:15], now, p.input_flags))
                continue
            snapshot_json = p.get("snapshot_json")
            if snapshot_json:
                fingerprints = p.get("fingerprints_json") or _dumps(
                    (_loads(snapshot_json) or {}).get("fingerprints"))
            else:
                snapshot_json = _dumps(p["snapshot"])
                fingerprints = _dumps(p["snapshot"].get("fingerprints"))
            row = (str(p["source_id"]), p.get("parent_id"), p.get("type"), p.get("sku"),
                   p.get("name"), p.get("status"), snapshot_json, p["content_hash"],
                   p.get("date_modified_gmt"), p.get("state", "complete"),
                   _dumps(p.get("missing")), p.get("reason"), p.get("stock_status"),
                   p.get("total_sales"), fingerprints, now)
            if p.get("input_flags") is None:
                kept.append(row)
            else:
                flagged.append((*row, _dumps(p["input_flags"])))

        def go(c: sqlite3.Connection) -> None:
            if kept:
                c.executemany(_UPSERT_PRODUCT.format(columns="", values="", flags=""), kept)
            if flagged:
                c.executemany(_UPSERT_PRODUCT.format(
                    columns=", input_flags", values=", ?",
                    flags=", input_flags = excluded.input_flags"), flagged)
        self._write(go)

    def get_product(self, source_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM products WHERE source_id = ?",
                                (str(source_id),)).fetchone()
        if row is None:
            return None
        data = dict(row)
        data["snapshot"] = _loads(data["snapshot"])
        data["missing"] = _loads(data["missing"])
        return data

    def product_hashes(self, source_ids: Sequence[str]) -> dict[str, str]:
        """Content hashes of already-synced products, to skip unchanged ones cheaply."""
        if not source_ids:
            return {}
        rows = self.conn.execute(
            f"SELECT source_id, content_hash FROM products WHERE source_id IN "
            f"({_placeholders(source_ids)})", [str(s) for s in source_ids]).fetchall()
        return {r[0]: r[1] for r in rows}

    # -- enqueue ----------------------------------------------------------------------------

    def enqueue(self, item: EnqueueItem) -> EnqueueCounts:
        return self.enqueue_many([item])

    def enqueue_many(self, items: Iterable[EnqueueItem]) -> EnqueueCounts:
        """Idempotent enqueue keyed by (kind, source id, input hash), one transaction.

        The same input again adds nothing. A new input for a source supersedes the jobs
        (and so the drafts) written from the old input, unless they are already published.
        An input that comes back to a value seen before revives that job.
        """
        # The same source twice in one call: the last input is the one that counts.
        batch = list({(i.kind, str(i.source_id)): i for i in items}.values())
        for item in batch:
            if item.kind not in KINDS:
                raise LedgerError(f"job for {item.source_id}: unknown kind {item.kind!r}")
            if item.status not in (JobStatus.PENDING, JobStatus.NEEDS_DATA, JobStatus.INVALID):
                raise LedgerError(f"job for {item.source_id}: cannot enqueue as {item.status}")
        counts = EnqueueCounts()
        if not batch:
            return counts
        now = _now()
        supersedable = tuple(s.value for s in SUPERSEDABLE)
        check_transition(0, JobStatus.SUPERSEDED, JobStatus.PENDING)  # revival is an edge

        def go(c: sqlite3.Connection) -> None:
            # One read of what the ledger already holds for these sources, so a first sync
            # (nothing there yet) costs one INSERT per item and nothing else.
            held = self._held_inputs(c, batch)
            stale, revive, fresh = [], [], []
            for i in batch:
                rows = held.get((i.kind, str(i.source_id)))
                if not rows:  # a source the ledger has no job for: a first sync's every one
                    fresh.append(i)
                    continue
                if any(h != i.input_hash and st in supersedable for h, st in rows):
                    stale.append(i)
                same = [st for h, st in rows if h == i.input_hash]
                if not same:
                    fresh.append(i)
                elif same[0] == JobStatus.SUPERSEDED:
                    revive.append(i)
            if stale:
                before = c.total_changes
                c.executemany(
                    f"UPDATE jobs SET status = 'superseded', lease_owner = NULL, "
                    f"lease_expires_at = NULL, updated_at = ? "
                    f"WHERE kind = ? AND source_id = ? AND input_hash != ? "
                    f"AND status IN ({_placeholders(supersedable)})",
                    [(now, i.kind, str(i.source_id), i.input_hash, *supersedable)
                     for i in stale])
                counts.superseded = c.total_changes - before
            if fresh:
                before = c.total_changes
                c.executemany(
                    "INSERT INTO jobs (kind, source_id, input_hash, payload, status, "
                    "priority, last_error, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (kind, source_id, input_hash) DO NOTHING",
                    [(i.kind, str(i.source_id), i.input_hash, _dumps(i.payload),
                      str(i.status), i.priority, i.reason, now, now) for i in fresh])
                counts.queued = c.total_changes - before
            if revive:
                before = c.total_changes
                c.executemany(
                    "UPDATE jobs SET status = ?, payload = ?, attempts = 0, "
                    "next_attempt_at = 0, last_error = ?, priority = ?, updated_at = ? "
                    "WHERE kind = ? AND source_id = ? AND input_hash = ? "
                    "AND status = 'superseded'",
                    [(str(i.status), _dumps(i.payload), i.reason, i.priority, now, i.kind,
                      str(i.source_id), i.input_hash) for i in revive])
                counts.revived = c.total_changes - before
        self._write(go)
        counts.unchanged = len(batch) - counts.queued - counts.revived
        return counts

    @staticmethod
    def _held_inputs(c: sqlite3.Connection, batch: Sequence[EnqueueItem]
                     ) -> dict[tuple[str, str], list[tuple[str, str]]]:
        """(kind, source id) -> [(input hash, status)] of the jobs already in the ledger."""
        held: dict[tuple[str, str], list[tuple[str, str]]] = {}
        by_kind: dict[str, list[str]] = {}
        for i in batch:
            by_kind.setdefault(i.kind, []).append(str(i.source_id))
        for kind, ids in by_kind.items():
            unique = list(dict.fromkeys(ids))
            for start in range(0, len(unique), 500):
                chunk = unique[start:start + 500]
                for source_id, input_hash, status in c.execute(
                        f"SELECT source_id, input_hash, status FROM jobs WHERE kind = ? "
                        f"AND source_id IN ({_placeholders(chunk)})", (kind, *chunk)):
                    held.setdefault((kind, source_id), []).append((input_hash, status))
        return held

    # -- claim and finish -------------------------------------------------------------------

    def claim(self, owner: str, limit: int = 1, *, kind: str | None = None,
              lease_s: float | None = None, now: float | None = None) -> list[Job]:
        """Lease up to ``limit`` due jobs to ``owner``, highest priority first (then oldest).

        Expired leases are reclaimed first. The order is ``due_jobs``'s, read off the
        ``jobs_due`` index, so a claim costs the same with 100 or 100,000 jobs waiting.
        """
        lease = self.lease_s if lease_s is None else lease_s

        def go(c: sqlite3.Connection) -> list[Job]:
            t = _now() if now is None else now
            self._expire_leases(c, t)
            kind_sql = " AND kind = ?" if kind else ""
            rows = c.execute(
                f"UPDATE jobs SET status = 'processing', lease_owner = ?, lease_expires_at = ?, "
                f"attempts = attempts + 1, updated_at = ? WHERE id IN ("
                f"  SELECT id FROM jobs {_DUE}{kind_sql} {_DUE_ORDER} LIMIT ?) "
                f"RETURNING {_JOB_COLUMNS}",
                (owner, t + lease, t, t, *((kind,) if kind else ()), limit),
            ).fetchall()
            return sorted((Job.from_row(r) for r in rows), key=lambda j: (-j.priority, j.id))
        return list(self._write(go))

    def due_jobs(self, limit: int, *, kind: str | None = None,
                 now: float | None = None) -> list[Job]:
        """The next ``limit`` jobs a claim would take, in the order it would take them.

        A read (nothing is leased): for batch submission, which picks what goes into a batch
        file before claiming those ids, and for showing what runs next. Pending jobs and
        failed ones whose backoff has passed, highest ``priority`` first, then oldest.
        """
        t = _now() if now is None else now
        kind_sql = " AND kind = ?" if kind else ""
        rows = self.conn.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs {_DUE}{kind_sql} {_DUE_ORDER} LIMIT ?",
            (t, *((kind,) if kind else ()), limit)).fetchall()
        return [Job.from_row(r) for r in rows]

    def _expire_leases(self, c: sqlite3.Connection, t: float) -> int:
        expired = c.execute(
            "UPDATE jobs SET status = 'pending', last_error = 'lease of ' || lease_owner || "
            "' expired: the worker stopped without finishing', lease_owner = NULL, "
            "lease_expires_at = NULL, updated_at = ? "
            "WHERE status = 'processing' AND lease_expires_at < ? RETURNING id, run_id",
            (t, t)).fetchall()
        c.executemany(
            "INSERT INTO attempts (job_id, run_id, started_at, finished_at, outcome, "
            "error_class, error) VALUES (?, ?, ?, ?, 'lost', 'LeaseExpired', ?)",
            [(r[0], r[1], t, t, "lease expired before the attempt finished") for r in expired])
        return len(expired)

    def reclaim_expired(self, now: float | None = None) -> int:
        """Return expired leases to pending now (claim does this too)."""
        return int(self._write(lambda c: self._expire_leases(c, _now() if now is None else now)))

    def next_due_at(self, kind: str | None = None) -> float | None:
        """When the next waiting job (pending or failed, in backoff) becomes claimable."""
        claimable = tuple(s.value for s in CLAIMABLE)
        sql = (f"SELECT MIN(next_attempt_at) FROM jobs WHERE status IN "
               f"({_placeholders(claimable)})" + (" AND kind = ?" if kind else ""))
        row = self.conn.execute(sql, (*claimable, *((kind,) if kind else ()))).fetchone()
        return None if row[0] is None else float(row[0])

    def hold_owner(self, owner: str) -> locks.HeldLock:
        """Lock ``owner``'s file for this process's life; take it before claiming as owner.

        While it is held, only lease expiry takes the owner's jobs; once the process is gone
        (however it died, zombie or not) the kernel drops the lock and the next worker's
        ``reclaim_dead_owners`` takes them back at once.
        """
        return locks.hold_owner(self.path, owner)

    def reclaim_dead_owners(self) -> int:
        """Return leases held by crashed workers at once, not at lease expiry.

        A worker holds an flock on its owner file (``hold_owner``) for its life; a file we
        can lock belongs to a dead process, whose leases nobody can finish, so waiting for
        them helps nobody. The file is removed after. Owners without a file (another
        program's claims) keep their leases until they expire.
        """
        def go(c: sqlite3.Connection, owner: str) -> int:
            t = _now()
            rows = c.execute(
                "UPDATE jobs SET status = 'pending', last_error = 'process ' || lease_owner || "
                "' died while holding the job', lease_owner = NULL, lease_expires_at = NULL, "
                "updated_at = ? WHERE status = 'processing' AND lease_owner = ? "
                "RETURNING id, run_id", (t, owner)).fetchall()
            c.executemany(
                "INSERT INTO attempts (job_id, run_id, started_at, finished_at, outcome, "
                "error_class, error) VALUES (?, ?, ?, ?, 'lost', 'WorkerDied', ?)",
                [(r[0], r[1], t, t, "the worker process died during the attempt")
                 for r in rows])
            return len(rows)

        total = 0
        for owner in locks.dead_owners(self.path):  # each stays locked until the next turn
            if owner is not None:
                total += int(self._write(lambda c, o=owner: go(c, o)))
        return total

    def extend_lease(self, job_ids: Sequence[int], owner: str,
                     lease_s: float | None = None) -> int:
        """Keep long-running jobs leased; returns how many are still ours."""
        if not job_ids:
            return 0
        lease = self.lease_s if lease_s is None else lease_s

        def go(c: sqlite3.Connection) -> int:
            cur = c.execute(
                f"UPDATE jobs SET lease_expires_at = ? WHERE status = 'processing' "
                f"AND lease_owner = ? AND id IN ({_placeholders(job_ids)})",
                (_now() + lease, owner, *job_ids))
            return cur.rowcount
        return int(self._write(go))

    def _owned(self, c: sqlite3.Connection, job_id: int, owner: str) -> sqlite3.Row:
        row = c.execute("SELECT status, lease_owner, run_id FROM jobs WHERE id = ?",
                        (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"no job with id {job_id}")
        if row["status"] != JobStatus.PROCESSING or row["lease_owner"] != owner:
            raise LeaseLost(
                f"job {job_id} is no longer leased to {owner} (now {row['status']}, "
                f"leased to {row['lease_owner']}); its result was discarded",
                "Raise [ledger] lease_s if jobs take longer than the lease.")
        return row

    def _insert_attempt(self, c: sqlite3.Connection, job_id: int, run_id: int | None,
                        a: Attempt) -> None:
        c.execute(
            "INSERT INTO attempts (job_id, run_id, started_at, finished_at, outcome, "
            "error_class, error, http_status, latency_ms, tokens_in, tokens_out, "
            "tokens_cached, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, run_id, a.started_at, a.finished_at, a.outcome, a.error_class, a.error,
             a.http_status, a.latency_ms, a.tokens_in, a.tokens_out, a.tokens_cached,
             a.cost_usd))

    def move(self, c: sqlite3.Connection, job_id: int, old: str, new: JobStatus,
              **columns: Any) -> None:
        """The one place a single job's status changes; call it inside ``transaction()``."""
        check_transition(job_id, old, new)
        columns["status"] = new.value
        columns["updated_at"] = _now()
        assignments = ", ".join(f"{name} = ?" for name in columns)
        cur = c.execute(f"UPDATE jobs SET {assignments} WHERE id = ? AND status = ?",
                        (*columns.values(), job_id, old))
        if cur.rowcount != 1:
            raise LeaseLost(f"job {job_id} changed status while being updated")

    def complete(self, job_id: int, owner: str, draft: DraftRecord, attempt: Attempt,
                 *, run_id: int | None = None) -> int:
        """processing -> drafted, with the draft and the attempt, in one transaction."""
        check_transition(job_id, JobStatus.PROCESSING, JobStatus.DRAFTED)

        def go(c: sqlite3.Connection) -> int:
            # Hot path: the lease check and the status change are one statement.
            job = c.execute(
                "UPDATE jobs SET status = 'drafted', lease_owner = NULL, lease_expires_at = NULL,"
                " last_error = NULL, run_id = ?, updated_at = ? "
                "WHERE id = ? AND status = 'processing' AND lease_owner = ? "
                "RETURNING kind, source_id", (run_id, _now(), job_id, owner)).fetchone()
            if job is None:
                self._owned(c, job_id, owner)  # raises LeaseLost / NotFound with the reason
            self._insert_attempt(c, job_id, run_id, attempt)
            return self.insert_draft(c, job_id, job["kind"], job["source_id"], draft, attempt)
        return int(self._write(go))

    def insert_draft(self, c: sqlite3.Connection, job_id: int, kind: str, source_id: str,
                     draft: DraftRecord, attempt: Attempt) -> int:
        """Write (or replace) a job's draft inside the caller's transaction; live and batch
        answers both land here, so a draft looks the same whichever way it was made."""
        cur = c.execute(
            "INSERT INTO drafts (job_id, kind, source_id, fields, template_name, "
            "template_hash, provider, model, params, flags, flagged, tokens_in, "
            "tokens_out, tokens_cached, cost_usd, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (job_id) DO UPDATE SET fields = excluded.fields, "
            "edited_fields = NULL, template_name = excluded.template_name, "
            "template_hash = excluded.template_hash, provider = excluded.provider, "
            "model = excluded.model, params = excluded.params, flags = excluded.flags, "
            "flagged = excluded.flagged, tokens_in = excluded.tokens_in, "
            "tokens_out = excluded.tokens_out, tokens_cached = excluded.tokens_cached, "
            "cost_usd = excluded.cost_usd, reviewer_note = NULL, reviewed_at = NULL, "
            "created_at = excluded.created_at RETURNING id",
            (job_id, kind, source_id, _dumps(draft.fields),
             draft.template_name, draft.template_hash, draft.provider, draft.model,
             _dumps(draft.params), _dumps(draft.flags), int(bool(draft.flags)),
             attempt.tokens_in, attempt.tokens_out, attempt.tokens_cached,
             attempt.cost_usd, _now()))
        return int(cur.fetchone()[0])

    def fail(self, job_id: int, owner: str, attempt: Attempt, *, max_attempts: int,
             retry_in_s: float = 0.0, permanent: bool = False,
             run_id: int | None = None) -> JobStatus:
        """Record a failed try: ``failed`` (retried after backoff) or ``dead`` (reason kept)."""
        def go(c: sqlite3.Connection) -> JobStatus:
            row = self._owned(c, job_id, owner)
            attempts = c.execute("SELECT attempts FROM jobs WHERE id = ?",
                                 (job_id,)).fetchone()[0]
            reason = f"{attempt.error_class or 'Error'}: {attempt.error or 'failed'}"
            if permanent or attempts >= max_attempts:
                new = JobStatus.DEAD
                if not permanent:
                    reason = f"gave up after {attempts} attempts; last: {reason}"
            else:
                new = JobStatus.FAILED
            self.move(c, job_id, row["status"], new, lease_owner=None, lease_expires_at=None,
                       last_error=reason, next_attempt_at=_now() + max(0.0, retry_in_s),
                       run_id=run_id)
            self._insert_attempt(c, job_id, run_id, attempt)
            return new
        return JobStatus(self._write(go))

    def release(self, job_id: int, owner: str, *, delay_s: float = 0.0,
                refund_attempt: bool = False, attempt: Attempt | None = None,
                reason: str | None = None, run_id: int | None = None) -> None:
        """processing -> pending: a 429 (refund the attempt) or a clean stop."""
        def go(c: sqlite3.Connection) -> None:
            row = self._owned(c, job_id, owner)
            extra: dict[str, Any] = {}
            if refund_attempt:
                extra["attempts"] = c.execute(
                    "SELECT MAX(attempts - 1, 0) FROM jobs WHERE id = ?", (job_id,)
                ).fetchone()[0]
            if reason is not None:
                extra["last_error"] = reason
            self.move(c, job_id, row["status"], JobStatus.PENDING, lease_owner=None,
                       lease_expires_at=None, next_attempt_at=_now() + max(0.0, delay_s),
                       **extra)
            if attempt is not None:
                self._insert_attempt(c, job_id, run_id, attempt)
        self._write(go)

    def release_all(self, owner: str) -> int:
        """Give back every job this owner holds (clean shutdown): no attempt is charged."""
        def go(c: sqlite3.Connection) -> int:
            cur = c.execute(
                "UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,"
                " attempts = MAX(attempts - 1, 0), updated_at = ? "
                "WHERE status = 'processing' AND lease_owner = ?", (_now(), owner))
            return cur.rowcount
        return int(self._write(go))

    # -- manual changes ---------------------------------------------------------------------

    def set_status(self, job_ids: Sequence[int], new: JobStatus | str, *,
                   note: str | None = None) -> list[int]:
        """Move jobs to ``new`` (review, retry, publish); every change is checked."""
        target = JobStatus(new)

        def go(c: sqlite3.Connection) -> list[int]:
            moved: list[int] = []
            for job_id in job_ids:
                row = c.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
                if row is None:
                    raise NotFound(f"no job with id {job_id}",
                                   "List ids with `enrich jobs list`.")
                extra: dict[str, Any] = {}
                if target == JobStatus.PENDING:
                    extra = {"next_attempt_at": 0, "attempts": 0}
                if note is not None:
                    extra["last_error"] = note
                self.move(c, job_id, row["status"], target, **extra)
                moved.append(job_id)
            return moved
        return list(self._write(go))

    def retry(self, *, job_ids: Sequence[int] = (), statuses: Sequence[str] = ()) -> int:
        """Put failed/dead jobs (or the given ids) back to pending with fresh attempts."""
        ids = list(job_ids)
        for status in statuses:
            if status not in sources_of(JobStatus.PENDING):
                raise LedgerError(f"cannot retry jobs that are {status}")
            ids += [r[0] for r in self.conn.execute(
                "SELECT id FROM jobs WHERE status = ?", (status,))]
        return len(self.set_status(ids, JobStatus.PENDING)) if ids else 0

    def review(self, job_id: int, decision: JobStatus | str, *, note: str | None = None,
               edited_fields: dict[str, Any] | None = None,
               flags: list[dict[str, str]] | None = None,
               expect_draft_id: int | None = None,
               expect_draft_created_at: float | None = None) -> None:
        """Record a reviewer's decision (approved | rejected | drafted) with note and edit.

        ``expect_draft_id`` refuses the decision if the job's draft changed since the page
        was exported; ``expect_draft_created_at`` also catches a redraft of the same job
        (the draft row keeps its id). ``flags`` replaces the guard flags (an edit is
        re-checked).
        """
        target = JobStatus(decision)

        def go(c: sqlite3.Connection) -> None:
            row = c.execute("SELECT j.status, d.id AS draft_id, d.created_at AS draft_at "
                            "FROM jobs j LEFT JOIN drafts d "
                            "ON d.job_id = j.id WHERE j.id = ?", (job_id,)).fetchone()
            if row is None:
                raise NotFound(f"no job with id {job_id}", "List ids with `enrich jobs list`.")
            if row["draft_id"] is None:
                raise LedgerError(f"job {job_id} has no draft to review")
            if ((expect_draft_id is not None and row["draft_id"] != expect_draft_id)
                    or (expect_draft_created_at is not None
                        and abs(row["draft_at"] - expect_draft_created_at) > 1e-6)):
                raise LedgerError(f"job {job_id}: the draft changed since it was exported",
                                  "Export the review page again and review the new draft.")
            if row["status"] != target.value:
                self.move(c, job_id, row["status"], target)
            sets = ["reviewed_at = ?"]
            args: list[Any] = [_now()]
            if note is not None:
                sets.append("reviewer_note = ?")
                args.append(note)
            if edited_fields is not None:
                sets.append("edited_fields = ?")
                args.append(_dumps(edited_fields))
            if flags is not None:
                sets += ["flags = ?", "flagged = ?"]
                args += [_dumps(flags), int(bool(flags))]
            c.execute(f"UPDATE drafts SET {', '.join(sets)} WHERE job_id = ?", (*args, job_id))
        self._write(go)

    # -- reads ------------------------------------------------------------------------------

    def get_job(self, job_id: int) -> Job:
        row = self.conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?",
                                (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"no job with id {job_id}", "List ids with `enrich jobs list`.")
        return Job.from_row(row)

    def list_jobs(self, *, status: str | None = None, kind: str | None = None,
                  source_id: str | None = None, limit: int | None = None,
                  offset: int = 0) -> list[Job]:
        where, args = [], []
        for column, value in (("status", status), ("kind", kind), ("source_id", source_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id LIMIT ? OFFSET ?"
        args += [limit if limit is not None else -1, offset]
        return [Job.from_row(r) for r in self.conn.execute(sql, args)]

    def attempts_for(self, job_id: int) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM attempts WHERE job_id = ? ORDER BY id",
                                 (job_id,)).fetchall()
        return [dict(r) for r in rows]

    def draft_for(self, job_id: int) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM drafts WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        data = dict(row)
        for key in ("fields", "edited_fields", "params", "flags"):
            data[key] = _loads(data[key])
        return data

    def counts(self) -> dict[str, dict[str, int]]:
        """Jobs by kind and status; every status is present, zero or not."""
        result = {kind: {s.value: 0 for s in JobStatus} for kind in KINDS}
        for kind, status, n in self.conn.execute(
                "SELECT kind, status, COUNT(*) FROM jobs GROUP BY kind, status"):
            result.setdefault(kind, {s.value: 0 for s in JobStatus})[status] = n
        return result

    def oldest_pending(self) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT id, kind, source_id, created_at FROM jobs WHERE status = 'pending' "
            "ORDER BY created_at, id LIMIT 1").fetchone()
        return None if row is None else dict(row)

    def total_cost(self) -> float:
        return float(self.conn.execute(
            "SELECT COALESCE(SUM(cost_usd), 0) FROM attempts").fetchone()[0])
