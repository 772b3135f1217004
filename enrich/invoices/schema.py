"""The ``Invoice`` record: what an invoice job produces, whichever path wrote it.

Amounts are ``Decimal`` so 0.1 + 0.2 is 0.3 and a total is compared to the cent; JSON
carries them as strings (``"529.87"``) so no reader turns them into binary floats. Every
field but the document type may be missing: a field the extractor could not find is
``None`` (and shows as a gap in review), never a guess.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

#: A Decimal written to JSON as a string, so no float ever rounds it.
Amount = Annotated[Decimal, PlainSerializer(lambda d: str(d), return_type=str, when_used="json")]

DOCUMENT_TYPES = ("invoice", "credit_note")
#: UNTDID 1001 codes that are credit notes (everything else on an invoice is an invoice).
CREDIT_NOTE_CODES = frozenset({"81", "83", "261", "262", "296", "308", "381", "396", "420",
                               "458", "532"})


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Party(_Part):
    name: str | None = Field(default=None, description="Legal or trading name as printed.")
    vat_id: str | None = Field(default=None, description="VAT id with its country prefix, "
                               "e.g. DE123456789.")


class Supplier(Party):
    address: str | None = Field(default=None, description="Postal address, one line.")
    iban: str | None = Field(default=None, description="IBAN to pay to, without spaces.")


class InvoiceLine(_Part):
    description: str | None = None
    quantity: Amount | None = None
    unit: str | None = Field(default=None, description="Unit as printed or a UN/ECE code.")
    unit_price: Amount | None = Field(default=None, description="Net price per unit.")
    vat_rate: Amount | None = Field(default=None, description="VAT percent, e.g. 19 for 19 %.")
    line_total: Amount | None = Field(default=None, description="Net amount of the line.")


class TaxLine(_Part):
    rate: Amount | None = Field(default=None, description="VAT percent, e.g. 19.")
    base: Amount | None = Field(default=None, description="Net amount taxed at this rate.")
    amount: Amount | None = Field(default=None, description="VAT at this rate.")


class Invoice(_Part):
    """One invoice or credit note, as the supplier issued it."""

    document_type: Literal["invoice", "credit_note"] = "invoice"
    invoice_number: str | None = None
    issue_date: dt.date | None = None
    due_date: dt.date | None = None
    currency: str | None = Field(default=None, description="ISO 4217 code, e.g. EUR.")
    supplier: Supplier = Field(default_factory=Supplier)
    buyer: Party = Field(default_factory=Party)
    lines: list[InvoiceLine] = Field(default_factory=list)
    charge_total: Amount | None = Field(default=None, description="Document-level charges "
                                        "(shipping, fees) added to the lines, net.")
    allowance_total: Amount | None = Field(default=None, description="Document-level "
                                           "discounts taken off the lines, net, positive.")
    subtotal: Amount | None = Field(default=None, description="Net total: the line amounts "
                                    "plus charges minus allowances.")
    tax_total: Amount | None = None
    tax_breakdown: list[TaxLine] = Field(default_factory=list)
    total: Amount | None = Field(default=None, description="Grand total including VAT.")
    payment_terms: str | None = None

    #: Fields the evaluation and the review page list, in order (dotted for nested ones).
    FIELDS: ClassVar[tuple[str, ...]] = (
        "document_type", "invoice_number", "issue_date", "due_date", "currency",
        "supplier.name", "supplier.vat_id", "supplier.address", "supplier.iban",
        "buyer.name", "buyer.vat_id", "subtotal", "tax_total", "total", "payment_terms")

    @staticmethod
    def offline_extract(source: dict[str, Any]) -> dict[str, Any]:
        """The offline provider's answer for this schema: the heuristic extractor's.

        The offline provider calls this hook when a request's schema has it, so the invoice
        baseline lives with invoices and the provider needs no import of this package.
        """
        from enrich.invoices.offline import extract  # the extractor builds Invoice itself

        return extract(source).model_dump(mode="json")

    def get(self, dotted: str) -> Any:
        """A field by dotted name (``supplier.vat_id``)."""
        value: Any = self
        for part in dotted.split("."):
            value = getattr(value, part, None)
        return value
