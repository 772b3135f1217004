"""An old ledger is upgraded in place; a ledger from a newer enrich is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from enrich.errors import LedgerVersionError
from enrich.ledger import Ledger
from enrich.ledger.codec import dumps, loads
from enrich.ledger.products import shared_fingerprints
from enrich.ledger.schema import KNOWN, migrations


def test_old_ledger_is_upgraded_and_keeps_its_jobs(db_path: Path) -> None:
    old = Database(db_path)
    migrations.apply(old, stop_before="m002_publishes")
    old.execute("INSERT INTO jobs (kind, source_id, input_hash, created_at, updated_at) "
                "VALUES ('product', '42', 'h', 0, 0)")
    old.conn.commit()
    old.close()
    assert "publishes" not in Database(db_path).table_names()

    with Ledger(db_path) as ledger:
        assert ledger.schema_version()[:2] == ["m001_core", "m002_publishes"]
        assert ledger.schema_version() == KNOWN
        assert "batches" in ledger.db.table_names()
        assert "publishes" in ledger.db.table_names()
        assert [j.source_id for j in ledger.list_jobs()] == ["42"]


def test_products_synced_before_the_fingerprints_column_still_count_as_boilerplate(
        db_path: Path) -> None:
    old = Database(db_path)
    migrations.apply(old, stop_before="m009_product_fingerprints")
    for sid in ("1", "2", "3"):
        snapshot = {"id": int(sid), "fingerprints": {"description": "f00d", "name": sid}}
        old.execute("INSERT INTO products (source_id, snapshot, content_hash, state, synced_at) "
                    "VALUES (?, ?, ?, 'needs_work', 0)", (sid, dumps(snapshot), "h" + sid))
    old.conn.commit()
    old.close()

    with Ledger(db_path) as ledger:
        assert ledger.schema_version() == KNOWN
        assert shared_fingerprints(ledger, 3) == frozenset({"f00d"})
        stored = ledger.conn.execute("SELECT fingerprints FROM products WHERE source_id = '2'")
        assert loads(stored.fetchone()[0]) == {"description": "f00d", "name": "2"}


def test_newer_ledger_is_refused_untouched(db_path: Path) -> None:
    Ledger(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                 "VALUES ('enrich', 'm999_from_the_future', 'x')")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerVersionError, match=r"newer enrich.*m999_from_the_future"):
        Ledger(db_path)


def test_ledger_in_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="does not exist"):
        Ledger(tmp_path / "nope" / "ledger.db")
