"""`enrich run` as a real process: killed with SIGKILL or stopped with SIGTERM mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from enrich.ledger import Ledger
from enrich.ledger.locks import workers_dir
from enrich.sandbox.llm import LLMSandboxOptions, serve_llm
from tests.process_helpers import is_zombie, kill_leaving_zombie, reap
from tests.worker_helpers import FAKE_KEY, job_statuses, synced_ledger


def _config(tmp_path: Path, llm_url: str, db: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[sync]
fields = ["description", "short_description"]
[llm]
provider = "openai"
model = "gpt-4o-mini"
base_url = "{llm_url}/v1"
concurrency = 4
max_rpm = 60000
max_tpm = 100000000
[ledger]
path = "{db}"
""", encoding="utf-8")
    return config


def _start(config: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY}
    return subprocess.Popen([sys.executable, "-m", "enrich.cli", "--config", str(config), "run"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_drafts(db: Path, n: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.time() + 60
    with Ledger(db) as ledger:
        while job_statuses(ledger).get("drafted", 0) < n:
            assert proc.poll() is None, proc.communicate()
            assert time.time() < deadline, "the run made no progress"
            time.sleep(0.05)


def test_sigkill_mid_run_then_a_second_run_finishes_the_rest(db_path: Path,
                                                             tmp_path: Path) -> None:
    with Ledger(db_path) as ledger, synced_ledger(ledger, 80) as queued:
        needs_data = job_statuses(ledger).get("needs_data", 0)
    with serve_llm(LLMSandboxOptions(latency_ms=150)) as llm:
        config = _config(tmp_path, llm.url, db_path)
        first = _start(config)
        _wait_for_drafts(db_path, 10, first)
        # Killed and not reaped, as under a PID 1 that reaps nothing: a zombie whose pid
        # `os.kill(pid, 0)` calls alive. Its owner lock died with it all the same.
        kill_leaving_zombie(first)
        with Ledger(db_path) as ledger:
            held = ledger.list_jobs(status="processing")
            assert held, "the kill should catch requests in flight"
            drafted_before = job_statuses(ledger)["drafted"]
        assert len(list(workers_dir(db_path).iterdir())) == 1  # the killed worker's file
        second = _start(config)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, (out + err).decode()
        assert is_zombie(first)  # the second run ran beside the unreaped killed one
        reap(first)
    with Ledger(db_path) as ledger:
        statuses = job_statuses(ledger)
        assert statuses.get("drafted", 0) == queued - needs_data > drafted_before
        assert set(statuses) <= {"drafted", "needs_data"}
        rows = ledger.conn.execute("SELECT COUNT(*), COUNT(DISTINCT job_id) FROM drafts")
        assert tuple(rows.fetchone()) == (statuses["drafted"], statuses["drafted"])
        # The killed run's leases came back at once (its lock was free), not at lease expiry
        # (300 s), recorded as lost; the dead worker's lock file was swept.
        for job in held:
            attempts = ledger.attempts_for(job.id)
            assert (attempts[0]["outcome"], attempts[0]["error_class"]) == ("lost", "WorkerDied")
            assert attempts[-1]["outcome"] in ("ok", "flagged")
        assert list(workers_dir(db_path).iterdir()) == []
        runs = ledger.list_runs("run")
        assert runs[0]["exit_reason"] == "completed" and runs[1]["exit_reason"] is None


def test_sigterm_finishes_in_flight_and_gives_back_leases(db_path: Path,
                                                          tmp_path: Path) -> None:
    with Ledger(db_path) as ledger, synced_ledger(ledger, 60):
        pass
    with serve_llm(LLMSandboxOptions(latency_ms=200)) as llm:
        proc = _start(_config(tmp_path, llm.url, db_path))
        _wait_for_drafts(db_path, 5, proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert "stopped by SIGTERM" in out.decode()
    with Ledger(db_path) as ledger:
        statuses = job_statuses(ledger)
        assert "processing" not in statuses and statuses.get("pending", 0) > 0
        assert ledger.last_run("run")["exit_reason"] == "signal"
        # In-flight requests were finished, not thrown away: no attempt was left 'lost'.
        lost = ledger.conn.execute("SELECT COUNT(*) FROM attempts WHERE outcome = 'lost'")
        assert lost.fetchone()[0] == 0
    assert list(workers_dir(db_path).iterdir()) == []  # its lock file went with it
