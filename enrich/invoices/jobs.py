"""What the worker does with an invoice job: read the embedded XML, or build the prompt.

The worker's loop (claim → call → guard → record) is the same for both kinds; this module
is the invoice half of its two kind-specific steps. An invoice with a CII XML inside is
mapped directly (``source = "embedded_xml"``, no model call, no cost) unless
``[invoices] use_embedded_xml = false``; anything else becomes a prompt whose user part holds
the document's text between ``<untrusted_document_text>`` fence lines (the sandbox
model reads the same tag). A scan queued for a model that reads images
(``text_source = "vision"``) has no text: its pages are rendered from the file at run time
(``page_images``) and go with the prompt, whose fence then holds an empty document.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from enrich.config import Settings
from enrich.errors import ConfigError, EnrichError, PermanentProviderError
from enrich.invoices.checks import check_invoice, vision_flag
from enrich.invoices.cii import parse_cii
from enrich.invoices.pdf import PDFProblem, render_pages
from enrich.invoices.schema import Invoice
from enrich.ledger import Job
from enrich.prompts import RenderedPrompt, shipped_prompts_dir
from enrich.providers.images import PageImage, image_support

#: How the prompt describes where the document's text came from.
_TEXT_SOURCES = {"ocr": "from OCR", "text_layer": "from the PDF",
                 "vision": "none: a scan, read it from the attached page images"}
FENCE_OPEN = "<untrusted_document_text>"
FENCE_CLOSE = "</untrusted_document_text>"
_FENCE_TAG_RE = re.compile(r"<(?=[\s/\\]*untrusted)", re.IGNORECASE)
#: Characters of document text sent to a model (about 12k tokens); a longer text is cut.
MAX_TEXT_CHARS = 48_000


def fence(data: Any) -> str:
    """The document as one JSON line between the fence lines; nothing inside can close it."""
    text = json.dumps(data, ensure_ascii=False, default=str)
    text = _FENCE_TAG_RE.sub("\\\\u003c", text)
    text = re.sub("[\u0085\u2028\u2029]", lambda m: f"\\u{ord(m.group(0)):04x}", text)
    return f"{FENCE_OPEN}\n{text}\n{FENCE_CLOSE}"


@lru_cache(maxsize=8)
def _environment(folder: str | None) -> SandboxedEnvironment:
    dirs = [folder] if folder else []
    dirs.append(str(shipped_prompts_dir()))
    env = SandboxedEnvironment(loader=jinja2.FileSystemLoader(dirs),
                               undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters["untrusted"] = fence
    return env


def embedded_invoice(job: Job, settings: Settings) -> Invoice | None:
    """The invoice from the PDF's own CII XML, when there is one and it is to be used."""
    xml = job.payload.get("embedded_xml")
    if not xml or not settings.invoices.use_embedded_xml:
        return None
    try:
        return parse_cii(xml.encode("utf-8"))
    except EnrichError:
        return None  # UBL or a broken XML: read the text like any other PDF


def document(job: Job) -> dict[str, Any]:
    """What the provider gets as ``source``: the text and tables (never the file's bytes)."""
    text = str(job.payload.get("text") or "")
    if not text.strip() and job.payload.get("text_source") != "vision":
        raise PermanentProviderError(
            f"job {job.id}: invoice {job.source_id} has no text to extract from",
            "Add the file again with OCR available (apt-get install tesseract-ocr).",
            error_class="NoText")
    return {"text": text, "tables": job.payload.get("tables") or [],
            "pages": job.payload.get("pages"), "text_source": job.payload.get("text_source")}


def page_images(job: Job, settings: Settings) -> tuple[PageImage, ...]:
    """The page images a vision job sends (none for a job with text), rendered now from
    the file: the ledger keeps neither the PDF nor its images.

    PermanentProviderError, naming the file or the setting, when the model in ``[llm]``
    takes no images (the job was queued under another one) or the file is gone or changed.
    """
    if job.payload.get("text_source") != "vision":
        return ()
    cfg = settings.invoices
    refused = image_support(settings.llm.provider, settings.llm.model,
                            declared=cfg.model_takes_images)
    if refused is not None:
        raise PermanentProviderError(
            f"job {job.id}: invoice {job.source_id} is a scan to read from its page images, "
            f"but {refused}", "Fix [llm] or [invoices], then `enrich jobs retry`.",
            error_class="NoVision")
    wanted = len(job.payload.get("vision_pages") or []) or cfg.vision_max_pages
    rendered = render_pages(Path(job.source_id), str(job.payload.get("sha256") or ""),
                            max_pages=wanted, max_px=cfg.vision_max_px)
    if isinstance(rendered, PDFProblem):
        raise PermanentProviderError(f"job {job.id}: {rendered.reason}",
                                     "Then `enrich jobs retry`, or reject the job.",
                                     error_class={"unreadable": "FileGone",
                                                  "changed": "FileChanged"}.get(
                                                      rendered.code, "PagesNotRendered"))
    return tuple(rendered)


def render_invoice(job: Job, settings: Settings) -> tuple[RenderedPrompt, dict[str, Any]]:
    """The prompt for one invoice job and the document it is about."""
    doc = document(job)
    name = settings.invoices.template
    folder = settings.resolve(settings.prompts.dir) if settings.prompts.dir else None
    env = _environment(str(folder) if folder else None)
    try:
        template = env.get_template(name)
        source, _, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
        system = "".join(template.blocks["system"](template.new_context({}))).strip()
        text = doc["text"][:MAX_TEXT_CHARS]
        images = len(job.payload.get("vision_pages") or [])
        user = "".join(template.blocks["user"](template.new_context({
            "document": text, "pages": doc["pages"] or "?", "images": images,
            "text_source": _TEXT_SOURCES.get(str(doc["text_source"]), "from the PDF")})))
    except (jinja2.TemplateError, KeyError) as exc:
        raise ConfigError(f"invoice prompt template {name}: {exc}",
                          "Fix the template ([invoices] template, [prompts] dir); it needs a "
                          "system and a user block.") from None
    if user.count(FENCE_OPEN) != 1 or FENCE_OPEN in system:
        raise ConfigError(f"invoice prompt template {name}: the document must appear once, "
                          "as {{ document | untrusted }}, in the user block only",
                          "Fix the template.")
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    rendered = RenderedPrompt(template_name=name, template_hash=digest, system=system,
                              user=user.strip(), fields=tuple(Invoice.FIELDS),
                              output_model=Invoice,
                              system_hash=hashlib.sha256(system.encode()).hexdigest())
    return rendered, doc


def vision_sizes(job: Job) -> list[tuple[int, int]]:
    """Pixel sizes of the page images a job sends (recorded when it was added)."""
    return [(int(w), int(h)) for w, h in job.payload.get("vision_pages") or []]


def check(fields: dict[str, Any], job_payload: dict[str, Any]) -> tuple[dict[str, Any],
                                                                        list[dict[str, str]]]:
    """The invoice as stored (validated, JSON) and its named flags."""
    invoice = Invoice.model_validate(fields)
    if job_payload.get("text_source") == "vision":  # no text to ground the amounts in
        flags = [*check_invoice(invoice, None),
                 vision_flag(len(job_payload.get("vision_pages") or []))]
        return invoice.model_dump(mode="json"), flags
    return invoice.model_dump(mode="json"), check_invoice(invoice, job_payload.get("text"))


def estimate_tokens(jobs: list[Job], settings: Settings) -> tuple[int, int, int, int]:
    """(jobs with a model call, jobs read from embedded XML, input tokens, output tokens).

    The prompt of an invoice grows with its pages (the whole text goes in), so each waiting
    job's prompt is rendered from its stored text and counted, rather than a per-job guess.
    """
    from enrich.providers import estimate_output_tokens, estimate_prompt_tokens
    from enrich.providers.images import images_tokens

    schema = Invoice.model_json_schema()
    calls = embedded = tokens_in = tokens_out = 0
    for job in jobs:
        if embedded_invoice(job, settings) is not None:
            embedded += 1
            continue
        try:
            rendered, _ = render_invoice(job, settings)
        except EnrichError:
            continue  # it would fail, not cost
        calls += 1
        tokens_in += estimate_prompt_tokens(rendered.system, rendered.user, schema)
        tokens_in += images_tokens(settings.llm.provider, settings.llm.model,
                                   vision_sizes(job))
        tokens_out += estimate_output_tokens(schema, settings.llm.max_output_tokens)
    return calls, embedded, tokens_in, tokens_out
