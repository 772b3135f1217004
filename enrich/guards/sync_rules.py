"""The ``sync_rules`` guard: a draft field that ``enrich sync`` would call missing.

Why: sync judges the store's copy by its ``[sync]`` rules (equal to the name, shorter than
``min_length``, a placeholder, supplier boilerplate). A draft that fails them would be
published and then queued again by the next night's sync, redrafted and paid for again,
forever. Publishing records what was written so that cannot loop, but the copy itself is
still what the rules were written to keep out of the store, so a person should see it: the
field is flagged (``review approve --unflagged`` never approves it unseen) and kept.

The rules live in ``enrich.missing``, a layer above the guards, so this module takes them as
a ``SyncRules`` (``enrich.missing.DraftRules`` is the one the worker passes): one question,
"why would sync call this value missing?".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

#: Draft fields sync judges by value (image alt text is judged per image, present or not).
CHECKED = ("name", "description", "short_description", "seo_title", "meta_description",
           "focus_keyword")


class SyncRules(Protocol):
    def problem(self, field: str, value: str, source: Mapping[str, Any]) -> str | None:
        """Why sync would call ``value`` missing for ``field`` of product ``source``."""
        ...


def sync_rule_problems(fields: Mapping[str, Any], source: Mapping[str, Any],
                       rules: SyncRules) -> dict[str, str]:
    """Draft field -> why sync would call it missing, for every field that fails."""
    found: dict[str, str] = {}
    for name in CHECKED:
        value = fields.get(name)
        if not isinstance(value, str) or not value.strip():
            continue  # empty: the length and schema guards say so
        problem = rules.problem(name, value, source)
        if problem:
            found[name] = problem
    return found


__all__ = ["CHECKED", "SyncRules", "sync_rule_problems"]
