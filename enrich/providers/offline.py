"""The offline provider: plain, honest copy built only from the product's own data.

No network, no cost, the same answer every time. It is the demo's provider and a free
fallback for a store that wants its gaps filled with something factual rather than nothing.
It never invents a fact: every name, attribute, number and unit in its output is copied from
the product snapshot, and the only words it adds are fixed, generic phrases that contain no
claims and no numbers ("See the full details and options on this page."). Drafts say they
came from ``offline-v1`` so a reviewer knows no model wrote them.

It knows the copy fields enrich writes (name, description, short description, SEO title,
meta description, focus keyword, image alt). A schema with a required field it does not know
(an invoice, say) is refused with a PermanentProviderError naming the field.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from enrich.config import LLMConfig, Secrets
from enrich.errors import ConfigError, PermanentProviderError
from enrich.providers.base import (
    InvalidOutput,
    LLMRequest,
    LLMResult,
    Provider,
    Usage,
    validate_fields,
)
from enrich.providers.prices import OFFLINE_PRICE

OFFLINE_MODEL = "offline-v1"

_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_PLACEHOLDER = re.compile(
    r"lorem ipsum|sit amet|pellentesque|consectetur adipiscing|\btbd\b|coming soon|placeholder"
    r"|\btodo\b|^this is an? \w+ product", re.I)

# Fixed phrases used to reach a minimum length. No numbers, no claims, no superlatives.
_PADDING = (
    "See the full details and available options on this page.",
    "Check the specifications above to choose the right option for you.",
    "All the details we have for this product are listed here.",
    "See the details and options on this page.",
    "Details and options are listed here.",
    "See the details below.",
    "Details below.",
)
_SHORT_PADDING = ("product details", "details and options")


def _clean(value: Any) -> str:
    """Plain text of a source value: tags dropped, entities decoded, spaces collapsed."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int | float):
        return json.dumps(value)
    text = html.unescape(_TAG.sub(" ", str(value)))
    return _SPACE.sub(" ", text).strip()


def _names(items: Any) -> list[str]:
    """Names from a list of strings or {"name": ...} objects (Woo categories, tags)."""
    if items is None:
        return []
    if isinstance(items, str):
        items = [part for part in re.split(r"[,|]", items)]
    if not isinstance(items, list):
        return []
    out: list[str] = []
    for item in items:
        name = _clean(item.get("name") if isinstance(item, dict) else item)
        if " > " in name:  # "Clothing > Hoodies": the leaf is the useful word
            name = name.split(" > ")[-1].strip()
        if name.count("/") >= 2 and not isinstance(item, dict):  # "Default Category/Men/Tops"
            name = name.rsplit("/", 1)[-1].strip()
        seen = {n.lower() for n in out} | {"uncategorized"}
        if name and name.lower() not in seen:
            out.append(name)
    return out


def _attributes(raw: Any) -> list[tuple[str, list[str]]]:
    """(name, values) pairs from Woo attribute lists or a plain mapping."""
    pairs: list[tuple[str, list[str]]] = []
    if isinstance(raw, dict):
        raw = [{"name": k, "options": v} for k, v in raw.items()]
    if not isinstance(raw, list):
        return pairs
    for item in raw:
        if not isinstance(item, dict):
            continue
        name = _clean(item.get("name"))
        name = name[:1].upper() + name[1:]
        values = item.get("options", item.get("option", item.get("value")))
        if not isinstance(values, list):
            values = [values]
        cleaned = [v for v in (_clean(v) for v in values) if v]
        if name and cleaned:
            pairs.append((name, cleaned))
    return pairs


@dataclass
class ProductFacts:
    """What the snapshot says, as plain strings exactly as they were written."""

    name: str
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    brands: list[str] = field(default_factory=list)
    attributes: list[tuple[str, list[str]]] = field(default_factory=list)
    weight: str = ""
    weight_unit: str = ""
    dimensions: list[str] = field(default_factory=list)
    dimension_unit: str = ""
    existing: str = ""  # a usable sentence of existing copy, when there is one
    images: int = 0  # how many product images the snapshot lists

    @classmethod
    def from_source(cls, source: dict[str, Any]) -> ProductFacts:
        dims = source.get("dimensions") or {}
        dim_values = []
        if isinstance(dims, dict):
            dim_values = [_clean(dims.get(k)) for k in ("length", "width", "height")]
            dim_values = [v for v in dim_values if v and v not in ("0", "0.0")]
        existing = ""
        for key in ("short_description", "description"):
            text = _clean(source.get(key))
            if text and not _PLACEHOLDER.search(text):
                first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
                if 20 <= len(first) <= 300:
                    existing = first if first[-1] in ".!?" else first + "."
                    break
        weight = _clean(source.get("weight"))
        images = source.get("images")
        name = _clean(source.get("name"))
        parent = _clean(source.get("parent_name"))
        if parent and parent.lower() not in name.lower():  # a variation named "Blue, L"
            name = f"{parent} – {name}" if name else parent
        return cls(
            name=name,
            categories=_names(source.get("categories", source.get("category"))),
            tags=_names(source.get("tags")),
            brands=_names(source.get("brands", source.get("brand"))),
            attributes=_attributes(source.get("attributes")),
            weight="" if weight in ("0", "0.0") else weight,
            weight_unit=_clean(source.get("weight_unit")),
            dimensions=dim_values if len(dim_values) >= 2 else [],
            dimension_unit=_clean(source.get("dimension_unit")),
            existing=existing,
            images=len(images) if isinstance(images, list) else 0,
        )

    # Sentences built from the facts -------------------------------------------------

    def category(self) -> str:
        return self.categories[-1] if self.categories else ""

    def attribute_lines(self) -> list[str]:
        lines = [f"Brand: {', '.join(self.brands)}"] if self.brands else []
        lines += [f"{name}: {', '.join(values)}" for name, values in self.attributes]
        if self.dimensions:
            unit = f" {self.dimension_unit}" if self.dimension_unit else ""
            lines.append(f"Dimensions: {' x '.join(self.dimensions)}{unit}")
        if self.weight:
            unit = f" {self.weight_unit}" if self.weight_unit else ""
            lines.append(f"Weight: {self.weight}{unit}")
        return lines

    def intro(self) -> str:
        cat = self.category()
        if cat and cat.lower() not in self.name.lower():
            return f"{self.name}, from our {cat} range."
        return f"{self.name}."

    def options_sentence(self) -> str:
        parts = [f"{name}: {', '.join(values)}" for name, values in self.attributes]
        return ("Options: " + "; ".join(parts) + ".") if parts else ""


def _cut(text: str, limit: int | None) -> str:
    """``text`` shortened at a word boundary (never inside a number or a word)."""
    if limit is None or len(text) <= limit:
        return text
    cut = text[: limit + 1]
    space = cut.rfind(" ")
    cut = cut[:space] if space > 0 else text[:limit]
    return cut.rstrip(" ,;:-–|")


def _fill(parts: list[str], lo: int | None, hi: int | None, padding: tuple[str, ...]) -> str:
    """Join sentences up to ``hi``, then pad with generic phrases to reach ``lo``."""
    text = ""
    for part in parts:
        if not part:
            continue
        candidate = f"{text} {part}".strip()
        if hi is not None and len(candidate) > hi:
            if not text:  # the first sentence alone is too long: keep what fits
                text = _cut(candidate, hi)
            continue
        text = candidate
    used: set[str] = set()
    while lo is not None and len(text) < lo:
        pad = next((p for p in padding if p not in used
                    and (hi is None or len(text) + 1 + len(p) <= hi)), None)
        if pad is None:
            break  # validation then reports the product as too thin for the schema
        used.add(pad)
        text = f"{text} {pad}".strip()
    return text


Writer = Callable[[ProductFacts, int | None, int | None, bool], str]


def _name(facts: ProductFacts, lo: int | None, hi: int | None, as_html: bool) -> str:
    return _cut(facts.name, hi)


def _seo_title(facts: ProductFacts, lo: int | None, hi: int | None, as_html: bool) -> str:
    hi = hi or 60
    cat = facts.category()
    title = facts.name
    if cat and cat.lower() not in facts.name.lower() and len(f"{title} | {cat}") <= hi:
        title = f"{title} | {cat}"
    title = _cut(title, hi)
    for pad in _SHORT_PADDING:
        if lo is None or len(title) >= lo:
            break
        if len(f"{title} – {pad}") <= hi:
            title = f"{title} – {pad}"
    return title


def _meta(facts: ProductFacts, lo: int | None, hi: int | None, as_html: bool) -> str:
    hi = hi or 160
    return _fill([facts.intro(), facts.existing, facts.options_sentence()], lo, hi, _PADDING)


def _short(facts: ProductFacts, lo: int | None, hi: int | None, as_html: bool) -> str:
    text = _fill([facts.intro(), facts.existing, facts.options_sentence()], lo, hi, _PADDING)
    return f"<p>{html.escape(text, quote=False)}</p>" if as_html else text


def _description(facts: ProductFacts, lo: int | None, hi: int | None, as_html: bool) -> str:
    lead = " ".join(p for p in (facts.intro(), facts.existing) if p)
    lines = facts.attribute_lines()
    closing = _PADDING[0]
    if as_html:
        esc = [html.escape(x, quote=False) for x in lines]
        body = f"<p>{html.escape(lead, quote=False)}</p>"
        if esc:
            body += "<ul>" + "".join(f"<li>{x}</li>" for x in esc) + "</ul>"
        body += f"<p>{closing}</p>"
        extra = [f"<p>{p}</p>" for p in _PADDING[1:]]
    else:
        body = "\n".join([lead, *(f"- {x}" for x in lines), closing])
        extra = list(_PADDING[1:])
    for pad in extra:
        if lo is None or _text_len(body, as_html) >= lo:
            break
        body += ("" if as_html else "\n") + pad
    if hi is not None and _text_len(body, as_html) > hi:
        body = _cut(_SPACE.sub(" ", _TAG.sub(" ", body)).strip() if as_html else body, hi)
    return body


def _text_len(text: str, as_html: bool) -> int:
    """Length as the guards count it: characters of text, tags not counted."""
    return len(_TAG.sub("", text)) if as_html else len(text)


def _keyword(facts: ProductFacts, lo: int | None, hi: int | None, as_html: bool) -> str:
    words = facts.name.lower().split()
    return _cut(" ".join(words[:4]), hi)


def _image_alt(facts: ProductFacts, lo: int | None, hi: int | None, as_html: bool) -> str:
    colour = next((v[0] for n, v in facts.attributes
                   if n.lower() in ("color", "colour") and len(v) == 1), "")
    alt = f"{facts.name} in {colour}" if colour else facts.name
    if lo is not None and len(alt) < lo:
        cat = facts.category()
        alt = f"{alt}, {cat}" if cat and len(f"{alt}, {cat}") >= lo else f"Photo of {alt}"
    return _cut(alt, hi or 125)


def _image_alts(facts: ProductFacts, prop: dict[str, Any]) -> list[str]:
    """One alt text per image (the schema's item count, else the snapshot's images).

    Only the first is the product itself; the others say "alternate view" rather than guess
    what a picture shows.
    """
    lo, hi, _ = _limits(prop.get("items") or {})
    count = prop.get("minItems") or facts.images or 1
    first = _image_alt(facts, lo, hi, False)
    other = _cut(f"{first}, alternate view", hi or 125)
    return [first] + [other] * (int(count) - 1)


# Field names (and common synonyms) the offline provider can write.
_WRITERS: dict[str, Writer] = {
    "name": _name, "title": _name, "product_name": _name,
    "description": _description, "long_description": _description,
    "short_description": _short, "summary": _short, "excerpt": _short,
    "seo_title": _seo_title, "meta_title": _seo_title,
    "meta_description": _meta, "seo_description": _meta,
    "focus_keyword": _keyword, "focus_keyphrase": _keyword, "keyword": _keyword,
    "image_alt": _image_alt, "alt_text": _image_alt,
}


def _limits(prop: dict[str, Any]) -> tuple[int | None, int | None, str | None]:
    kinds = [prop, *prop.get("anyOf", [])]
    lo = next((k["minLength"] for k in kinds if "minLength" in k), None)
    hi = next((k["maxLength"] for k in kinds if "maxLength" in k), None)
    kind = next((k["type"] for k in kinds if k.get("type") not in (None, "null")), None)
    return lo, hi, kind


class OfflineProvider(Provider):
    """Deterministic copy from the snapshot; see the module docstring for its promises."""

    name = "offline"
    paced = False

    def __init__(self) -> None:
        super().__init__(OFFLINE_MODEL, OFFLINE_PRICE)

    def write(self, schema_json: dict[str, Any], source: dict[str, Any],
              job_id: int | None = None, schema_title: str = "output") -> dict[str, Any]:
        at = f"offline provider (job {job_id})" if job_id is not None else "offline provider"
        facts = ProductFacts.from_source(source)
        if not facts.name:
            raise PermanentProviderError(
                f"{at}: the product has no name to write copy from",
                "Give the product a name in the store, then sync again.",
                error_class="invalid_request")
        required = set(schema_json.get("required", []))
        out: dict[str, Any] = {}
        for field_name, prop in schema_json.get("properties", {}).items():
            writer = _WRITERS.get(field_name.lower())
            lo, hi, kind = _limits(prop)
            if writer is _image_alt and kind == "array":
                out[field_name] = _image_alts(facts, prop)
                continue
            if writer is None or kind not in ("string", None):
                if field_name in required:
                    raise PermanentProviderError(
                        f"{at}: cannot write field {field_name!r} of {schema_title}; it writes "
                        f"only {', '.join(sorted(set(_WRITERS)))}",
                        "Use an LLM provider (llm.provider = \"openai\" or \"anthropic\") for "
                        "this schema.", error_class="unsupported_field")
                continue
            as_html = "html" in str(prop.get("description", "")).lower()
            out[field_name] = writer(facts, lo, hi, as_html)
        return out

    async def generate(self, request: LLMRequest) -> LLMResult:
        started = time.perf_counter()
        if request.source is None:
            raise PermanentProviderError(
                "offline provider"
                + (f" (job {request.job_id})" if request.job_id is not None else "")
                + ": the request carries no product data (LLMRequest.source)",
                "The worker must pass the product snapshot as source.",
                error_class="invalid_request")
        # A schema can bring its own offline answer (Invoice: the heuristic extractor).
        extract = getattr(request.schema, "offline_extract", None)
        if callable(extract):
            out = extract(request.source)
        else:
            schema_json = request.schema.model_json_schema()
            out = self.write(schema_json, request.source, request.job_id,
                             request.schema.__name__)
        try:
            fields = validate_fields(request.schema, out)
        except InvalidOutput as exc:
            raise PermanentProviderError(
                f"offline provider (job {request.job_id}): the product data is too thin to "
                f"satisfy {request.schema.__name__}: {exc.detail}",
                "Add attributes or categories to the product, or use an LLM provider.",
                error_class="invalid_output") from None
        return LLMResult(
            fields=fields, raw_text=json.dumps(fields, ensure_ascii=False), usage=Usage(),
            cost_usd=0.0, model=OFFLINE_MODEL, provider=self.name,
            latency_ms=(time.perf_counter() - started) * 1000.0, rate_limits=None,
            repaired=False, http_status=None)


def build(llm: LLMConfig, secrets: Secrets, *, http_client: Any = None,
          default_headers: dict[str, str] | None = None) -> OfflineProvider:
    """The offline provider (a ``ProviderFactory``); it has one model and needs no key."""
    if llm.model not in (OFFLINE_MODEL, "offline"):
        raise ConfigError(
            f"llm.model = {llm.model!r} does not exist for llm.provider = \"offline\".",
            f'Set llm.model = "{OFFLINE_MODEL}" (or pick another provider).')
    return OfflineProvider()
