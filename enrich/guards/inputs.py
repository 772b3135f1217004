"""Input checks: what is wrong with a product's own data, found at sync and kept on the product.

A draft can only be as good as its source, so sync records, per product, the problems of
its input (``input_flags``); the worker copies them onto the product's draft (guard
``input``), so the review shows them and ``review approve --unflagged`` leaves the draft for a
person. The checks, each named by its flag:

    instruction      a field holds text addressed to a model or writer (``injection``); the
                     sentence is quarantined: not a fact, never to be copied
    source_conflict  two values for one quantity (attribute Power 300 W, text 500 W)
    bad_value        a weight, dimension or price that is negative, not a number, or a
                     placeholder (99999999)
    markup           the name carries HTML or script (``<script>``, ``onerror=``)
    duplicate_sku    the same SKU on two products (found over the whole ledger, after the
                     stream: ``enrich.ledger.inputs``)

The draft-side checks that go with them live in ``check_draft``: a draft that uses a
conflicting value, a bad value, escaped markup or a quarantined sentence is flagged itself.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from enrich.guards.grounding import CONVERSION_TOLERANCE, Quantity, quantities
from enrich.guards.injection import find_instructions, may_hold_instructions
from enrich.guards.text import long_texts, plain_text, walk

INPUT_FLAGS: tuple[str, ...] = ("instruction", "source_conflict", "bad_value", "markup",
                                "duplicate_sku")
MARKUP_RE = re.compile(r"<\s*/?\s*[a-z][a-z0-9-]*(?:\s[^>]*)?>|&lt;\s*/?\s*[a-z][a-z0-9-]*"
                       r"|\bjavascript\s*:|\bon[a-z]+\s*=", re.IGNORECASE)
#: Visible text that shows markup as text: "&lt;script&gt;" rendered, or a tag left in.
SHOWN_MARKUP_RE = re.compile(r"</?(?:script|iframe|img|svg|style|object|embed|a|b|i|p|div|"
                             r"span|strong|em|br|h[1-6]|ul|li)\b[^<>]{0,80}>", re.IGNORECASE)
_NUMERIC_RE = re.compile(r"^\s*-?(?:\d+(?:[.,]\d+)?|[.,]\d+)\s*$")
#: A number this large for a weight, size or price is a placeholder, not a measure.
PLACEHOLDER = Decimal(10_000_000)
_NINES_RE = re.compile(r"^9{5,}(?:[.,]9+)?$")
# Attribute names that name a quantity a product has once (its power, its weight...).
_QUANTITY_NAMES: dict[str, tuple[str, ...]] = {
    "power": ("power", "wattage", "leistung", "puissance", "potencia"),
    "voltage": ("voltage", "spannung", "tension", "voltaje"),
    "mass": ("weight", "gewicht", "poids", "peso"),
    "charge": ("battery capacity", "capacity (mah)", "akkukapazität"),
    "data": ("storage", "memory", "speicher", "capacity (gb)"),
    "volume": ("volume", "capacity", "fassungsvermögen", "contenance", "capacidad"),
}
_TEXT_KEYS = frozenset({"description", "short_description", "name"})
#: Shorter text cannot hold an instruction the patterns would find.
MIN_INSTRUCTION_CHARS = 12
#: Attribute name -> the family it names (the first family listing it, as ``_QUANTITY_NAMES``
#: is read in order).
_FAMILY_OF: dict[str, str] = {}
for _family, _words in _QUANTITY_NAMES.items():
    for _word in _words:
        _FAMILY_OF.setdefault(_word, _family)


@dataclass(frozen=True)
class InputFlag:
    """One problem of a product's input: which check, which field, and a sentence."""

    flag: str
    field: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"flag": self.flag, "field": self.field, "detail": self.detail}


@dataclass(frozen=True)
class Conflict:
    """Two or more values the data gives for one quantity."""

    family: str
    name: str                       # the attribute or field that names it
    values: tuple[Quantity, ...]    # every value given, as written

    def sentence(self) -> str:
        listed = " and ".join(f"“{q.text}”" for q in self.values)
        return f"the product data gives {listed} for {self.name}"


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        return None


def bad_values(product: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(field, value as written, why) for weights, dimensions and prices that are no measure."""
    found: list[tuple[str, str, str]] = []
    _bad_into(found, product, _MEASURES)
    dims = product.get("dimensions")
    if type(dims) is dict or isinstance(dims, Mapping):  # a dict without the ABC's check
        _bad_into(found, dims, _SIZES)
    return found


#: (key, the field's name in a flag) of the measures ``bad_values`` reads, at the top level
#: and in ``dimensions``.
_MEASURES = tuple((f, f) for f in ("weight", "regular_price", "sale_price", "price"))
_SIZES = tuple((k, f"dimensions.{k}") for k in ("length", "width", "height"))


def _bad_into(found: list[tuple[str, str, str]], values: Mapping[str, Any],
              names: tuple[tuple[str, str], ...]) -> None:
    # Sync runs this on every product: the names are spelled once, above, not per value.
    for key, name in names:
        value = values.get(key)
        if type(value) is str:  # as a snapshot holds them
            text = value.strip()
        elif value is None or isinstance(value, bool):
            continue
        else:
            text = str(value).strip()
        if not text:
            continue
        why = _why_no_measure(text)
        if why:
            found.append((name, text, why))


@functools.lru_cache(maxsize=4096)
def _why_no_measure(text: str) -> str | None:
    """Why a stripped weight, size or price is no measure, or None. Cached: a catalog
    repeats the same few values ("0.5", "12.99") on thousands of products."""
    if not _NUMERIC_RE.match(text):
        return "is not a number"
    number = _decimal(text)
    if number is None:
        return "is not a number"
    if number < 0:
        return "is negative"
    if number >= PLACEHOLDER or _NINES_RE.match(text):
        return "looks like a placeholder, not a real value"
    return None


def _attribute_quantities(product: Mapping[str, Any]) -> Iterator[tuple[str, str, Quantity]]:
    """(family, name, quantity) for attributes and fields named for a one-off quantity."""
    attrs = product.get("attributes")
    for attr in attrs if isinstance(attrs, list) else []:
        if type(attr) is not dict and not isinstance(attr, Mapping):
            continue
        name = attr.get("name")
        name = name if type(name) is str else str(name or "")
        family = _FAMILY_OF.get(name.lower().strip())
        if family is None:
            continue
        options = attr.get("options") if isinstance(attr.get("options"), list) else []
        if len(options) != 1:
            continue  # a range of sizes or a choice: not one value
        for q in quantities(str(options[0])):
            if q.family == family:
                yield family, name, q


def conflicts(product: Mapping[str, Any]) -> list[Conflict]:
    """Quantities the data gives two values for: an attribute (Power: 300 W) and the text.

    Only attributes naming a quantity a product has once count (power, voltage, weight,
    battery, storage, volume), and only text values in the same family that no unit
    conversion reconciles; "up to 500 W" next to "Power: 300 W" is still a conflict.
    """
    named = list(_attribute_quantities(product))
    if not named:
        return []
    texts = []
    for key, _parent, value in walk({k: product.get(k) for k in _TEXT_KEYS}):
        if isinstance(value, str) and key in _TEXT_KEYS:
            texts.append(plain_text(value))
    out: list[Conflict] = []
    for family, name, given in named:
        base = given.base_values()
        if not base:
            continue
        others: list[Quantity] = []
        for text in texts:
            for q in quantities(text):
                if q.family != family or not q.base_values():
                    continue
                if any(abs(b - o) <= abs(o) * CONVERSION_TOLERANCE
                       for b in q.base_values() for o in base):
                    continue
                if q.text not in {o.text for o in others}:
                    others.append(q)
        if others:
            out.append(Conflict(family, name, (given, *others)))
    return out


def input_flags(product: Mapping[str, Any]) -> list[InputFlag]:
    """Every problem of one product's own data (the duplicate SKU is found across products)."""
    found: list[InputFlag] = []
    seen: set[tuple[str, str]] = set()
    fields = long_texts(product, MIN_INSTRUCTION_CHARS)
    # One cheap test for all of them first: almost no product holds an instruction.
    if not may_hold_instructions([text for _k, _p, text in fields]):
        fields = []
    for key, parent, text in fields:
        where = f"{parent}.{key}" if parent and parent != key else key
        for inst in find_instructions(text):
            if (where, inst.text) in seen:
                continue
            seen.add((where, inst.text))
            short = inst.text if len(inst.text) <= 100 else inst.text[:99] + "…"
            found.append(InputFlag("instruction", where, f"The {where.replace('_', ' ')} holds "
                                   f"an instruction to whoever writes the copy (“{short}”). "
                                   "It was left out of the facts; remove it from the product "
                                   "in the store."))
    for c in conflicts(product):
        found.append(InputFlag("source_conflict", c.name, f"{c.sentence()[0].upper()}"
                               f"{c.sentence()[1:]}. Correct the product in the store; a "
                               "draft that states either value is flagged."))
    for name, value, why in bad_values(product):
        found.append(InputFlag("bad_value", name, f"The {name.replace('_', ' ')} “{value}” "
                               f"{why}. Correct it in the store; copy must not repeat it."))
    name = product.get("name")
    # Each markup alternative needs one of these characters (a tag, an entity, a colon, an
    # equals sign): a name without them is not searched.
    if isinstance(name, str) and ("<" in name or "&" in name or ":" in name or "=" in name):
        m = MARKUP_RE.search(name)
        if m:
            found.append(InputFlag("markup", "name", f"The name carries markup (“{m.group(0)}”"
                                   "). Remove it in the store; it must not reach the copy."))
    return found


def input_flag_dicts(product: Mapping[str, Any]) -> list[dict[str, str]]:
    return [f.as_dict() for f in input_flags(product)]


__all__ = [
    "INPUT_FLAGS",
    "Conflict",
    "InputFlag",
    "bad_values",
    "conflicts",
    "input_flag_dicts",
    "input_flags",
]
