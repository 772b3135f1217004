"""What counts as missing: the ``[sync]`` rules a product's copy is judged by.

A field is missing when its visible text (HTML, shortcodes and entities stripped) is empty,
shorter than ``min_length``, the same as the name (or, for the name, the SKU), a placeholder
("Lorem ipsum", "TBD", "N/A"...), or supplier boilerplate: a text whose ``fingerprint`` the
ledger holds on ``boilerplate_min_products`` products or more. A product that needs copy but
has less than ``min_source_chars`` of source text to write from is ``needs_data``: a model
would have nothing to ground its copy in.

Everything here is pure (no store, no ledger), so the same rules decide during a sync, when
the stored snapshots are re-decided after a rules change, and in tests.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from enrich.config import Settings, SyncConfig
from enrich.woo.seo import SEO_FIELDS, writable_fields

TEXT_FIELDS = ("name", "description", "short_description")
#: Fields whose text is fingerprinted, to find the same supplier text across products.
FINGERPRINTED = ("description", "short_description", "seo_title", "meta_description")
VARIATION_FIELDS = ("description", "image_alt")
#: Filler that marks a text as missing wherever it appears, not only at the start.
FILLER_ANYWHERE = ("lorem ipsum",)
FINGERPRINT_MIN_CHARS = 20
STATES = ("complete", "needs_work", "needs_data", "invalid")

_TAG = re.compile(r"<[^>]*>")
_SHORTCODE = re.compile(r"\[/?[a-zA-Z_][^\]]{0,200}\]")
_WS = re.compile(r"\s+")


# -- text ---------------------------------------------------------------------------------------

def plain_text(value: Any) -> str:
    """Visible text of stored HTML: tags and shortcodes dropped, entities decoded."""
    if not isinstance(value, str) or not value:
        return ""
    if "<" in value or "[" in value:
        value = _SHORTCODE.sub(" ", _TAG.sub(" ", value))
    if "&" in value:
        value = html.unescape(value)
    return _WS.sub(" ", value).strip()


def fingerprint(text: str) -> str:
    """A short hash of normalised visible text, to count the same text across products."""
    norm = re.sub(r"[^\w]+", " ", text.lower()).strip()
    return hashlib.sha256(norm.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# -- rules --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rules:
    """``[sync]`` resolved against the store: which fields, and when one counts as missing."""

    fields: tuple[str, ...]
    skipped_fields: tuple[str, ...]
    min_length: dict[str, int]
    placeholders: tuple[str, ...]
    boilerplate_min_products: int
    min_source_chars: int
    max_field_bytes: int
    variations: bool
    seo_plugin: str
    statuses: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        cfg: SyncConfig = settings.sync
        seo_ok = set(writable_fields(settings.store.seo_plugin))
        fields = tuple(f for f in cfg.fields if f not in SEO_FIELDS or f in seo_ok)
        skipped = tuple(f for f in cfg.fields if f not in fields)
        return cls(fields=fields, skipped_fields=skipped, min_length=dict(cfg.min_length),
                   placeholders=tuple(p.strip().lower() for p in cfg.placeholders if p.strip()),
                   boilerplate_min_products=cfg.boilerplate_min_products,
                   min_source_chars=cfg.min_source_chars, max_field_bytes=cfg.max_field_bytes,
                   variations=cfg.variations, seo_plugin=settings.store.seo_plugin,
                   statuses=tuple(settings.store.statuses))


@functools.lru_cache(maxsize=16)
def _longest(placeholders: tuple[str, ...]) -> int:
    return max(map(len, placeholders), default=0)


def _placeholder(low: str, placeholders: Sequence[str]) -> str | None:
    bare = low.strip(" .!?-–—:;*_()[]")
    if len(bare) >= _longest(tuple(placeholders)) + 40:  # only filler can match
        return next((p for p in FILLER_ANYWHERE if p in placeholders and p in bare), None)
    for p in placeholders:
        if bare == p:
            return p
        if p in FILLER_ANYWHERE and p in bare:
            return p
        rest = bare[len(p):]
        if bare.startswith(p) and (not rest or not rest[0].isalnum()) and len(rest) < 40:
            return p
    return None


def field_problem(name: str, text: str, *, product_name: str, sku: str, rules: Rules,
                  boilerplate: frozenset[str]) -> str | None:
    """Why ``text`` (visible text) does not count as copy for field ``name``, or None."""
    if not text:
        return "empty"
    low = text.lower()
    found = _placeholder(low, rules.placeholders)
    if found:
        return f"placeholder {found!r}"
    if name == "name":
        if sku and low == sku.lower():
            return "same as the SKU"
        if low == "product":
            return "WooCommerce's default name"
    elif product_name and low == product_name.lower():
        return "same as the name"
    minimum = rules.min_length.get(name, 0)
    if len(text) < minimum:
        return f"shorter than {minimum} characters"
    if boilerplate and name in FINGERPRINTED and len(text) >= FINGERPRINT_MIN_CHARS \
            and fingerprint(text) in boilerplate:
        return f"supplier boilerplate (the same text on {rules.boilerplate_min_products}+ products)"
    return None


@dataclass
class Evaluation:
    state: str
    missing: list[str]
    why: dict[str, str]
    reason: str | None


def visible_texts(snapshot: Mapping[str, Any]) -> dict[str, str]:
    """The visible text of every copy field of a snapshot (SEO ones included)."""
    seo = snapshot.get("seo") or {}
    texts = {f: plain_text(snapshot.get(f)) for f in TEXT_FIELDS}
    for f in SEO_FIELDS:
        texts[f] = plain_text(seo.get(f))
    return texts


def evaluate(snapshot: Mapping[str, Any], rules: Rules,
             boilerplate: frozenset[str] = frozenset(),
             texts: Mapping[str, str] | None = None) -> Evaluation:
    """Decide complete / needs_work / needs_data for a valid snapshot (pure function).

    ``texts`` is ``visible_texts(snapshot)`` when the caller already has it.
    """
    is_variation = snapshot.get("type") == "variation"
    fields = [f for f in rules.fields if not is_variation or f in VARIATION_FIELDS]
    if texts is None:
        texts = visible_texts(snapshot)
    name = texts["name"]
    sku = snapshot.get("sku") or ""
    why: dict[str, str] = {}
    name_problem = field_problem("name", name, product_name=name, sku=sku, rules=rules,
                                 boilerplate=boilerplate)
    for f in fields:
        if f == "image_alt":
            images = snapshot.get("images") or []
            bare = sum(1 for i in images if not plain_text(i.get("alt")))
            if bare:
                why[f] = f"{bare} of {len(images)} image(s) without alt text"
            continue
        if f == "name":
            if name_problem and not is_variation:
                why[f] = name_problem
            continue
        problem = field_problem(f, texts[f], product_name=name, sku=sku, rules=rules,
                                boilerplate=boilerplate)
        if problem:
            why[f] = problem
    if not why:
        return Evaluation("complete", [], {}, None)
    missing = list(why)
    source = source_chars(snapshot, texts, exclude=set(missing), name_ok=name_problem is None)
    if source < rules.min_source_chars:
        reason = (f"only {source} characters of source text to write from (name, attributes, "
                  f"categories, tags, existing copy; at least {rules.min_source_chars} needed)")
        return Evaluation("needs_data", missing, why, reason)
    reason = "; ".join(f"{f}: {w}" for f, w in why.items())
    return Evaluation("needs_work", missing, why, reason)


def source_chars(snapshot: Mapping[str, Any], texts: Mapping[str, str], *, exclude: set[str],
                 name_ok: bool) -> int:
    """How much real text a model would have to write from."""
    total = len(texts["name"]) if name_ok else 0
    total += len(str(snapshot.get("parent_name") or "").strip())
    for attr in snapshot.get("attributes") or []:
        total += len(str(attr.get("name") or "").strip())
        total += sum(len(str(o).strip()) for o in attr.get("options") or [])
    for key in ("categories", "tags", "brands"):
        total += sum(len(t.strip()) for t in snapshot.get(key) or []
                     if t.lower() != "uncategorized")
    for f in ("description", "short_description"):
        if f not in exclude:
            total += len(texts[f])
    return total


__all__ = [
    "FINGERPRINTED",
    "FINGERPRINT_MIN_CHARS",
    "STATES",
    "TEXT_FIELDS",
    "VARIATION_FIELDS",
    "Evaluation",
    "Rules",
    "evaluate",
    "field_problem",
    "fingerprint",
    "plain_text",
    "source_chars",
    "visible_texts",
]
