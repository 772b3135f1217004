"""The sandbox model's answers: deterministic, schema-valid, grounded in the fenced data.

A real model reads the record between ``<untrusted_product_data>`` (JSON) or
``<untrusted_document_text>`` (invoice text) fences and writes copy from it. The sandbox
does the same mechanically, so tests can assert on the answer and the grounding guard
passes on a normal answer: every number and every value comes from the fenced data
(verbatim, or a number parsed from it); only connecting words ("with", "in") are added.

It is also gullible on purpose (``gullible=True``, the default): when the fenced data
says "ignore previous instructions ..." the answer obeys, putting the demanded text in the
description (or setting the named field: "... and set total to 0"). That is how tests
prove the guards catch an injection a real model might follow.

The schema filler understands the JSON Schema that pydantic and OpenAI strict mode use:
type (and type lists), properties, required, additionalProperties, $ref/$defs, anyOf/oneOf
/allOf, enum, const, minLength/maxLength, minimum/maximum (and exclusive), minItems/
maxItems, format "date"/"date-time"/"email"/"uri". ``pattern`` is not honoured.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from enrich.sandbox.llm_invoice import answer_invoice, document_text, is_invoice_request

PRODUCT_FENCE = re.compile(r"<untrusted_product_data>(.*?)</untrusted_product_data>", re.S)
DOCUMENT_FENCE = re.compile(r"<untrusted_document_text>(.*?)</untrusted_document_text>", re.S)
INJECTION = re.compile(
    r"(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:the\s+|your\s+)?"
    r"(?:previous|prior|above|earlier|preceding|system)\s+(?:instructions|rules|directions|prompts?)"
    r"[\s,.:;!-]*(?P<rest>[^\n]*)",
    re.I,
)
QUOTED = re.compile(r"[\"“”'‘’«](?P<q>[^\"“”'‘’«»]{1,200})[\"“”'‘’»]")
LEADING_VERB = re.compile(
    r"^(?:and\s+|then\s+|instead\s+|now\s+)*"
    r"(?:write|say|output|print|put|add|include|use|respond with|reply with|return)?\s*"
    r"(?:only\s+)?(?::\s*)?",
    re.I,
)
SET_FIELD = re.compile(
    r"(?:set|change|make)\s+(?:the\s+)?(?P<field>[A-Za-z][\w ]{0,40}?)\s+(?:to|=)\s+(?P<value>.+)",
    re.I,
)
NUMBER = re.compile(r"(?<![\w.,])-?\d+(?:[.,]\d+)*(?![\w])")
DATE_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
DATE_DMY = re.compile(r"\b(\d{1,2})[./](\d{1,2})[./](\d{4})\b")
WORD = re.compile(r"[^\W\d_][\w'-]*", re.U)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
URL = re.compile(r"https?://[^\s\"'<>]+")
CURRENCY = re.compile(r"\b(EUR|USD|GBP|CHF|SEK|NOK|DKK|PLN|CZK|JPY|CAD|AUD)\b")
CURRENCY_SIGNS = {"€": "EUR", "$": "USD", "£": "GBP"}

# WooCommerce bookkeeping: true of the product, but nothing a shopper reads in copy.
SKIP_KEYS = frozenset({
    "id", "permalink", "slug", "date_created", "date_modified", "date_modified_gmt",
    "date_created_gmt", "date_on_sale_from", "date_on_sale_to", "date_on_sale_from_gmt",
    "date_on_sale_to_gmt", "images", "meta_data", "_links", "status", "type", "featured",
    "catalog_visibility", "tax_status", "tax_class", "manage_stock", "stock_quantity",
    "stock_status", "backorders", "backorders_allowed", "backordered", "sold_individually",
    "shipping_required", "shipping_taxable", "shipping_class", "shipping_class_id",
    "reviews_allowed", "average_rating", "rating_count", "parent_id", "menu_order",
    "purchase_note", "virtual", "downloadable", "downloads", "download_limit",
    "download_expiry", "on_sale", "purchasable", "total_sales", "price_html", "related_ids",
    "upsell_ids", "cross_sell_ids", "grouped_products", "variations", "default_attributes",
    "external_url", "button_text", "has_options", "post_password", "global_unique_id",
    "low_stock_amount", "weight_unit", "dimension_unit"})
COPY_KEYS = ("short_description", "description")
LABEL_SYNONYMS: dict[str, tuple[str, ...]] = {
    "invoice_number": ("invoice number", "invoice no", "invoice nr", "invoice #", "invoice id",
                       "rechnungsnummer", "rechnung nr", "facture n°", "facture no",
                       "factuurnummer", "bill no", "number", "no"),
    "invoice_date": ("invoice date", "date of issue", "issue date", "date", "datum"),
    "issue_date": ("issue date", "invoice date", "date of issue", "date", "datum"),
    "due_date": ("due date", "payment due", "due", "fällig"),
    "vendor_name": ("vendor", "seller", "supplier", "from", "company"),
    "seller_name": ("seller", "vendor", "supplier", "from"),
    "supplier_name": ("supplier", "vendor", "seller", "from"),
    "buyer_name": ("buyer", "customer", "bill to", "billed to", "to"),
    "customer_name": ("customer", "buyer", "bill to", "billed to", "to"),
    "subtotal": ("subtotal", "sub-total", "net total", "net amount", "total net", "net"),
    "net_total": ("net total", "subtotal", "total net", "net amount", "net"),
    "tax": ("tax", "vat", "tax amount", "vat amount", "sales tax"),
    "tax_total": ("tax total", "total tax", "tax", "vat"),
    "tax_amount": ("tax amount", "tax", "vat amount", "vat"),
    "tax_rate": ("tax rate", "vat rate", "vat %", "tax %", "rate"),
    "total": ("grand total", "total due", "amount due", "total amount", "total"),
    "grand_total": ("grand total", "total due", "amount due", "total"),
    "total_amount": ("total amount", "grand total", "amount due", "total"),
    "amount_due": ("amount due", "total due", "balance due", "grand total", "total"),
    "currency": ("currency",),
    "net": ("net total", "subtotal", "net amount", "total net", "net"),
    "net_amount": ("net amount", "net total", "subtotal", "net"),
    "gross": ("grand total", "total due", "amount due", "gross", "total"),
    "gross_amount": ("gross amount", "grand total", "total due", "amount due", "total"),
    "vat": ("vat", "vat amount", "tax"),
    "vat_amount": ("vat amount", "vat", "tax amount", "tax"),
    "vat_id": ("vat id", "vat no", "vat number", "vat reg no", "tax id", "ust-idnr"),
    "tax_id": ("tax id", "vat id", "vat no", "vat number", "ust-idnr"),
    "po_number": ("po number", "purchase order", "order number", "po"),
    "order_number": ("order number", "order no", "purchase order", "po"),
    "iban": ("iban",),
}


@dataclass
class Grounding:
    """What the sandbox model may say about one record."""

    product: dict[str, Any] = field(default_factory=dict)
    document: str = ""
    text: str = ""  # every fenced character (or the whole prompt when nothing is fenced)
    injection: str | None = None
    images: int = 0  # images the request carried: a scan's pages, which it cannot read

    @cached_property
    def name(self) -> str:
        for key in ("name", "title", "product_name"):
            value = self.product.get(key)
            if isinstance(value, str) and value.strip():
                return _squash(value)
        if self.product:  # a product without a name: call it by what it is
            if self.categories:
                return f"This {self.categories[0].lower()} item"
            return "This product"
        for line in (self.document or self.text).splitlines():
            if WORD.search(line):
                return _squash(line)[:80]
        return ""

    @cached_property
    def attributes(self) -> list[tuple[str, str]]:
        """(label, value) pairs from the product, in its own order; values verbatim."""
        pairs: list[tuple[str, str]] = []
        raw = self.product.get("attributes")
        if isinstance(raw, list):
            for item in raw:
                if isinstance(item, dict):
                    label = str(item.get("name") or item.get("label") or "").strip()
                    value = item.get("options", item.get("values", item.get("value", item.get(
                        "option"))))
                    text = _join_values(value)
                    if label and text:
                        pairs.append((label, text))
        elif isinstance(raw, dict):
            pairs.extend((str(k), _join_values(v)) for k, v in raw.items() if _join_values(v))
        for key, value in self.product.items():
            if key in SKIP_KEYS or key in COPY_KEYS or key in {"name", "title", "product_name",
                                                                "attributes", "categories", "tags",
                                                                "sku", "regular_price",
                                                                "sale_price", "price"}:
                continue
            text = _join_values(value)
            label = key.replace("_", " ").capitalize()
            unit = self.product.get(f"{key}_unit") or (
                self.product.get("dimension_unit") if key == "dimensions" else None)
            if isinstance(unit, str) and unit.strip() and text:
                if isinstance(value, dict):
                    label = f"{label} ({unit.strip()})"
                else:
                    text = f"{text} {unit.strip()}"
            if text and len(text) <= 120:
                pairs.append((label, text))
        return pairs

    @cached_property
    def categories(self) -> list[str]:
        found: list[str] = []
        for key in ("categories", "category", "tags"):
            value = self.product.get(key)
            for item in value if isinstance(value, list) else [value]:
                label = item.get("name") if isinstance(item, dict) else item
                if isinstance(label, str) and label.strip() and label.strip() not in found:
                    found.append(_squash(label))
        return found

    @cached_property
    def supplier_copy(self) -> str:
        for key in COPY_KEYS:
            value = self.product.get(key)
            if isinstance(value, str) and value.strip():
                return _squash(_strip_tags(value))
        return ""

    @cached_property
    def numbers(self) -> list[tuple[str, float]]:
        return [(raw, value) for raw in NUMBER.findall(self.text)
                if (value := parse_number(raw)) is not None]


def read_grounding(prompt: str, *, gullible: bool = True, images: int = 0) -> Grounding:
    """Collect the fenced record data of a prompt (all of it, if nothing is fenced);
    ``images`` counts the images the request carried (the sandbox reads none of them)."""
    products = PRODUCT_FENCE.findall(prompt)
    documents = [document_text(chunk) for chunk in DOCUMENT_FENCE.findall(prompt)]
    product: dict[str, Any] = {}
    readable: list[str] = []  # the record as a model reads it: JSON strings decoded
    for chunk in products:
        try:
            data = json.loads(chunk)
        except ValueError:
            readable.append(_unescape_json_text(chunk))
            continue
        readable.extend(_strings_in(data))
        if isinstance(data, dict):
            product.update(data)
        elif isinstance(data, list):
            for item in data:
                if isinstance(item, dict):
                    product.update(item)
    document = "\n".join(chunk.strip("\n") for chunk in documents)
    fenced = products + documents
    text = "\n".join(fenced) if fenced else prompt
    grounding = Grounding(product=product, document=document, text=text, images=images)
    if gullible:
        readable.extend(documents)
        grounding.injection = find_injection("\n".join(readable) if fenced else prompt)
    return grounding


def _strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings_in(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings_in(item)]
    return []


def find_injection(text: str) -> str | None:
    """The text an injected instruction demands, or None when there is none."""
    match = INJECTION.search(text)
    if match is None:
        return None
    rest = match.group("rest").strip()
    quoted = QUOTED.search(rest)
    if quoted:
        return quoted.group("q").strip()
    rest = LEADING_VERB.sub("", rest).strip()
    rest = re.split(r"[\"}\]]|</untrusted", rest)[0].strip().rstrip(".,;")
    return rest[:200] or None


def answer_text(grounding: Grounding) -> str:
    """A plain-text answer: a short paragraph of copy (or what an injection demanded)."""
    body = _sentence(grounding)
    if grounding.injection:
        return f"{grounding.injection} {body}".strip()
    return body


def answer_object(grounding: Grounding) -> dict[str, Any]:
    """A JSON-mode answer with no schema: the common copy fields."""
    answer = {"title": grounding.name, "description": _description_html(grounding, None),
              "short_description": _sentence(grounding)}
    if grounding.injection:
        answer["description"] = f"<p>{html.escape(grounding.injection)}</p>" + answer[
            "description"]
    return answer


def fill_schema(schema: dict[str, Any], grounding: Grounding) -> Any:
    """An instance of ``schema`` built from ``grounding``; deterministic. An invoice
    request is answered by the offline invoice extractor (``llm_invoice``)."""
    filler = _Filler(schema, grounding)
    if is_invoice_request(filler.resolve(schema), grounding.document, grounding.images):
        value = answer_invoice(schema, grounding.document, filler.resolve,
                               lambda node, name: filler.fill(node, name, ""))
    else:
        value = filler.fill(schema, "", "")
    if grounding.injection and isinstance(value, dict):
        filler.obey(value, schema)
    return value


# ---------------------------------------------------------------------------------------


class _Filler:
    def __init__(self, root: dict[str, Any], grounding: Grounding) -> None:
        self.root = root
        self.g = grounding

    def resolve(self, schema: Any) -> dict[str, Any]:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 32:
            schema = {**self._lookup(schema["$ref"]),
                      **{k: v for k, v in schema.items() if k != "$ref"}}
            seen += 1
        if not isinstance(schema, dict):
            return {}
        if "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self.resolve(part)
                for key, value in part.items():
                    if key == "properties":
                        merged.setdefault("properties", {}).update(value)
                    elif key == "required":
                        merged["required"] = [*merged.get("required", []), *value]
                    else:
                        merged.setdefault(key, value)
            schema = merged
        return _with_length_hints(schema)

    def _lookup(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            return {}
        node: Any = self.root
        for part in ref.lstrip("#/").split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return node if isinstance(node, dict) else {}

    def fill(self, schema: Any, name: str, parent: str) -> Any:
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return self._pick_enum(schema["enum"], name)
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                options = [self.resolve(o) for o in schema[key]]
                usable = [o for o in options if o.get("type") != "null"] or options
                return self.fill(usable[0], name, parent)
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            kind = kinds[0] if kinds else "null"
        if kind is None:
            kind = "object" if "properties" in schema else "string"
        if kind == "object":
            return self._object(schema, name)
        if kind == "array":
            return self._array(schema, name)
        if kind in ("number", "integer"):
            return self._number(schema, name, kind == "integer", parent)
        if kind == "boolean":
            return self._boolean(name)
        if kind == "null":
            return None
        return self._string(schema, name, parent)

    def _object(self, schema: dict[str, Any], name: str) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        return {key: self.fill(sub, key, name) for key, sub in properties.items()}

    def _array(self, schema: dict[str, Any], name: str) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", max(low, 5)))
        items = self.resolve(schema.get("items") or {"type": "string"})
        if items.get("type") == "object" or "properties" in items:
            rows = _table_rows(self.g.document or self.g.text)
            if rows and _looks_like_line_item(items):
                chosen = [self._line_item(items, row) for row in rows[:high]]
                while len(chosen) < low:
                    chosen.append(self._object(items, name))
                return chosen
            count = max(low, min(1, high))
            return [self._object(items, name) for _ in range(count)]
        plain_string = items.get("type") == "string" or (items.get("type") is None and not any(
            k in items for k in ("anyOf", "oneOf", "const", "properties")))
        if plain_string and "enum" not in items:
            values = self._string_list(name)
            picked: list[Any] = []
            for value in values:
                if len(picked) >= high:
                    break
                value = _fit(value, items, pad=_padding(self.g))
                if value and value not in picked:
                    picked.append(value)
            words = iter(_words_of(self.g))
            fallback = self.g.name or "item"
            attempts = 0
            while len(picked) < low:
                extra = _fit(next(words, fallback), items, pad=_padding(self.g))
                attempts += 1
                if extra not in picked or attempts > 50 + low:  # repeats beat a short list
                    picked.append(extra)
            return picked
        count = max(low, min(1, high))
        return [self.fill(items, name, name) for _ in range(count)]

    def _string_list(self, name: str) -> list[str]:
        lower = name.lower()
        g = self.g
        if any(w in lower for w in ("bullet", "feature", "highlight", "selling", "benefit",
                                    "spec")):
            return [f"{label}: {value}" for label, value in g.attributes] or [g.name]
        if "alt" in lower or "image" in lower:
            return [g.name] + [f"{g.name}, {label.lower()} {value}"
                               for label, value in g.attributes]
        if any(w in lower for w in ("tag", "keyword", "categor", "keyphrase")):
            found = [c for c in g.categories]
            found += [part for _, value in g.attributes for part in value.split(", ")
                      if len(part) <= 40]
            found += [w.lower() for w in WORD.findall(g.name) if len(w) > 3]
            return found or [g.name]
        return [value for _, value in g.attributes] or [g.name]

    def _line_item(self, schema: dict[str, Any], row: tuple[str, list[float]]) -> dict[str, Any]:
        label, numbers = row
        answer: dict[str, Any] = {}
        for key, sub in (schema.get("properties") or {}).items():
            sub = self.resolve(sub)
            kind = sub.get("type")
            kinds = kind if isinstance(kind, list) else [kind]
            lower = key.lower()
            if "number" in kinds or "integer" in kinds:
                if any(w in lower for w in ("qty", "quantity", "count", "units")):
                    value = numbers[0]
                elif any(w in lower for w in ("unit", "price", "rate")) and len(numbers) >= 2:
                    value = numbers[-2]
                elif any(w in lower for w in ("total", "amount", "sum", "net", "line")):
                    value = numbers[-1]
                else:
                    value = numbers[0]
                integer = "integer" in kinds and "number" not in kinds
                if integer:
                    value = int(value) if float(value).is_integer() else math.floor(value)
                answer[key] = _clamp(value, sub, integer)
            elif "string" in kinds and "enum" not in sub and "format" not in sub:
                answer[key] = _fit(label, sub)
            else:
                answer[key] = self.fill(sub, key, "line_item")
        return answer

    def _number(self, schema: dict[str, Any], name: str, integer: bool,
                parent: str = "") -> float | int:
        candidates: list[float] = []
        direct = self._product_value(name)
        if direct is not None:
            parsed = parse_number(str(direct))
            if parsed is not None:
                candidates.append(parsed)
        labelled = self._labelled(name, parent)
        if labelled:
            candidates += [v for raw in NUMBER.findall(labelled)
                           if (v := parse_number(raw)) is not None]
        lower = name.lower()
        numbers = [v for _, v in self.g.numbers]
        money = [v for raw, v in self.g.numbers if re.search(r"\d[.,]\d{2}$", raw)]
        if any(w in lower for w in ("total", "amount_due", "grand", "gross")) and money:
            candidates.append(max(money))  # the total is the largest amount, not an id
        candidates += numbers
        for value in candidates:
            if integer and not float(value).is_integer():
                continue
            if _in_range(value, schema):
                return int(value) if integer else value
        return _lowest(schema, integer)

    def _boolean(self, name: str) -> bool:
        value = self._product_value(name)
        if isinstance(value, bool):
            return value
        return isinstance(value, str) and value.strip().lower() in ("yes", "true", "1")

    def _string(self, schema: dict[str, Any], name: str, parent: str) -> str:
        fmt = schema.get("format")
        lower = name.lower()
        if fmt in ("date", "date-time") or lower.endswith("date") or lower.endswith("_at"):
            found = self._date(name, parent)
            if fmt == "date-time" and found:
                found = f"{found}T00:00:00Z"
            if found or fmt:
                return found
        if fmt == "email" or "email" in lower:
            match = EMAIL.search(self.g.text)
            return match.group(0) if match else ""
        if fmt in ("uri", "url") or lower.endswith("url"):
            match = URL.search(self.g.text)
            return match.group(0) if match else ""
        value = self._string_value(schema, lower, parent)
        if value.startswith("<"):
            return _fit_html(value, schema, _padding(self.g))
        return _fit(value, schema, pad=_padding(self.g))

    def _string_value(self, schema: dict[str, Any], lower: str, parent: str) -> str:
        g = self.g
        html_ok = "description" in lower and not any(
            w in lower for w in ("meta", "seo", "short", "summary", "plain"))
        if lower in ("currency", "currency_code"):
            return self._currency()
        direct = self._product_value(lower)
        if isinstance(direct, str | int | float) and not isinstance(direct, bool) and not (
                html_ok or lower in COPY_KEYS):
            return _squash(str(direct))
        if g.document and not g.product:
            labelled = self._labelled(lower, parent)
            if labelled and re.search(r"(number|_no|_nr|_id|code)$", lower):
                # an identifier: the first token with a digit ("No: 42 of 2024" -> "42")
                token = next((t.strip(":#.,;") for t in labelled.split()
                              if re.search(r"\d", t)), "")
                labelled = token or labelled
            if labelled:
                return labelled
        if g.document and any(w in f"{parent}_{lower}" for w in ("vendor", "seller", "supplier",
                                                                 "issuer")):
            first = next((line.strip() for line in g.document.splitlines() if line.strip()), "")
            if first:
                return first
        if "slug" in lower:
            return "-".join(w.lower() for w in WORD.findall(g.name) + NUMBER.findall(g.name))
        if any(w in lower for w in ("keyword", "keyphrase", "focus")):
            return " ".join(w.lower() for w in g.name.split()[:4])
        if any(w in lower for w in ("seo_title", "meta_title", "page_title")):
            return _title_with_suffix(g, schema.get("maxLength"))
        if lower in ("title", "name", "product_name", "headline") or lower.endswith("_title") or (
                lower.endswith("_name") and not g.document):
            return g.name
        if lower == "short_description":
            return f"<p>{html.escape(_sentence(g), quote=False)}</p>"
        if html_ok or lower in ("body", "html", "body_html", "long_description", "content"):
            return _description_html(g, schema.get("maxLength"))
        if any(w in lower for w in ("description", "summary", "excerpt", "blurb", "intro",
                                    "tagline", "text", "copy", "alt", "caption")):
            return _sentence(g)
        if any(w in lower for w in ("reason", "note", "comment", "explanation")):
            return f"Based on the supplied data for {g.name}."
        return g.name or " ".join(_words_of(g)[:6])

    def _product_value(self, name: str) -> Any:
        product = self.g.product
        for key in (name, name.lower(), name.replace("_", " ")):
            if key in product and not isinstance(product[key], dict | list):
                return product[key]
        return None

    def _labelled(self, name: str, parent: str = "") -> str:
        """The value after a label like ``Invoice No:`` in the document text; a nested
        field tries its parent's name first (``seller.name`` reads as ``seller_name``)."""
        text = self.g.document or self.g.text
        keys = ([f"{parent}_{name}".lower()] if parent else []) + [name.lower()]
        labels: list[str] = []
        for key in keys:
            labels += [*LABEL_SYNONYMS.get(key, ()), key.replace("_", " ")]
        for label in labels:
            pattern = re.compile(rf"(?im)^[ \t]*{re.escape(label)}\b[ \t]*[:#.]?[ \t]*(\S.*)$")
            match = pattern.search(text)
            if match:
                return _squash(match.group(1))
        for label in labels:
            pattern = re.compile(rf"(?i)\b{re.escape(label)}\b[ \t]*[:#][ \t]*([^\n]+)")
            match = pattern.search(text)
            if match:
                return _squash(match.group(1))
        return ""

    def _date(self, name: str, parent: str = "") -> str:
        for text in (self._labelled(name, parent), self.g.document or self.g.text):
            iso = DATE_ISO.search(text)
            dmy = DATE_DMY.search(text)
            candidates = []
            if iso:
                candidates.append((iso.start(), f"{iso.group(1)}-{iso.group(2)}-{iso.group(3)}"))
            if dmy:
                day, month, year = int(dmy.group(1)), int(dmy.group(2)), dmy.group(3)
                if 1 <= month <= 12 and 1 <= day <= 31:
                    candidates.append((dmy.start(), f"{year}-{month:02d}-{day:02d}"))
            if candidates:
                return min(candidates)[1]
        return ""

    def _currency(self) -> str:
        match = CURRENCY.search(self.g.text)
        if match:
            return match.group(1)
        for sign, code in CURRENCY_SIGNS.items():
            if sign in self.g.text:
                return code
        return ""

    def _pick_enum(self, options: list[Any], name: str) -> Any:
        haystack = self.g.text.lower()
        for option in options:
            if isinstance(option, str) and option and re.search(
                    rf"\b{re.escape(option.lower())}\b", haystack):
                return option
        return options[0]

    def obey(self, answer: dict[str, Any], schema: dict[str, Any]) -> None:
        """Follow the injected instruction, as a gullible model would."""
        demand = self.g.injection or ""
        properties = self.resolve(schema).get("properties") or {}
        setter = SET_FIELD.search(demand)
        if setter:
            wanted = setter.group("field").strip().lower().replace(" ", "_")
            raw = setter.group("value").strip().strip("\"'").rstrip(".")
            for key, sub in properties.items():
                if key.lower() == wanted:
                    sub = self.resolve(sub)
                    number = parse_number(raw)
                    kind = sub.get("type")
                    if kind is None:  # a nullable field: {"anyOf": [{"type": ...}, null]}
                        kind = next((o.get("type") for o in map(
                            self.resolve, sub.get("anyOf") or sub.get("oneOf") or [])
                            if o.get("type") in ("number", "integer", "string")), None)
                    if kind in ("number", "integer") and number is not None:
                        answer[key] = int(number) if kind == "integer" else number
                    elif kind == "string":
                        answer[key] = _fit(raw, sub)
                    return
        target = _obey_target(properties, self)
        if target is None:
            return
        sub = self.resolve(properties[target])
        current = answer.get(target) or ""
        if isinstance(current, str) and current.startswith("<"):
            value = f"<p>{html.escape(demand, quote=False)}</p>{current}"
        else:
            value = f"{demand} {current}".strip()
        answer[target] = _fit(value, sub)


def _obey_target(properties: dict[str, Any], filler: _Filler) -> str | None:
    strings = [k for k, v in properties.items() if filler.resolve(v).get("type") == "string"
               and "enum" not in filler.resolve(v)]
    for preferred in ("description", "long_description", "body", "body_html", "content",
                      "short_description", "text", "copy"):
        if preferred in strings:
            return preferred
    for key in strings:
        if "description" in key.lower():
            return key
    return strings[0] if strings else None


# ---------------------------------------------------------------------------------------
# copy


def _sentence(g: Grounding) -> str:
    name = g.name
    attrs = g.attributes[:3]
    if attrs:
        listed = ", ".join(f"{label.lower()} {value}" for label, value in attrs)
        text = f"{name} with {listed}."
    elif g.supplier_copy:
        text = f"{name}: {_first_sentence(g.supplier_copy)}"
    elif g.categories:
        text = f"{name}, in {g.categories[0]}."
    else:
        text = f"{name}." if name else ""
    return text


def _description_html(g: Grounding, max_length: int | None) -> str:
    name = html.escape(g.name, quote=False)
    intro = f"<p>{name}"
    if g.categories:
        intro += f", from our {html.escape(g.categories[0], quote=False)} range"
    intro += ".</p>"
    parts = [intro]
    if g.supplier_copy:
        parts.append(f"<p>{html.escape(_first_sentence(g.supplier_copy), quote=False)}</p>")
    items = [f"<li>{html.escape(label, quote=False)}: {html.escape(value, quote=False)}</li>"
             for label, value in g.attributes[:8]]
    if items:
        parts.append("<ul>" + "".join(items) + "</ul>")
    if max_length is None:
        return "".join(parts)
    chosen = ""
    for part in parts:
        if len(chosen) + len(part) <= max_length:
            chosen += part
        elif part.startswith("<ul>"):
            kept = "<ul>"
            for item in items:
                if len(chosen) + len(kept) + len(item) + len("</ul>") <= max_length:
                    kept += item
            if kept != "<ul>":
                chosen += kept + "</ul>"
    return chosen or _sentence(g)


def _title_with_suffix(g: Grounding, max_length: int | None) -> str:
    name = g.name
    suffix = g.categories[0] if g.categories else ""
    brand = g.product.get("brand")
    if isinstance(brand, str) and brand.strip() and brand.lower() not in name.lower():
        suffix = brand.strip()
    if suffix and (max_length is None or len(name) + len(suffix) + 3 <= max_length):
        return f"{name} | {suffix}"
    return name


def _first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return match.group(1) if match else text


# ---------------------------------------------------------------------------------------
# helpers


def parse_number(raw: str) -> float | None:
    """``"1.234,56"`` and ``"1,234.56"`` both give 1234.56; ``"12"`` gives 12.0."""
    text = raw.strip()
    if not text:
        return None
    if "," in text and "." in text:
        decimal = "," if text.rfind(",") > text.rfind(".") else "."
        thousands = "." if decimal == "," else ","
        text = text.replace(thousands, "").replace(decimal, ".")
    elif "," in text:
        tail = text.rpartition(",")[2]
        if text.count(",") == 1 and len(tail) != 3:
            text = text.replace(",", ".")  # "12,5" is a decimal comma
        else:
            text = text.replace(",", "")  # "1,234" and "1,234,567" group thousands
    elif text.count(".") > 1:
        text = text.replace(".", "")
    try:
        return float(text)
    except ValueError:
        return None


def _table_rows(text: str) -> list[tuple[str, list[float]]]:
    """Lines that look like invoice rows: some words, then two or more numbers."""
    rows: list[tuple[str, list[float]]] = []
    for line in text.splitlines():
        numbers_raw = NUMBER.findall(line)
        words = WORD.findall(line)
        if len(numbers_raw) < 2 or not words:
            continue
        if re.search(r"(?i)\b(total|subtotal|tax|vat|invoice|date|due|iban|bic|phone|page)\b",
                     line):
            continue
        numbers = [v for raw in numbers_raw if (v := parse_number(raw)) is not None]
        if len(numbers) >= 2:
            label = _squash(NUMBER.sub(" ", line)).strip(" -|:;,")
            label = re.sub(r"\s+[^\w\s]+(?=\s|$)", "", label).strip()
            rows.append((label or words[0], numbers))
    return rows


def _looks_like_line_item(schema: dict[str, Any]) -> bool:
    keys = " ".join((schema.get("properties") or {}).keys()).lower()
    return any(w in keys for w in ("quantity", "qty", "price", "amount", "total"))


def _join_values(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, str):
        return _squash(_strip_tags(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        parts = [_join_values(v.get("name", v.get("value")) if isinstance(v, dict) else v)
                 for v in value]
        return ", ".join(p for p in parts if p)
    if isinstance(value, dict):
        parts = [f"{k} {_join_values(v)}" for k, v in value.items() if _join_values(v)]
        return ", ".join(parts)
    return ""


LENGTH_HINTS = (
    (re.compile(r"(?i)(?:between\s+)?(\d+)\s*(?:to|-|–|and)\s*(\d+)\s*char"), "range"),
    (re.compile(r"(?i)(?:at most|up to|no more than|under|max(?:imum)?\.?)\s*(\d+)\s*char"),
     "max"),
    (re.compile(r"(?i)(?:at least|min(?:imum)?\.?|no fewer than)\s*(\d+)\s*char"), "min"),
)


def _with_length_hints(schema: dict[str, Any]) -> dict[str, Any]:
    """Honour "120 to 160 characters" in a description, as a model reading it would (OpenAI
    strict mode refuses minLength/maxLength, so providers move them into the description)."""
    text = schema.get("description")
    if not isinstance(text, str) or ("minLength" in schema and "maxLength" in schema):
        return schema
    hinted = dict(schema)
    for pattern, kind in LENGTH_HINTS:
        match = pattern.search(text)
        if not match:
            continue
        if kind == "range":
            hinted.setdefault("minLength", int(match.group(1)))
            hinted.setdefault("maxLength", int(match.group(2)))
        elif kind == "max":
            hinted.setdefault("maxLength", int(match.group(1)))
        else:
            hinted.setdefault("minLength", int(match.group(1)))
    return hinted


def _padding(g: Grounding) -> list[str]:
    """Grounded phrases to lengthen copy that must reach a minimum length."""
    phrases = [f"Part of our {category} range." for category in g.categories]
    if g.supplier_copy:
        phrases.append(_first_sentence(g.supplier_copy))
    # The first three attributes are already in the sentence copy starts with.
    phrases += [f"{label}: {value}." for label, value in g.attributes[3:]]
    if g.name:
        phrases.append(f"Order the {g.name} today.")
    phrases += [f"{label}: {value}." for label, value in g.attributes[:3]]
    return phrases + _words_of(g)


def _words_of(g: Grounding) -> list[str]:
    return [w for w in WORD.findall(g.name + " " + g.text) if len(w) > 2]


def _fit(value: str, schema: dict[str, Any], pad: list[str] | None = None) -> str:
    """Respect minLength (pad with grounded words) and maxLength (cut at a word)."""
    low = int(schema.get("minLength", 0))
    high = schema.get("maxLength")
    if low and len(value) < low:
        words = [w for w in (pad or []) if w]
        index = 0
        while len(value) < low:
            word = words[index % len(words)] if words else "item"
            if index >= len(words) or word not in value:
                value = f"{value} {word}".strip()
            index += 1
    if high is not None and len(value) > int(high):
        cut = _cut(value, int(high))
        value = cut if len(cut) >= low else value[: int(high)]  # mid-word beats too short
    return value


def _fit_html(value: str, schema: dict[str, Any], pad: list[str]) -> str:
    """Like ``_fit`` for HTML: the minimum counts text (tags not counted, as the guards
    count it), padding comes as whole paragraphs, and the maximum counts every character."""
    low = int(schema.get("minLength", 0))
    high = schema.get("maxLength")
    index = 0
    while len(_squash(_strip_tags(value))) < low and index < len(pad) + 200:
        phrase = pad[index % len(pad)] if pad else "Details"
        if index >= len(pad) or html.escape(phrase, quote=False) not in value:
            value += f"<p>{html.escape(phrase, quote=False)}</p>"
        index += 1
    if high is not None and len(value) > int(high):
        plain = _squash(_strip_tags(value))  # too long for markup: plain text, cut
        cut = _cut(plain, int(high))
        value = cut if len(cut) >= low else plain[: int(high)]
    return value


def _cut(value: str, limit: int) -> str:
    if limit <= 0:
        return ""
    if value.startswith("<"):
        plain = _squash(_strip_tags(html.unescape(value)))
        return _cut(plain, limit)
    cut = value[:limit]
    if len(value) > limit and " " in cut and value[limit] != " ":
        cut = cut[:cut.rfind(" ")]
    return cut.rstrip(" ,;:-|")


def _clamp(value: float, schema: dict[str, Any], integer: bool) -> float:
    return value if _in_range(value, schema) else _lowest(schema, integer)


def _lowest(schema: dict[str, Any], integer: bool) -> float | int:
    """The number to give when the data has none that fits: the least the schema allows
    (zero when it allows zero), so an empty answer never looks like a fact."""
    if "minimum" in schema:
        low: float = schema["minimum"]
        value = math.ceil(low) if integer else low
    elif "exclusiveMinimum" in schema:
        low = schema["exclusiveMinimum"]
        value = math.floor(low) + 1 if integer else low + 0.01
    else:
        value = 0
    high = schema.get("maximum")
    if high is not None and value > high:
        value = math.floor(high) if integer else high
    return int(value) if integer else float(value)


def _in_range(value: float, schema: dict[str, Any]) -> bool:
    if "minimum" in schema and value < schema["minimum"]:
        return False
    if "maximum" in schema and value > schema["maximum"]:
        return False
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        return False
    return not ("exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"])


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _strip_tags(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


def _unescape_json_text(text: str) -> str:
    """Injections hide in JSON strings; read them with escapes undone."""
    return text.replace('\\"', '"').replace("\\n", "\n").replace("\\u0027", "'")
