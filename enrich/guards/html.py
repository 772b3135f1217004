"""The HTML guard: descriptions keep only allow-listed tags, plain fields keep no tags.

nh3 (ammonia) does the cleaning. What it removed is read from the original with one
regex pass over the tags, so the flag can say *what* was taken out (``<script>`` and its
content, an ``onclick`` attribute, a link to an address not in the product data) instead
of flagging every harmless normalisation (``&`` -> ``&amp;``, a closed ``<p>``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from functools import lru_cache

import nh3

from enrich.guards.text import normal_url, plain_text, squash

_TAG_RE = re.compile(r"<\s*(/?)\s*([A-Za-z][A-Za-z0-9:-]*)([^>]*)>")
_ATTR_RE = re.compile(r"""([^\s=/"'>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
_COMMENT_RE = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_CONTENT_TAGS = frozenset({"script", "style"})
_ANY_TAG_RE = re.compile(r"<\s*/?\s*[A-Za-z][^>]*>|<!--")


@lru_cache(maxsize=16)
def html_cleaner(tags: frozenset[str]) -> nh3.Cleaner:
    """The allow-list cleaner: these tags, no attributes, script/style dropped with their
    content, comments out (the review page's shop preview uses the same one)."""
    return nh3.Cleaner(tags=set(tags), attributes={}, clean_content_tags=set(_CONTENT_TAGS),
                       strip_comments=True, link_rel=None)


def _removed(value: str, allowed: frozenset[str],
             href_ok: Callable[[str], bool]) -> list[str]:
    """What the allow-list takes out of ``value``, in words, each once, in order."""
    found: dict[str, None] = {}
    for closing, name, attrs in _TAG_RE.findall(value):
        tag = name.lower()
        if tag not in allowed:
            if not closing:
                found[f"the <{tag}> tag" + (" and its content" if tag in _CONTENT_TAGS
                                             else "")] = None
            continue
        for attr, v1, v2, v3 in _ATTR_RE.findall(attrs):
            attr = attr.lower()
            target = v1 or v2 or v3
            if tag == "a" and attr == "href":
                if not href_ok(target):
                    found[f"a link to {target} (not in the product data)"] = None
            else:
                found[f"the {attr} attribute on <{tag}>"] = None
    if _COMMENT_RE.search(value):
        found["an HTML comment"] = None
    return list(found)


def sanitize_html(value: str, tags: Iterable[str], source_urls: set[str]) -> tuple[str, list[str]]:
    """(clean HTML, what was removed). Links survive only to addresses in the data."""
    allowed = frozenset(tags)

    def href_ok(url: str) -> bool:
        return normal_url(url) in source_urls

    if "<" not in value and "&" not in value:
        return value, []
    if "a" in allowed:
        cleaned = nh3.clean(
            value, tags=set(allowed), attributes={"a": {"href"}},
            clean_content_tags=set(_CONTENT_TAGS), link_rel="noopener noreferrer",
            attribute_filter=lambda tag, attr, v: v if tag == "a" and href_ok(v) else None)
    else:
        cleaned = html_cleaner(allowed).clean(value)
    removed = _removed(value, allowed, href_ok)
    if not removed and squash(plain_text(cleaned)) != squash(plain_text(value)):
        removed.append("markup that changed the visible text")
    return cleaned, removed


def strip_tags(value: str) -> tuple[str, list[str]]:
    """Plain-text fields: any tag is removed (its text kept, script content dropped)."""
    if not _ANY_TAG_RE.search(value):
        return value, []
    removed = [f"the <{name.lower()}> tag" for closing, name, _ in _TAG_RE.findall(value)
               if not closing]
    cleaned = html.unescape(html_cleaner(frozenset()).clean(value))
    return " ".join(cleaned.split()), list(dict.fromkeys(removed)) or ["HTML markup"]
