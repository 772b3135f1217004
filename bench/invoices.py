"""Invoice text extraction and offline extraction per page, on a 200-page PDF.

    uv run python bench/invoices.py [--pages 200]

Builds one PDF of ``--pages`` pages by importing the fixture invoices' pages with pypdfium2
(in a temp folder it deletes), then measures, in a fresh child process each so peak RSS is
that step's own:

- ``read``: ``enrich.invoices.pdf.read_pdf`` (PDFium open, pdfplumber text and tables, the
  embedded-XML probe) over the whole document: pages/s and peak RSS (target <= 300 MB);
- ``offline``: the heuristic extractor on each page's text: pages/s.

Also the corpus itself: every fixture PDF read and extracted one by one, files/s.
Bounded by the page count; no network.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INVOICES = ROOT / "fixtures" / "invoices"


def build_pdf(pages: int, dest: Path) -> Path:
    import pypdfium2 as pdfium

    sources = sorted(INVOICES.rglob("*.pdf"))
    out = pdfium.PdfDocument.new()
    i = 0
    while len(out) < pages:
        src = pdfium.PdfDocument(sources[i % len(sources)])
        take = list(range(min(len(src), pages - len(out))))
        out.import_pages(src, take)
        src.close()
        i += 1
    out.save(dest)
    out.close()
    return dest


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _read(path: str, queue: Any) -> None:
    from enrich.invoices.pdf import read_pdf

    base = _peak_mb()
    t0 = time.perf_counter()
    doc = read_pdf(Path(path), max_pages=100_000, max_bytes=1 << 31, ocr=False)
    elapsed = time.perf_counter() - t0
    pages = getattr(doc, "pages", 0)
    texts = getattr(doc, "text", "").split("\f")
    from enrich.invoices.offline import extract

    t1 = time.perf_counter()
    for text in texts:
        extract({"text": text})
    offline = time.perf_counter() - t1
    queue.put({"pages": pages, "read_s": round(elapsed, 2),
               "read_pages_per_s": round(pages / elapsed, 1),
               "offline_s": round(offline, 2),
               "offline_pages_per_s": round(len(texts) / offline, 1),
               "peak_rss_mb": round(_peak_mb(), 1), "rss_after_imports_mb": round(base, 1)})


def _corpus(queue: Any) -> None:
    from enrich.invoices.offline import extract
    from enrich.invoices.pdf import read_pdf

    files = sorted(INVOICES.rglob("*.pdf"))
    t0 = time.perf_counter()
    pages = 0
    for f in files:
        doc = read_pdf(f, ocr=False)
        pages += getattr(doc, "pages", 0)
        extract({"text": getattr(doc, "text", "")})
    elapsed = time.perf_counter() - t0
    queue.put({"files": len(files), "pages": pages, "seconds": round(elapsed, 2),
               "files_per_s": round(len(files) / elapsed, 2)})


def _child(target: Any, *args: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get(timeout=1800)
    proc.join()
    return result  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        pdf = build_pdf(args.pages, Path(tmp) / "big.pdf")
        size_mb = pdf.stat().st_size / 1e6
        big = _child(_read, str(pdf))
    corpus = _child(_corpus)
    report = {"big_pdf": {"size_mb": round(size_mb, 1), **big}, "corpus": corpus,
              "target_peak_rss_mb": 300}
    print(json.dumps(report, indent=2))
    return 0 if big["peak_rss_mb"] <= 300 else 1


if __name__ == "__main__":
    sys.exit(main())
