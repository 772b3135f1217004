"""The duplicate guard's band store: a private SQLite file that is not the ledger and dies with
the process.

The duplicate guard keeps one MinHash signature per drafted text with its LSH band keys;
for a 500,000-product catalog that is disk pages in a temporary SQLite file, not gigabytes
of Python dicts. It lives here because this package is the one place that speaks SQLite;
what a signature or a band key means stays in ``enrich.guards.duplicates``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence


class BandStore:
    """Texts (signature bytes) and the band keys that point at them, in a temporary file.

    Thread-safe: the worker's threads add and look up through one connection, under a lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # "" = a private temporary database on disk, deleted on close.
        self._db = sqlite3.connect("", check_same_thread=False, isolation_level=None)
        self._db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA cache_size = -32768;
            CREATE TABLE texts (id INTEGER PRIMARY KEY, job_id INTEGER, source_id TEXT,
                                field TEXT, sig BLOB NOT NULL);
            CREATE TABLE bands (key INTEGER NOT NULL, text_id INTEGER NOT NULL,
                                PRIMARY KEY (key, text_id)) WITHOUT ROWID;
            """)
        self.size = 0  # texts stored; counted under the lock with the rows

    def close(self) -> None:
        self._db.close()

    def insert(self, rows: Iterable[tuple[int | None, str, str, bytes, Sequence[int]]]
               ) -> None:
        """Add ``(job_id, source_id, field, signature, band_keys)`` rows in one transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            added = 0
            for job_id, source_id, field, sig, keys in rows:
                cur = self._db.execute(
                    "INSERT INTO texts (job_id, source_id, field, sig) VALUES (?, ?, ?, ?)",
                    (job_id, source_id, field, sig))
                text_id = cur.lastrowid
                self._db.executemany("INSERT OR IGNORE INTO bands (key, text_id) VALUES (?, ?)",
                                     [(k, text_id) for k in keys])
                added += 1
            self._db.execute("COMMIT")
            self.size += added

    def candidates(self, keys: Sequence[int], *, not_source: str | None, limit: int
                   ) -> list[tuple[int | None, str, str, bytes]]:
        """``(job_id, source_id, field, signature)`` of texts sharing any of ``keys``.

        Texts of ``not_source`` are left out (a product does not duplicate itself); at most
        ``limit`` rows, so a band every text shares cannot make a check slow.
        """
        with self._lock:
            rows = self._db.execute(
                f"SELECT DISTINCT t.id, t.job_id, t.source_id, t.field, t.sig FROM bands b "
                f"JOIN texts t ON t.id = b.text_id WHERE b.key IN ({','.join('?' * len(keys))}) "
                f"AND t.source_id IS NOT ? LIMIT ?",
                (*keys, not_source, limit)).fetchall()
        return [(job_id, src, field, blob) for _id, job_id, src, field, blob in rows]
