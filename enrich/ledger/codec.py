"""How the ledger stores structured values in its JSON text columns.

One spelling for every table (sorted keys, no spaces, real UTF-8 rather than ``\\u``
escapes), so the same value always gives the same text: rows stay comparable and diffs of a
ledger stay readable. SQL NULL and Python ``None`` map to each other, so an absent edit or flag
list is told apart from an empty one.

orjson writes it: a sync stores one snapshot per product, and ``json.dumps`` with sorted keys
cost about six times as much. What orjson will not write (keys that are not strings,
integers beyond 64 bits, lone surrogates) is written by ``json`` in the same spelling. NaN
and the infinities are written as ``null``: they are not JSON, and SQLite's JSON functions
refuse a text holding them.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_SORTED = orjson.OPT_SORT_KEYS


def dumps(value: Any) -> str | None:
    """A value as the ledger stores it (None stays SQL NULL)."""
    if value is None:
        return None
    try:
        return orjson.dumps(value, option=_SORTED).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def loads(text: str | None) -> Any:
    """A JSON column back as a value (SQL NULL comes back as None)."""
    return None if text is None else json.loads(text)
