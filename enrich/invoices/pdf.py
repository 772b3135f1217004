"""Reading one PDF: checks that it is a usable PDF, its text with layout, its embedded XML.

Why these libraries: ``pypdfium2`` (PDFium, Chrome's PDF engine) opens the file first because
it tells corrupt, encrypted and empty files apart quickly and renders pages for OCR;
``pdfplumber`` gives words with positions and a table finder for the line items; the
``factur-x`` library finds the CII XML of a Factur-X/ZUGFeRD/XRechnung PDF. A page without a
text layer is OCR'd with Tesseract (``pytesseract``) when it is installed; otherwise the
document is reported as needing OCR, with the reason, and nothing is guessed.

Every problem is a ``PDFProblem`` with a code and a one-line reason, never an exception out
of ``read_pdf``: one bad file in a folder of 8,000 must not stop the other 7,999.
"""

from __future__ import annotations

import hashlib
import io
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pdfplumber
import pypdfium2 as pdfium

from enrich.providers.images import (
    MAX_IMAGE_BYTES,
    MAX_REQUEST_IMAGE_BYTES,
    PageImage,
    render_scale,
)

#: Characters of text per page under which a page counts as having no text layer.
MIN_TEXT_CHARS = 20
#: PDFs are read whole; a scanned catalogue of 500 MB is not an invoice.
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PAGES = 50

PROBLEMS = ("not_pdf", "corrupt", "encrypted", "no_pages", "too_large", "unreadable",
            "needs_ocr", "changed")


@dataclass
class PDFProblem:
    code: str  # one of PROBLEMS
    reason: str
    #: For a scan (``needs_ocr``): its page count and page sizes in points, so the vision
    #: path can queue it without opening the file again.
    pages: int | None = None
    page_sizes: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class PDFDocument:
    """What the ledger keeps of a PDF: never its bytes."""

    sha256: str
    pages: int
    text: str  # page texts joined by form feeds, layout kept as reading order
    tables: list[list[list[str | None]]] = field(default_factory=list)
    text_source: str = "text_layer"  # text_layer | ocr
    embedded_xml: str | None = None  # the CII XML of a Factur-X/ZUGFeRD/XRechnung PDF
    embedded_xml_name: str | None = None

    def as_payload(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "pages": self.pages, "text": self.text,
                "tables": self.tables, "text_source": self.text_source,
                "embedded_xml": self.embedded_xml, "embedded_xml_name": self.embedded_xml_name}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tesseract_available() -> bool:
    """Is the Tesseract binary there (Debian: ``apt-get install tesseract-ocr``)?"""
    return shutil.which("tesseract") is not None


def _open(data: bytes, name: str, max_pages: int) -> pdfium.PdfDocument | PDFProblem:
    if b"%PDF-" not in data[:1024]:
        head = data[:8].decode("latin-1", "replace").encode("unicode_escape").decode()
        return PDFProblem("not_pdf", f"{name} is not a PDF (it starts with {head!r}, not %PDF-)")
    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        return _why_not(data, name, str(exc))
    pages = len(doc)
    if pages == 0:
        doc.close()
        return PDFProblem("no_pages", f"{name} has no pages")
    if pages > max_pages:
        doc.close()
        return PDFProblem("too_large", f"{name} has {pages} pages, over [invoices] max_pages "
                                       f"= {max_pages}: is it an invoice?")
    return doc


def _why_not(data: bytes, name: str, pdfium_said: str) -> PDFProblem:
    """Why PDFium refused a file. Its error code is unreliable (a document with no pages
    fails with "Success", or with the last file's error), so pypdf looks at the structure."""
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        encrypted = reader.is_encrypted
        pages = -1 if encrypted else len(reader.pages)
    except Exception as exc:  # pypdf raises many kinds on a damaged file
        return PDFProblem("corrupt", f"{name} is damaged and cannot be opened "
                                     f"({type(exc).__name__}: {exc})")
    if encrypted:
        return PDFProblem("encrypted", f"{name} is encrypted (password protected): save an "
                                       "unprotected copy and add that")
    if pages == 0:
        return PDFProblem("no_pages", f"{name} has no pages")
    return PDFProblem("corrupt", f"{name} is damaged and cannot be opened ({pdfium_said})")


def _embedded_xml(data: bytes) -> tuple[str | None, str | None]:
    import facturx  # imported here: it configures logging and loads XSDs on import

    logging.getLogger("factur-x").setLevel(logging.CRITICAL)
    try:
        name, xml = facturx.get_xml_from_pdf(io.BytesIO(data), check_xsd=False)
    except Exception:
        return None, None
    if not xml:
        return None, None
    return xml.decode("utf-8", "replace"), name


def _usable(texts: list[str]) -> bool:
    """Enough characters per page to count as a text layer (or as a useful OCR reading)."""
    return sum(len(t.strip()) for t in texts) >= MIN_TEXT_CHARS * max(1, len(texts))


def _ocr(doc: pdfium.PdfDocument, languages: str, scale: float = 300 / 72) -> str:
    import pytesseract

    texts = []
    for index in range(len(doc)):
        page = doc[index]
        image = page.render(scale=scale).to_pil()
        texts.append(pytesseract.image_to_string(image, lang=languages))
        page.close()
    return "\f".join(texts)


def read_pdf(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
             max_pages: int = DEFAULT_MAX_PAGES, ocr: bool = True,
             ocr_languages: str = "eng+deu+fra",
             data: bytes | None = None) -> PDFDocument | PDFProblem:
    """The document, or the problem that keeps it from being read (never raises for input)."""
    name = path.name
    try:
        size = path.stat().st_size if data is None else len(data)
    except OSError as exc:
        return PDFProblem("unreadable", f"{name} cannot be read ({exc.strerror})")
    if size > max_bytes:
        return PDFProblem("too_large", f"{name} is {size / 1e6:.1f} MB, over [invoices] "
                                       f"max_mb = {max_bytes / 1e6:.0f}")
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            return PDFProblem("unreadable", f"{name} cannot be read ({exc.strerror})")
    opened = _open(data, name, max_pages)
    if isinstance(opened, PDFProblem):
        return opened
    digest = sha256_bytes(data)
    try:
        texts: list[str] = []
        tables: list[list[list[str | None]]] = []
        try:
            with pdfplumber.open(io.BytesIO(data)) as pdf:
                for page in pdf.pages:
                    texts.append(page.extract_text() or "")
                    tables.extend(page.extract_tables())
                    page.close()
        except Exception as exc:
            return PDFProblem("corrupt", f"{name}: its text cannot be read ({type(exc).__name__}"
                                         f": {exc})")
        xml, xml_name = _embedded_xml(data)
        source = "text_layer"
        if not _usable(texts):
            why = ("Tesseract is not installed (apt-get install tesseract-ocr)" if ocr
                   else "[invoices] ocr = false")
            if ocr and tesseract_available():
                texts = _ocr(opened, ocr_languages).split("\f")
                source = "ocr"
                why = "Tesseract read no usable text from it"
            if not _usable(texts):
                sizes = [(float(w), float(h)) for w, h in
                         (opened.get_page_size(i) for i in range(len(opened)))]
                return PDFProblem("needs_ocr", f"{name} has no text layer (a scan) and {why}; "
                                               "or set [invoices] vision = true with a model "
                                               "that reads images",
                                  pages=len(opened), page_sizes=sizes)
        return PDFDocument(sha256=digest, pages=len(opened), text="\f".join(texts),
                           tables=tables, text_source=source, embedded_xml=xml,
                           embedded_xml_name=xml_name)
    finally:
        opened.close()


def first_page_png(path: Path, sha256: str | None = None, *, max_bytes: int = 80_000,
                   scale: float = 0.75) -> bytes | None:
    """Page 1 as a small greyscale PNG for the review page, or None when it cannot be shown.

    The file is read again at export (the ledger keeps no PDF bytes); a file that is gone,
    changed since it was added (``sha256`` differs) or renders larger than ``max_bytes`` even
    at half the scale gives None, and the page shows the text alone.
    """
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if sha256 is not None and sha256_bytes(data) != sha256:
        return None
    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError:
        return None
    try:
        if len(doc) == 0:
            return None
        page = doc[0]
        try:
            for factor in (scale, scale / 2):
                image = page.render(scale=factor, grayscale=True).to_pil().convert("L")
                out = io.BytesIO()
                image.save(out, "PNG", optimize=True)
                if out.tell() <= max_bytes:
                    return out.getvalue()
            return None
        finally:
            page.close()
    finally:
        doc.close()


def render_pages(path: Path, sha256: str, *, max_pages: int,
                 max_px: int) -> list[PageImage] | PDFProblem:
    """The first ``max_pages`` pages of a scan as greyscale PNGs for a model that reads
    images, each within ``max_px`` on its long edge and the services' per-image limits.

    Rendered at run time from the file, because the ledger keeps no PDF bytes and no images:
    a file that is gone or changed since it was added (``sha256`` differs) is a problem that
    names it, never a reading of some other document.
    """
    name = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        return PDFProblem("unreadable", f"{path} cannot be read since it was added "
                                        f"({exc.strerror}): put it back, or add it again")
    if sha256_bytes(data) != sha256:
        return PDFProblem("changed", f"{path} has changed since it was added (its sha256 "
                                     "differs): run `enrich invoices add` on it again")
    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        return PDFProblem("corrupt", f"{name} cannot be rendered ({exc})")
    images: list[PageImage] = []
    try:
        for index in range(min(len(doc), max_pages)):
            page = doc[index]
            try:
                width, height = page.get_size()
                scale = render_scale(width, height, max_px)
                image = page.render(scale=scale, grayscale=True).to_pil().convert("L")
            finally:
                page.close()
            encoded = _encode(image)
            if encoded is None:
                return PDFProblem("too_large", f"{name} page {index + 1} is over "
                                               f"{MAX_IMAGE_BYTES // (1024 * 1024)} MB as an "
                                               "image: lower [invoices] vision_max_px")
            media_type, body = encoded
            images.append(PageImage(index + 1, media_type, body, image.width, image.height))
    finally:
        doc.close()
    if sum(len(i.data) for i in images) > MAX_REQUEST_IMAGE_BYTES * 3 // 4:  # base64 grows 4/3
        return PDFProblem("too_large", f"{name}: {len(images)} page images are over the "
                                       f"{MAX_REQUEST_IMAGE_BYTES // 1_000_000} MB a request "
                                       "may carry: lower [invoices] vision_max_pages or "
                                       "vision_max_px")
    return images


def _encode(image: Any) -> tuple[str, bytes] | None:
    """PNG (lossless: small print stays sharp), else JPEG when a busy scan makes the PNG
    too big for the per-image limit; None when neither fits."""
    for kind, media_type, options in (("PNG", "image/png", {}),
                                      ("JPEG", "image/jpeg", {"quality": 85})):
        out = io.BytesIO()
        image.save(out, kind, **options)
        if out.tell() <= MAX_IMAGE_BYTES:
            return media_type, out.getvalue()
    return None
