"""Locks the kernel releases (enrich/ledger/locks.py): held while the process lives, free the
moment it dies, zombie or not; and the lease takeover of dead workers built on them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from enrich.ledger import EnqueueItem, Ledger, locks
from tests.process_helpers import is_zombie, kill_leaving_zombie, reap

_WORKER = """
import sys, time
from enrich.ledger import Ledger
ledger = Ledger(sys.argv[1])
lock = ledger.hold_owner(sys.argv[2])
jobs = ledger.claim(sys.argv[2], int(sys.argv[3]), lease_s=300)
print(" ".join(str(j.id) for j in jobs), flush=True)
time.sleep(120)
"""


def _worker(db: Path, owner: str, claim: int = 5) -> tuple[subprocess.Popen[str], set[int]]:
    """A real process that locks ``owner``, claims with a 300 s lease, then waits to be
    killed; returns it with the job ids it holds."""
    proc = subprocess.Popen([sys.executable, "-c", _WORKER, str(db), owner, str(claim)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"the worker did not start: {proc.communicate()[1]}")
    return proc, {int(x) for x in line.split()}


def test_a_lock_is_refused_while_held_names_its_holder_and_is_removed_on_release(
        tmp_path: Path) -> None:
    path = locks.lock_file(tmp_path / "enrich.db", "publish")
    assert path == tmp_path / "enrich.db.publish.lock"
    started = time.time()
    held = locks.acquire(path, run_id=7)
    # Another open of the same file is another holder, even in this process.
    with pytest.raises(locks.Locked) as refused:
        locks.acquire(path)
    holder = refused.value.holder
    assert holder.pid == os.getpid() and holder.info["run_id"] == 7
    assert holder.since is not None and started - 1 <= holder.since <= time.time()
    assert holder.describe() == (f"pid {os.getpid()}, since "
                                 f"{time.strftime('%H:%M', time.localtime(holder.since))}")
    assert locks.read_holder(path) == holder
    held.release()
    assert not path.exists()
    held.release()  # twice is harmless
    with locks.acquire(path) as again:
        assert again.held and path.exists()
    assert not again.held and not path.exists()


def test_a_missing_lock_file_is_not_created_when_only_tested(tmp_path: Path) -> None:
    path = tmp_path / "enrich.db.workers" / "gone.lock"
    with pytest.raises(FileNotFoundError):
        locks.acquire(path, create=False)
    assert not path.parent.exists()


def test_a_dead_workers_leases_come_back_at_once_a_live_ones_do_not(db_path: Path) -> None:
    with Ledger(db_path) as ledger:
        ledger.enqueue_many(EnqueueItem("product", str(i), "h") for i in range(20))
    alive, alive_jobs = _worker(db_path, "host:1:alive")
    doomed, doomed_jobs = _worker(db_path, "host:2:doomed")
    try:
        with Ledger(db_path) as ledger:
            # Claims by an owner with no lock file (another program): only expiry frees them.
            orphan_jobs = {j.id for j in ledger.claim("no-lock-file", 3, lease_s=300)}
            assert ledger.reclaim_dead_owners() == 0  # everyone is alive
            kill_leaving_zombie(doomed)  # a pid check would still call it alive
            assert ledger.reclaim_dead_owners() == len(doomed_jobs) == 5
            assert is_zombie(doomed)
            jobs = {j.id: j for j in ledger.list_jobs()}
            assert {i for i, j in jobs.items() if j.status == "processing"} == \
                alive_jobs | orphan_jobs
            for job_id in doomed_jobs:
                assert jobs[job_id].status == "pending"
                assert "host:2:doomed died while holding the job" in (jobs[job_id].last_error
                                                                      or "")
                [lost] = ledger.attempts_for(job_id)
                assert (lost["outcome"], lost["error_class"]) == ("lost", "WorkerDied")
            # Only the dead worker's file was swept; nothing more to reclaim.
            assert [p.name for p in locks.workers_dir(db_path).iterdir()] == [
                locks.owner_file(db_path, "host:1:alive").name]
            assert ledger.reclaim_dead_owners() == 0
            # Lease expiry works as before for everyone else.
            assert ledger.reclaim_expired(now=time.time() + 301) == len(alive_jobs) + 3
    finally:
        alive.kill()
        alive.communicate(timeout=10)
        reap(doomed)


def test_a_worker_killed_before_its_first_claim_leaves_no_file_behind(db_path: Path) -> None:
    with Ledger(db_path) as ledger:
        proc, jobs = _worker(db_path, "host:3:early", claim=0)
        assert jobs == set()
        kill_leaving_zombie(proc)
        assert ledger.reclaim_dead_owners() == 0
        assert list(locks.workers_dir(db_path).iterdir()) == []
        reap(proc)


def test_a_sweep_stopped_before_the_leases_came_back_keeps_the_file(db_path: Path) -> None:
    Ledger(db_path).close()
    proc, _ = _worker(db_path, "host:4:stopped", claim=0)
    kill_leaving_zombie(proc)
    path = locks.owner_file(db_path, "host:4:stopped")
    sweep = locks.dead_owners(db_path)
    assert next(sweep) == "host:4:stopped"
    sweep.close()  # the caller failed before giving the owner's leases back
    assert path.exists()  # so the next worker tries again
    assert list(locks.dead_owners(db_path)) == ["host:4:stopped"]
    assert not path.exists()
    reap(proc)
