"""`enrich invoices export`: invoice drafts out as JSON, JSON lines, CSV or CII XML.

Approved invoices by default (what a person has checked), every drafted one with ``--all``.
A reviewer's edit wins over the extracted fields. CSV has one row per line item, each
carrying the invoice's own fields, because that is what an accounting import reads; an
invoice without line items is one row with the line columns empty. ``cii`` writes one EN
16931 XML per invoice and checks each against the Factur-X XSD before it is kept.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enrich.errors import UsageError
from enrich.invoices.cii import to_cii
from enrich.invoices.schema import Invoice
from enrich.ledger import Ledger
from enrich.ledger.invoices import invoice_drafts

FORMATS = ("json", "jsonl", "csv", "cii")
_HEAD = ["job_id", "file", "status", "source", "flags", "document_type", "invoice_number",
         "issue_date", "due_date", "currency", "supplier_name", "supplier_vat_id",
         "supplier_address", "supplier_iban", "buyer_name", "buyer_vat_id", "subtotal",
         "tax_total", "total", "payment_terms"]
_LINE = ["line_no", "description", "quantity", "unit", "unit_price", "vat_rate", "line_total"]


@dataclass
class ExportResult:
    invoices: int = 0
    rows: int = 0
    text: str | None = None  # the output, when not written to files
    files: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # cii files the XSD refused

    def as_dict(self) -> dict[str, Any]:
        return {"invoices": self.invoices, "rows": self.rows, "files": self.files,
                "invalid": self.invalid}


def _records(ledger: Ledger, include_all: bool) -> list[dict[str, Any]]:
    statuses = None if include_all else ("approved",)
    out = []
    for row in invoice_drafts(ledger, statuses):
        invoice = Invoice.model_validate(row["edited_fields"] or row["fields"])
        out.append({"job_id": row["job_id"], "file": row["source_id"], "status": row["status"],
                    "source": (row["params"] or {}).get("source"),
                    "flags": [f["guard"] for f in row["flags"] or []], "invoice": invoice})
    return out


def _flat(rec: dict[str, Any]) -> dict[str, Any]:
    inv: Invoice = rec["invoice"]
    data = inv.model_dump(mode="json")
    return {"job_id": rec["job_id"], "file": rec["file"], "status": rec["status"],
            "source": rec["source"], "flags": " ".join(rec["flags"]),
            "document_type": data["document_type"], "invoice_number": data["invoice_number"],
            "issue_date": data["issue_date"], "due_date": data["due_date"],
            "currency": data["currency"], "supplier_name": data["supplier"]["name"],
            "supplier_vat_id": data["supplier"]["vat_id"],
            "supplier_address": data["supplier"]["address"],
            "supplier_iban": data["supplier"]["iban"], "buyer_name": data["buyer"]["name"],
            "buyer_vat_id": data["buyer"]["vat_id"], "subtotal": data["subtotal"],
            "tax_total": data["tax_total"], "total": data["total"],
            "payment_terms": data["payment_terms"]}


def export_invoices(ledger: Ledger, fmt: str, *, out: Path | None = None,
                    include_all: bool = False) -> ExportResult:
    """Write (or return) the invoices in ``fmt``; ``cii`` needs ``out`` as a folder."""
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: not a format", f"Use one of {', '.join(FORMATS)}.")
    records = _records(ledger, include_all)
    result = ExportResult(invoices=len(records))
    if fmt == "cii":
        return _write_cii(records, out, result)
    if fmt in ("json", "jsonl"):
        dumped = [{k: v for k, v in r.items() if k != "invoice"}
                  | {"invoice": r["invoice"].model_dump(mode="json")} for r in records]
        text = (json.dumps(dumped, indent=2, ensure_ascii=False) + "\n" if fmt == "json"
                else "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in dumped))
        result.rows = len(dumped)
    else:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=_HEAD + _LINE, lineterminator="\n")
        writer.writeheader()
        for rec in records:
            head = _flat(rec)
            lines = rec["invoice"].model_dump(mode="json")["lines"] or [{}]
            for no, line in enumerate(lines, start=1):
                row = dict(head)
                if line:
                    row.update({"line_no": no, **{k: line.get(k) for k in _LINE[1:]}})
                writer.writerow(row)
                result.rows += 1
        text = buf.getvalue()
    if out is None:
        result.text = text
    else:
        out.write_text(text, encoding="utf-8")
        result.files.append(str(out))
    return result


def _write_cii(records: list[dict[str, Any]], out: Path | None,
               result: ExportResult) -> ExportResult:
    import facturx

    if out is None:
        raise UsageError("--format cii writes one XML file per invoice and needs --out FOLDER",
                         "Add --out cii/ (the folder is created).")
    out.mkdir(parents=True, exist_ok=True)
    for rec in records:
        stem = Path(rec["file"]).stem or f"job-{rec['job_id']}"
        name = f"{rec['job_id']}-{re.sub(r'[^A-Za-z0-9._-]+', '_', stem)}.xml"
        inv: Invoice = rec["invoice"]
        missing = [f for f in ("invoice_number", "issue_date", "currency", "total")
                   if inv.get(f) is None] + ([] if inv.supplier.name else ["supplier.name"])
        if missing:  # an e-invoice must not carry a made-up number, date or amount
            result.invalid.append(f"{name}: job {rec['job_id']} has no {', '.join(missing)}; "
                                  f"fill it in review, then export again")
            continue
        xml = to_cii(inv)
        try:
            facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
        except Exception as exc:  # the library raises a bare Exception
            result.invalid.append(f"{name}: {str(exc)[:300]}")
            continue
        (out / name).write_bytes(xml)
        result.files.append(str(out / name))
        result.rows += 1
    return result
