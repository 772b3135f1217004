"""Word-level diff of the store's text against the draft, for the review page.

Whitespace runs are kept as their own tokens so joining the pieces gives back both texts
exactly; the page renders each piece as text (never as HTML).
"""

from __future__ import annotations

import difflib
import re

_TOKEN = re.compile(r"\s+|[^\s<>]+|<[^>]*>|[<>]")


def tokens(text: str) -> list[str]:
    """Words, whitespace runs and HTML tags, in order; ''.join(tokens(t)) == t."""
    return _TOKEN.findall(text)


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """[(op, text)] with op in eq | del | ins; eq+del rebuild ``old``, eq+ins rebuild ``new``."""
    a, b = tokens(old or ""), tokens(new or "")
    out: list[tuple[str, str]] = []

    def push(op: str, text: str) -> None:
        if not text:
            return
        if out and out[-1][0] == op:
            out[-1] = (op, out[-1][1] + text)
        else:
            out.append((op, text))

    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            push("eq", "".join(a[i1:i2]))
        else:
            push("del", "".join(a[i1:i2]))
            push("ins", "".join(b[j1:j2]))
    return out
