"""Amounts and dates as invoices print them: 1.234,56, 1,234.56, 1 234,56, 05.03.2018.

One parser for every reader (the offline extractor, the grounding check, the evaluation), so
"1.234" means the same thing everywhere: with a single separator followed by exactly three
digits it is a thousands group (a price of one euro and 234 thousandths is rarer on an
invoice than 1,234 euros).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

#: An amount as printed: optional sign, digits with . , space or ' groups, optional decimals.
AMOUNT_RE = re.compile(
    r"(?<![\w.,])[-−]?\s?\d{1,3}(?:[ .,'\u00a0\u202f]\d{3})*(?:[.,]\d{1,4})?(?![\w]|[.,]\d)"
    r"|(?<![\w.,])[-−]?\d+(?:[.,]\d{1,4})?(?![\w]|[.,]\d)")

_MONTHS = {
    # EN, DE, FR month names (and common abbreviations) to their number.
    **{m: i for i, m in enumerate(["january", "february", "march", "april", "may", "june",
                                    "july", "august", "september", "october", "november",
                                    "december"], 1)},
    **{m: i for i, m in enumerate(["januar", "februar", "märz", "april", "mai", "juni", "juli",
                                    "august", "september", "oktober", "november", "dezember"],
                                   1)},
    **{m: i for i, m in enumerate(["janvier", "février", "mars", "avril", "mai", "juin",
                                    "juillet", "août", "septembre", "octobre", "novembre",
                                    "décembre"], 1)},
    **{m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                    "sep", "oct", "nov", "dec"], 1)},
}
DATE_RE = re.compile(
    r"(?P<iso>\b\d{4}-\d{2}-\d{2}\b)"
    r"|(?P<dmy>\b\d{1,2}[./-]\d{1,2}[./-]\d{2,4}\b)"
    r"|(?P<named>\b\d{1,2}\.?\s+(?P<mon>[A-Za-zäéû]{3,9})\.?,?\s+\d{4}\b)"
    r"|(?P<us>\b(?P<mon2>[A-Za-z]{3,9})\.?\s+\d{1,2},?\s+\d{4}\b)")


def parse_amount(text: str) -> Decimal | None:
    """``"1.234,56"`` → ``Decimal("1234.56")``; None for anything that is not one amount."""
    raw = text.strip().replace("\u2212", "-").replace("−", "-")
    raw = re.sub(r"[\s\u00a0\u202f']", "", raw)
    raw = re.sub(r"^[^\d-]+|[^\d]+$", "", raw)  # currency signs and codes around it
    if not raw or not re.fullmatch(r"-?[\d.,]+", raw):
        return None
    sign = "-" if raw.startswith("-") else ""
    raw = raw.lstrip("-")
    last_dot, last_comma = raw.rfind("."), raw.rfind(",")
    if last_dot >= 0 and last_comma >= 0:  # both: the last one is the decimal mark
        dec_mark = "." if last_dot > last_comma else ","
    elif last_dot >= 0 or last_comma >= 0:
        mark = "." if last_dot >= 0 else ","
        tail = raw.rsplit(mark, 1)[1]
        dec_mark = mark if (raw.count(mark) == 1 and len(tail) != 3) else ""
    else:
        dec_mark = ""
    group = {".", ","} - {dec_mark}
    for g in group:
        raw = raw.replace(g, "")
    if dec_mark:
        raw = raw.replace(dec_mark, ".")
    try:
        return Decimal(sign + raw)
    except InvalidOperation:
        return None


def amounts_in(text: str) -> list[Decimal]:
    """Every amount printed in ``text``, in order."""
    out = []
    for m in AMOUNT_RE.finditer(text):
        value = parse_amount(m.group(0))
        if value is not None:
            out.append(value)
    return out


def spellings(value: Decimal) -> set[str]:
    """How ``value`` may be printed: 1234.56, 1234,56, 1.234,56, 1,234.56, 1 234,56."""
    q = abs(value).quantize(Decimal("0.01"))
    whole, frac = f"{q:f}".split(".")
    grouped = f"{int(whole):,}"
    forms = {f"{whole}.{frac}", f"{whole},{frac}", f"{grouped}.{frac}",
             f"{grouped.replace(',', '.')},{frac}", f"{grouped.replace(',', ' ')},{frac}",
             f"{grouped.replace(',', chr(0xa0))},{frac}"}
    if frac == "00":
        forms |= {whole, grouped, grouped.replace(",", ".")}
    if frac.endswith("0"):
        forms |= {f"{whole}.{frac[0]}", f"{whole},{frac[0]}"}
    return forms


def grounded_amount(value: Decimal, text: str) -> bool:
    """Does ``text`` print ``value`` (its absolute value, in any of the usual spellings)?"""
    numbers = {abs(v) for v in amounts_in(text)}
    if abs(value) in numbers:
        return True
    return any(s in text for s in spellings(value) if len(s) >= 4)


def parse_date(text: str) -> dt.date | None:
    """A date as invoices print it (ISO, d.m.y, d/m/y, "5 March 2018", "March 5, 2018")."""
    m = DATE_RE.search(text)
    if m is None:
        return None
    try:
        if m.group("iso"):
            return dt.date.fromisoformat(m.group("iso"))
        if m.group("dmy"):
            d, mo, y = re.split(r"[./-]", m.group("dmy"))
            year = int(y) + (2000 if len(y) == 2 else 0)
            return dt.date(year, int(mo), int(d))
        if m.group("named"):
            month = _MONTHS.get(m.group("mon").lower().rstrip("."))
            d = re.match(r"\d+", m.group("named"))
            y = re.search(r"\d{4}", m.group("named"))
            if month and d and y:
                return dt.date(int(y.group(0)), month, int(d.group(0)))
        if m.group("us"):
            month = _MONTHS.get(m.group("mon2").lower())
            nums = re.findall(r"\d+", m.group("us"))
            if month and len(nums) == 2:
                return dt.date(int(nums[1]), month, int(nums[0]))
    except ValueError:
        return None
    return None


def dates_in(text: str) -> list[dt.date]:
    out = []
    for m in DATE_RE.finditer(text):
        day = parse_date(m.group(0))
        if day is not None:
            out.append(day)
    return out
