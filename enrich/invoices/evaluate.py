"""`enrich invoices eval`: per-field accuracy of the ledger's invoice drafts against truth.

Truth is read in the fixtures' formats: invoice2data's expected JSON (``name.json`` beside
``name.pdf``, partial: only the keys it has are scored) and the CII XML of a
Factur-X/ZUGFeRD PDF (``name.xml`` beside it). A draft is matched to its truth by the PDF's
sha256, so a copy of the file anywhere matches. Amounts compare as decimals, dates as dates,
names and numbers after normalising case, spaces and punctuation. Drafts made from the
embedded XML are counted apart (``embedded_xml``) from those read from the text
(``text``), so the text path is measured on its own: add with
``[invoices] use_embedded_xml = false`` to measure it on Factur-X files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from enrich.errors import UsageError
from enrich.invoices.cii import parse_cii
from enrich.invoices.schema import Invoice
from enrich.ledger import Ledger
from enrich.ledger.invoices import invoice_drafts

SCORED = ("document_type", "invoice_number", "issue_date", "due_date", "currency",
          "supplier.name", "supplier.vat_id", "supplier.iban", "buyer.name", "subtotal",
          "tax_total", "total", "lines")
_AMOUNTS = {"subtotal", "tax_total", "total"}
_DATES = {"issue_date", "due_date"}
_I2D = {"invoice_number": "invoice_number", "date": "issue_date", "date_due": "due_date",
        "currency": "currency", "issuer": "supplier.name", "vat": "supplier.vat_id",
        "static_vat": "supplier.vat_id", "iban": "supplier.iban", "amount": "total",
        "amount_untaxed": "subtotal", "amount_tax": "tax_total"}


def _norm(value: Any) -> str:
    text = unicodedata.normalize("NFKC", str(value)).casefold()
    return re.sub(r"[\W_]+", "", text)


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def same(name: str, want: Any, got: Any) -> bool:
    if got is None or got == "" or got == []:
        return False
    if name in _AMOUNTS:
        return _decimal(want) == _decimal(got)
    if name in _DATES:
        return _date(want) == _date(got)
    if name == "lines":
        return len(want) == len(got) and all(
            _decimal(w.get("line_total")) == _decimal(g.get("line_total"))
            for w, g in zip(want, got, strict=True))
    return _norm(want) == _norm(got)


def truth_from_file(path: Path) -> dict[str, Any]:
    """``{field: value}`` of the fields the truth file states (absent = not scored)."""
    if path.suffix == ".xml":
        inv = parse_cii(path.read_bytes())
        data = inv.model_dump(mode="json")
        out: dict[str, Any] = {}
        for name in SCORED:
            value = data["lines"] if name == "lines" else Invoice.model_validate(data).get(name)
            if value not in (None, "", []):
                out[name] = value.isoformat() if isinstance(value, dt.date) else value
        if not data["lines"]:
            out.pop("lines", None)
        return out
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw = raw[0] if isinstance(raw, list) else raw
    out = {name: raw[key] for key, name in _I2D.items() if raw.get(key) not in (None, "")}
    items = [i for i in raw.get("lines") or raw.get("line_items") or []
             if isinstance(i, dict) and "price_subtotal" in i]
    if items:
        out["lines"] = [{"line_total": i["price_subtotal"]} for i in items]
    return out


@dataclass
class EvalReport:
    fields: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> right, total
    families: dict[str, dict[str, int]] = field(default_factory=dict)
    paths: dict[str, dict[str, int]] = field(default_factory=dict)  # text | embedded_xml
    documents: list[dict[str, Any]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # truth with no draft in the ledger
    cost_usd: float = 0.0

    def _add(self, table: dict[str, dict[str, int]], key: str, ok: bool) -> None:
        row = table.setdefault(key, {"right": 0, "total": 0})
        row["right"] += ok
        row["total"] += 1

    def as_dict(self) -> dict[str, Any]:
        def rate(t: dict[str, dict[str, int]]) -> dict[str, Any]:
            return {k: {**v, "accuracy": round(v["right"] / v["total"], 4) if v["total"]
                        else None} for k, v in t.items()}
        right = sum(v["right"] for v in self.fields.values())
        total = sum(v["total"] for v in self.fields.values())
        return {"fields": rate(self.fields), "families": rate(self.families),
                "paths": rate(self.paths),
                "overall": {"right": right, "total": total,
                            "accuracy": round(right / total, 4) if total else None},
                "documents": self.documents, "unmatched": self.unmatched,
                "cost_usd": round(self.cost_usd, 6)}


def evaluate(ledger: Ledger, truth_dir: Path) -> EvalReport:
    """Score every invoice draft that has a truth file under ``truth_dir``."""
    if not truth_dir.is_dir():
        raise UsageError(f"--truth {truth_dir}: not a folder",
                         "Point --truth at a folder of PDFs with name.json or name.xml "
                         "beside each (e.g. fixtures/invoices).")
    drafts = {}
    for row in invoice_drafts(ledger):
        drafts[row["input_hash"]] = row  # a later draft of the same bytes wins
    report = EvalReport()
    for pdf in sorted(truth_dir.rglob("*.pdf")):
        truth_file = next((p for p in (pdf.with_suffix(".json"), pdf.with_suffix(".xml"))
                           if p.is_file()), None)
        if truth_file is None:
            continue
        digest = hashlib.sha256(pdf.read_bytes()).hexdigest()
        row = drafts.get(digest)
        rel = str(pdf.relative_to(truth_dir))
        if row is None:
            report.unmatched.append(rel)
            continue
        truth = truth_from_file(truth_file)
        got = row["edited_fields"] or row["fields"]
        inv = Invoice.model_validate(got)
        path = "embedded_xml" if (row["params"] or {}).get("source") == "embedded_xml" \
            else "text"
        family = str(pdf.parent.relative_to(truth_dir))
        report.cost_usd += float(row["cost_usd"] or 0)
        wrong = []
        for name, want in truth.items():
            value = got["lines"] if name == "lines" else inv.get(name)
            ok = same(name, want, value)
            report._add(report.fields, name, ok)
            report._add(report.families, family, ok)
            report._add(report.paths, path, ok)
            if not ok:
                wrong.append(name)
        report.documents.append({"file": rel, "job_id": row["job_id"], "path": path,
                                 "scored": len(truth), "wrong": wrong})
    return report
