"""Invoice drafts in the review page: flat fields beside the PDF's text, and edits re-checked.

An accountant checks an extraction against the document, so the page shows the invoice's
fields next to the text they were read from (and page 1 as a small image, rendered from the
file at export when it is still where it was added). The nested record is shown as the
dotted fields ``Invoice.FIELDS`` (``supplier.vat_id``), each one line of text to edit; line
items and the VAT breakdown are tables. An edit is validated as an ``Invoice`` and checked
with the invoice checks, exactly as the worker checked the draft, and the whole edited
invoice is stored (``invoices export`` reads ``edited_fields`` as the invoice).
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import pydantic

from enrich.invoices.checks import check_invoice
from enrich.invoices.pdf import first_page_png
from enrich.invoices.schema import Invoice
from enrich.ledger.drafts import DraftView

FIELD_LABELS: dict[str, str] = {
    "document_type": "Document type", "invoice_number": "Invoice number",
    "issue_date": "Issue date", "due_date": "Due date", "currency": "Currency",
    "supplier.name": "Supplier", "supplier.vat_id": "Supplier VAT id",
    "supplier.address": "Supplier address", "supplier.iban": "Supplier IBAN",
    "buyer.name": "Buyer", "buyer.vat_id": "Buyer VAT id", "subtotal": "Subtotal (net)",
    "tax_total": "VAT total", "total": "Total", "payment_terms": "Payment terms",
}
#: Characters of the document's text a page carries per invoice (the model saw at most 48k).
MAX_TEXT_CHARS = 20_000
#: Page images are rendered for at most this many invoices in one page: each is a file read
#: and a render (~20 ms, ~20 KB); a page of 8,000 invoices shows text only.
MAX_IMAGES = 200


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _at(data: dict[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def invoice_fields(item: DraftView) -> list[dict[str, Any]]:
    """The page's field entries for an invoice draft (same keys as a product field's).

    ``current`` is the extraction itself, so the page's "Changes" view shows the reviewer's
    edits against what was extracted (an invoice has no "in the store now").
    """
    drafted, edited = item.fields, item.effective_fields
    out = []
    for name in Invoice.FIELDS:
        draft = _text(_at(drafted, name))
        now = _text(_at(edited, name))
        out.append({"name": name, "label": FIELD_LABELS.get(name, name), "current": draft,
                    "draft": draft, "edited": now if now != draft else None, "html": False,
                    "min": None, "max": None, "editable": True})
    return out


def invoice_extra(item: DraftView, *, image: bool) -> dict[str, Any]:
    """The document beside the fields: its text, page 1 (``image``), lines, VAT rows."""
    payload = item.payload
    text = str(payload.get("text") or "")
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS] + f"\n… ({len(text) - MAX_TEXT_CHARS:,} more characters)"
    png = None
    if image and payload.get("path"):
        png = first_page_png(Path(str(payload["path"])), payload.get("sha256"))
    fields = item.effective_fields
    return {
        "text": text, "pages": payload.get("pages"),
        "text_source": payload.get("text_source") or "",
        "image": ("data:image/png;base64," + base64.b64encode(png).decode()) if png else None,
        "lines": [[_text(ln.get(k)) for k in ("description", "quantity", "unit", "unit_price",
                                               "vat_rate", "line_total")]
                  for ln in fields.get("lines") or [] if isinstance(ln, dict)],
        "tax": [[_text(t.get(k)) for k in ("rate", "base", "amount")]
                for t in fields.get("tax_breakdown") or [] if isinstance(t, dict)],
    }


class InvoiceEditError(ValueError):
    """A reviewer's edit that is not a valid invoice; the message names the field."""


def edit_invoice(item: DraftView, edits: dict[str, str]
                 ) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The edited invoice (the whole record, JSON) and its flags from the invoice checks.

    An empty text clears a field (None), as the extractor leaves a field it did not find.
    """
    unknown = sorted(set(edits) - set(Invoice.FIELDS))
    if unknown:
        raise InvoiceEditError(f"edited field {unknown[0]!r} is not an invoice field (the "
                               f"fields are {', '.join(Invoice.FIELDS)})")
    merged = copy.deepcopy(item.effective_fields)
    for dotted, text in edits.items():
        node = merged
        *parents, last = dotted.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[last] = text.strip() or None
    try:
        invoice = Invoice.model_validate(merged)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvoiceEditError(f"field {where!r}: {err['msg']} (got "
                               f"{_at(merged, where)!r})") from None
    text = item.payload.get("text")
    return invoice.model_dump(mode="json"), check_invoice(
        invoice, str(text) if text is not None else None)
