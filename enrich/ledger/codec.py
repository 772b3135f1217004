"""How the ledger stores structured values in its JSON text columns.

One spelling for every table (sorted keys, real UTF-8 rather than ``\\u`` escapes), so the
same value always gives the same text: rows stay comparable and diffs of a ledger stay
readable. SQL NULL and Python ``None`` map to each other, so an absent edit or flag list is
told apart from an empty one.
"""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> str | None:
    """A value as the ledger stores it (None stays SQL NULL)."""
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def loads(text: str | None) -> Any:
    """A JSON column back as a value (SQL NULL comes back as None)."""
    return None if text is None else json.loads(text)
