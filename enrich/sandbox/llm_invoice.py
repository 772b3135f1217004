"""The sandbox model's answer to an invoice request: the offline extractor's reading.

A product request is answered by filling the schema from the fenced record; an invoice
cannot be: the generic filler has no idea which amount is the total, and a strict schema
(every field required, nullable) had it writing filler text into every string until the
answer ran out of tokens. So an invoice request is answered the way the offline provider
answers it, with ``enrich.invoices.offline.extract`` on the fenced document text (one
extractor in the project, not a second, weaker one here), then shaped to whatever schema
the request carries: OpenAI's strict schema (``anyOf`` with null everywhere), Anthropic's
tool ``input_schema`` or Gemini's ``responseJsonSchema``. Amounts stay decimal strings where
the schema allows a string (as the prompt asks a model to write them), and become numbers
where it only allows a number.

An invoice request is one whose fence is ``<untrusted_document_text>`` and whose schema has
the ``Invoice`` record's parts (``supplier``, ``buyer``, ``lines``, ``tax_breakdown``); a
hand-made invoice schema with other field names still goes to the generic filler, which reads
labels. Faults, latency, limits and ``max_tokens`` apply afterwards, as to any answer.

A scan sent as page images (``[invoices] vision = true``) arrives with an empty fence and the
images beside it. The sandbox checks the images (``llm_images``) but cannot read pixels, so it
answers what it can read, the empty text: an invoice whose every field is null. It does not
OCR the image: an answer that depended on whether Tesseract is installed where the sandbox
runs would make the tests' expectations depend on the machine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

#: The parts of the project's ``Invoice`` schema that mark a request as an invoice request.
INVOICE_PARTS = frozenset({"supplier", "buyer", "lines", "tax_breakdown"})

Resolve = Callable[[Any], dict[str, Any]]
Fallback = Callable[[dict[str, Any], str], Any]


def is_invoice_request(schema: dict[str, Any], document: str, images: int = 0) -> bool:
    """Whether a request is the project's invoice extraction (see the module docstring):
    a fenced document, or page images of a scan whose fence is empty."""
    properties = schema.get("properties") or {}
    return bool(document.strip() or images) and set(properties) >= INVOICE_PARTS


def document_text(document: str) -> str:
    """The document text inside the fence: the worker fences it as one JSON string line
    (so nothing inside can close the fence); a hand-written prompt may fence raw text."""
    raw = document.strip()
    if raw.startswith('"'):
        try:
            value = json.loads(raw)
        except ValueError:
            return document
        if isinstance(value, str):
            return value
    return document


def answer_invoice(schema: dict[str, Any], document: str, resolve: Resolve,
                   fallback: Fallback) -> Any:
    """The offline extractor's invoice for ``document`` (the fenced text, decoded by
    ``document_text``), shaped to ``schema``.

    ``resolve`` follows ``$ref``/``allOf`` as the generic filler does; ``fallback`` fills a
    required, non-nullable field the extractor left empty (only a hand-made schema has one).
    """
    # Imported here: the extractor pulls in schwifty and python-stdnum, which a sandbox
    # serving only product requests never needs to load.
    from enrich.invoices.offline import extract

    read = extract({"text": document}).model_dump(mode="json")
    return _Shaper(resolve, fallback).shape(read, schema, "")


class _Shaper:
    def __init__(self, resolve: Resolve, fallback: Fallback) -> None:
        self.resolve = resolve
        self.fallback = fallback

    def shape(self, value: Any, schema: Any, name: str) -> Any:
        node = self.resolve(schema)
        if "const" in node:
            return node["const"]
        if node.get("enum"):
            return value if value in node["enum"] else self.fallback(node, name)
        for key in ("anyOf", "oneOf"):
            if node.get(key):
                return self._choose(value, [self.resolve(o) for o in node[key]], node, name)
        kinds = node.get("type")
        if isinstance(kinds, list):
            if value is None and "null" in kinds:
                return None
            options = [{**node, "type": k} for k in kinds if k != "null"]
            return self._choose(value, options, node, name)
        kind = kinds or ("object" if "properties" in node else None)
        if kind == "null":
            return None
        if kind == "object":
            given = value if isinstance(value, dict) else {}
            return {key: self.shape(given.get(key), sub, key)
                    for key, sub in (node.get("properties") or {}).items()}
        if kind == "array":
            return self._array(value, node, name)
        if value is None:
            return self.fallback(node, name)
        if kind in ("number", "integer"):
            number = _number(value)
            if number is None:
                return self.fallback(node, name)
            if kind == "integer":
                return int(number) if number == number.to_integral_value() else \
                    self.fallback(node, name)
            return float(number)
        if kind == "boolean":
            return bool(value)
        text = str(value)
        high = node.get("maxLength")
        return text[: int(high)] if high is not None else text

    def _choose(self, value: Any, options: list[dict[str, Any]], node: dict[str, Any],
                name: str) -> Any:
        """The option the extractor's value fits as it is, else one it converts to; a
        missing value is null where null is allowed."""
        nullable = any(o.get("type") == "null" for o in options)
        if value is None:
            if nullable:
                return None
            usable = [o for o in options if o.get("type") != "null"]
            return self.fallback(usable[0] if usable else node, name)
        for option in options:
            if _fits_as_is(value, option):
                return self.shape(value, option, name)
        for option in options:
            if _converts(value, option):
                return self.shape(value, option, name)
        return None if nullable else self.fallback(options[0], name)

    def _array(self, value: Any, node: dict[str, Any], name: str) -> list[Any]:
        items = value if isinstance(value, list) else []
        high = node.get("maxItems")
        if high is not None:
            items = items[: int(high)]
        shaped = [self.shape(item, node.get("items") or {}, name) for item in items]
        low = int(node.get("minItems", 0))
        while len(shaped) < low:
            shaped.append(self.shape(None, node.get("items") or {}, name))
        return shaped


def _kind(option: dict[str, Any]) -> str | None:
    kind = option.get("type")
    if kind is None and "properties" in option:
        return "object"
    return kind if isinstance(kind, str) else None


def _fits_as_is(value: Any, option: dict[str, Any]) -> bool:
    kind = _kind(option)
    if "enum" in option:
        return value in option["enum"]
    if isinstance(value, bool):
        return kind == "boolean"
    if isinstance(value, str):
        return kind == "string"
    if isinstance(value, int | float):
        return kind in ("number", "integer")
    if isinstance(value, dict):
        return kind == "object"
    if isinstance(value, list):
        return kind == "array"
    return False


def _converts(value: Any, option: dict[str, Any]) -> bool:
    kind = _kind(option)
    if kind in ("number", "integer"):
        return _number(value) is not None
    return kind == "string" and isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
