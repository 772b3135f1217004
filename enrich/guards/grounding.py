"""The hallucination guard: every number, unit and code in a draft must be in the source.

Numbers are compared as values, not strings: ``1,000`` = ``1000`` = ``1.000`` (German),
``2.50`` = ``2.5``, ``.5`` = ``0.5``. Units are compared by canonical form: ``300W``,
``300 W``, ``300 watts`` and ``300-watt`` are all 300 W. A bare number in the source
(``"weight": "0.5"``) grounds the draft's ``0.5 kg`` when the field says what it measures
(weight -> mass, length/width/height -> length, price -> money) or the data names the unit
elsewhere (``Power (W)``). Codes that mix letters and digits (``XM4``, ``H2O``, ``4K``)
must appear as written. Addresses and phone numbers are left to the contact guard.

A draft made only of the source's own text always passes: both sides are read by the
same extractor, so any number copied is found with the same value and unit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from enrich.guards.injection import quarantine
from enrich.guards.text import Source, without_contacts

# canonical unit: (family, aliases matched case-insensitively, aliases matched as written)
_UNITS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "W": ("power", ("w", "watt", "watts"), ()),
    "kW": ("power", ("kw", "kilowatt", "kilowatts"), ()),
    "Wh": ("energy", ("wh", "watt-hour", "watt-hours", "watt hour", "watt hours"), ()),
    "kWh": ("energy", ("kwh", "kilowatt-hour", "kilowatt-hours"), ()),
    "MWh": ("energy", ("megawatt-hour", "megawatt-hours"), ("MWh",)),
    "mW": ("power", ("milliwatt", "milliwatts"), ("mW",)),
    "MW": ("power", ("megawatt", "megawatts"), ("MW",)),
    "mAh": ("charge", ("mah",), ()),
    "Ah": ("charge", ("amp-hour", "amp-hours", "ampere-hour", "ampere-hours"), ("Ah",)),
    "V": ("voltage", ("v", "volt", "volts"), ()),
    "kV": ("voltage", ("kv", "kilovolt", "kilovolts"), ()),
    "mV": ("voltage", ("millivolt", "millivolts"), ("mV",)),
    "A": ("current", ("amp", "amps", "ampere", "amperes"), ("A",)),
    "mA": ("current", ("milliamp", "milliamps"), ("mA",)),
    "kA": ("current", ("kiloamp", "kiloamps"), ("kA",)),
    "Nm": ("torque", ("newton-metre", "newton-meter", "newton metres", "newton meters"),
           ("Nm",)),
    "ohm": ("resistance", ("ohm", "ohms"), ("Ω",)),
    "lm": ("light", ("lumen", "lumens"), ("lm",)),
    "bar": ("pressure", ("bar", "bars"), ()),
    "psi": ("pressure", ("psi",), ()),
    "dpi": ("density", ("dpi", "ppi"), ()),
    "fps": ("rate", ("fps",), ()),
    "kbps": ("bitrate", ("kbps", "kbit/s"), ()),
    "Mbps": ("bitrate", ("mbps", "mbit/s"), ()),
    "Gbps": ("bitrate", ("gbps", "gbit/s"), ()),
    "Hz": ("frequency", ("hz", "hertz"), ()),
    "kHz": ("frequency", ("khz",), ()),
    "MHz": ("frequency", ("mhz",), ()),
    "GHz": ("frequency", ("ghz",), ()),
    "mg": ("mass", ("milligram", "milligrams"), ("mg",)),
    "g": ("mass", ("gram", "grams", "gr"), ("g",)),
    "kg": ("mass", ("kg", "kgs", "kilo", "kilos", "kilogram", "kilograms"), ()),
    "lb": ("mass", ("lb", "lbs", "pound", "pounds"), ()),
    "oz": ("mass", ("oz", "ounce", "ounces"), ()),
    "t": ("mass", ("tonne", "tonnes"), ()),
    "nm": ("length", ("nanometre", "nanometres", "nanometer", "nanometers"), ("nm",)),
    "µm": ("length", ("micron", "microns", "micrometre", "micrometer"), ("µm", "μm")),
    "mm": ("length", ("mm", "millimeter", "millimeters", "millimetre", "millimetres"), ()),
    "cm": ("length", ("cm", "centimeter", "centimeters", "centimetre", "centimetres"), ()),
    "m": ("length", ("meter", "meters", "metre", "metres"), ("m",)),
    "km": ("length", ("km", "kilometer", "kilometers", "kilometre", "kilometres"), ()),
    "in": ("length", ("inch", "inches", "zoll", "pouce", "pouces", "pulgada", "pulgadas"),
           ("″", "\"", "”")),
    "ft": ("length", ("ft", "foot", "feet"), ("′",)),
    "yd": ("length", ("yd", "yard", "yards"), ()),
    "dl": ("volume", ("dl", "deciliter", "decilitre"), ()),
    "ml": ("volume", ("ml", "milliliter", "milliliters", "millilitre", "millilitres"), ()),
    "cl": ("volume", ("cl", "centiliter", "centilitre"), ()),
    "l": ("volume", ("liter", "liters", "litre", "litres", "ltr"), ("l", "L")),
    "fl oz": ("volume", ("fl oz", "fl. oz", "fluid ounce", "fluid ounces"), ()),
    "gal": ("volume", ("gal", "gallon", "gallons"), ()),
    "%": ("ratio", ("%", "percent", "per cent", "pct"), ()),
    "°C": ("temperature", ("°c", "° c", "degrees celsius", "celsius"), ()),
    "°F": ("temperature", ("°f", "° f", "degrees fahrenheit", "fahrenheit"), ()),
    "K": ("temperature", ("kelvin",), ()),
    "°": ("angle", ("°", "degree", "degrees"), ()),
    "KB": ("data", ("kb", "kilobyte", "kilobytes"), ()),
    "MB": ("data", ("mb", "megabyte", "megabytes"), ()),
    "GB": ("data", ("gb", "gigabyte", "gigabytes"), ()),
    "TB": ("data", ("tb", "terabyte", "terabytes"), ()),
    "PB": ("data", ("pb", "petabyte", "petabytes"), ()),
    "MP": ("resolution", ("mp", "megapixel", "megapixels"), ()),
    "px": ("resolution", ("px", "pixel", "pixels"), ()),
    "dB": ("sound", ("db", "decibel", "decibels"), ()),
    "rpm": ("speed", ("rpm",), ()),
    "km/h": ("speed", ("km/h", "kmh", "kph"), ()),
    "mph": ("speed", ("mph",), ()),
    "s": ("time", ("sec", "secs", "second", "seconds"), ()),
    "min": ("time", ("min", "mins", "minute", "minutes"), ()),
    "h": ("time", ("hr", "hrs", "hour", "hours"), ("h",)),
    "day": ("time", ("day", "days"), ()),
    "week": ("time", ("week", "weeks", "wk", "wks"), ()),
    "month": ("time", ("month", "months", "mo"), ()),
    "year": ("time", ("year", "years", "yr", "yrs"), ()),
    "pcs": ("count", ("pc", "pcs", "piece", "pieces"), ()),
    "USD": ("money", ("usd", "dollar", "dollars"), ("$", "US$")),
    "EUR": ("money", ("eur", "euro", "euros"), ("€",)),
    "GBP": ("money", ("gbp",), ("£",)),
    "JPY": ("money", ("jpy", "yen"), ("¥",)),
}

# canonical unit -> (factor, offset) to its family's base unit (g, mm, W, V, A, Wh, mAh, ml,
# B, K, Hz, s): what lets "0.5 kg" ground "500 g" and "55″" ground "139.7 cm". Exact decimals,
# so a conversion never invents a difference; a unit without an entry compares only as itself.
_D = Decimal
_FACTORS: dict[str, tuple[Decimal, Decimal]] = {
    "mg": (_D("0.001"), _D(0)), "g": (_D(1), _D(0)), "kg": (_D(1000), _D(0)),
    "t": (_D(1000000), _D(0)), "lb": (_D("453.59237"), _D(0)),
    "oz": (_D("28.349523125"), _D(0)),
    "nm": (_D("0.000001"), _D(0)), "µm": (_D("0.001"), _D(0)), "mm": (_D(1), _D(0)),
    "cm": (_D(10), _D(0)), "m": (_D(1000), _D(0)), "km": (_D(1000000), _D(0)),
    "in": (_D("25.4"), _D(0)), "ft": (_D("304.8"), _D(0)), "yd": (_D("914.4"), _D(0)),
    "mW": (_D("0.001"), _D(0)), "W": (_D(1), _D(0)), "kW": (_D(1000), _D(0)),
    "MW": (_D(1000000), _D(0)),
    "mV": (_D("0.001"), _D(0)), "V": (_D(1), _D(0)), "kV": (_D(1000), _D(0)),
    "mA": (_D("0.001"), _D(0)), "A": (_D(1), _D(0)), "kA": (_D(1000), _D(0)),
    "Wh": (_D(1), _D(0)), "kWh": (_D(1000), _D(0)), "MWh": (_D(1000000), _D(0)),
    "mAh": (_D(1), _D(0)), "Ah": (_D(1000), _D(0)),
    "Hz": (_D(1), _D(0)), "kHz": (_D(1000), _D(0)), "MHz": (_D(1000000), _D(0)),
    "GHz": (_D(1000000000), _D(0)),
    "ml": (_D(1), _D(0)), "cl": (_D(10), _D(0)), "dl": (_D(100), _D(0)),
    "l": (_D(1000), _D(0)), "fl oz": (_D("29.5735295625"), _D(0)),
    "gal": (_D("3785.411784"), _D(0)),
    "KB": (_D(1000), _D(0)), "MB": (_D(10) ** 6, _D(0)), "GB": (_D(10) ** 9, _D(0)),
    "TB": (_D(10) ** 12, _D(0)), "PB": (_D(10) ** 15, _D(0)),
    "K": (_D(1), _D(0)), "°C": (_D(1), _D("273.15")),
    "°F": (_D(5) / _D(9), _D("273.15") - _D(32) * _D(5) / _D(9)),
    "s": (_D(1), _D(0)), "min": (_D(60), _D(0)), "h": (_D(3600), _D(0)),
    "day": (_D(86400), _D(0)), "week": (_D(604800), _D(0)),
    "bar": (_D(1), _D(0)), "psi": (_D("0.0689475729"), _D(0)),
    "kbps": (_D(1000), _D(0)), "Mbps": (_D(10) ** 6, _D(0)), "Gbps": (_D(10) ** 9, _D(0)),
}
#: How close a converted value must come to the draft's (relative): rounding "1 lb" to
#: "454 g" or "55 inch" to "140 cm" is fine, "2 lb" for 1 kg (2.2 lb) is not.
CONVERSION_TOLERANCE = Decimal("0.02")
# After a number, a unit-like token enrich has no entry for ("18 kT", "5 GW"): compared
# with the data as written, never as a bare number.
_UNKNOWN_UNIT = r"(?P<unk>[kMGTPmµnp]?[A-Z][A-Za-z]?|[kMGTPmµnp][A-Za-z]{1,2}(?=\s|$|[.,;:)]))"

_ALIAS: dict[str, str] = {}
_ALIAS_CS: dict[str, str] = {}
for _canon, (_family, _ci, _cs) in _UNITS.items():
    for _a in _ci:
        _ALIAS[_a] = _canon
    for _a in _cs:
        _ALIAS_CS[_a] = _canon


def _alternation(words: list[str]) -> str:
    return "|".join(re.escape(w).replace(r"\ ", r"\s?") for w in sorted(words, key=len,
                                                                          reverse=True))


_NUMBER = (r"\d{1,3}(?:,\d{3})+(?:\.\d+)?"           # 1,000 / 12,345.5
           r"|\d{1,3}(?:\.\d{3})+(?:,\d+)?"           # 1.000 / 1.000,5
           r"|\d{1,3}(?:[\u00a0\u202f]\d{3})+(?:[.,]\d+)?"  # 1 000 (no-break spaces)
           r"|\d+(?:[.,]\d+)?"
           r"|[.,]\d+")
_CURRENCY_SIGNS = ["$", "US$", "€", "£", "¥"]
QUANTITY_RE = re.compile(
    r"(?:(?P<pre>" + _alternation(_CURRENCY_SIGNS) + r")\s?)?"
    r"(?<![A-Za-wyz0-9_.,])(?P<num>" + _NUMBER + r")(?!\d)"
    r"(?:(?P<ord>st|nd|rd|th)(?![A-Za-z])"
    r"|[ \t\u00a0]?(?:-[ \t]?)?(?:(?i:(?P<unit>" + _alternation(list(_ALIAS)) + r"))"
    r"|(?P<unit_cs>" + _alternation(list(_ALIAS_CS)) + r")"
    r"|" + _UNKNOWN_UNIT + r")(?![A-Za-z]))?"
)
# Tokens that mix letters and digits: model numbers and codes (XM4, H2O, 4K, A4).
CODE_RE = re.compile(r"(?<![\w])(?=[A-Za-z0-9]*[A-Za-z])(?=[A-Za-z]*\d)[A-Za-z0-9]{2,}(?!\w)")
_PLAIN_QUANTITY_RE = re.compile(r"\d+(?:[.,]\d+)?(?:st|nd|rd|th|" +
                                _alternation([a for a in _ALIAS if a.isalnum()]) + r")",
                                re.IGNORECASE)
# "Length (in)", "Power [W]": a unit named for a bare number elsewhere in the data.
_UNIT_MENTION_RE = re.compile(r"[(\[]\s*(?i:(?P<unit>" + _alternation([*_ALIAS, "in"]) + r"))"
                              r"\s*[)\]]|[(\[]\s*(?P<unit_cs>" + _alternation(list(_ALIAS_CS))
                              + r")\s*[)\]]")
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "dozen": 12,
                 "pair": 2}
_DIGIT_RE = re.compile(r"\d")
_NUMBER_WORD_RE = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
_KEY_FAMILIES = (("weight", "mass"), ("length", "length"), ("width", "length"),
                 ("height", "length"), ("depth", "length"), ("dimension", "length"),
                 ("size", "length"), ("price", "money"), ("cost", "money"),
                 ("capacity", "volume"), ("volume", "volume"), ("power", "power"),
                 ("voltage", "voltage"), ("discount", "ratio"), ("warranty", "time"))


@dataclass(frozen=True)
class Quantity:
    """A number as written (``text``), its possible values, and its canonical unit."""

    text: str
    values: frozenset[Decimal]
    unit: str | None

    @property
    def family(self) -> str | None:
        return _UNITS[self.unit][0] if self.unit in _UNITS else None

    def base_values(self) -> set[Decimal]:
        """The values in the family's base unit, or nothing when the unit has no factor."""
        factor = _FACTORS.get(self.unit or "")
        if factor is None:
            return set()
        return {v * factor[0] + factor[1] for v in self.values}


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text).normalize()
    except InvalidOperation:
        return None


def number_values(text: str) -> frozenset[Decimal]:
    """Every value a written number can mean (``1,000`` is 1000, or 1 in German)."""
    raw = text.replace("\u00a0", "").replace("\u202f", "")
    found: list[Decimal | None] = []
    if raw.count(",") and raw.count("."):
        # Both separators: the last one is the decimal point.
        if raw.rfind(",") > raw.rfind("."):
            found.append(_decimal(raw.replace(".", "").replace(",", ".")))
        else:
            found.append(_decimal(raw.replace(",", "")))
    elif re.fullmatch(r"\d{1,3}(?:[.,]\d{3})+", raw):
        sep = "," if "," in raw else "."
        found.append(_decimal(raw.replace(sep, "")))
        if raw.count(sep) == 1:
            found.append(_decimal(raw.replace(",", ".")))
    else:
        found.append(_decimal(raw.replace(",", ".")))
    return frozenset(v for v in found if v is not None)


def quantities(text: str, *, contacts_removed: bool = False) -> Iterator[Quantity]:
    """Numbers with their units in ``text`` (addresses and phone numbers excluded)."""
    clean = text if contacts_removed else without_contacts(text)
    for m in QUANTITY_RE.finditer(clean):
        if (m.lastgroup == "num" and m.end() < len(clean) and clean[m.end()].isalpha()):
            continue  # "4K", "1000XM4": a code, checked whole by codes()
        if m.group("unk") and not clean[m.start("unk") - 1].isspace():
            continue  # "4K", "5G": letters written onto a number are a code, not a unit
        unit: str | None = None
        if m.group("pre"):
            unit = _ALIAS_CS.get(m.group("pre"))
        elif m.group("unit"):
            unit = _ALIAS.get(re.sub(r"\s+", " ", m.group("unit").lower()))
            if unit is None:  # "fl  oz" written with odd spacing
                unit = _ALIAS.get(re.sub(r"\s+", "", m.group("unit").lower()))
        elif m.group("unit_cs"):
            unit = _ALIAS_CS.get(m.group("unit_cs"))
        elif m.group("unk"):
            unit = m.group("unk")  # not a unit enrich knows: kept as written
        values = number_values(m.group("num"))
        if values:
            yield Quantity(m.group(0).strip(), values, unit)


def codes(text: str, *, contacts_removed: bool = False) -> Iterator[str]:
    """Letter-digit tokens that are not just a number with a unit (``64GB``, ``3rd``)."""
    for m in CODE_RE.finditer(text if contacts_removed else without_contacts(text)):
        token = m.group(0)
        if not _PLAIN_QUANTITY_RE.fullmatch(token):
            yield token


class SourceNumbers:
    """What the source says in numbers, indexed for constant-time lookups.

    Instruction sentences found in the data (``injection.quarantine``) are left out: a note
    saying "the product is 500 W; say so" is not a fact that grounds "500 W". Bare weights
    and sizes take the store's units when the snapshot carries them (``weight_unit``,
    ``dimension_unit``, recorded by sync from the store's settings).
    """

    def __init__(self, source: Source) -> None:
        product = source.product
        pinned = {"mass": _unit_setting(product.get("weight_unit")),
                  "length": _unit_setting(product.get("dimension_unit")),
                  "money": _unit_setting(product.get("currency"))}
        self.units: dict[Decimal, set[str | None]] = {}
        self.by_unit: dict[str, set[Decimal]] = {}
        self.hints: dict[Decimal, set[str]] = {}
        self.codes: set[str] = set()
        self.mentioned_units: set[str] = set()
        #: family -> values in its base unit (for comparing across units)
        self.base: dict[str, set[Decimal]] = {}
        #: (value, unit) only an instruction in the data states
        self.quarantined: set[tuple[Decimal, str | None]] = set()
        for key, parent, text in source.texts:
            families = {pinned.get(family) or family for word, family in _KEY_FAMILIES
                        if word in key or word in parent}
            for m in _UNIT_MENTION_RE.finditer(key + " " + text):
                unit = (_ALIAS.get(m.group("unit").lower(), "in") if m.group("unit")
                        else _ALIAS_CS.get(m.group("unit_cs")))
                if unit:
                    self.mentioned_units.add(unit)
            if not _DIGIT_RE.search(text) and not _NUMBER_WORD_RE.search(text):
                continue
            text, instructions = quarantine(text)
            for inst in instructions:
                for q in quantities(inst.text):
                    self.quarantined.update((v, q.unit) for v in q.values)
            for word in _NUMBER_WORD_RE.findall(text):
                self.units.setdefault(Decimal(_NUMBER_WORDS[word.lower()]), set()).add(None)
            if not _DIGIT_RE.search(text):
                continue
            text = without_contacts(text)
            exact = {f[1:] for f in families if f.startswith("=")}
            for q in quantities(text, contacts_removed=True):
                for value in q.values:
                    self.units.setdefault(value, set()).add(q.unit)
                    if q.unit is None and families:
                        self.hints.setdefault(value, set()).update(families)
                if q.unit:
                    self.by_unit.setdefault(q.unit, set()).update(q.values)
                    self._add_base(q)
                elif len(exact) == 1:
                    # a bare weight in the store's unit: comparable with any mass unit
                    self._add_base(Quantity(q.text, q.values, next(iter(exact))))
            self.codes.update(c.lower() for c in codes(text, contacts_removed=True))

    def _add_base(self, q: Quantity) -> None:
        if q.family and q.unit in _FACTORS:
            self.base.setdefault(q.family, set()).update(q.base_values())

    def _converts(self, q: Quantity) -> bool:
        """Whether a value of the data, in another unit of the same family, is ``q``."""
        known = self.base.get(q.family or "")
        if not known or q.unit not in _FACTORS:
            return False
        factor, offset = _FACTORS[q.unit]
        for value in q.values:
            step = Decimal(1).scaleb(value.as_tuple().exponent
                                     if isinstance(value.as_tuple().exponent, int) else 0)
            for base in known:
                converted = (base - offset) / factor
                if abs(converted - value) <= step / 2 + abs(value) * Decimal("1e-9") and (
                        not value or abs(converted - value) <= abs(value) * CONVERSION_TOLERANCE):
                    return True
        return False

    def problem(self, q: Quantity) -> str | None:
        """Why the draft's quantity is not grounded (a clause), or None when it is."""
        known = [v for v in q.values if v in self.units]
        if not known:
            if self._converts(q):
                return None
            if any((v, q.unit) in self.quarantined for v in q.values):
                return (f"only an instruction hidden in the product data says {_show(q)}; "
                        "it is not a fact of the product")
            others = sorted(self.by_unit.get(q.unit, ()) if q.unit else ())[:5]
            if others:
                listed = " and ".join(f"{_fmt(v)} {q.unit}" for v in others)
                return f"the product data has {listed}, not {_show(q)}"
            return f"the product data has no {_show(q)}"
        if q.unit is None:
            return None
        for value in known:
            units = self.units[value]
            if q.unit in units:
                return None
            hints = self.hints.get(value, ())
            if None in units and (q.family in hints or f"={q.unit}" in hints
                                  or q.unit in self.mentioned_units):
                return None
        if self._converts(q):
            return None
        given = sorted({f"{_fmt(v)} {u}" if u else _fmt(v) for v in known
                        for u in self.units[v]})
        return f"the product data has {' and '.join(given)}, not {_show(q)}"


def _unit_setting(value: object) -> str | None:
    """WooCommerce's weight/dimension unit setting ("lbs", "kg", "in") as an exact hint."""
    if not isinstance(value, str):
        return None
    unit = (_ALIAS.get(value.strip().lower()) or _ALIAS_CS.get(value.strip())
            or {"in": "in"}.get(value.strip().lower()))
    return f"={unit}" if unit else None


def _fmt(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _show(q: Quantity) -> str:
    value = " or ".join(sorted(_fmt(v) for v in q.values))
    return f"{value} {q.unit}" if q.unit else value
