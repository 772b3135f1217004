"""Killed processes left as zombies, and a child process holding one of enrich's locks.

A zombie is what a container whose PID 1 reaps nothing keeps after ``kill -9``: the tests
kill a real child and deliberately do not reap it until they have checked what the next
command does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]


def is_zombie(proc: subprocess.Popen[Any]) -> bool:
    """Dead but not reaped (never calls ``poll``, which would reap it)."""
    return _state(proc.pid) == "Z"


def kill_leaving_zombie(proc: subprocess.Popen[Any], timeout_s: float = 10.0) -> None:
    """SIGKILL ``proc`` and wait (without reaping it) until it is a zombie.

    Then ``os.kill(pid, 0)`` still succeeds: a pid check would call the killed process alive.
    The caller reaps it with ``proc.wait()`` once it has checked what it wanted.
    """
    os.kill(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while not is_zombie(proc):
        assert time.monotonic() < deadline, f"process {proc.pid} did not die"
        time.sleep(0.01)
    os.kill(proc.pid, 0)  # raises if the pid were gone: it is not, it is a zombie


def reap(proc: subprocess.Popen[Any]) -> None:
    """Reap the zombie left by ``kill_leaving_zombie`` and check it died of SIGKILL."""
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL


_HOLDER = """
import sys, time
from pathlib import Path
from enrich.ledger import locks
kind, db = sys.argv[1], Path(sys.argv[2])
if kind == "nightly":
    lock = locks.hold_nightly(db)
else:
    lock = locks.acquire(locks.lock_file(db, kind), run_id=int(sys.argv[3]))
print("held", flush=True)
time.sleep(120)
"""


def hold_lock_in_child(kind: str, db: Path, *args: str) -> subprocess.Popen[str]:
    """A child process holding ``db``'s ``kind`` lock (``publish`` or ``nightly``) until
    killed; returns once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, kind, str(db), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "held":
        proc.kill()
        raise AssertionError(f"the lock holder did not start: {proc.communicate()[1]}")
    return proc
