"""Test helpers for the sandbox LLM endpoint: a JSON Schema checker written apart from the
sandbox's own schema filler (so a test does not grade the filler with itself), and sample
prompts with fenced record data."""

from __future__ import annotations

import json
import re
from typing import Any

PRODUCT: dict[str, Any] = {
    "id": 4711,
    "name": "Merino Wool Beanie",
    "sku": "MWB-01",
    "categories": [{"id": 9, "name": "Hats"}],
    "attributes": [
        {"name": "Material", "options": ["100% merino wool"]},
        {"name": "Color", "options": ["Navy", "Grey"]},
        {"name": "Head circumference", "options": ["56-58 cm"]},
    ],
    "short_description": "Knitted in Scotland. Soft rib cuff.",
    "regular_price": "24.90",
}

INVOICE_TEXT = """ACME Supplies GmbH
Invoice No: INV-2024-0042
Invoice Date: 2024-03-15
Due Date: 2024-04-14
Bill to: Corner Shop Ltd
Currency: EUR

Blue widget 2 10.00 20.00
Red gadget 3 5.50 16.50

Subtotal: 36.50
VAT: 6.94
Total: 43.44
"""

COPY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "description", "seo_title", "meta_description", "tags"],
    "properties": {
        "title": {"type": "string", "maxLength": 60},
        "description": {"type": "string", "minLength": 40},
        "seo_title": {"type": "string", "maxLength": 30},
        "meta_description": {"type": "string", "minLength": 60, "maxLength": 155},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 4},
    },
}


def product_prompt(product: dict[str, Any] | None = None) -> str:
    data = json.dumps(product or PRODUCT, ensure_ascii=False)
    return ("Write the missing copy for this product.\n<untrusted_product_data>\n" + data
            + "\n</untrusted_product_data>")


def invoice_prompt(text: str = INVOICE_TEXT) -> str:
    return ("Extract the invoice.\n<untrusted_document_text>\n" + text
            + "\n</untrusted_document_text>")


def numbers_in(text: str) -> set[float]:
    """Every number written in ``text`` (so "24.90" and "24.9" are the same number)."""
    return {float(raw) for raw in re.findall(r"\d+(?:\.\d+)?", text)}


def schema_errors(value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None,
                  path: str = "$") -> list[str]:
    """What is wrong with ``value`` against ``schema`` (the subset pydantic and OpenAI use)."""
    root = root or schema
    if "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        return schema_errors(value, node, root, path)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            if any(not schema_errors(value, option, root, path) for option in schema[key]):
                return []
            return [f"{path}: matches none of {key}"]
    errors: list[str] = []
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: not the const {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in enum")
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
    checks = {"string": lambda v: isinstance(v, str),
              "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
              "boolean": lambda v: isinstance(v, bool), "null": lambda v: v is None,
              "object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list)}
    if kinds and not any(checks[k](value) for k in kinds):
        return [f"{path}: {value!r} is not {kinds}"]
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: above {schema['maximum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errors.append(f"{path}: not above {schema['exclusiveMinimum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        for index, item in enumerate(value):
            errors += schema_errors(item, schema.get("items", {}), root, f"{path}[{index}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{path}: missing {name}")
        for name, item in value.items():
            if name in properties:
                errors += schema_errors(item, properties[name], root, f"{path}.{name}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}: unexpected {name}")
    return errors
