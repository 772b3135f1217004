"""The offline provider: plain, honest copy built only from the product's own data.

No network, no cost, the same answer every time. It is the demo's provider and a free
fallback for a store that wants its gaps filled with something factual rather than nothing.
It never invents a fact: every name, attribute, number and unit in its output is copied from
the product snapshot, and the only words it adds are connectives with no claims and no
numbers ("by", "from our ... collection", "made of"). A draft is a lead sentence (type, brand,
defining attributes), the supplier's own sentences (de-injected with the injection guard,
de-duplicated, placeholders out) and a spec list without flags, codes or repeats. It never
pads with stock sentences: every draft would repeat them, and a reviewer learns to skip
them; a thin product gets a short draft that the length guard flags. Drafts say they came
from ``offline-v1`` so a reviewer knows no model wrote them.

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
from enrich.guards.injection import find_instructions, has_instruction
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
_BLOCK_END = re.compile(r"<\s*(?:/\s*(?:p|li|h[1-6]|div|tr|dd|dt|blockquote)|br\s*/?)\s*>", re.I)
_LIST_ITEM = re.compile(r"<li\b[^>]*>(.*?)(?:</li\s*>|(?=<li\b)|(?=</[uo]l\s*>))", re.I | re.S)
_LIST = re.compile(r"<([uo]l)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_SPACE = re.compile(r"\s+")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])[\"'”’)]?\s+(?=[\"'“‘(]?[A-Z0-9])")
_PLACEHOLDER = re.compile(
    r"lorem ipsum|sit amet|pellentesque|consectetur adipiscing|\btbd\b|coming soon|placeholder"
    r"|\btodo\b|^this is an? [\w ,-]*product\b", re.I)
_WORD = re.compile(r"\w+")
# Attribute names that are codes or store bookkeeping, never copy (whole name, any case).
_NOT_COPY = re.compile(
    r"(?:sku|ean(?:[\s_-]?(?:8|13|code))?|gtin(?:[\s_-]?\d+)?|upc(?:[\s_-]?code)?|mpn|jan|asin"
    r"|isbn(?:[\s_-]?\d+)?|barcode|(?:manufacturer[\s_-]?)?part[\s_-]?number|article[\s_-]?number"
    r"|model[\s_-]?code|attribute[\s_-]?set|has[\s_-]?options|required[\s_-]?options"
    r"|(?:special[\s_-]?|regular[\s_-]?|sale[\s_-]?)?price|cost|msrp|sale|new|featured"
    r"|visibility|tax[\s_-]?class|status|stock(?:[\s_-]?status)?|qty|quantity|position"
    r"|url[\s_-]?key|id)", re.I)
# Values that are on/off flags rather than facts a shopper reads ("Auto exposure: 0").
_FLAG_VALUES = frozenset({"0", "1", "true", "false"})
# Names that mean a count, where 0 and 1 are real values ("Number of ports: 1").
_COUNT_NAME = re.compile(r"\b(?:number|count|pieces|pcs|ports|slots|qty|pack)\b", re.I)
_ROOT_CATEGORIES = frozenset({"uncategorized", "uncategorised", "default category",
                              "root catalog", "all products", "products", "default"})
_SLUG_LIKE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
_COLOUR = re.compile(r"colou?r", re.I)
_MATERIAL = re.compile(r"material|fabric", re.I)
_SIZE = re.compile(r"size", re.I)
_BRAND = re.compile(r"brand|manufacturer|make", re.I)
# A few generic words to reach a title's minimum: no claims, no numbers.
_SHORT_PADDING = ("product details", "details and options")


def _plain(value: Any) -> str:
    """Plain text of a source value: tags dropped, entities decoded, spaces collapsed."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, int | float):
        return json.dumps(value)
    text = html.unescape(_TAG.sub(" ", str(value)))
    return _SPACE.sub(" ", text).strip()


_clean = _plain


def _key(text: str) -> str:
    """A sentence or name compared loosely: lower case, words only."""
    return " ".join(_WORD.findall(text.lower()))


def _injected(text: str) -> list[str]:
    """The instruction spans in ``text`` (lower-cased keys), so their sentences are dropped."""
    if not has_instruction(text):
        return []
    return [_key(found.text) for found in find_instructions(text)]


def _supplier_copy(raw: Any) -> tuple[list[str], list[str]]:
    """(sentences, list items) of the supplier's own copy, sanitised and de-injected.

    Block ends become sentence breaks (``<p>a</p><p>b</p>`` is two sentences, not one run
    on); list items stay items, for the description's feature list. A sentence with an
    instruction to a model in it, a placeholder (lorem ipsum, "This is a simple product")
    or a fragment of fewer than three words is dropped.
    """
    if not isinstance(raw, str) or not raw.strip() or _PLACEHOLDER.search(_plain(raw)):
        return [], []  # lorem ipsum is placeholder through and through, not one sentence
    items = [_plain(m.group(1)) for m in _LIST_ITEM.finditer(raw)]
    prose_html = _BLOCK_END.sub("\n", _LIST.sub("\n", raw))
    prose = html.unescape(_TAG.sub(" ", prose_html))
    sentences: list[str] = []
    for block in prose.split("\n"):
        block = _SPACE.sub(" ", block).strip()
        if not block:
            continue
        head, *bullets = block.split("•")  # "Warm. • Two-tone hood. • Machine wash."
        items += [b.strip() for b in bullets if b.strip()]
        sentences += [s.strip() for s in _SENTENCE_SPLIT.split(head) if s.strip()]
    spans = _injected(_plain(raw))

    def usable(text: str, min_words: int) -> bool:
        key = _key(text)
        if len(key.split()) < min_words or _PLACEHOLDER.search(text) or has_instruction(text):
            return False
        return not any(span and (span in key or key in span) for span in spans)

    sentences = [s if s[-1] in ".!?" else s + "." for s in sentences if usable(s, 3)]
    items = [i.rstrip(" .;,") for i in items if usable(i, 1)]
    return sentences, [i for i in items if i]


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
        name = _plain(item.get("name") if isinstance(item, dict) else item)
        if " > " in name:  # "Clothing > Hoodies": the leaf is the useful word
            name = name.split(" > ")[-1].strip()
        if "/" in name and not isinstance(item, dict):  # "Default Category/Men/Tops"
            name = name.rsplit("/", 1)[-1].strip()
        seen = {n.lower() for n in out} | _ROOT_CATEGORIES
        if name and name.lower() not in seen:
            out.append(name)
    return out


def _humanise(name: str, context: set[str]) -> str:
    """``style_bags`` -> ``Style`` (a catalog's code suffix dropped), ``size`` -> ``Size``."""
    if "_" in name and " " not in name:
        words = name.split("_")
        if len(words) > 1 and words[-1].lower() in context:
            words = words[:-1]
        name = " ".join(words)
    return name[:1].upper() + name[1:]


def _code_suffixes(raw: Any) -> set[str]:
    """Suffixes two or more snake_case attribute codes share (``style_bags``, ``strap_bags``):
    a catalog's naming scheme, not part of the attribute's name."""
    names = ([str(k) for k in raw] if isinstance(raw, dict) else
             [str(i.get("name")) for i in raw if isinstance(i, dict)]
             if isinstance(raw, list) else [])
    ends = [n.rsplit("_", 1)[-1].lower() for n in names if "_" in n and " " not in n]
    return {e for e in ends if ends.count(e) >= 2}


def _attributes(raw: Any, context: set[str]) -> list[tuple[str, list[str]]]:
    """(name, values) pairs a shopper reads: no codes, no bookkeeping, no 0/1 flags."""
    pairs: list[tuple[str, list[str]]] = []
    if isinstance(raw, dict):
        raw = [{"name": k, "options": v} for k, v in raw.items()]
    if not isinstance(raw, list):
        return pairs
    seen: set[str] = set()
    for item in raw:
        if not isinstance(item, dict):
            continue
        name = _plain(item.get("name"))
        if not name or _NOT_COPY.fullmatch(name.strip()):
            continue
        values = item.get("options", item.get("option", item.get("value")))
        if not isinstance(values, list):
            values = [values]
        split = [part for v in values for part in
                 (str(v).split("|") if isinstance(v, str) else [v])]  # "Wool|Cotton"
        cleaned = list(dict.fromkeys(v for v in (_plain(v) for v in split) if v))
        if not cleaned or (all(v.lower() in _FLAG_VALUES for v in cleaned)
                           and not _COUNT_NAME.search(name)):
            continue
        label = _humanise(name, context)
        if _key(label) in seen:
            continue
        seen.add(_key(label))
        pairs.append((label, cleaned))
    return pairs


def _join(values: list[str], word: str = "and") -> str:
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} {word} {values[-1]}"


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
    sentences: list[str] = field(default_factory=list)  # the supplier's usable sentences
    features: list[str] = field(default_factory=list)  # the supplier's list items
    images: int = 0  # how many product images the snapshot lists

    @classmethod
    def from_source(cls, source: dict[str, Any]) -> ProductFacts:
        dims = source.get("dimensions") or {}
        dim_values = []
        if isinstance(dims, dict):
            dim_values = [_plain(dims.get(k)) for k in ("length", "width", "height")]
            dim_values = [v for v in dim_values if v and v not in ("0", "0.0")]
        name = _plain(source.get("name"))
        parent = _plain(source.get("parent_name"))
        if parent and parent.lower() not in name.lower():  # a variation named "Blue, L"
            name = f"{parent} – {name}" if name else parent
        categories = [c for c in _names(source.get("categories", source.get("category")))
                      if not _SLUG_LIKE.match(c)]  # a supplier slug is not a range name
        context = {w for c in categories for w in _key(c).split()}
        context |= _code_suffixes(source.get("attributes"))
        attributes = _attributes(source.get("attributes"), context)
        brands = _names(source.get("brands", source.get("brand")))
        if not brands:
            brands = next((v for n, v in attributes if _BRAND.fullmatch(n)), [])
        attributes = [(n, v) for n, v in attributes if not _BRAND.fullmatch(n)]
        sentences: list[str] = []
        features: list[str] = []
        seen = {_key(name)}
        for key in ("short_description", "description"):
            found, items = _supplier_copy(source.get(key))
            for text in found:
                if _key(text) not in seen:
                    seen.add(_key(text))
                    sentences.append(text)
            for text in items:
                if _key(text) not in seen:
                    seen.add(_key(text))
                    features.append(text)
        weight = _plain(source.get("weight"))
        images = source.get("images")
        return cls(
            name=name, categories=categories, tags=_names(source.get("tags")), brands=brands,
            attributes=attributes,
            weight="" if weight in ("0", "0.0") or weight.startswith("-") else weight,
            weight_unit=_plain(source.get("weight_unit")),
            dimensions=dim_values if len(dim_values) >= 2 else [],
            dimension_unit=_plain(source.get("dimension_unit")),
            sentences=sentences, features=features,
            images=len(images) if isinstance(images, list) else 0,
        )

    # Sentences built from the facts -------------------------------------------------

    def category(self) -> str:
        """The primary (first) category: WooCommerce lists it first."""
        return self.categories[0] if self.categories else ""

    def _values(self, pattern: re.Pattern[str]) -> list[str]:
        return next((v for n, v in self.attributes if pattern.fullmatch(n)), [])

    def spec_lines(self) -> list[str]:
        """The spec list: one line per quantity, the one with its unit when said twice."""
        lines = [f"Brand: {', '.join(self.brands)}"] if self.brands else []
        lines += [f"{name}: {', '.join(values)}" for name, values in self.attributes]
        have = {_key(line.split(":", 1)[0]): line for line in lines}
        if self.dimensions and "dimensions" not in have:
            unit = f" {self.dimension_unit}" if self.dimension_unit else ""
            lines.append(f"Dimensions: {' x '.join(self.dimensions)}{unit}")
        if self.weight:
            said = have.get("weight", "")
            if self.weight not in said:  # "Weight: 533 gram" already says "533"
                unit = f" {self.weight_unit}" if self.weight_unit else ""
                lines.append(f"Weight: {self.weight}{unit}")
        return lines

    attribute_lines = spec_lines

    def lead(self) -> str:
        """One sentence from the product's type, brand and defining attributes."""
        subject = self.name
        brand = next((b for b in self.brands if b.lower() not in self.name.lower()), "")
        if brand:
            subject += f" by {brand}"
        clauses = []
        cat = self.category()
        if cat and _key(cat) not in _key(self.name):
            clauses.append(f"from our {cat} collection")
        colours = self._values(_COLOUR)
        if colours:
            clauses.append(("in " if len(colours) == 1 else "available in ")
                           + _join(colours, "or" if len(colours) > 1 else "and"))
        materials = self._values(_MATERIAL)
        if materials:
            clauses.append(f"made of {_join(materials)}")
        sizes = self._values(_SIZE)
        if len(sizes) > 1:
            clauses.append(f"in sizes {_join(sizes, 'to' if len(sizes) > 4 else 'and')}"
                           if len(sizes) <= 4 else f"in sizes {sizes[0]} to {sizes[-1]}")
        elif sizes:
            clauses.append(f"size {sizes[0]}")
        return subject + (", " + ", ".join(clauses) if clauses else "") + "."

    intro = lead

    def spec_parts(self) -> list[str]:
        """The specs the lead has not said, one short sentence each, for the short fields."""
        said = f" {_key(self.lead())} "
        return [line + "." for line in self.spec_lines()
                if not all(f" {_key(v)} " in said for v in line.split(":", 1)[1].split(","))]

    def tag_sentence(self) -> str:
        tags = [t for t in self.tags if _key(t) not in _key(self.lead())]
        return f"Tags: {', '.join(tags)}." if tags else ""


def _cut(text: str, limit: int | None) -> str:
    """``text`` shortened at a word boundary (never inside a number or a word)."""
    if limit is None or len(text) <= limit:
        return text
    cut = text[: limit + 1]
    space = cut.rfind(" ")
    cut = cut[:space] if space > 0 else text[:limit]
    cut = cut.rstrip(" ,;:-–|")
    head, _, last = cut.rpartition(" ")
    if head and any(c.isdigit() for c in last):  # "533" without the "gram" that followed it
        cut = head.rstrip(" ,;:-–|")
    return cut


def _fill(parts: list[str], lo: int | None, hi: int | None) -> str:
    """Whole sentences up to ``hi``; the first one cut to fit when it alone is too long.

    No padding: a product too thin for ``lo`` gets a short text, which the length guard
    flags and the validation of a strict schema reports, rather than a sentence every other
    draft repeats.
    """
    parts = [p for p in parts if p]
    text = ""
    for part in parts:  # whole sentences first
        candidate = f"{text} {part}".strip()
        if hi is None or len(candidate) <= hi:
            text = candidate
    if not text or (lo is not None and len(text) < lo):
        # Too long alone, or still short: the sentences in order, the last one cut to fit.
        text = _cut(" ".join(parts), hi)
    return text


Writer = Callable[[ProductFacts, int | None, int | None, bool], str]


def _name(facts: ProductFacts, lo: int | None, hi: int | None, as_html: bool) -> str:
    return _cut(facts.name, hi)


def _seo_title(facts: ProductFacts, lo: int | None, hi: int | None, as_html: bool) -> str:
    hi = hi or 60
    title = facts.name
    for extra in (*facts.brands[:1], facts.category()):
        if extra and _key(extra) not in _key(title) and len(f"{title} | {extra}") <= hi:
            title = f"{title} | {extra}"
            break
    title = _cut(title, hi)
    for pad in _SHORT_PADDING:
        if lo is None or len(title) >= lo:
            break
        if len(f"{title} – {pad}") <= hi:
            title = f"{title} – {pad}"
    return title


def _meta(facts: ProductFacts, lo: int | None, hi: int | None, as_html: bool) -> str:
    hi = hi or 160
    return _fill([facts.lead(), *facts.sentences[:3], *facts.spec_parts(),
                  facts.tag_sentence()], lo, hi)


def _short(facts: ProductFacts, lo: int | None, hi: int | None, as_html: bool) -> str:
    parts = [facts.lead(), *facts.sentences[:2], *facts.spec_parts()]
    text = _fill(parts, lo, hi)
    if not as_html:
        return text
    escaped = html.escape(text, quote=False)
    if hi is not None and len(escaped) > hi:  # "&" is "&amp;" in the text the guards count
        text = _fill(parts, lo, hi - (len(escaped) - len(text)))
        escaped = html.escape(text, quote=False)
    return f"<p>{escaped}</p>"


def _description(facts: ProductFacts, lo: int | None, hi: int | None, as_html: bool) -> str:
    lead = facts.lead()
    prose = facts.sentences
    features = facts.features
    specs = facts.spec_lines()
    if as_html:
        def esc(x: str) -> str:
            return html.escape(x, quote=False)

        body = f"<p>{esc(lead)}</p>"
        if prose:
            body += f"<p>{esc(' '.join(prose))}</p>"
        if features:
            body += "<ul>" + "".join(f"<li>{esc(x)}</li>" for x in features) + "</ul>"
        if specs:
            body += "<ul>" + "".join(f"<li>{esc(x)}</li>" for x in specs) + "</ul>"
        tags = facts.tag_sentence()
        if lo is not None and _text_len(body, True) < lo and tags:
            body += f"<p>{esc(tags)}</p>"
    else:
        body = "\n".join([lead, *([" ".join(prose)] if prose else []),
                          *(f"- {x}" for x in [*features, *specs])])
        if lo is not None and len(body) < lo and facts.tag_sentence():
            body += "\n" + facts.tag_sentence()
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
