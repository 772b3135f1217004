"""A batch command killed with SIGKILL at the worst moments, then run again, loses nothing and
sends nothing twice: after the intent is recorded but before the provider is asked, after the
provider accepted a batch but before the ledger recorded it (reconciled by listing the
provider's batches: OpenAI by metadata, Anthropic by custom ids, Gemini by display name), and
half-way through a poll's ingest. Each through its provider's official SDK. The pause points
are ``ENRICH_BATCH_PAUSE`` (enrich/worker/batch.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from enrich.ledger import Ledger, locks
from enrich.ledger import batches as B
from enrich.sandbox.llm import serve_llm
from enrich.worker.batch import PAUSE_ENV
from tests.batch_helpers import (
    KEYS,
    PROVIDERS,
    batch_settings,
    fill,
    poll,
    statuses,
    submit,
    write_batch_config,
)
from tests.process_helpers import kill_leaving_zombie, reap


def _config(tmp_path: Path, db: Path, provider: str, url: str) -> Path:
    return write_batch_config(tmp_path, provider, url, db=db,
                              extra="batch_max_requests = 100\ntimeout_s = 30")


def _paused(config: Path, point: str, *args: str) -> subprocess.Popen[str]:
    """``enrich ARGS`` in a child process, returned once it waits at ``point``."""
    env = {**os.environ, PAUSE_ENV: point, **KEYS}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from enrich.cli import main; main()", "--config", str(config),
         *args], cwd=config.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if f"paused at {point}" in line:
            return proc
    proc.wait(timeout=30)
    raise AssertionError(f"never paused at {point}: exit {proc.returncode}, "
                         f"{proc.stdout.read() if proc.stdout else ''}")


def _killed(proc: subprocess.Popen[str], db: Path) -> None:
    """SIGKILL, then wait until its batches lock is free: the main thread turns zombie a
    moment before the process's last thread lets its files (and flocks) go."""
    kill_leaving_zombie(proc)
    deadline = time.monotonic() + 10
    with Ledger(db) as ledger:
        while True:
            try:
                B.hold_batches(ledger).release()
                return
            except locks.AlreadyRunning:
                assert time.monotonic() < deadline, "the killed process kept its lock"
                time.sleep(0.05)


def _provider_batches(llm: object, provider: str) -> int:
    """The batches the provider holds (Gemini's store is apart, under its own routes)."""
    store = llm.gemini.batches if provider == "gemini" else llm.batches  # type: ignore[attr-defined]
    return len(store.batches)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sigkill_between_provider_accept_and_record_submits_nothing_twice(
        provider: str, db_path: Path, tmp_path: Path) -> None:
    with Ledger(db_path) as ledger:
        fill(ledger, 150)
    with serve_llm() as llm:
        config = _config(tmp_path, db_path, provider, llm.url)
        proc = _paused(config, "after-create", "run")
        _killed(proc, db_path)
        assert _provider_batches(llm.llm, provider) == 1  # the provider has it...
        with Ledger(db_path) as ledger:
            intents = B.list_batches(ledger, states=("intent",))
            assert len(intents) == 1 and intents[0].provider_batch_id is None  # ...we don't
            assert statuses(ledger) == {"processing": 100, "pending": 50}
            settings = batch_settings(provider, llm.url, batch_max_requests=100)
            sent = submit(ledger, settings)  # reconcile first, then the 50 left
            assert sent.reconciled == {"recorded": 1, "abandoned": 0, "waiting": 0}
            assert sent.jobs == 50
            assert _provider_batches(llm.llm, provider) == 2  # 100 + 50: nothing sent twice
            assert poll(ledger, settings).drafted == 150
            assert statuses(ledger) == {"drafted": 150}
        reap(proc)


def test_sigkill_before_the_provider_is_asked_puts_the_jobs_back(db_path: Path,
                                                                 tmp_path: Path) -> None:
    with Ledger(db_path) as ledger:
        fill(ledger, 60)
    with serve_llm() as llm:
        config = _config(tmp_path, db_path, "openai", llm.url)
        proc = _paused(config, "after-intent", "run")
        _killed(proc, db_path)
        assert _provider_batches(llm.llm, "openai") == 0
        with Ledger(db_path) as ledger:
            settings = batch_settings("openai", llm.url)
            sent = submit(ledger, settings)
            assert sent.reconciled["abandoned"] == 1 and sent.jobs == 60
            assert _provider_batches(llm.llm, "openai") == 1
            abandoned = B.list_batches(ledger, states=("abandoned",))
            assert len(abandoned) == 1
            poll(ledger, settings)
            assert statuses(ledger) == {"drafted": 60}
            # The abandoned try was refunded: one attempt each, the batch's.
            assert {len(ledger.attempts_for(j.id)) for j in ledger.list_jobs()} == {1}
        reap(proc)


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_sigkill_mid_ingest_then_poll_again_ingests_each_result_once(
        provider: str, db_path: Path, tmp_path: Path) -> None:
    with Ledger(db_path) as ledger, serve_llm() as llm:
        fill(ledger, 500)
        settings = batch_settings(provider, llm.url, batch_max_requests=500)
        submit(ledger, settings)
        config = _config(tmp_path, db_path, provider, llm.url)
        proc = _paused(config, "mid-ingest", "batches", "poll")
        _killed(proc, db_path)
        done = statuses(ledger)
        assert 0 < done.get("drafted", 0) < 500 and done["submitted"] == 500 - done["drafted"]
        again = poll(ledger, settings)
        assert again.drafted == 500 - done["drafted"] and again.collected == 1
        assert statuses(ledger) == {"drafted": 500}
        counts = ledger.conn.execute(
            "SELECT job_id, COUNT(*) FROM attempts GROUP BY job_id").fetchall()
        assert len(counts) == 500 and {n for _, n in counts} == {1}
        assert ledger.conn.execute("SELECT COUNT(*) FROM drafts").fetchone()[0] == 500
        assert _provider_batches(llm.llm, provider) == 1
        reap(proc)
