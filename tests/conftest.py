"""Shared fixtures: real SQLite files in a temp dir, never a mocked ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from enrich.ledger import Ledger


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's config, ledger or real keys."""
    for name in ("ENRICH_CONFIG", "ENRICH_DB", "OPENAI_API_KEY", "ANTHROPIC_API_KEY",
                 "WOO_CONSUMER_KEY", "WOO_CONSUMER_SECRET", "OPENAI_BASE_URL",
                 "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def ledger(db_path: Path) -> Iterator[Ledger]:
    with Ledger(db_path) as opened:
        yield opened
