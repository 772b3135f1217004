"""Several OS processes on one ledger file: exactly-once claims, SIGKILL recovery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from enrich.ledger import EnqueueItem, Ledger

SCRIPT = Path(__file__).with_name("ledger_worker_script.py")


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], stderr=subprocess.PIPE)


def test_processes_claim_each_job_exactly_once(db_path: Path, tmp_path: Path) -> None:
    with Ledger(db_path) as ledger:
        ledger.enqueue_many(EnqueueItem("product", str(i), "h") for i in range(2000))
    outs = [tmp_path / f"w{i}.json" for i in range(4)]
    procs = [_spawn(str(db_path), f"w{i}", str(out)) for i, out in enumerate(outs)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        assert b"locked" not in err
    claimed = [job_id for out in outs for job_id in json.loads(out.read_text())]
    assert len(claimed) == 2000
    assert len(set(claimed)) == 2000
    assert sum(1 for out in outs if json.loads(out.read_text())) >= 2  # really concurrent
    with Ledger(db_path) as ledger:
        assert ledger.counts()["product"]["drafted"] == 2000
        drafts = ledger.conn.execute("SELECT COUNT(*), COUNT(DISTINCT job_id) FROM drafts")
        assert tuple(drafts.fetchone()) == (2000, 2000)


def test_sigkilled_claimer_leases_come_back_after_expiry(db_path: Path, tmp_path: Path) -> None:
    with Ledger(db_path) as ledger:
        ledger.enqueue_many(EnqueueItem("product", str(i), "h") for i in range(20))
    out = tmp_path / "held.json"
    proc = _spawn(str(db_path), "doomed", str(out), "--hold", "60")
    deadline = time.time() + 30
    while not (out.exists() and out.read_text()):
        assert time.time() < deadline, "claimer never claimed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    held = set(json.loads(out.read_text()))
    assert len(held) == 5

    with Ledger(db_path) as ledger:
        before = {j.id: j for j in ledger.list_jobs()}
        assert {i for i, j in before.items() if j.status == "processing"} == held
        # Before the lease expires nobody else may take them.
        early = ledger.claim("rescuer", 100, lease_s=60)
        assert held.isdisjoint(j.id for j in early)
        ledger.release_all("rescuer")
        time.sleep(1.1)
        late = ledger.claim("rescuer", 100, lease_s=60)
        assert held <= {j.id for j in late}
        for job_id in held:
            assert [a["outcome"] for a in ledger.attempts_for(job_id)] == ["lost"]
        # Nothing else changed: the other jobs are as they were, apart from this claim.
        others = {i: j for i, j in before.items() if i not in held}
        assert all(j.status == "pending" and j.attempts == 0 for j in others.values())
        assert ledger.conn.execute("SELECT COUNT(*) FROM drafts").fetchone()[0] == 0
