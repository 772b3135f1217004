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


def _index_columns(conn: sqlite3.Connection, table: str) -> dict[str, list[str]]:
    """Every index of ``table`` (a partial one included), as its key columns in order."""
    out = {}
    for _seq, name, *_rest in conn.execute(f"PRAGMA index_list({table})").fetchall():
        out[name] = [r[2] for r in conn.execute(f"PRAGMA index_info('{name}')")]
    return out


def test_no_index_repeats_the_leading_columns_of_another(db_path: Path) -> None:
    # An index on a left prefix of another (jobs_source beside UNIQUE (kind, source_id,
    # input_hash), dropped by m010) serves nothing the longer one does not, and every
    # write pays for it. A partial index (WHERE ...) is kept: it covers other rows.
    Ledger(db_path).close()
    conn = sqlite3.connect(db_path)
    partial = {r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '%WHERE%'")}
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    checked = 0
    for table in tables:
        indexes = {n: c for n, c in _index_columns(conn, table).items() if n not in partial}
        for name, columns in indexes.items():
            longer = [other for other, cols in indexes.items()
                      if other != name and len(cols) > len(columns)
                      and cols[:len(columns)] == columns]
            assert not longer, f"{table}: {name} {columns} is a prefix of {longer}"
            checked += 1
    conn.close()
    assert checked >= 8


def test_a_ledger_with_jobs_source_loses_it_and_looks_jobs_up_by_the_unique_index(
        db_path: Path) -> None:
    old = Database(db_path)
    migrations.apply(old, stop_before="m010_drop_jobs_source")
    assert "jobs_source" in _index_columns(old.conn, "jobs")
    old.close()
    with Ledger(db_path) as ledger:
        assert "jobs_source" not in _index_columns(ledger.conn, "jobs")
        plan = " ".join(r[-1] for r in ledger.conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE kind = 'product' AND source_id = ?",
            ("7",)))
        assert "USING COVERING INDEX sqlite_autoindex_jobs_1 (kind=? AND source_id=?)" in plan
