"""Checks on an extracted invoice, each a named flag whose detail carries the numbers.

They run on every invoice draft, whichever path wrote it, and never change a value: a flag
tells the reviewer where to look (the sum that does not add up, the VAT id whose check digit
is wrong, the amount not found on the page). Libraries do the domain work: ``pycountry`` for
ISO 4217, ``python-stdnum`` for VAT ids, ``schwifty`` for IBANs.
"""

from __future__ import annotations

from decimal import Decimal

import pycountry
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError

from enrich.invoices.numbers import grounded_amount
from enrich.invoices.schema import Invoice

CHECKS = ("lines_sum", "tax_rate", "tax_sum", "total_sum", "dates", "currency", "vat_id",
          "iban", "grounding", "vision")


def _tolerance(currency: str | None, terms: int = 1) -> Decimal:
    """Rounding allowed: half a minor unit per rounded term (JPY has none, EUR two digits)."""
    digits = 2
    if currency == "JPY" or currency == "KRW":
        digits = 0
    unit = Decimal(1).scaleb(-digits)
    return unit * terms / 2 if terms > 1 else unit


def _flag(name: str, detail: str) -> dict[str, str]:
    return {"guard": f"invoice_{name}", "detail": detail}


def vision_flag(pages: int) -> dict[str, str]:
    """Why a draft read from page images is never clean: no text to ground it in."""
    return _flag("vision", f"read by the model from {pages} page image(s) of a scan with no "
                           "text layer: no amount could be checked against the document's "
                           "text")


def check_invoice(invoice: Invoice, text: str | None) -> list[dict[str, str]]:
    """The flags of ``invoice`` read from a document whose text is ``text`` (None: no text)."""
    flags: list[dict[str, str]] = []
    cur = invoice.currency
    totals = [ln.line_total for ln in invoice.lines]
    if invoice.lines and invoice.subtotal is not None and all(t is not None for t in totals):
        lines = sum(totals, Decimal(0))  # type: ignore[arg-type]
        charges = invoice.charge_total or Decimal(0)
        allowances = abs(invoice.allowance_total or Decimal(0))
        # A correction invoice (negative lines) carries its charges and allowances unsigned.
        got = lines + (charges - allowances) * (-1 if lines < 0 else 1)
        if abs(got - invoice.subtotal) > _tolerance(cur, len(totals)):
            flags.append(_flag("lines_sum", f"the {len(totals)} line totals sum to {lines}"
                               f" (+ charges {charges} − allowances {allowances} = {got}), "
                               f"the subtotal is {invoice.subtotal} (difference "
                               f"{invoice.subtotal - got}: a missed line or charge?)"))
    for tax in invoice.tax_breakdown:
        if None in (tax.rate, tax.base, tax.amount):
            continue
        want = (tax.base * tax.rate / 100).quantize(Decimal("0.01"))  # type: ignore[operator]
        if abs(want - tax.amount) > _tolerance(cur):  # type: ignore[operator]
            flags.append(_flag("tax_rate", f"{tax.rate} % of {tax.base} is {want}, the "
                               f"invoice says {tax.amount}"))
    amounts = [t.amount for t in invoice.tax_breakdown]
    if invoice.tax_total is not None and amounts and all(a is not None for a in amounts):
        got = sum(amounts, Decimal(0))  # type: ignore[arg-type]
        if abs(got - invoice.tax_total) > _tolerance(cur, len(amounts)):
            flags.append(_flag("tax_sum", f"the per-rate VAT sums to {got}, the VAT total is "
                               f"{invoice.tax_total}"))
    if None not in (invoice.subtotal, invoice.tax_total, invoice.total):
        got = invoice.subtotal + invoice.tax_total  # type: ignore[operator]
        if abs(got - invoice.total) > _tolerance(cur, 2):  # type: ignore[operator]
            flags.append(_flag("total_sum", f"subtotal {invoice.subtotal} + VAT "
                               f"{invoice.tax_total} = {got}, the total is {invoice.total}"))
    if invoice.issue_date is None:
        flags.append(_flag("dates", "no issue date was found"))
    elif invoice.due_date is not None and invoice.due_date < invoice.issue_date:
        flags.append(_flag("dates", f"due date {invoice.due_date} is before the issue date "
                           f"{invoice.issue_date}"))
    if cur is None:
        flags.append(_flag("currency", "no currency was found"))
    elif pycountry.currencies.get(alpha_3=cur.upper()) is None:
        flags.append(_flag("currency", f"{cur!r} is not an ISO 4217 currency code"))
    for who, vat_id in (("supplier", invoice.supplier.vat_id), ("buyer", invoice.buyer.vat_id)):
        if not vat_id:
            continue
        try:
            eu_vat.validate(vat_id)
        except ValidationError as exc:
            flags.append(_flag("vat_id", f"{who} VAT id {vat_id} is not valid for its "
                               f"country ({exc})"))
    if invoice.supplier.iban:
        try:
            IBAN(invoice.supplier.iban)
        except SchwiftyException as exc:
            flags.append(_flag("iban", f"IBAN {invoice.supplier.iban} is not valid ({exc})"))
    if text is not None:
        flags.extend(_grounding(invoice, text))
    return flags


def _grounding(invoice: Invoice, text: str) -> list[dict[str, str]]:
    """Every amount and the invoice number must be printed in the document's text."""
    missing: list[str] = []
    named = [("subtotal", invoice.subtotal), ("tax_total", invoice.tax_total),
             ("total", invoice.total)]
    named += [(f"tax {t.rate} % amount", t.amount) for t in invoice.tax_breakdown]
    named += [(f"line {i} total", ln.line_total) for i, ln in enumerate(invoice.lines, 1)]
    for name, value in named:
        if value is not None and value != 0 and not grounded_amount(value, text):
            missing.append(f"{name} {value}")
    number = invoice.invoice_number
    if number and "".join(number.split()) not in "".join(text.split()):
        missing.append(f"invoice number {number!r}")
    if not missing:
        return []
    return [_flag("grounding", "not found in the document's text: " + "; ".join(missing))]
