"""A throw-away copy of the ledger, for commands that show what they would do (``--dry-run``).

Running the real code against a copy, rather than a separate "what if" code path, makes the
dry run's counts exactly what the real run would report. SQLite's online backup copies a
consistent state even while workers write to the ledger.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from enrich.ledger.ledger import Ledger


@contextmanager
def scratch_copy(ledger: Ledger, *, prefix: str = "enrich-scratch-") -> Iterator[Ledger]:
    """A ledger opened on a temporary copy of ``ledger``; the copy is deleted on exit."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        scratch = Path(tmp) / "ledger.db"
        target = sqlite3.connect(scratch)
        try:
            ledger.conn.backup(target)
        finally:
            target.close()
        with Ledger(scratch) as work:
            yield work


__all__ = ["scratch_copy"]
