"""Character limits the page counts against, and the words that explain each guard.

The limits are the guards' own (``[guards] min_chars / max_chars``), so the count on the
page and the check that flags a draft can never disagree.
"""

from __future__ import annotations

from enrich.config import GuardsConfig
from enrich.guards.draft import FIELDS

#: Plain words for each guard (names as in enrich.guards.draft.GUARDS), shown before its detail.
GUARD_EXPLANATIONS: dict[str, str] = {
    "schema": "The draft is missing a field it was asked for, or has one of the wrong type.",
    "length": "The text is outside the length search engines and the store expect.",
    "html": "The draft had HTML that is not allowed on product pages; it was cleaned.",
    "grounding": "The text states a number, unit or model code that is not in the product "
                 "data. Check it is true before approving.",
    "contact": "The text contains a web address, e-mail address or phone number that is not "
               "in the product data.",
    "injection": "The product data holds an instruction to the model, or the text reads like "
                 "a model talking. Read it carefully.",
    "duplicate": "The text nearly repeats another product's; search engines may ignore it.",
    "sync_rules": "The next sync would call this field missing (the same as the name, too "
                  "short, a placeholder, or supplier boilerplate) and queue it again.",
    "input": "The product's own data has a problem sync found (an instruction hidden in it, "
             "two values for one quantity, a bad weight or price, markup in the name, a "
             "duplicate SKU). Check the draft against the store before approving.",
}

#: Plain words for each invoice check (enrich.invoices.checks.CHECKS, flagged as
#: ``invoice_<name>``): what the numbers in the flag's detail mean for the accountant.
INVOICE_EXPLANATIONS: dict[str, str] = {
    "invoice_lines_sum": "The line items do not add up to the net subtotal (after charges and "
                         "discounts): a line, a charge or a discount was missed or misread.",
    "invoice_tax_rate": "A VAT row's amount is not its net base times its rate: the rate, "
                        "the base or the amount was misread.",
    "invoice_tax_sum": "The VAT amounts per rate do not add up to the VAT total.",
    "invoice_total_sum": "Net subtotal plus VAT is not the total: one of the three amounts "
                         "is wrong, or a charge is missing.",
    "invoice_dates": "The issue date is missing, or the due date is before it.",
    "invoice_currency": "No currency was found, or it is not an ISO 4217 code (EUR, USD, …).",
    "invoice_vat_id": "A VAT id fails its country's check digits: misread, or not a VAT id.",
    "invoice_iban": "The IBAN fails its check digits: do not pay to it before checking.",
    "invoice_grounding": "An amount or the invoice number is not printed in the document's "
                         "text: it may be computed or invented. Compare with the PDF.",
    "invoice_vision": "A scan with no text layer, read by the model from its page images: "
                      "nothing could be checked against printed text. Compare every field "
                      "with the page image.",
}
GUARD_EXPLANATIONS.update(INVOICE_EXPLANATIONS)


def explain(guard: str) -> str:
    return GUARD_EXPLANATIONS.get(guard, f"The {guard} check flagged this field.")


def field_limits(config: GuardsConfig | None = None) -> dict[str, tuple[int | None, int | None]]:
    """(min, max) characters per field; None where there is no bound."""
    cfg = config or GuardsConfig()
    out: dict[str, tuple[int | None, int | None]] = {}
    for name in FIELDS:
        low, high = cfg.limits(name)
        out[name] = (low or None, high or None)
    return out
