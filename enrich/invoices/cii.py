"""CII XML (Factur-X / ZUGFeRD 2.x / XRechnung CII, and ZUGFeRD 1.0) to ``Invoice`` and back.

Why by local name: ZUGFeRD 1.0 and CII D16B put the same ideas under different namespaces
and a few different element names; matching local names reads both with one set of paths,
and the fixtures' ground truth (the same XML) goes through the same code.

The writer produces EN 16931 CII that the ``factur-x`` library's XSD accepts: a paper
invoice the extractor read becomes an e-invoice. Fields the invoice lacks are left out
where the XSD allows it; the mandatory ones get the value the invoice has or a neutral one
that says so (a seller without a name is "unknown", which a reviewer sees).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from enrich.errors import InputError
from enrich.invoices.schema import CREDIT_NOTE_CODES, Invoice, InvoiceLine, Party, Supplier, TaxLine

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
EN16931 = "urn:cen.eu:en16931:2017"


def _q(path: str) -> str:
    """``A/B`` as an XPath over local names: ``*[local-name()='A']/*[local-name()='B']``."""
    parts = []
    for step in path.split("/"):
        if step in ("", ".", ".."):
            parts.append(step)
            continue
        name, _, pred = step.partition("[")
        parts.append(f"*[local-name()='{name}']" + (f"[{pred}" if pred else ""))
    return "/".join(parts)


def _first(node: Any, *paths: str) -> Any:
    for path in paths:
        found = node.xpath(".//" + _q(path))
        if found:
            return found[0]
    return None


def _text(node: Any, *paths: str) -> str | None:
    el = _first(node, *paths)
    if el is None or el.text is None:
        return None
    text = " ".join(el.text.split())
    return text or None


def _dec(node: Any, *paths: str) -> Decimal | None:
    text = _text(node, *paths)
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _date(node: Any, *paths: str) -> dt.date | None:
    text = _text(node, *paths)
    if text is None:
        return None
    digits = text.replace("-", "")
    try:
        return dt.datetime.strptime(digits[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _child(node: Any, name: str) -> Any:
    found = node.xpath(_q(name))
    return found[0] if found else None


def _vat_id(party: Any) -> str | None:
    if party is None:
        return None
    for reg in party.xpath(_q("SpecifiedTaxRegistration/ID")):
        if reg.get("schemeID") == "VA" and reg.text:
            return "".join(reg.text.split())
    return None


def _address(party: Any) -> str | None:
    if party is None:
        return None
    addr = _child(party, "PostalTradeAddress")
    if addr is None:
        return None
    bits = [_text(addr, name) for name in ("LineOne", "LineTwo", "PostcodeCode", "CityName",
                                           "CountryID")]
    joined = ", ".join(b for b in bits if b)
    return joined or None


def parse_cii(xml: bytes) -> Invoice:
    """A CII invoice (any Factur-X/ZUGFeRD profile, or ZUGFeRD 1.0) as an ``Invoice``."""
    try:
        root = etree.fromstring(xml, parser=etree.XMLParser(resolve_entities=False,
                                                            no_network=True))
    except etree.XMLSyntaxError as exc:
        raise InputError(f"embedded invoice XML does not parse: {exc}",
                              "Read the PDF's text instead (set [invoices] "
                              "use_embedded_xml = false).") from None
    local = etree.QName(root).localname
    if local not in ("CrossIndustryInvoice", "CrossIndustryDocument"):
        raise InputError(f"embedded XML is {local}, not a CII invoice",
                              "Only CII (Factur-X/ZUGFeRD/XRechnung CII) is read directly; "
                              "the PDF's text is used instead.")
    doc = _first(root, "ExchangedDocument", "HeaderExchangedDocument")
    seller = _first(root, "SellerTradeParty")
    buyer = _first(root, "BuyerTradeParty")
    settlement = _first(root, "ApplicableHeaderTradeSettlement",
                        "ApplicableSupplyChainTradeSettlement")
    summary = _first(root, "SpecifiedTradeSettlementHeaderMonetarySummation",
                     "SpecifiedTradeSettlementMonetarySummation")
    type_code = _text(doc, "TypeCode") if doc is not None else None
    taxes = []
    if settlement is not None:
        for tax in settlement.xpath(_q("ApplicableTradeTax")):
            taxes.append(TaxLine(rate=_dec(tax, "RateApplicablePercent", "ApplicablePercent"),
                                 base=_dec(tax, "BasisAmount"),
                                 amount=_dec(tax, "CalculatedAmount")))
    lines = []
    for item in root.xpath(".//" + _q("IncludedSupplyChainTradeLineItem")):
        qty_el = _first(item, "BilledQuantity")
        lines.append(InvoiceLine(
            description=_text(item, "SpecifiedTradeProduct/Name"),
            quantity=_dec(item, "BilledQuantity"),
            unit=qty_el.get("unitCode") if qty_el is not None else None,
            unit_price=_dec(item, "NetPriceProductTradePrice/ChargeAmount"),
            vat_rate=_dec(item, "RateApplicablePercent", "ApplicablePercent"),
            line_total=_dec(item, "SpecifiedTradeSettlementLineMonetarySummation/"
                                  "LineTotalAmount"),
        ))
    iban = _text(settlement, "PayeePartyCreditorFinancialAccount/IBANID") \
        if settlement is not None else None
    terms = _text(settlement, "SpecifiedTradePaymentTerms/Description") \
        if settlement is not None else None
    return Invoice(
        document_type="credit_note" if type_code in CREDIT_NOTE_CODES else "invoice",
        invoice_number=_text(doc, "ID") if doc is not None else None,
        issue_date=_date(doc, "IssueDateTime/DateTimeString") if doc is not None else None,
        due_date=_date(root, "SpecifiedTradePaymentTerms/DueDateDateTime/DateTimeString"),
        currency=_text(root, "InvoiceCurrencyCode"),
        supplier=Supplier(name=_text(seller, "Name") if seller is not None else None,
                          vat_id=_vat_id(seller), address=_address(seller),
                          iban="".join(iban.split()) if iban else None),
        buyer=Party(name=_text(buyer, "Name") if buyer is not None else None,
                    vat_id=_vat_id(buyer)),
        lines=lines,
        charge_total=_dec(summary, "ChargeTotalAmount") if summary is not None else None,
        allowance_total=_dec(summary, "AllowanceTotalAmount") if summary is not None else None,
        subtotal=_dec(summary, "TaxBasisTotalAmount") if summary is not None else None,
        tax_total=_dec(summary, "TaxTotalAmount") if summary is not None else None,
        tax_breakdown=taxes,
        total=_dec(summary, "GrandTotalAmount") if summary is not None else None,
        payment_terms=terms,
    )


# -- writing ------------------------------------------------------------------------------


def _el(parent: Any, ns: str, name: str, text: str | None = None, **attrs: str) -> Any:
    el = etree.SubElement(parent, f"{{{ns}}}{name}", **attrs)
    if text is not None:
        el.text = text
    return el


def _amount(value: Decimal | None) -> str:
    return f"{(value or Decimal(0)).quantize(Decimal('0.01'))}"


def _date102(parent: Any, ns_wrap: str, name: str, day: dt.date) -> None:
    wrap = _el(parent, ns_wrap, name)
    _el(wrap, UDT, "DateTimeString", day.strftime("%Y%m%d"), format="102")


def _party(parent: Any, name: str, party: Party) -> None:
    el = _el(parent, RAM, name)
    _el(el, RAM, "Name", party.name or "unknown")
    if isinstance(party, Supplier) or party.vat_id:
        addr = _el(el, RAM, "PostalTradeAddress")
        country = (party.vat_id or "")[:2].upper()
        _el(addr, RAM, "CountryID", country if country.isalpha() and len(country) == 2 else "DE")
    if party.vat_id:
        _el(_el(el, RAM, "SpecifiedTaxRegistration"), RAM, "ID", party.vat_id, schemeID="VA")


def to_cii(invoice: Invoice) -> bytes:
    """The invoice as EN 16931 CII XML (Factur-X 1.0 / ZUGFeRD 2.x, profile EN16931)."""
    nsmap = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=nsmap)
    ctx = _el(root, RSM, "ExchangedDocumentContext")
    _el(_el(ctx, RAM, "GuidelineSpecifiedDocumentContextParameter"), RAM, "ID", EN16931)
    doc = _el(root, RSM, "ExchangedDocument")
    _el(doc, RAM, "ID", invoice.invoice_number or "unknown")
    _el(doc, RAM, "TypeCode", "381" if invoice.document_type == "credit_note" else "380")
    _date102(doc, RAM, "IssueDateTime", invoice.issue_date or dt.date.today())
    trade = _el(root, RSM, "SupplyChainTradeTransaction")
    rates = {t.rate for t in invoice.tax_breakdown if t.rate is not None}
    default_rate = next(iter(rates)) if len(rates) == 1 else None
    # EN 16931 needs at least one line: an invoice read without its table gets one line
    # carrying the net total, named so a reader knows the detail is on the original.
    lines = invoice.lines or [InvoiceLine(
        description="Invoice total (line items not extracted; see the original)",
        quantity=Decimal(1), unit_price=invoice.subtotal, line_total=invoice.subtotal,
        vat_rate=default_rate)]
    for no, line in enumerate(lines, start=1):
        item = _el(trade, RAM, "IncludedSupplyChainTradeLineItem")
        _el(_el(item, RAM, "AssociatedDocumentLineDocument"), RAM, "LineID", str(no))
        _el(_el(item, RAM, "SpecifiedTradeProduct"), RAM, "Name", line.description or "item")
        agreement = _el(item, RAM, "SpecifiedLineTradeAgreement")
        price = _el(agreement, RAM, "NetPriceProductTradePrice")
        _el(price, RAM, "ChargeAmount", str(line.unit_price if line.unit_price is not None
                                           else line.line_total or 0))
        delivery = _el(item, RAM, "SpecifiedLineTradeDelivery")
        _el(delivery, RAM, "BilledQuantity", str(line.quantity or 1),
            unitCode=line.unit if line.unit and len(line.unit) <= 3 and line.unit.isupper()
            else "C62")
        lsettle = _el(item, RAM, "SpecifiedLineTradeSettlement")
        ltax = _el(lsettle, RAM, "ApplicableTradeTax")
        _el(ltax, RAM, "TypeCode", "VAT")
        rate = line.vat_rate if line.vat_rate is not None else default_rate
        _el(ltax, RAM, "CategoryCode", "S" if rate else "Z")
        _el(ltax, RAM, "RateApplicablePercent", str(rate or 0))
        lsum = _el(lsettle, RAM, "SpecifiedTradeSettlementLineMonetarySummation")
        _el(lsum, RAM, "LineTotalAmount", _amount(line.line_total))
    agreement = _el(trade, RAM, "ApplicableHeaderTradeAgreement")
    _party(agreement, "SellerTradeParty", invoice.supplier)
    _party(agreement, "BuyerTradeParty", invoice.buyer)
    _el(trade, RAM, "ApplicableHeaderTradeDelivery")
    settle = _el(trade, RAM, "ApplicableHeaderTradeSettlement")
    currency = invoice.currency or "EUR"
    _el(settle, RAM, "InvoiceCurrencyCode", currency)
    if invoice.supplier.iban:
        means = _el(settle, RAM, "SpecifiedTradeSettlementPaymentMeans")
        _el(means, RAM, "TypeCode", "58")
        _el(_el(means, RAM, "PayeePartyCreditorFinancialAccount"), RAM, "IBANID",
            invoice.supplier.iban)
    breakdown = invoice.tax_breakdown or [TaxLine(rate=default_rate, base=invoice.subtotal,
                                                  amount=invoice.tax_total)]
    for tax in breakdown:
        el = _el(settle, RAM, "ApplicableTradeTax")
        _el(el, RAM, "CalculatedAmount", _amount(tax.amount))
        _el(el, RAM, "TypeCode", "VAT")
        _el(el, RAM, "BasisAmount", _amount(tax.base))
        _el(el, RAM, "CategoryCode", "S" if tax.rate else "Z")
        _el(el, RAM, "RateApplicablePercent", str(tax.rate or 0))
    if invoice.payment_terms or invoice.due_date:
        terms = _el(settle, RAM, "SpecifiedTradePaymentTerms")
        if invoice.payment_terms:
            _el(terms, RAM, "Description", invoice.payment_terms)
        if invoice.due_date:
            _date102(terms, RAM, "DueDateDateTime", invoice.due_date)
    summ = _el(settle, RAM, "SpecifiedTradeSettlementHeaderMonetarySummation")
    line_sum = sum((ln.line_total or Decimal(0) for ln in lines), Decimal(0))
    _el(summ, RAM, "LineTotalAmount", _amount(line_sum))
    if invoice.charge_total:
        _el(summ, RAM, "ChargeTotalAmount", _amount(invoice.charge_total))
    if invoice.allowance_total:
        _el(summ, RAM, "AllowanceTotalAmount", _amount(invoice.allowance_total))
    _el(summ, RAM, "TaxBasisTotalAmount", _amount(invoice.subtotal))
    _el(summ, RAM, "TaxTotalAmount", _amount(invoice.tax_total), currencyID=currency)
    _el(summ, RAM, "GrandTotalAmount", _amount(invoice.total))
    _el(summ, RAM, "DuePayableAmount", _amount(invoice.total))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
