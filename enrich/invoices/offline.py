"""The offline invoice extractor: labels, patterns and arithmetic, no model.

It is the baseline a model must beat and the path that works with no API key. Every value
it returns is read from the document's text; where it finds nothing it leaves the field
empty. What it knows:

- labels in English, German and French next to the value they name ("Rechnungsnummer",
  "Invoice no.", "Facture n°", "Bruttosumme", "Total TTC", ...), the value taken from the
  same line or the next;
- dates, amounts and currencies in the usual printed forms (``numbers.py``);
- VAT ids and IBANs by pattern, kept only when ``python-stdnum`` / ``schwifty`` accept them;
- line items and the VAT breakdown by arithmetic: a text line whose numbers hold
  quantity × unit price = line total is an item; a line with a percentage, a base and an
  amount where base × rate = amount is a VAT row. Rows that do not add up are not guessed.
"""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from typing import Any

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException
from stdnum.eu import vat as eu_vat

from enrich.invoices.numbers import AMOUNT_RE, amounts_in, dates_in, parse_amount
from enrich.invoices.schema import Invoice, InvoiceLine, Party, Supplier, TaxLine

_NUMBER_LABEL = re.compile(
    r"(?:rechnungs?\s*-?\s*(?:nummer|nr\.?|no\.?)|handelsrechnung\s+nr\.?|rechnung\s+nr\.?"
    r"|gutschrift\s+nr\.?|korrektur\s*rechnung\s+nr\.?|rechnungskorrektur\s+nr\.?"
    r"|invoice\s*(?:number|no\.?|num\.?|#|id)|invoice\s*:|facture\s*(?:n[°o]\.?|num[ée]ro)"
    r"|num[ée]ro\s+de\s+facture|avoir\s*n[°o]|bill\s*(?:no|number)|order\s*#|invoice)"
    r"\s*[:#]?\s*", re.I)
_NUMBER_TOKEN = re.compile(r"#?\s?[A-Z0-9][A-Z0-9/_\-.]*\d[A-Z0-9/_\-.]*", re.I)
_DATE_LABELS = re.compile(r"rechnungsdatum|datum|invoice\s*date|date\s*de\s*facture"
                          r"|date\s*d'?\s*[ée]mission|date|vom|du\b", re.I)
_DUE_LABELS = re.compile(r"f[äa]llig|zahlbar\s+(?:bis|innerhalb)|due|[ée]ch[ée]ance"
                         r"|payable\s+(?:by|avant|le)|netto\s+bis", re.I)
_TOTAL_LABELS = [re.compile(p, re.I) for p in (
    r"brutto\s*summe|rechnungsbetrag|gesamtbetrag(?!\s+der)|zahlbetrag|endbetrag"
    r"|total\s*ttc|montant\s*ttc|net\s*[àa]\s*payer|grand\s*total|total\s*due|amount\s*due"
    r"|total\s*(?:amount|incl)|totaal|te\s+betalen",
    r"\btotal\b(?!\s*(?:ht|hors|net|excl|tva|vat|tax))",
)]
_SUBTOTAL_LABELS = re.compile(
    r"ohne\s+ust|netto\s*(?:betrag|summe)|summe\s+netto|gesamt\s+netto|nettobetrag"
    r"|total\s*ht|total\s+hors\s+taxe|montant\s+ht|sub\s*-?total|untaxed|net\s*total"
    r"|total\s+excl|excl\.?\s+(?:vat|btw)|subtotaal", re.I)
_TAX_LABELS = re.compile(r"steuerbetrag|umsatzsteuer\s*(?:betrag|gesamt)|ust\.?\s*betrag"
                         r"|mwst\.?\s*(?:betrag|gesamt)?|total\s+tva|montant\s+tva|\btva\b"
                         r"|\bvat\b|\btax(?:es)?\b|\bbtw\b", re.I)
_SUPPLIER_LABELS = re.compile(r"^(?:verk[äa]ufer|lieferant|seller|supplier|vendeur|fournisseur"
                              r"|rechnungssteller|from)\b\s*:?", re.I)
_BUYER_LABELS = re.compile(r"^(?:k[äa]ufer|kunde|rechnungsempf[äa]nger|leistungsempf[äa]nger"
                           r"|bill\s*to|billed\s*to|buyer|customer|client|acheteur"
                           r"|factur[ée]\s+[àa]|to)\b[^:]*:?", re.I)
_COMPANY = re.compile(r"\b(?:gmbh|ag|kg|se|sas|sarl|sa|s\.a\.|b\.v\.|bv|n\.v\.|ltd|llc|inc"
                      r"|plc|ug|e\.k\.|oy|ab|spa|srl)\b\.?", re.I)
_VAT_RE = re.compile(r"\b(AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL"
                     r"|PT|RO|SE|SI|SK|GB|XI)\s?([0-9A-Z][0-9A-Z .]{7,13}[0-9A-Z])\b")
_IBAN_RE = re.compile(r"\b([A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,4})?)\b")
_CURRENCY_SIGNS = {"€": "EUR", "$": "USD", "£": "GBP", "₹": "INR", "zł": "PLN", "Rs.": "INR",
                   "CHF": "CHF"}
_CURRENCY_CODES = re.compile(r"\b(EUR|USD|GBP|CHF|INR|PLN|SEK|NOK|DKK|CZK|JPY|CAD|AUD)\b")
_PERCENT = re.compile(r"(\d{1,2}(?:[.,]\d{1,2})?)\s?%")
_CREDIT = re.compile(r"\b(?:gutschrift|credit\s*note|avoir|creditnota)\b", re.I)
_TERMS = re.compile(r"(?:zahlungsbedingungen|zahlbar|payment\s*terms|terms|conditions\s+de"
                    r"\s+paiement|payable|paiement)\b.*", re.I)
_CENT = Decimal("0.01")


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.replace("\f", "\n").splitlines()
            if line.strip()]


def _last_amount(line: str) -> Decimal | None:
    """The last amount on a label's line (the value column comes after the label)."""
    values = [m.group(0) for m in AMOUNT_RE.finditer(_PERCENT.sub(" ", line))]
    for raw in reversed(values):
        value = parse_amount(raw)
        if value is not None:
            return value
    return None


def _labelled_amount(lines: list[str], label: re.Pattern[str]) -> Decimal | None:
    """The amount after the last line carrying ``label`` (a summary block is at the end)."""
    for i in range(len(lines) - 1, -1, -1):
        if label.search(lines[i]):
            rest = label.split(lines[i], maxsplit=1)[-1]
            value = _last_amount(rest)
            if value is None and i + 1 < len(lines) and not re.search(r"[A-Za-z]{3}",
                                                                      lines[i + 1]):
                value = _last_amount(lines[i + 1])
            if value is not None:
                return value
    return None


def _invoice_number(lines: list[str]) -> str | None:
    for line in lines:
        for m in _NUMBER_LABEL.finditer(line):
            rest = line[m.end():]
            token = _NUMBER_TOKEN.match(rest)
            if token and not dates_in(token.group(0)):
                return token.group(0).strip().rstrip(".")
    return None


def _dates(lines: list[str]) -> tuple[Any, Any]:
    issue = due = None
    for i, line in enumerate(lines):
        found = dates_in(line)
        if not found and i + 1 < len(lines) and (_DATE_LABELS.search(line)
                                                  or _DUE_LABELS.search(line)):
            found = dates_in(lines[i + 1])
        if not found:
            continue
        if due is None and _DUE_LABELS.search(line):
            due = found[-1]
        elif issue is None and _DATE_LABELS.search(line):
            issue = found[0]
    if issue is None:
        every = [d for line in lines for d in dates_in(line)]
        issue = every[0] if every else None
    if due is not None and issue is not None and due < issue:
        due = None
    return issue, due


def _currency(text: str) -> str | None:
    codes = Counter(_CURRENCY_CODES.findall(text))
    for sign, code in _CURRENCY_SIGNS.items():
        if sign in text:
            codes[code] += text.count(sign)
    return codes.most_common(1)[0][0] if codes else None


def _vat_ids(text: str) -> list[str]:
    out: list[str] = []
    for m in _VAT_RE.finditer(text):
        candidate = m.group(1) + re.sub(r"[ .]", "", m.group(2))
        if (eu_vat.is_valid(candidate) or re.search(r"ust|vat|tva|btw|mwst|tax",
                                                   text[max(0, m.start() - 40):m.start()],
                                                   re.I)) and candidate not in out:
            out.append(candidate)
    return out


def _iban(text: str) -> str | None:
    fallback = None
    for m in _IBAN_RE.finditer(text):
        candidate = re.sub(r"\s", "", m.group(1))
        try:
            IBAN(candidate)
            return candidate
        except SchwiftyException:
            if fallback is None and re.search(r"iban", text[max(0, m.start() - 20):m.start()],
                                              re.I):
                fallback = candidate
    return fallback


def _party_after(lines: list[str], label: re.Pattern[str]) -> str | None:
    for i, line in enumerate(lines):
        m = label.match(line)
        if not m:
            continue
        rest = line[m.end():].strip()
        candidates = ([rest] if rest else []) + lines[i + 1:i + 5]
        for cand in candidates:
            if ":" in cand or not re.search(r"[A-Za-zÄÖÜäöü]{2}", cand):
                continue
            return cand
    return None


def _supplier_name(lines: list[str]) -> str | None:
    named = _party_after(lines, _SUPPLIER_LABELS)
    if named:
        return named
    for line in lines[:15]:
        if _COMPANY.search(line) and len(line) < 80:
            return line
    return lines[0] if lines else None


def _tax_rows(lines: list[str]) -> list[TaxLine]:
    """VAT rows: a percentage and two amounts on a line where base × rate = amount."""
    rows: dict[Decimal, TaxLine] = {}
    for line in lines:
        pct = _PERCENT.search(line)
        bare = re.findall(r"(?<![\d.,])(\d{1,2}(?:[.,]\d{1,2})?)(?![\d.,])", line)
        rates = [parse_amount(pct.group(1))] if pct else []
        rates += [parse_amount(b) for b in bare]
        values = amounts_in(_PERCENT.sub(" ", line))
        for rate in rates:
            if rate is None or not (0 < rate <= 30):
                continue
            for b in values:
                for a in values:
                    if a is b or b == 0 or abs(a) >= abs(b):
                        continue
                    if abs((b * rate / 100).quantize(_CENT) - a) <= _CENT:
                        rows.setdefault(rate, TaxLine(rate=rate, base=b, amount=a))
                        break
                else:
                    continue
                break
    return list(rows.values())


def _item_lines(lines: list[str]) -> list[InvoiceLine]:
    """Items: a line whose numbers hold quantity × unit price = line total."""
    items: list[InvoiceLine] = []
    for line in lines:
        if _TOTAL_LABELS[0].search(line) or _SUBTOTAL_LABELS.search(line):
            continue
        values = amounts_in(_PERCENT.sub(" ", line))
        if len(values) < 3:
            continue
        found = None
        for ti in range(len(values) - 1, 1, -1):
            total = values[ti]
            for pi in range(ti):
                for qi in range(ti):
                    if qi == pi or total == 0:
                        continue
                    q, p = values[qi], values[pi]
                    if q <= 0 or q > 100000 or q == total:
                        continue
                    if abs((q * p).quantize(_CENT) - total) <= _CENT * max(1, abs(q) / 10):
                        found = (q, p, total)
                        break
                if found:
                    break
            if found:
                break
        if not found:
            continue
        first = AMOUNT_RE.search(line)
        desc = line[:first.start()].strip(" -:") if first else ""
        desc = re.sub(r"^\d+\s+", "", desc) or None
        pct = _PERCENT.search(line)
        unit = re.search(r"\b(Stk|Stück|pcs?|pce|pièces?|St\.|h|Std|kg|m|l|x|unit[ée]?s?)\b",
                         line, re.I)
        items.append(InvoiceLine(description=desc, quantity=found[0], unit_price=found[1],
                                 line_total=found[2],
                                 vat_rate=parse_amount(pct.group(1)) if pct else None,
                                 unit=unit.group(1) if unit else None))
    return items


def extract(source: dict[str, Any]) -> Invoice:
    """An ``Invoice`` from a document payload (``text``; ``tables`` are a hint)."""
    text = str(source.get("text") or "")
    lines = _lines(text)
    issue, due = _dates(lines)
    total = next((v for lab in _TOTAL_LABELS if (v := _labelled_amount(lines, lab))
                  is not None), None)
    subtotal = _labelled_amount(lines, _SUBTOTAL_LABELS)
    breakdown = _tax_rows(lines)
    tax = _labelled_amount([ln for ln in lines if not _SUBTOTAL_LABELS.search(ln)], _TAX_LABELS)
    if breakdown and (tax is None or tax != sum((t.amount for t in breakdown
                                                  if t.amount is not None), Decimal(0))):
        summed = sum((t.amount for t in breakdown if t.amount is not None), Decimal(0))
        if total is not None and subtotal is not None and subtotal + summed == total:
            tax = summed
    if subtotal is None and total is not None and tax is not None:
        subtotal = total - tax
    if tax is None and total is not None and subtotal is not None and total >= subtotal:
        tax = total - subtotal
    vat_ids = _vat_ids(text)
    head = "\n".join(lines[:3])
    return Invoice(
        document_type="credit_note" if _CREDIT.search(head) else "invoice",
        invoice_number=_invoice_number(lines),
        issue_date=issue,
        due_date=due,
        currency=_currency(text),
        supplier=Supplier(name=_supplier_name(lines), vat_id=vat_ids[0] if vat_ids else None,
                          iban=_iban(text)),
        buyer=Party(name=_party_after(lines, _BUYER_LABELS),
                    vat_id=vat_ids[1] if len(vat_ids) > 1 else None),
        lines=_item_lines(lines),
        subtotal=subtotal,
        tax_total=tax,
        tax_breakdown=breakdown,
        total=total,
        payment_terms=next((m.group(0)[:200] for ln in lines if (m := _TERMS.search(ln))),
                           None),
    )
