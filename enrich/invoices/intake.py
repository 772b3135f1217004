"""`enrich invoices add`: PDF files and folders into the ledger as invoice jobs.

A job's source id is the file's absolute path and its input hash the sha256 of its bytes, so
the ledger's idempotent enqueue gives the rules the issue asks for: the same file again
queues nothing, a changed file under the same name supersedes the old job with a new one.
The same bytes under a second name are a duplicate and queue nothing either. A scan with no
text layer that Tesseract cannot read is queued for a model that reads images when
``[invoices] vision = true`` and ``llm.model`` takes them (``text_source = "vision"``). A file
that cannot be read is still recorded (status ``invalid``, or ``needs_data`` for a scan that
needs OCR) with its reason, so a folder of 8,000 invoices is never stopped by one, and
`enrich jobs list --status invalid` shows what to fix. The ledger keeps the path, the hash and
the extracted text, never the PDF's bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enrich.config import Settings
from enrich.errors import UsageError
from enrich.invoices.pdf import PDFDocument, PDFProblem, read_pdf
from enrich.ledger import EnqueueItem, JobStatus, Ledger
from enrich.ledger.invoices import known_hashes
from enrich.providers.images import image_support, pixel_size, render_scale


@dataclass
class AddReport:
    files: int = 0
    queued: int = 0
    unchanged: int = 0
    superseded: int = 0
    duplicates: list[dict[str, str]] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)
    embedded_xml: int = 0
    vision: int = 0  # scans queued to be read from their page images

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "queued": self.queued, "unchanged": self.unchanged,
                "superseded": self.superseded, "embedded_xml": self.embedded_xml,
                "vision": self.vision,
                "duplicates": self.duplicates, "problems": self.problems}


def vision_payload(doc: PDFProblem, digest: str, max_pages: int,
                   max_px: int) -> dict[str, Any]:
    """What the ledger keeps of a scan for the vision path: no text, no image, only the
    hash (the file is rendered again at run time and must still match it) and the pixel
    size of each page that will be sent, so `enrich estimate` counts image tokens without
    opening the file."""
    sizes = [pixel_size(w, h, render_scale(w, h, max_px))
             for w, h in doc.page_sizes[:max_pages]]
    return {"sha256": digest, "pages": doc.pages, "text": "", "tables": [],
            "text_source": "vision", "embedded_xml": None, "embedded_xml_name": None,
            "vision_pages": [list(size) for size in sizes]}


def _walk(paths: Iterable[Path], recursive: bool) -> Iterator[Path]:
    """Files named on the command line as given; in folders, the PDFs (by suffix)."""
    for path in paths:
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            yield from sorted(p for p in path.glob(pattern)
                              if p.is_file() and p.suffix.lower() == ".pdf")
        elif path.exists():
            yield path
        else:
            raise UsageError(f"{path}: no such file or folder",
                             "Check the path; give PDF files or folders of them.")


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def add_invoices(ledger: Ledger, settings: Settings, paths: Iterable[Path], *,
                 recursive: bool = False) -> AddReport:
    """Queue the PDFs under ``paths``; record every unreadable one with its reason."""
    cfg = settings.invoices
    report = AddReport()
    seen = known_hashes(ledger)
    items: list[EnqueueItem] = []
    for path in _walk(paths, recursive):
        report.files += 1
        source_id = str(path.resolve())
        try:
            digest = _file_hash(path)
        except OSError as exc:
            digest = hashlib.sha256(source_id.encode()).hexdigest()
            doc: PDFDocument | PDFProblem = PDFProblem(
                "unreadable", f"{path.name} cannot be read ({exc.strerror})")
        else:
            other = seen.get(digest)
            if other is not None and other != source_id:
                report.duplicates.append({"path": source_id, "same_as": other})
                continue
            if other == source_id:  # already queued from this very file: nothing to read
                report.unchanged += 1
                continue
            doc = read_pdf(path, max_bytes=int(cfg.max_mb * 1024 * 1024),
                           max_pages=cfg.max_pages, ocr=cfg.ocr,
                           ocr_languages=cfg.ocr_languages)
        seen[digest] = source_id
        payload: dict[str, Any] = {"path": source_id, "name": path.name}
        if isinstance(doc, PDFProblem) and doc.code == "needs_ocr" and cfg.vision:
            refused = image_support(settings.llm.provider, settings.llm.model,
                                    declared=cfg.model_takes_images)
            if refused is None:
                payload.update(vision_payload(doc, digest, cfg.vision_max_pages,
                                              cfg.vision_max_px))
                items.append(EnqueueItem("invoice", source_id, digest, payload))
                report.vision += 1
                continue
            doc = PDFProblem("needs_ocr", f"{path.name} has no text layer (a scan), OCR is not "
                                          f"available, and [invoices] vision = true cannot "
                                          f"send its pages: {refused}")
        if isinstance(doc, PDFProblem):
            reason = doc.reason
            payload["problem"] = doc.code
            status = JobStatus.NEEDS_DATA if doc.code == "needs_ocr" else JobStatus.INVALID
            items.append(EnqueueItem("invoice", source_id, digest, payload, status=status,
                                     reason=f"{doc.code}: {reason}"))
            report.problems.append({"path": source_id, "problem": doc.code, "reason": reason})
            continue
        payload.update(doc.as_payload())
        report.embedded_xml += doc.embedded_xml is not None
        items.append(EnqueueItem("invoice", source_id, digest, payload))
    counts = ledger.enqueue_many(items)
    report.queued += counts.queued + counts.revived
    report.unchanged += counts.unchanged
    report.superseded = counts.superseded
    return report
