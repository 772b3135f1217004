"""The ledger's state machine, idempotent enqueue and leases, on a real SQLite file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from enrich.errors import IllegalTransition, NotFound
from enrich.ledger import (
    Attempt,
    DraftRecord,
    EnqueueItem,
    JobStatus,
    LeaseLost,
    Ledger,
    check_transition,
    sources_of,
)
from enrich.ledger.schema import KNOWN


def _items(n: int, h: str = "h1") -> list[EnqueueItem]:
    return [EnqueueItem("product", str(i), h, {"fields": ["description"]}) for i in range(n)]


def test_wal_mode_and_migrations(ledger: Ledger) -> None:
    assert ledger.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ledger.schema_version() == KNOWN  # every migration, in order
    assert KNOWN[:2] == ["m001_core", "m002_publishes"] and "m005_batches" in KNOWN


def test_a_new_ledger_has_large_pages_and_an_existing_one_keeps_its_own(tmp_path: Path) -> None:
    import sqlite3

    from enrich.ledger.ledger import PAGE_BYTES
    from enrich.ledger.scratch import scratch_copy

    def page_size(ledger: Ledger) -> int:
        return int(ledger.conn.execute("PRAGMA page_size").fetchone()[0])

    with Ledger(tmp_path / "new.db") as new:
        assert page_size(new) == PAGE_BYTES == 16_384
    # A ledger made before: SQLite's default page, already in WAL mode, with a job in it.
    old_path = tmp_path / "old.db"
    conn = sqlite3.connect(old_path)
    conn.execute("PRAGMA page_size = 4096")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    with Ledger(old_path) as old:
        old.enqueue_many(_items(3))
    with Ledger(old_path) as old:
        assert page_size(old) == 4096
        assert len(old.list_jobs()) == 3
        with scratch_copy(old) as copy:  # what --dry-run works on
            assert page_size(copy) == 4096 and len(copy.list_jobs()) == 3


def test_a_product_row_is_written_column_by_column_as_its_fields_name_them(
        ledger: Ledger) -> None:
    # upsert_products binds a ProductRow by position: each value must land in the column
    # its field names, the flags included, and a dict row the same way.
    from enrich.ledger import ProductRow

    values = {f: f"v-{f}" for f in ProductRow._fields}
    values |= {"source_id": "5", "total_sales": 7, "input_flags": '[{"flag":"markup"}]',
               "snapshot": '{"id":5}', "missing": '["name"]', "fingerprints": '{"name":"f"}'}
    ledger.upsert_products([ProductRow(**values)])
    stored = dict(ledger.conn.execute("SELECT * FROM products WHERE source_id = '5'").fetchone())
    assert {f: stored[f] for f in ProductRow._fields} == values
    ledger.upsert_products([ProductRow(**{**values, "input_flags": None, "state": "done"})])
    again = dict(ledger.conn.execute("SELECT * FROM products WHERE source_id = '5'").fetchone())
    assert again["state"] == "done" and again["input_flags"] == values["input_flags"]


def test_none_is_stored_as_sql_null(ledger: Ledger) -> None:
    """None binds through the ledger's adapter for it (a speed-up): it must stay NULL."""
    ledger.upsert_products([{"source_id": "1", "parent_id": None, "snapshot": {"id": 1},
                             "content_hash": "h", "reason": None, "total_sales": None}])
    ledger.enqueue(EnqueueItem(kind="product", source_id="1", input_hash="h", payload=None))
    assert tuple(ledger.conn.execute(
        "SELECT typeof(parent_id), typeof(reason), typeof(total_sales) FROM products"
    ).fetchone()) == ("null", "null", "null")
    assert tuple(ledger.conn.execute("SELECT typeof(payload), typeof(last_error) FROM jobs"
                                     ).fetchone()) == ("null", "null")


def test_enqueue_is_idempotent(ledger: Ledger) -> None:
    first = ledger.enqueue_many(_items(10))
    assert (first.queued, first.unchanged) == (10, 0)
    again = ledger.enqueue_many(_items(10))
    assert (again.queued, again.unchanged, again.superseded) == (0, 10, 0)
    assert ledger.counts()["product"]["pending"] == 10


def test_changed_input_supersedes_job_and_draft(ledger: Ledger) -> None:
    ledger.enqueue_many(_items(1))
    [job] = ledger.claim("w", 1)
    ledger.complete(job.id, "w", DraftRecord({"description": "old"}),
                    Attempt(time.time(), "ok"))
    counts = ledger.enqueue_many(_items(1, "h2"))
    assert (counts.queued, counts.superseded) == (1, 1)
    assert ledger.get_job(job.id).status == "superseded"
    [new] = ledger.list_jobs(status="pending")
    assert new.input_hash == "h2" and new.id != job.id
    # The input going back to the old value revives the old job rather than duplicating it.
    back = ledger.enqueue_many(_items(1, "h1"))
    assert (back.queued, back.revived, back.superseded) == (0, 1, 1)
    assert ledger.get_job(job.id).status == "pending"


def test_published_jobs_are_never_superseded(ledger: Ledger) -> None:
    ledger.enqueue_many(_items(1))
    [job] = ledger.claim("w", 1)
    ledger.complete(job.id, "w", DraftRecord({"description": "x"}), Attempt(time.time(), "ok"))
    ledger.set_status([job.id], JobStatus.APPROVED)
    ledger.set_status([job.id], JobStatus.PUBLISHED)
    ledger.enqueue_many(_items(1, "h2"))
    assert ledger.get_job(job.id).status == "published"


def test_illegal_transitions_raise(ledger: Ledger) -> None:
    ledger.enqueue_many(_items(1))
    [job] = ledger.list_jobs()
    with pytest.raises(IllegalTransition, match="cannot go from pending to published"):
        ledger.set_status([job.id], JobStatus.PUBLISHED)
    with pytest.raises(IllegalTransition):
        check_transition(1, "drafted", "published")
    assert "approved" in sources_of("published")
    with pytest.raises(NotFound):
        ledger.set_status([999], JobStatus.APPROVED)


def test_claim_leases_and_expires(ledger: Ledger) -> None:
    ledger.enqueue_many(_items(5))
    jobs = ledger.claim("a", 3, lease_s=60)
    assert [j.status for j in jobs] == ["processing"] * 3
    assert all(j.lease_owner == "a" and j.attempts == 1 for j in jobs)
    assert len(ledger.claim("b", 10, lease_s=60)) == 2
    assert ledger.claim("c", 10) == []
    # Later than every lease: all five come back, each with a 'lost' attempt recorded.
    later = time.time() + 120
    again = ledger.claim("c", 10, now=later)
    assert sorted(j.id for j in again) == sorted(j.id for j in ledger.list_jobs())
    assert all(j.attempts == 2 for j in again)
    lost = ledger.attempts_for(again[0].id)
    assert [a["outcome"] for a in lost] == ["lost"]


def test_expired_worker_cannot_complete(ledger: Ledger) -> None:
    ledger.enqueue_many(_items(1))
    [job] = ledger.claim("slow", 1, lease_s=0.01)
    time.sleep(0.02)
    [taken] = ledger.claim("fast", 1)
    assert taken.id == job.id
    with pytest.raises(LeaseLost):
        ledger.complete(job.id, "slow", DraftRecord({"x": 1}), Attempt(time.time(), "ok"))
    ledger.complete(job.id, "fast", DraftRecord({"x": 2}), Attempt(time.time(), "ok"))
    assert ledger.draft_for(job.id)["fields"] == {"x": 2}


def test_fail_backoff_then_dead_with_reason(ledger: Ledger) -> None:
    ledger.enqueue_many(_items(1))
    for expected in ("failed", "failed", "dead"):
        [job] = ledger.claim("w", 1)
        status = ledger.fail(job.id, "w", Attempt(time.time(), "failed", error_class="Boom",
                                                  error="503 from provider"),
                             max_attempts=3, retry_in_s=0)
        assert status == expected
    dead = ledger.get_job(job.id)
    assert dead.status == "dead" and "gave up after 3 attempts" in (dead.last_error or "")
    assert len(ledger.attempts_for(job.id)) == 3


def test_backoff_delays_the_next_claim(ledger: Ledger) -> None:
    ledger.enqueue_many(_items(1))
    [job] = ledger.claim("w", 1)
    ledger.fail(job.id, "w", Attempt(time.time(), "failed"), max_attempts=5, retry_in_s=30)
    assert ledger.claim("w", 1) == []
    assert [j.id for j in ledger.claim("w", 1, now=time.time() + 31)] == [job.id]


def test_rate_limited_release_refunds_the_attempt(ledger: Ledger) -> None:
    ledger.enqueue_many(_items(1))
    [job] = ledger.claim("w", 1)
    ledger.release(job.id, "w", delay_s=0, refund_attempt=True,
                   attempt=Attempt(time.time(), "rate_limited", http_status=429))
    after = ledger.get_job(job.id)
    assert (after.status, after.attempts) == ("pending", 0)
    assert ledger.attempts_for(job.id)[0]["outcome"] == "rate_limited"


def test_permanent_failure_is_dead_at_once_and_retry_revives(ledger: Ledger) -> None:
    ledger.enqueue_many(_items(2))
    a, b = ledger.claim("w", 2)
    ledger.fail(a.id, "w", Attempt(time.time(), "dead", error_class="Refusal"),
                max_attempts=5, permanent=True)
    ledger.fail(b.id, "w", Attempt(time.time(), "failed"), max_attempts=5)
    assert ledger.get_job(a.id).status == "dead"
    assert ledger.retry(statuses=["dead"]) == 1
    assert ledger.get_job(a.id).status == "pending" and ledger.get_job(a.id).attempts == 0
    assert ledger.retry(statuses=["failed"]) == 1


def test_release_all_gives_back_leases(ledger: Ledger) -> None:
    ledger.enqueue_many(_items(3))
    ledger.claim("w", 3)
    assert ledger.release_all("w") == 3
    assert ledger.counts()["product"]["pending"] == 3
    assert all(j.attempts == 0 for j in ledger.list_jobs())


def test_review_records_decision_and_refuses_stale_draft(ledger: Ledger) -> None:
    ledger.enqueue_many(_items(1))
    [job] = ledger.claim("w", 1)
    draft_id = ledger.complete(job.id, "w", DraftRecord({"description": "d"}),
                               Attempt(time.time(), "ok"))
    with pytest.raises(Exception, match="changed since it was exported"):
        ledger.review(job.id, "approved", expect_draft_id=draft_id + 1)
    ledger.review(job.id, "approved", note="fine", edited_fields={"description": "e"},
                  expect_draft_id=draft_id)
    draft = ledger.draft_for(job.id)
    assert ledger.get_job(job.id).status == "approved"
    assert (draft["reviewer_note"], draft["edited_fields"]) == ("fine", {"description": "e"})


def test_runs_and_cost(ledger: Ledger) -> None:
    run = ledger.start_run("run", {"limit": 5})
    ledger.enqueue_many(_items(1))
    [job] = ledger.claim("w", 1)
    ledger.complete(job.id, "w", DraftRecord({"d": 1}),
                    Attempt(time.time(), "ok", tokens_in=100, cost_usd=0.25), run_id=run)
    ledger.finish_run(run, exit_reason="completed", counts={"drafted": 1})
    last = ledger.last_run()
    assert last is not None
    assert (last["exit_reason"], last["cost_usd"], last["counts"]) == ("completed", 0.25,
                                                                     {"drafted": 1})
    assert ledger.total_cost() == pytest.approx(0.25)


def test_a_transaction_inside_another_is_a_savepoint(tmp_path: Path) -> None:
    # Sync writes a page's jobs and rows in one transaction; a write that fails inside it
    # (a job that moved on meanwhile) must take back only its own statements.
    with Ledger(tmp_path / "l.db") as ledger:
        with ledger.transaction() as conn:
            ledger.set_meta("outer", "kept")
            with pytest.raises(RuntimeError), ledger.transaction() as inner:
                inner.execute("INSERT INTO meta (key, value) VALUES ('inner', 'gone')")
                raise RuntimeError("boom")
            assert conn.in_transaction
        assert ledger.get_meta("outer") == "kept" and ledger.get_meta("inner") is None
        with pytest.raises(RuntimeError), ledger.transaction():
            ledger.set_meta("both", "gone")
            raise RuntimeError("boom")
        assert ledger.get_meta("both") is None


def _seen_elsewhere(path: Path, key: str) -> str | None:
    """A meta value as another connection sees it: what is committed."""
    with Ledger(path) as other:
        return other.get_meta(key)


def test_a_commit_group_commits_its_writes_together_and_when_due(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with Ledger(path) as ledger:
        with ledger.commit_group(3600) as group:
            for n in range(3):
                with group.transaction():
                    ledger.set_meta(f"page {n}", "written")
                group.commit_if_due()  # not due: an hour
            assert ledger.conn.in_transaction
            assert _seen_elsewhere(path, "page 0") is None
        assert not ledger.conn.in_transaction
        assert [_seen_elsewhere(path, f"page {n}") for n in range(3)] == ["written"] * 3
        with ledger.commit_group(0) as group:  # due at once: one commit per write
            with group.transaction():
                ledger.set_meta("due", "written")
            group.commit_if_due()
            assert not ledger.conn.in_transaction
            assert _seen_elsewhere(path, "due") == "written"


def test_a_failing_write_in_a_commit_group_keeps_what_came_before_it(tmp_path: Path) -> None:
    # As one commit per page did: the pages before the failing one stay written.
    path = tmp_path / "l.db"
    with Ledger(path) as ledger:
        with pytest.raises(RuntimeError), ledger.commit_group(3600) as group:
            with group.transaction():
                ledger.set_meta("before", "kept")
            with group.transaction() as conn:
                conn.execute("INSERT INTO meta (key, value) VALUES ('failing', 'gone')")
                raise RuntimeError("boom")
        assert not ledger.conn.in_transaction
    assert _seen_elsewhere(path, "before") == "kept"
    assert _seen_elsewhere(path, "failing") is None


def test_a_commit_group_waiting_for_its_next_write_lets_other_writers_in(tmp_path: Path) -> None:
    # Sync waiting for a slow store must not keep the write lock from a worker meanwhile.
    import sqlite3
    import threading

    path = tmp_path / "l.db"
    waited: list[float] = []

    def another_writer() -> None:  # one try at the write lock, waiting up to a second
        conn = sqlite3.connect(path, timeout=1.0, isolation_level=None)
        started = time.monotonic()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO meta (key, value) VALUES ('worker', 'wrote')")
            conn.execute("COMMIT")
            waited.append(time.monotonic() - started)
        except sqlite3.OperationalError:  # "database is locked": the group kept the lock
            waited.append(float("inf"))
        finally:
            conn.close()

    def pages() -> Any:
        yield 1
        writer = threading.Thread(target=another_writer)
        time.sleep(0.3)  # the group (due after 0.05 s) is committed while this waits
        writer.start()
        writer.join()
        yield 2

    with Ledger(path) as ledger, ledger.commit_group(0.05) as group:
        for n in group.between(pages()):
            with group.transaction():
                ledger.set_meta(f"page {n}", "written")
    assert waited and waited[0] < 1.0, waited
    assert [_seen_elsewhere(path, k) for k in ("page 1", "page 2", "worker")] == \
        ["written", "written", "wrote"]
