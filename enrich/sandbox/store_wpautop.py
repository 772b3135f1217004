"""WordPress's ``wpautop`` and a small ``wptexturize``, for view-context descriptions.

The real store returns ``description``/``short_description`` in the default (view) context
after these filters: paragraphs become ``<p>``, block tags get newlines, quotes turn curly.
A client that compares that text with what it wrote sees a change that is not there, so the
sandbox reproduces it (port of ``wp-includes/formatting.php``; ``<pre>`` and shortcode
handling left out, as catalog copy rarely has them).
"""

from __future__ import annotations

import re
from functools import lru_cache

_ALLBLOCKS = (
    r"(?:table|thead|tfoot|caption|col|colgroup|tbody|tr|td|th|div|dl|dd|dt|ul|ol|li|pre|"
    r"form|map|area|blockquote|address|style|p|h[1-6]|hr|fieldset|legend|section|article|"
    r"aside|hgroup|header|footer|nav|figure|figcaption|details|menu|summary)"
)
_TAG_OR_COMMENT = re.compile(r"(<!--.*?-->|<[^>]*>)", re.S)


def _replace_newlines_in_tags(text: str) -> str:
    parts = _TAG_OR_COMMENT.split(text)
    for i in range(1, len(parts), 2):
        if "\n" in parts[i]:
            parts[i] = parts[i].replace("\n", " <!-- wpnl --> ")
    return "".join(parts)


@lru_cache(maxsize=65536)
def wpautop(text: str, br: bool = True) -> str:
    """Port of WordPress ``wpautop`` (without ``<pre>`` protection)."""
    if text.strip() == "":
        return ""
    text = text + "\n"
    text = re.sub(r"<br\s*/?>\s*<br\s*/?>", "\n\n", text)
    text = re.sub(r"(<" + _ALLBLOCKS + r"[\s/>])", "\n\n\\1", text)
    text = re.sub(r"(</" + _ALLBLOCKS + r">)", "\\1\n\n", text)
    text = re.sub(r"(<hr\s*?/?>)", "\\1\n\n", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _replace_newlines_in_tags(text)
    if "<option" in text:
        text = re.sub(r"\s*<option", "<option", text)
        text = re.sub(r"</option>\s*", "</option>", text)
    text = re.sub(r"\n\n+", "\n\n", text)
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p != ""]
    text = "".join("<p>" + p.strip("\n") + "</p>\n" for p in paragraphs)
    text = re.sub(r"<p>\s*</p>", "", text)
    text = re.sub(r"<p>([^<]+)</(div|address|form)>", "<p>\\1</p></\\2>", text)
    text = re.sub(r"<p>\s*(</?" + _ALLBLOCKS + r"[^>]*>)\s*</p>", "\\1", text)
    text = re.sub(r"<p>(<li.+?)</p>", "\\1", text)
    text = re.sub(r"<p><blockquote([^>]*)>", "<blockquote\\1><p>", text, flags=re.I)
    text = text.replace("</blockquote></p>", "</p></blockquote>")
    text = re.sub(r"<p>\s*(</?" + _ALLBLOCKS + r"[^>]*>)", "\\1", text)
    text = re.sub(r"(</?" + _ALLBLOCKS + r"[^>]*>)\s*</p>", "\\1", text)
    if br:
        text = re.sub(
            r"<(script|style|svg|math).*?</\1>",
            lambda m: m.group(0).replace("\n", "<WPPreserveNewline />"),
            text,
            flags=re.S,
        )
        text = text.replace("<br>", "<br />").replace("<br/>", "<br />")
        text = re.sub(r"(?<!<br />)\s*\n", "<br />\n", text)
        text = text.replace("<WPPreserveNewline />", "\n")
    text = re.sub(r"(</?" + _ALLBLOCKS + r"[^>]*>)\s*<br />", "\\1", text)
    text = re.sub(r"<br />(\s*</?(?:p|li|div|dl|dd|dt|th|pre|td|ul|ol)[^>]*>)", "\\1", text)
    text = re.sub(r"\n</p>$", "</p>", text)
    if "<!-- wpnl -->" in text:
        text = text.replace(" <!-- wpnl --> ", "\n").replace("<!-- wpnl -->", "\n")
    return text


# The rules of wp-includes/formatting.php wptexturize() that product copy meets, in its
# order: ellipses, trademark, dashes, dimensions (24x36), primes after digits (15" = inches),
# then apostrophes and curly quotes.
_START = r"(?:(?<=^)|(?<=[\s(\[{\"-]))"
_TEXTURIZE_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\.\.\."), "&#8230;"),
    (re.compile(r" \(tm\)", re.I), " &#8482;"),
    (re.compile(r"---"), "&#8212;"),
    (re.compile(r"(?:(?<=^)|(?<=\s))--(?=$|\s)"), "&#8212;"),
    (re.compile(r"(?<!xn)--"), "&#8211;"),
    (re.compile(r"(?:(?<=^)|(?<=\s))-(?=$|\s)"), "&#8211;"),
    (re.compile(r"\b(\d[\d.,]*)x(\d[\d.,]*)\b"), r"\1&#215;\2"),
    (re.compile(r"(?<=\d)\""), "&#8243;"),
    (re.compile(r"(?<=\d)'"), "&#8242;"),
    (re.compile(r"(?<=\w)'(?=\w)"), "&#8217;"),
    (re.compile(_START + r"'"), "&#8216;"),
    (re.compile(r"'"), "&#8217;"),
    (re.compile(_START + r'"'), "&#8220;"),
    (re.compile(r'"'), "&#8221;"),
]


@lru_cache(maxsize=65536)
def wptexturize(text: str) -> str:
    """The common cases of WordPress ``wptexturize``: curly quotes, dashes, ellipses.

    Only text outside tags is touched, as in WordPress.
    """
    parts = _TAG_OR_COMMENT.split(text)
    for i in range(0, len(parts), 2):
        segment = parts[i]
        if not segment:
            continue
        for pattern, replacement in _TEXTURIZE_RULES:
            segment = pattern.sub(replacement, segment)
        parts[i] = segment
    return "".join(parts)


def view_description(raw: str) -> str:
    """``description`` in view context: ``wpautop(do_shortcode(...))``."""
    return wpautop(raw) if isinstance(raw, str) else raw


def view_short_description(raw: str) -> str:
    """``short_description`` in view context: the ``woocommerce_short_description`` filters."""
    return wpautop(wptexturize(raw)) if isinstance(raw, str) else raw
