"""The single-writer lock of publish and rollback.

The ledger side of publishing (approved drafts, the ``publishes`` rows, job moves) lives in
``enrich.ledger.publishes``; only the lock is here.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from typing import Any

from enrich.errors import UsageError
from enrich.ledger import Ledger
from enrich.ledger.ledger import pid_alive

LOCK_KEY = "publish.lock"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


# -- one writer at a time ------------------------------------------------------------------

def acquire_lock(ledger: Ledger, run_id: int) -> None:
    """Refuse to start while another live publish/rollback holds the ledger's write lock.

    Two publishers would both read "not yet written" and both write. The lock is a meta row
    naming the holder's pid; a holder killed with SIGKILL leaves a dead pid, which is taken
    over (its planned rows are then recovered).
    """
    def go(c: sqlite3.Connection) -> None:
        row = c.execute("SELECT value FROM meta WHERE key = ?", (LOCK_KEY,)).fetchone()
        holder = _loads(row[0]) if row and row[0] else None
        if holder and holder.get("pid") != os.getpid() and pid_alive(int(holder["pid"])):
            raise UsageError(
                f"another publish or rollback (run {holder.get('run_id')}, pid "
                f"{holder['pid']}) is writing to the store from this ledger",
                "Wait for it to finish; if that process is gone, run the command again.")
        if holder and holder.get("run_id") is not None:
            # The holder died without finishing its run (SIGKILL, power loss): say so.
            c.execute("UPDATE runs SET finished_at = ?, exit_reason = 'signal' "
                      "WHERE id = ? AND finished_at IS NULL", (time.time(), holder["run_id"]))
        c.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                  "SET value = excluded.value",
                  (LOCK_KEY, _dumps({"pid": os.getpid(), "run_id": run_id})))
    with ledger.transaction() as c:
        go(c)


def release_lock(ledger: Ledger, run_id: int) -> None:
    with ledger.transaction() as c:
        row = c.execute("SELECT value FROM meta WHERE key = ?", (LOCK_KEY,)).fetchone()
        holder = _loads(row[0]) if row and row[0] else None
        if holder and holder.get("run_id") == run_id:
            c.execute("DELETE FROM meta WHERE key = ?", (LOCK_KEY,))
