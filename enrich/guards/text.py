"""Text plumbing shared by the guards: plain text of HTML, contact patterns, the source.

Every regex is compiled once at import; each helper is one linear pass over its input,
because guards run on every draft of catalogs with hundreds of thousands of products.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any

TAG_RE = re.compile(r"<[^>]*>")
_WS_RE = re.compile(r"\s+")
_SPACE_RE = re.compile(r"[^\S\n]+")
_BREAK_RUN_RE = re.compile(r"\n\s+")
_BLOCK_TAG_RE = re.compile(r"<\s*/?\s*(?:p|br|li|ul|ol|h[1-6]|div|tr|td|th|table|hr)\b[^>]*>",
                           re.IGNORECASE)

EMAIL_RE = re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
                      r"\.[A-Za-z]{2,}\b")
URL_RE = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"'(){}\[\]]+", re.IGNORECASE)
_TLDS = ("com|net|org|info|biz|io|co|shop|store|online|site|app|dev|de|uk|fr|es|it|nl|eu|us|"
         "ca|au|ch|at|be|se|dk|pl")
DOMAIN_RE = re.compile(
    r"(?<![\w@.-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:" + _TLDS + r")\b"
    r"(?!\.\w|@)(?:/[^\s<>\"']*)?", re.IGNORECASE)
PHONE_RE = re.compile(
    r"(?<![\w+/.,-])(?P<phone>(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,5}\)[\s.-]?)?\d{2,5}"
    r"(?:[\s.-]\d{2,5}){1,4})(?![\w/-]|[.,]\d)")
_TRAILING_PUNCT = ".,;:!?)]}'\""
_DIGITS_RE = re.compile(r"\D+")

# Keys whose values are bookkeeping, not facts about the product (dates, ids, links).
_SKIP_KEYS = frozenset({"id", "parent_id", "menu_order", "permalink", "_links", "price_html",
                        "date_created", "date_created_gmt", "date_modified",
                        "date_modified_gmt", "date_on_sale_from", "date_on_sale_from_gmt",
                        "date_on_sale_to", "date_on_sale_to_gmt", "upsell_ids",
                        "cross_sell_ids", "related_ids", "variations", "grouped_products"})


#: The ASCII whitespace ``\s`` matches besides the space and the line break. ``_SPACE_RE``
#: changes an ASCII text only if it holds one of these or two spaces in a row: sync makes
#: the plain text of every product's copy, and the substitution cost ~20 µs on 1 kB of it.
_ODD_SPACES = ("\t", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")


def plain_text(value: str) -> str:
    """Visible text of an HTML fragment: tags out, entities decoded, spaces collapsed.

    Block boundaries (paragraphs, list items, line breaks) stay line breaks, so "1" at
    the end of one paragraph and "V-Neck" at the start of the next are not "1 V".
    """
    if "<" in value:
        value = _BLOCK_TAG_RE.sub("\n", value)
        value = TAG_RE.sub("", value)
    if "&" in value:
        value = html.unescape(value)
    if not value.isascii() or "  " in value or any(map(value.__contains__, _ODD_SPACES)):
        value = _SPACE_RE.sub(" ", value)  # else it has nothing to collapse
    if "\n" in value:
        # Its only spaces now are single " " and "\n", so ``" ?\n\s*"`` -> "\n" (a space,
        # a line break and the whitespace after it, as one break) is the space before each
        # break dropped, then each break's run collapsed: a regex that starts with the
        # break is looked for only there (a third of the time on a product's description).
        value = _BREAK_RUN_RE.sub("\n", value.replace(" \n", "\n"))
    return value.strip()


#: Every ASCII character that is not a word character (what ``\W`` matches) to a space, as
#: a ``bytes.translate`` table: one C loop, where ``str.translate`` looks each character up
#: in a dict (six times slower on a product's text) and a regex is slower still.
_ASCII_NON_WORD = bytes(i if i >= 128 or chr(i).isalnum() or chr(i) == "_" else 32
                        for i in range(256))


def ascii_apart(text: str) -> str:
    """An ASCII ``text`` with each non-word character a space: its words by one ``split``."""
    return text.encode("ascii").translate(_ASCII_NON_WORD).decode("ascii")


def squash(value: str) -> str:
    """Lower case with single spaces: the form phrases are compared in."""
    return _WS_RE.sub(" ", value).strip().lower()


def strip_trailing_punct(value: str) -> str:
    return value.rstrip(_TRAILING_PUNCT)


def normal_url(value: str) -> str:
    """``HTTPS://www.Example.com/a/`` -> ``example.com/a``: how addresses are compared."""
    url = strip_trailing_punct(value.strip()).lower()
    for prefix in ("https://", "http://", "ftp://"):
        if url.startswith(prefix):
            url = url[len(prefix):]
            break
    if url.startswith("www."):
        url = url[4:]
    return url.rstrip("/")


def url_host(normal: str) -> str:
    return normal.split("/", 1)[0].split(":", 1)[0]


def is_phone(candidate: str) -> bool:
    """A digit run looks like a phone number only in a phone-like shape (not a range)."""
    digits = _DIGITS_RE.sub("", candidate)
    if not 7 <= len(digits) <= 15:
        return False
    if candidate.startswith(("+", "(")):
        return True
    separators = [c for c in candidate if not c.isdigit()]
    if not separators or all(c == " " for c in separators):
        return False
    return len(separators) >= 2 or re.fullmatch(r"\d{3}[-.]\d{4}", candidate) is not None


def digits_of(value: str) -> str:
    return _DIGITS_RE.sub("", value)


def find_contacts(text: str) -> tuple[list[str], list[str], list[str]]:
    """(urls, emails, phones) in ``text``, as written."""
    emails = [m.group(0) for m in EMAIL_RE.finditer(text)]
    rest = EMAIL_RE.sub(" ", text) if emails else text
    urls = [strip_trailing_punct(m.group(0)) for m in URL_RE.finditer(rest)]
    rest = URL_RE.sub(" ", rest) if urls else rest
    urls += [strip_trailing_punct(m.group(0)) for m in DOMAIN_RE.finditer(rest)]
    rest = DOMAIN_RE.sub(" ", rest)
    phones = [m.group("phone") for m in PHONE_RE.finditer(rest) if is_phone(m.group("phone"))]
    return urls, emails, phones


def without_contacts(text: str) -> str:
    """``text`` with addresses and phone numbers blanked, so their digits are not claims."""
    text = EMAIL_RE.sub(" ", text)
    text = URL_RE.sub(" ", text)
    text = DOMAIN_RE.sub(" ", text)
    return PHONE_RE.sub(lambda m: " " if is_phone(m.group("phone")) else m.group(0), text)


def walk(value: Any, key: str = "", parent: str = "") -> Iterator[tuple[str, str, Any]]:
    """(key, parent key, scalar) for every scalar of a product, skipping bookkeeping keys.

    Collected into a list by plain recursion (nested generators cost several times more,
    and sync walks every product's snapshot)."""
    out: list[tuple[str, str, Any]] = []
    _walk_into(value, key, parent, out)
    return iter(out)


#: key -> its lower-case name, or None when it is skipped (keys repeat on every product).
_KEY_NAMES: dict[Any, str | None] = {}


def _key_name(k: Any) -> str | None:
    name = _KEY_NAMES.get(k, "") if type(k) is str else ""  # 1 == True: only str keys
    if name == "":
        text = str(k)
        name = None if text in _SKIP_KEYS or text.lower().startswith("date") else text.lower()
        if type(k) is str and len(_KEY_NAMES) < 4096:
            _KEY_NAMES[k] = name
    return name


def _walk_into(value: Any, key: str, parent: str, out: list[tuple[str, str, Any]]) -> None:
    kind = type(value)
    if kind is str:  # the common leaf first: the Mapping check is an ABC lookup
        if value:
            out.append((key, parent, value))
    elif kind is list or kind is tuple:
        for item in value:
            _walk_into(item, key, parent, out)
    elif kind is dict or isinstance(value, Mapping):
        for k, v in value.items():
            name = _key_name(k)
            if name is not None:
                _walk_into(v, name, key, out)
    elif isinstance(value, list | tuple):
        for item in value:
            _walk_into(item, key, parent, out)
    elif value is not None and value != "":
        out.append((key, parent, value))


def long_texts(value: Any, min_chars: int) -> list[tuple[str, str, str]]:
    """(key, parent key, visible text) of each string of at least ``min_chars`` characters,
    as ``walk`` names them; fingerprints (hashes sync adds to a snapshot) are no text.

    What ``walk`` gives filtered to long strings, without building the rest: sync runs it
    on every product, so a product's own level and its lists are read here, and only
    objects nested deeper go through ``_long_into``."""
    out: list[tuple[str, str, str]] = []
    if type(value) is not dict:
        _long_into(value, "", "", out, min_chars)
        return out
    for k, v in value.items():
        kind = type(v)
        if kind is str:
            if len(v) >= min_chars:
                name = _key_name(k)
                if name is not None and name != "fingerprints":
                    out.append((name, "", plain_text(v) if "<" in v else v))
        elif kind is list:
            name = _key_name(k) if v else None
            if name is None or name == "fingerprints":
                continue
            for item in v:
                if type(item) is str:
                    if len(item) >= min_chars:
                        out.append((name, "", plain_text(item) if "<" in item else item))
                elif type(item) is dict:
                    _long_from_dict(item, name, out, min_chars)
                else:
                    _long_into(item, name, "", out, min_chars)
        elif v is not None and kind is not int and kind is not bool:
            name = _key_name(k)
            if name is not None and name != "fingerprints":
                _long_into(v, name, "", out, min_chars)
    return out


def _long_from_dict(value: dict[Any, Any], key: str, out: list[tuple[str, str, str]],
                    min_chars: int) -> None:
    """``_long_into`` of an object in a product's list (an attribute, an image), with the
    values that hold no long string (short text, a list of short texts, a number) passed
    over here rather than in a call each: a product has a few such objects."""
    for k, v in value.items():
        kind = type(v)
        if kind is str:
            if len(v) < min_chars:
                continue
        elif kind is list:
            for item in v:
                if type(item) is not str or len(item) >= min_chars:
                    break
            else:
                continue
        elif v is None or kind is int or kind is bool:
            continue
        name = _key_name(k)
        if name is not None and name != "fingerprints":
            _long_into(v, name, key, out, min_chars)


def _long_into(value: Any, key: str, parent: str, out: list[tuple[str, str, str]],
               min_chars: int) -> None:
    kind = type(value)
    if kind is str:
        if len(value) >= min_chars:
            out.append((key, parent, plain_text(value) if "<" in value else value))
    elif kind is list or kind is tuple:
        for item in value:
            if type(item) is not str or len(item) >= min_chars:
                _long_into(item, key, parent, out, min_chars)
    elif kind is dict or isinstance(value, Mapping):
        for k, v in value.items():
            if type(v) is str and len(v) < min_chars:
                continue
            name = _key_name(k)
            if name is not None and name != "fingerprints":
                _long_into(v, name, key, out, min_chars)
    elif isinstance(value, list | tuple):
        for item in value:
            _long_into(item, key, parent, out, min_chars)


class Source:
    """The source product as the guards see it: its text, contacts and numbers, built once."""

    def __init__(self, product: Mapping[str, Any]) -> None:
        self.product = product
        self.items: list[tuple[str, str, Any]] = list(walk(product))

    @cached_property
    def texts(self) -> list[tuple[str, str, str]]:
        """(key, parent key, plain text) of every string and number."""
        out: list[tuple[str, str, str]] = []
        for key, parent, value in self.items:
            if isinstance(value, bool):
                continue
            text = plain_text(value) if isinstance(value, str) else str(value)
            if text:
                out.append((key, parent, text))
        return out

    @cached_property
    def text(self) -> str:
        return "\n".join(t for _k, _p, t in self.texts)

    @cached_property
    def lower(self) -> str:
        return squash(self.text)

    @cached_property
    def raw_text(self) -> str:
        """Strings as stored (HTML included): links inside ``href`` count as in the data."""
        return "\n".join(str(v) for _k, _p, v in self.items if isinstance(v, str))

    @cached_property
    def contacts(self) -> tuple[set[str], set[str], set[str], set[str]]:
        """(normal urls, hosts, emails, phone digit strings) present in the data."""
        raw = self.raw_text + "\n" + self.text
        hrefs = re.findall(r"""href\s*=\s*["']?([^"'\s>]+)""", raw, re.IGNORECASE)
        urls, emails, phones = find_contacts(raw)
        normal = {normal_url(u) for u in [*urls, *hrefs]}
        hosts = {url_host(u) for u in normal}
        return (normal, hosts, {e.lower() for e in emails},
                {digits_of(p) for p in phones})

    def has_url(self, url: str) -> bool:
        normal_urls, hosts, _emails, _phones = self.contacts
        normal = normal_url(url)
        return normal in normal_urls or ("/" not in normal and normal in hosts)

    def has_email(self, email: str) -> bool:
        return email.lower() in self.contacts[2]

    def has_phone(self, phone: str) -> bool:
        digits = digits_of(phone)
        return any(digits == known or (len(digits) >= 7 and known.endswith(digits))
                   or (len(known) >= 7 and digits.endswith(known))
                   for known in self.contacts[3])
