"""Invoice text extraction and offline extraction per page, on a 200-page PDF; and a
1,000-invoice run against the sandbox LLM at its rate limit.

    uv run python bench/invoices.py [--pages 200] [--run 1000] [--rpm 600] [--latency-ms 300]
                                    [--max-s 300] [--skip-read]

Builds one PDF of ``--pages`` pages by importing the fixture invoices' pages with pypdfium2
(in a temp folder it deletes), then measures, in a fresh child process each so peak RSS is
that step's own:

- ``read``: ``enrich.invoices.pdf.read_pdf`` (PDFium open, pdfplumber text and tables, the
  embedded-XML probe) over the whole document: pages/s and peak RSS (target <= 300 MB);
- ``offline``: the heuristic extractor on each page's text: pages/s.

Also the corpus itself: every fixture PDF read and extracted one by one, files/s.

``--run N``: N invoice jobs (the fixture PDFs' texts, read once, queued N times over under
distinct names; ``use_embedded_xml = false`` so every one is a model call) drafted by the
worker through the OpenAI SDK against ``enrich sandbox llm --rpm R`` in its own process, with
``[llm] max_rpm = R``: achieved requests/min over the run divided by R (target >= 0.9), jobs
not drafted (target 0), cost recorded. Bounded: one pass, stopped at ``--max-s`` whatever
happens. Loopback only.
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
sys.path.insert(0, str(ROOT))  # bench.sandbox_process


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


def _texts() -> list[dict[str, Any]]:
    """Every fixture PDF's payload as intake stores it (text, tables, pages), read once."""
    from enrich.invoices.pdf import PDFDocument, read_pdf

    payloads = []
    for f in sorted(INVOICES.rglob("*.pdf")):
        doc = read_pdf(f, ocr=False)
        if isinstance(doc, PDFDocument) and doc.text.strip():
            payloads.append({"name": f.name, **doc.as_payload(), "embedded_xml": None})
    return payloads


def _rate_run(n: int, rpm: int, latency_ms: int, max_s: float) -> dict[str, Any]:
    """N invoices through the worker and the OpenAI SDK against the sandbox at ``rpm``."""
    import asyncio

    from bench.sandbox_process import start_sandbox_llm
    from enrich.config import InvoicesConfig, LLMConfig, Secrets, Settings
    from enrich.ledger import EnqueueItem, Ledger
    from enrich.worker import run_jobs

    payloads = _texts()
    llm, url = start_sandbox_llm("--rpm", str(rpm), "--latency-ms", str(latency_ms),
                                 "--seed", "12")
    try:
        settings = Settings(
            llm=LLMConfig(provider="openai", model="gpt-4o-mini", base_url=url + "/v1",
                          max_rpm=rpm, max_tpm=100_000_000, concurrency=32, timeout_s=30,
                          budget_usd=1000),
            invoices=InvoicesConfig(use_embedded_xml=False))
        with tempfile.TemporaryDirectory() as tmp, Ledger(Path(tmp) / "bench.db") as ledger:
            ledger.enqueue_many([
                EnqueueItem("invoice", f"/bench/{i:05d}-{p['name']}", f"{p['sha256']}-{i}",
                            {**p, "path": f"/bench/{i:05d}-{p['name']}"})
                for i, p in ((i, payloads[i % len(payloads)]) for i in range(n))])
            t0 = time.perf_counter()
            result = asyncio.run(run_jobs(
                ledger, settings, Secrets({"OPENAI_API_KEY": "sk-bench"}), kind="invoice",
                until=time.time() + max_s, handle_signals=False))
            elapsed = time.perf_counter() - t0
            counts = ledger.counts()["invoice"]
        stats = result.stats
        achieved = stats.requests / (elapsed / 60)
        return {"invoices": n, "distinct_texts": len(payloads), "rpm_limit": rpm,
                "latency_ms": latency_ms, "exit_reason": result.exit_reason,
                "seconds": round(elapsed, 1), "requests": stats.requests,
                "drafted": stats.drafted, "flagged": stats.flagged,
                "rate_limited": stats.rate_limited, "not_drafted": n - counts["drafted"],
                "achieved_rpm": round(achieved, 1), "achieved_over_limit": round(
                    achieved / rpm, 3), "cost_usd": round(stats.cost_usd, 4),
                "tokens_in": stats.tokens_in, "tokens_out": stats.tokens_out}
    finally:
        llm.terminate()
        llm.wait(timeout=10)


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
    parser.add_argument("--run", type=int, default=1000,
                        help="invoices in the rate-limit run (0: skip it)")
    parser.add_argument("--rpm", type=int, default=600)
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--max-s", type=float, default=300.0)
    parser.add_argument("--skip-read", action="store_true",
                        help="only the rate-limit run")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {}
    ok = True
    if not args.skip_read:
        with tempfile.TemporaryDirectory() as tmp:
            pdf = build_pdf(args.pages, Path(tmp) / "big.pdf")
            size_mb = pdf.stat().st_size / 1e6
            big = _child(_read, str(pdf))
        report.update({"big_pdf": {"size_mb": round(size_mb, 1), **big},
                       "corpus": _child(_corpus), "target_peak_rss_mb": 300})
        ok = big["peak_rss_mb"] <= 300
    if args.run:
        run = _rate_run(args.run, args.rpm, args.latency_ms, args.max_s)
        report["rate_run"] = {**run, "target_achieved_over_limit": 0.9}
        ok = ok and run["achieved_over_limit"] >= 0.9 and run["not_drafted"] == 0
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
