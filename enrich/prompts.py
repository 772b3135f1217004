"""Prompt templates: loading, rendering, versioning, and the output schemas they ask for.

Why it looks like this:

- Templates are Jinja2 in a ``SandboxedEnvironment`` with ``StrictUndefined``: a template
  typo or a missing variable is an error before the first request is paid for, and a user's
  template cannot reach Python internals.
- A product template defines two blocks. ``system`` is the static prefix (instructions,
  voice, language, examples, output rules). It is rendered once per template *without* the
  product, so it is byte-identical for every product by construction and provider prompt
  caching works; a template that uses product data there fails at once. ``user`` is the
  per-product part and comes last.
- Product data is untrusted. It reaches the model only as JSON between the exact lines
  ``<untrusted_product_data>`` and ``</untrusted_product_data>`` (the ``untrusted`` filter),
  with anything shaped like the fence tag JSON-escaped so no value can close the fence;
  the rendered prompt is checked for exactly one fence before it is used. Only the
  product's facts and copy go in (``product_facts``, an allow-list): never the store's
  bookkeeping (status, type, ids, SKU and other codes, prices, the SEO plugin's name), which
  a model would otherwise copy into the copy.
- Each template is versioned by a sha256 over its source and everything it extends,
  includes or imports, so a changed include is visible in the ledger as a new hash.
- Output models list only the fields a job needs (``extra="forbid"``). Length limits are
  written into the JSON schema for the model's benefit but not enforced on parsing: a
  62-character SEO title is a flagged draft a person can fix, not a paid retry.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, create_model

from enrich.config import GuardsConfig, PromptsConfig, Settings
from enrich.errors import ConfigError

DEFAULT_TEMPLATE = "product.j2"
CATEGORY_DIR = "categories"
FENCE_OPEN = "<untrusted_product_data>"
FENCE_CLOSE = "</untrusted_product_data>"

#: Every copy field enrich can write, in canonical order.
FIELDS: tuple[str, ...] = ("name", "description", "short_description", "seo_title",
                           "meta_description", "focus_keyword", "image_alt")
#: Fields whose value is HTML (sanitised to the allow-list by the guards).
HTML_FIELDS = frozenset({"description", "short_description"})

_FIELD_HELP: dict[str, str] = {
    "name": "Product title as shown in the store.",
    "description": "Full product description as HTML using only the allowed tags.",
    "short_description": "One or two sentences shown next to the price, as HTML.",
    "seo_title": "Title for search results.",
    "meta_description": "Summary shown under the title in search results.",
    "focus_keyword": "The one search phrase this page should rank for.",
    "image_alt": "Alt text for each product image, in the order of the images.",
}

# The product's own words and facts, the only scalar keys that reach the prompt.
_FACT_TEXT_KEYS = ("name", "parent_name", "short_description", "description", "weight")
_SEO_KEYS = ("seo_title", "meta_description", "focus_keyword")
# Attribute names that are codes, not copy (matched on the whole name, any case).
_CODE_NAME_RE = re.compile(
    r"(?:sku|ean(?:[\s_-]?(?:8|13|code))?|gtin(?:[\s_-]?(?:8|12|13|14))?|upc(?:[\s_-]?code)?"
    r"|mpn|isbn(?:[\s_-]?(?:10|13))?|jan|asin|barcode|article\s+number|part\s+number"
    r"|manufacturer\s+part\s+number|model\s+code)", re.IGNORECASE)
_SLUG_RE = re.compile(r"[^a-z0-9]+")
_FENCE_WORD_RE = re.compile(r"untrusted[\W_]*product[\W_]*data", re.IGNORECASE)
_FENCE_TAG_RE = re.compile(r"<(?=[\s/\\]*untrusted)", re.IGNORECASE)
_UNICODE_LINE_BREAK_RE = re.compile("[\u0085\u2028\u2029]")


def shipped_prompts_dir() -> Path:
    """The templates that ship with enrich: inside the wheel, or the checkout's prompts/."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "_prompts", package.parent / "prompts"):
        if (candidate / DEFAULT_TEMPLATE).is_file():
            return candidate
    raise ConfigError(
        "the shipped prompt templates are missing (no prompts/product.j2 next to enrich)",
        "Reinstall enrich, or set [prompts] dir to a folder with your own product.j2.")


def slugify(text: str) -> str:
    """Category name -> template slug (``Hoodies & Sweats`` -> ``hoodies-sweats``)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _SLUG_RE.sub("-", ascii_text.lower()).strip("-")


def product_facts(product: Mapping[str, Any]) -> dict[str, Any]:
    """What goes inside the fence: the product's facts and copy, and nothing else.

    An allow-list, not a deny-list: whatever the store or sync adds to a product later
    (status, type, ids, the SEO plugin's name, prices, stock) stays out unless it is named
    here, because a model copies what it is shown ("Seo plugin: yoast" in a description).
    Categories, tags and brands become their names; attributes keep name and options only;
    images become their current alt texts. Codes (SKU, EAN/GTIN/UPC/MPN/ISBN, as a field or
    as an attribute) are identifiers, not copy, and are left out too. Empty values go.
    """
    facts: dict[str, Any] = {}
    for key in _FACT_TEXT_KEYS:
        value = product.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            facts[key] = value
    for key in ("categories", "tags", "brands"):
        facts[key] = _term_names(product.get(key))
    facts["attributes"] = _fact_attributes(product.get("attributes"))
    dims = product.get("dimensions")
    if isinstance(dims, Mapping):
        facts["dimensions"] = {k: dims.get(k) for k in ("length", "width", "height")
                               if isinstance(dims.get(k), str | int | float)
                               and not isinstance(dims.get(k), bool)}
    seo = product.get("seo")
    if isinstance(seo, Mapping):  # the current SEO copy, without the plugin that holds it
        facts["seo"] = {k: seo.get(k) for k in _SEO_KEYS if isinstance(seo.get(k), str)}
    images = product.get("images")
    if isinstance(images, list):
        facts["image_alt"] = [image.get("alt") for image in images
                              if isinstance(image, Mapping) and isinstance(image.get("alt"), str)]
    return {k: v for k, v in _drop_empty(facts).items() if _kept(v)}


def _kept(value: Any) -> bool:
    return value not in (None, "", [], {})


def _drop_empty(value: Any) -> Any:
    if isinstance(value, Mapping):
        out = {str(k): _drop_empty(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if _kept(v)}
    if isinstance(value, list | tuple):
        return [c for c in (_drop_empty(v) for v in value) if _kept(c)]
    return value


def _term_names(terms: Any) -> list[str]:
    """Names of categories/tags/brands, given as names (a snapshot) or objects (REST)."""
    if isinstance(terms, str):
        terms = [terms]
    if not isinstance(terms, list):
        return []
    names = [t.get("name") if isinstance(t, Mapping) else t for t in terms]
    return [n for n in names if isinstance(n, str) and n.strip()]


def _fact_attributes(raw: Any) -> list[dict[str, Any]]:
    """Attributes as ``{name, options}`` (no ids, positions or visibility flags), codes out."""
    if isinstance(raw, Mapping):
        raw = [{"name": k, "options": v} for k, v in raw.items()]
    if not isinstance(raw, list):
        return []
    out = []
    for attr in raw:
        if not isinstance(attr, Mapping) or not isinstance(attr.get("name"), str):
            continue
        if _CODE_NAME_RE.fullmatch(attr["name"].strip()):
            continue
        options = attr.get("options", attr.get("option"))
        if not isinstance(options, list):
            options = [options]
        out.append({"name": attr["name"],
                    "options": [o for o in options if isinstance(o, str | int | float)
                                and not isinstance(o, bool)]})
    return out


def fence(data: Any) -> str:
    """Untrusted data as JSON between the fence lines; nothing inside can close the fence.

    JSON puts every value on one line with newlines escaped, so no value can stand alone
    on a line. Anything shaped like the fence tag (any case, any spacing) has its ``<``
    and the underscores of the tag word JSON-escaped: the JSON still decodes to the same
    data, but neither the endpoint's parser nor a model can read a value as the end of the
    data. Other markup (``<p>`` in a supplier description) stays readable and cheap.
    """
    text = json.dumps(data, ensure_ascii=False, default=str)
    text = _FENCE_TAG_RE.sub("\\\\u003c", text)
    text = _FENCE_WORD_RE.sub(lambda m: m.group(0).replace("_", "\\u005f"), text)
    # JSON escapes \n and \r but leaves the Unicode line breaks (U+0085, U+2028, U+2029)
    # raw: escaped too, so the data is one line for every reader, not only for "\n".
    text = _UNICODE_LINE_BREAK_RE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
    return f"{FENCE_OPEN}\n{text}\n{FENCE_CLOSE}"


@dataclass(frozen=True)
class RenderedPrompt:
    """A prompt ready for a provider, with what is needed to audit it later."""

    template_name: str
    template_hash: str
    system: str
    user: str
    fields: tuple[str, ...]
    output_model: type[BaseModel]
    category: str | None = None
    #: sha256 of the system text: equal across products means the prefix is cacheable.
    system_hash: str = field(default="")

    def as_messages(self) -> list[dict[str, str]]:
        """OpenAI-style messages (Anthropic takes ``system`` apart and the user message)."""
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": self.user}]


class PromptBook:
    """The templates of one run: the user's folder over the shipped one, file by file.

    Templates are read once (no auto-reload) so every draft of a run is written with the
    same template and hash; make a new ``PromptBook`` to pick up edits.
    """

    def __init__(self, config: PromptsConfig | None = None, *,
                 limits: GuardsConfig | None = None,
                 all_fields: Sequence[str] | None = None,
                 user_dir: Path | str | None = None,
                 shipped_dir: Path | str | None = None) -> None:
        self.config = config or PromptsConfig()
        self.limits = limits or GuardsConfig()
        self.all_fields = _check_fields(all_fields or FIELDS, "all_fields")
        chosen_user = user_dir if user_dir is not None else self.config.dir
        self.user_dir = Path(chosen_user).expanduser() if chosen_user else None
        if self.user_dir is not None and not self.user_dir.is_dir():
            raise ConfigError(
                f"[prompts] dir {self.user_dir} is not a folder",
                "Run `enrich init` to write the templates there, or unset [prompts] dir.")
        self.shipped_dir = Path(shipped_dir) if shipped_dir else shipped_prompts_dir()
        search = [str(p) for p in (self.user_dir, self.shipped_dir) if p is not None]
        self.env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(search, encoding="utf-8"),
            undefined=jinja2.StrictUndefined, autoescape=False, auto_reload=False,
            keep_trailing_newline=False, trim_blocks=True, lstrip_blocks=True,
        )
        self.env.filters["untrusted"] = fence
        self._hashes: dict[str, str] = {}
        self._systems: dict[str, str] = {}
        self._category_names: dict[str, str | None] = {}
        self._parents: dict[str, str | None] = {}
        self._templates: dict[str, jinja2.Template] = {}
        self._chosen: dict[tuple[Any, ...], str] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> PromptBook:
        """The run's prompts: ``[prompts]`` (dir relative to config.toml), ``[guards]``
        limits, and ``[sync] fields`` as the fields the system part describes."""
        folder = settings.resolve(settings.prompts.dir) if settings.prompts.dir else None
        return cls(settings.prompts, limits=settings.guards, all_fields=settings.sync.fields,
                   user_dir=folder)

    # -- templates --------------------------------------------------------------------------

    def _source(self, name: str) -> str:
        try:
            source, _filename, _uptodate = self.env.loader.get_source(  # type: ignore[union-attr]
                self.env, name)
        except jinja2.TemplateNotFound:
            raise ConfigError(
                f"prompt template {name} not found in {self._where()}",
                "Check the name in {% include %}/{% extends %}, or run `enrich init`.",
            ) from None
        return source

    def _where(self) -> str:
        return " or ".join(str(p) for p in (self.user_dir, self.shipped_dir) if p)

    def _parse(self, name: str) -> nodes.Template:
        try:
            return self.env.parse(self._source(name), name=name)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"prompt template {name}, line {exc.lineno}: {exc.message}",
                              "Fix the template syntax.") from None

    def template_hash(self, name: str) -> str:
        """sha256 over the template and everything it extends, includes or imports."""
        if name not in self._hashes:
            seen: dict[str, str] = {}
            pending = [name]
            while pending:
                current = pending.pop()
                if current in seen:
                    continue
                seen[current] = self._source(current)
                refs = list(meta.find_referenced_templates(self._parse(current)))
                if any(ref is None for ref in refs):
                    # A computed name could be any template: version by all of them.
                    pending.extend(self.env.list_templates(extensions=["j2"]))
                pending.extend(ref for ref in refs if ref is not None)
            digest = hashlib.sha256()
            for ref in sorted(seen):
                digest.update(ref.encode() + b"\0" + seen[ref].encode() + b"\0")
            self._hashes[name] = digest.hexdigest()
        return self._hashes[name]

    def template_for(self, product: Mapping[str, Any]) -> str:
        """``categories/<slug>.j2`` for the product's first category, else ``product.j2``."""
        categories = product.get("categories") or []
        first = categories[0] if isinstance(categories, list) and categories else None
        key = ((repr(first.get("slug")), repr(first.get("name")))
               if isinstance(first, Mapping) else (repr(first),))
        if key not in self._chosen:
            self._chosen[key] = self._template_for_category(first)
        return self._chosen[key]

    def _template_for_category(self, first: Any) -> str:
        candidates: list[str] = []
        if isinstance(first, Mapping):
            for value in (first.get("slug"), first.get("name")):
                if isinstance(value, str) and slugify(value):
                    candidates.append(slugify(value))
        elif isinstance(first, str) and slugify(first):
            candidates.append(slugify(first))
        for slug in candidates:
            if slug not in self._category_names:
                name = f"{CATEGORY_DIR}/{slug}.j2"
                try:
                    self.env.loader.get_source(self.env, name)  # type: ignore[union-attr]
                except jinja2.TemplateNotFound:
                    self._category_names[slug] = None
                else:
                    self._category_names[slug] = name
            found = self._category_names[slug]
            if found:
                return found
        return DEFAULT_TEMPLATE

    def _compile(self, name: str) -> jinja2.Template:
        if name in self._templates:
            return self._templates[name]
        try:
            self._templates[name] = self.env.get_template(name)
            return self._templates[name]
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"prompt template {exc.name or name}, line {exc.lineno}: "
                              f"{exc.message}", "Fix the template syntax.") from None
        except jinja2.TemplateNotFound as exc:
            raise ConfigError(f"prompt template {exc.name} not found in {self._where()}",
                              "Check the template name, or run `enrich init`.") from None

    def _render_block(self, name: str, block: str, variables: dict[str, Any],
                      record: str) -> str:
        """Render one block of a template, following its ``{% extends %}`` chain."""
        template = self._compile(name)
        context = template.new_context(variables)
        current = name
        for _ in range(20):
            parent = self._parent_of(current)
            if parent is None:
                break
            parent_template = self._compile(parent)
            for block_name, fn in parent_template.blocks.items():
                context.blocks.setdefault(block_name, []).append(fn)
            current = parent
        if block not in context.blocks:
            raise ConfigError(
                f"prompt template {name} has no {{% block {block} %}}",
                "A product template defines a `system` block (the same for every product) "
                "and a `user` block (the product part); see docs/prompts.md.")
        try:
            return "".join(context.blocks[block][0](context)).strip() + "\n"
        except jinja2.TemplateSyntaxError as exc:  # in an included template
            raise ConfigError(f"prompt template {exc.name or name}, line {exc.lineno}: "
                              f"{exc.message}", "Fix the template syntax.") from None
        except jinja2.TemplateNotFound as exc:
            raise ConfigError(f"prompt template {exc.name} (used by {name}) not found in "
                              f"{self._where()}", "Check the template name.") from None
        except jinja2.UndefinedError as exc:
            where = "" if record == "" else f" for {record}"
            hint = ("Pass the variable, or test for it with `is defined`; the system block "
                    "cannot use product data (it must be the same for every product)."
                    if block == "system" else
                    "Use `product.get('key')` or `is defined` for optional product fields.")
            raise ConfigError(
                f"prompt template {name}, block {block}{where}: {exc.message}", hint) from None
        except jinja2.TemplateError as exc:
            raise ConfigError(f"prompt template {name}, block {block}: {exc}",
                              "Fix the template.") from None

    def _parent_of(self, name: str) -> str | None:
        if name not in self._parents:
            self._parents[name] = self._find_parent(name)
        return self._parents[name]

    def _find_parent(self, name: str) -> str | None:
        for node in self._parse(name).find_all(nodes.Extends):
            if isinstance(node.template, nodes.Const) and isinstance(node.template.value, str):
                return node.template.value
            raise ConfigError(f"prompt template {name}: {{% extends %}} needs a fixed name",
                              'Write {% extends "product.j2" %}.')
        return None

    def _common(self) -> dict[str, Any]:
        return {
            "brand_voice": self.config.brand_voice,
            "language": self.config.language,
            "examples": [dict(e) for e in self.config.examples],
            "all_fields": list(self.all_fields),
            "html_fields": sorted(HTML_FIELDS),
            "html_tags": list(self.limits.html_tags),
            "limits": {f: {"min": self.limits.limits(f)[0], "max": self.limits.limits(f)[1]}
                       for f in FIELDS},
            "field_help": dict(_FIELD_HELP),
        }

    def system_for(self, name: str) -> str:
        """The static prefix of a template: rendered once, without any product data."""
        if name not in self._systems:
            text = self._render_block(name, "system", self._common(), "")
            if FENCE_OPEN in text or FENCE_CLOSE in text:
                # The endpoint (and a model) would take it for the start of product data.
                raise ConfigError(
                    f"prompt template {name}: the system block contains the fence tag "
                    f"{FENCE_OPEN} or {FENCE_CLOSE}",
                    "Refer to the data as the untrusted_product_data element without writing "
                    "the tag; product data goes in the user block as {{ product | untrusted }}.")
            self._systems[name] = text
        return self._systems[name]

    def check(self, names: Iterable[str] | None = None) -> dict[str, str]:
        """Render the system part of every template up front: errors before any spend."""
        chosen = list(names) if names is not None else [DEFAULT_TEMPLATE] + [
            n for n in self.env.list_templates(extensions=["j2"])
            if n.startswith(f"{CATEGORY_DIR}/")]
        hashes: dict[str, str] = {}
        for name in chosen:
            self.system_for(name)
            hashes[name] = self.template_hash(name)
        return hashes

    # -- rendering --------------------------------------------------------------------------

    def render_product(self, product: Mapping[str, Any], fields: Sequence[str], *,
                       source_id: str | None = None,
                       template: str | None = None) -> RenderedPrompt:
        """The prompt for one product and the fields its job needs."""
        wanted = _check_fields(fields, "fields")
        missing = [f for f in wanted if f not in self.all_fields]
        if missing:
            raise ConfigError(
                f"field(s) {', '.join(missing)} requested but not in the prompt's field list "
                f"({', '.join(self.all_fields)})",
                "Add them to [sync] fields so the system prompt describes them.")
        record = f"product {source_id if source_id is not None else product.get('id', '?')}"
        name = template or self.template_for(product)
        system = self.system_for(name)
        images = product.get("images") or []
        image_count = len(images) if isinstance(images, list) else 0
        facts = product_facts(product)
        variables = {
            **self._common(),
            "product": facts,
            "fields": list(wanted),
            "image_count": image_count,
            "category": name[len(CATEGORY_DIR) + 1:-3] if name != DEFAULT_TEMPLATE else None,
        }
        user = self._render_block(name, "user", variables, record)
        _check_fence(user, name, record)
        model = output_model(wanted, self.limits,
                             image_count=image_count if "image_alt" in wanted else None)
        return RenderedPrompt(
            template_name=name, template_hash=self.template_hash(name), system=system,
            user=user, fields=wanted, output_model=model, category=variables["category"],
            system_hash=hashlib.sha256(system.encode()).hexdigest(),
        )


def _check_fence(user: str, name: str, record: str) -> None:
    lines = [line.strip() for line in user.splitlines()]
    opens, closes = lines.count(FENCE_OPEN), lines.count(FENCE_CLOSE)
    if opens != 1 or closes != 1 or lines.index(FENCE_OPEN) > lines.index(FENCE_CLOSE):
        raise ConfigError(
            f"prompt template {name} for {record}: the user part must hold the product data "
            f"in exactly one fence (found {opens} opening and {closes} closing line(s))",
            "Put product data in the template only as {{ product | untrusted }}; never "
            "write product values outside it.")


def _check_fields(fields: Iterable[str], what: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(fields))
    unknown = [f for f in chosen if f not in FIELDS]
    if unknown:
        raise ConfigError(f"{what}: unknown field(s) {', '.join(unknown)}",
                          f"Choose from {', '.join(FIELDS)}.")
    if not chosen:
        raise ConfigError(f"{what}: no fields to write", "Set [sync] fields.")
    return tuple(f for f in FIELDS if f in chosen)


def output_model(fields: Sequence[str], limits: GuardsConfig | None = None, *,
                 image_count: int | None = None) -> type[BaseModel]:
    """A pydantic model with just ``fields``; its JSON schema carries the length limits.

    ``image_alt`` is a list with one alt text per product image, in image order; with
    ``image_count`` the schema also fixes the list's length.
    """
    chosen = _check_fields(fields, "fields")
    limits = limits or GuardsConfig()
    key = tuple((f, *limits.limits(f)) for f in chosen)
    return _build_model(key, image_count)


@lru_cache(maxsize=256)
def _build_model(key: tuple[tuple[str, int, int], ...],
                 image_count: int | None) -> type[BaseModel]:
    definitions: dict[str, Any] = {}
    for name, low, high in key:
        bounds: dict[str, Any] = {"minLength": low}
        if high:
            bounds["maxLength"] = high
        unit = "characters of text, tags not counted" if name in HTML_FIELDS else "characters"
        span = f"{low}-{high}" if high else f"at least {low}"
        if name == "image_alt":
            extra: dict[str, Any] = {"items": {"type": "string", **bounds}}
            if image_count is not None:
                extra.update(minItems=image_count, maxItems=image_count)
            definitions[name] = (list[str], Field(
                description=f"{_FIELD_HELP[name]} Each {span} characters.",
                json_schema_extra=extra))
        else:
            definitions[name] = (str, Field(
                description=f"{_FIELD_HELP[name]} {span} {unit}.",
                json_schema_extra=bounds))
    return create_model(  # type: ignore[call-overload, no-any-return]
        "ProductCopy", __config__=ConfigDict(extra="forbid"), **definitions)
