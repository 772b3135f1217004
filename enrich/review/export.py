"""The review page: one self-contained HTML file built from a Jinja2 template.

Why it is built this way: the page must work opened from disk, offline, on the store owner's
laptop, so CSS and JS are inline and nothing is fetched. Product text is untrusted (a
supplier can name a product ``<script>…``), so the template autoescapes, the drafts travel
as JSON inside ``<script type="application/json">`` with ``<``, ``>`` and ``&`` escaped
(Jinja's ``tojson``), and the page's script renders every piece of it with
``textContent``. A Content-Security-Policy with a per-page nonce refuses any script that
is not the page's own, as a second wall behind the escaping.

The one place product HTML is *rendered* (the shop view) is a ``sandbox=""`` iframe whose
``srcdoc`` is built from text cleaned here with nh3 and the guards' own tag allow-list
(``[guards] html_tags``, no attributes), then walked again in the page with the same list:
what the reviewer sees is what the shop would show, and nothing in it can run or load.

The page must open 10,000 drafts in a couple of seconds, so each draft carries only its
text: the diff, the rendered preview and the row are built in the page for the rows and
the draft in view, not here for all of them.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nh3
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from enrich.config import GuardsConfig
from enrich.errors import UsageError
from enrich.guards.draft import HTML_FIELDS
from enrich.guards.html import html_cleaner
from enrich.ledger import Ledger
from enrich.review.invoices import MAX_IMAGES, invoice_extra, invoice_fields
from enrich.review.limits import GUARD_EXPLANATIONS, explain, field_limits
from enrich.review.queries import (
    ACK_KEY,
    EXPORTS_META_PREFIX,
    ReviewItem,
    current_text,
    review_items,
)
from enrich.review.sample import stratified_sample

FIELD_LABELS = {
    "name": "Product name",
    "description": "Description",
    "short_description": "Short description",
    "seo_title": "SEO title",
    "meta_description": "Meta description",
    "focus_keyword": "Focus keyword",
    "image_alt": "Image alt text",
}
FIELD_ORDER = list(FIELD_LABELS)
#: Snapshot keys that say nothing about the product (ids, links, dates, store plumbing).
_NOISE = frozenset({"id", "_links", "permalink", "date_created", "date_created_gmt",
                    "date_modified", "date_modified_gmt", "slug", "menu_order",
                    "related_ids", "upsell_ids", "cross_sell_ids", "grouped_products",
                    "variations", "average_rating", "rating_count", "total_sales",
                    "price_html", "has_options", "post_password", "reviews_allowed",
                    "purchasable", "download_limit", "download_expiry", "downloads",
                    "shipping_class_id", "low_stock_amount", "images"})
_SOURCE_FIRST = ("name", "sku", "type", "categories", "tags", "attributes", "regular_price",
                 "sale_price", "short_description", "description")
MAX_SOURCE_VALUE = 4000
#: Below this share of the visible words in common (difflib ratio), the draft replaced the
#: store's text rather than edited it: the page shows old and new side by side, not a diff.
DIFF_SIMILARITY = 0.5


def _env() -> Environment:
    return Environment(loader=PackageLoader("enrich.review", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _text(value: Any) -> str:
    """A source value as one line a person can read."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
        parts = []
        for v in value:
            if "options" in v and "name" in v:
                parts.append(f"{v['name']}: {', '.join(str(o) for o in v['options'])}")
            elif "key" in v and "value" in v:
                parts.append(f"{v['key']} = {v['value']}")
            else:
                parts.append(str(v.get("name") or json.dumps(v, ensure_ascii=False)))
        text = "; ".join(parts)
    elif isinstance(value, list):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, dict):
        text = ", ".join(f"{k}: {v}" for k, v in value.items() if v not in ("", None))
    else:
        text = str(value)
    return text if len(text) <= MAX_SOURCE_VALUE else text[:MAX_SOURCE_VALUE] + " …"


def source_rows(source: dict[str, Any], shown: frozenset[str] = frozenset()
                ) -> list[list[str]]:
    """[key, text] pairs of the data the draft was written from, most useful first.

    ``shown`` are keys the page already shows as the store's current text of a draft field
    (a description can be most of a draft's bytes; at 10,000 drafts twice is too many).
    """
    keys = [k for k in _SOURCE_FIRST if k in source]
    keys += sorted(k for k in source if k not in keys and k not in _NOISE)
    rows: list[list[str]] = []
    for key in keys:
        if key in shown:
            continue
        value = source[key]
        if value in ("", None, [], {}):
            continue
        if key == "meta_data" and isinstance(value, list):
            value = [m for m in value if isinstance(m, dict) and
                     not str(m.get("key", "")).startswith("_")]
            if not value:
                continue
        rows.append([str(key), _text(value)])
    return rows


def _field_order(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: (FIELD_ORDER.index(n) if n in FIELD_ORDER else 99, n))


def _shop_cleaner(tags: frozenset[str]) -> nh3.Cleaner:
    # The HTML guard's own cleaner (enrich.guards.html), so the preview and the guard never
    # disagree; links go too: a click inside the preview must not leave a page that is
    # offline by design.
    return html_cleaner(tags - {"a"})


def shop_html(text: str, tags: list[str]) -> str:
    """``text`` as the shop would render it: the guards' allow-list, no attributes, no links.

    The guard's own ``sanitize_html`` also works out what it removed, in words, which costs
    five times the cleaning; at 10,000 drafts that is most of an export.
    """
    if "<" not in text and "&" not in text:
        return text
    return _shop_cleaner(frozenset(tags)).clean(text)


def _html_or_none(text: str, tags: list[str]) -> str | None:
    """The cleaned text only when cleaning changed it (most drafts are clean already)."""
    cleaned = shop_html(text, tags)
    return cleaned if cleaned != text else None


def flag_data(flag: dict[str, Any]) -> dict[str, Any]:
    """A guard flag as the page shows it, with whether a reviewer approved it knowingly."""
    return {"guard": str(flag.get("guard", "?")), "field": str(flag.get("field") or ""),
            "detail": str(flag.get("detail") or ""),
            "explanation": explain(str(flag.get("guard", "?"))),
            "acknowledged": bool(flag.get(ACK_KEY))}


def item_data(item: ReviewItem, limits: dict[str, tuple[int | None, int | None]],
              tags: list[str] | None = None, *, image: bool = False) -> dict[str, Any]:
    """What the page needs about one draft (all text travels as data, rendered as text).

    ``image``: render page 1 of an invoice's PDF into the page (see ``review.invoices``).
    """
    if item.kind == "invoice":
        return {**_common(item), "fields": invoice_fields(item), "source": [],
                "missing": [], "invoice": invoice_extra(item, image=image)}
    allowed = list(GuardsConfig().html_tags) if tags is None else tags
    fields = []
    for name in _field_order(list(item.fields)):
        draft = item.fields.get(name)
        draft_text = draft if isinstance(draft, str) else json.dumps(draft, ensure_ascii=False)
        current = current_text(item.snapshot, name)
        edited = (item.edited_fields or {}).get(name)
        low, high = limits.get(name, (None, None))
        is_html = name in HTML_FIELDS
        field: dict[str, Any] = {
            "name": name, "label": FIELD_LABELS.get(name, name.replace("_", " ").capitalize()),
            "current": current, "draft": draft_text,
            "edited": edited if isinstance(edited, str) and edited != draft_text else None,
            "html": is_html, "min": low, "max": high,
            "editable": item.kind == "product" and isinstance(draft, str),
        }
        if is_html:
            # Only where nh3 changed something; the page falls back to the text itself.
            for key, text in (("current_html", current), ("draft_html", draft_text),
                              ("edited_html", field["edited"])):
                cleaned = _html_or_none(text, allowed) if text else None
                if cleaned is not None:
                    field[key] = cleaned
        fields.append(field)
    source = item.source()
    payload_extra = {k: v for k, v in item.payload.items() if k != "source"}
    shown = frozenset(f["name"] for f in fields if f["current"] and f["name"] != "name")
    rows = source_rows(source if isinstance(source, dict) else {}, shown)
    wanted = payload_extra.get("fields")
    why = payload_extra.get("why")
    if isinstance(why, dict) and why:
        rows.insert(0, ["why it needs copy", "; ".join(
            f"{FIELD_LABELS.get(str(k), str(k))}: {v}" for k, v in why.items())])
    elif isinstance(wanted, list) and wanted:
        rows.insert(0, ["fields to write", ", ".join(FIELD_LABELS.get(str(w), str(w))
                                                     for w in wanted)])
    return {
        **_common(item),
        "missing": (item.product or {}).get("missing") or payload_extra.get("fields") or [],
        "fields": fields,
        "source": rows,
    }


def _common(item: ReviewItem) -> dict[str, Any]:
    """What the page needs about any draft, whatever its kind."""
    return {
        "job_id": item.job_id, "draft_id": item.draft_id,
        "draft_created_at": item.draft_created_at, "kind": item.kind,
        "source_id": item.source_id, "status": item.status, "name": item.name,
        "sku": item.sku, "categories": item.categories,
        "flags": [flag_data(f) for f in item.flags],
        "template": item.template_name or "", "template_hash": (item.template_hash or "")[:10],
        "provider": item.provider or "", "model": item.model or "",
        "cost_usd": item.cost_usd, "note": item.reviewer_note or "",
        "reviewed_at": item.reviewed_at,
    }


def render_page(items: list[ReviewItem], *, mode: str = "file", export_id: str,
                ledger_path: str, token: str | None = None,
                selection: dict[str, Any] | None = None,
                ledger_counts: dict[str, int] | None = None,
                guards: GuardsConfig | None = None) -> str:
    """The whole page as one string; ``mode`` is ``file`` (download) or ``served`` (POST)."""
    if mode not in ("file", "served"):
        raise ValueError(f"unknown page mode {mode!r}")
    limits = field_limits(guards)
    tags = list((guards or GuardsConfig()).html_tags)
    nonce = secrets.token_urlsafe(16)
    data = {
        "config": {
            "mode": mode, "export_id": export_id, "ledger": ledger_path,
            "exported_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "token": token if mode == "served" else None,
            "selection": selection or {}, "ledger_counts": ledger_counts or {},
            "limits": {k: list(v) for k, v in limits.items()},
            "explanations": GUARD_EXPLANATIONS,
            "html_tags": tags, "diff_similarity": DIFF_SIMILARITY,
        },
        "items": [item_data(item, limits, tags,
                            image=item.kind == "invoice" and n < MAX_IMAGES)
                  for n, item in enumerate(items)],
    }
    template = _env().get_template("review.html.j2")
    return template.render(data=data, nonce=nonce, mode=mode, count=len(items),
                           export_id=export_id)


@dataclass
class ExportResult:
    path: Path | None
    export_id: str
    count: int
    matching: int
    html: str

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path) if self.path else None, "export_id": self.export_id,
                "drafts": self.count, "matching": self.matching}


def select_items(ledger: Ledger, *, statuses: tuple[str, ...] = ("drafted",),
                 flagged_only: bool = False, sample: int | None = None,
                 seed: int = 0, kind: str | None = None) -> tuple[list[ReviewItem], int]:
    """The drafts a page shows (of one ``kind``, or products and invoices together), and
    how many matched before sampling."""
    items = review_items(ledger, statuses=statuses, flagged_only=flagged_only, kind=kind)
    matching = len(items)
    if sample is not None:
        items = stratified_sample(items, sample, seed=seed)
    return items, matching


def new_export_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(4)


def ledger_counts(ledger: Ledger, kind: str | None) -> dict[str, int]:
    """Jobs per status of the kind a page shows (both kinds added up when it shows both)."""
    counts: dict[str, int] = {}
    for name, by_status in ledger.counts().items():
        if kind is None or name == kind:
            for status, n in by_status.items():
                if n:
                    counts[status] = counts.get(status, 0) + n
    return counts


def export_review(ledger: Ledger, out: Path | None, *, statuses: tuple[str, ...] = ("drafted",),
                  flagged_only: bool = False, sample: int | None = None, seed: int = 0,
                  guards: GuardsConfig | None = None, kind: str | None = None) -> ExportResult:
    """Write the review page for the selected drafts and record the export in the ledger.

    The export id is recorded (``meta``) so ``review import`` can tell a decisions file from
    this ledger from one saved against another.
    """
    items, matching = select_items(ledger, statuses=statuses, flagged_only=flagged_only,
                                   sample=sample, seed=seed, kind=kind)
    export_id = new_export_id()
    selection = {"statuses": list(statuses), "flagged_only": flagged_only, "sample": sample,
                 "matching": matching, "kind": kind}
    html = render_page(items, mode="file", export_id=export_id,
                       ledger_path=str(ledger.path.resolve()), selection=selection,
                       ledger_counts=ledger_counts(ledger, kind), guards=guards)
    if out is not None:
        try:
            out.write_text(html, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write the review page to {out}: {exc.strerror}",
                             "Pass --out with a path in a folder that exists and you can "
                             "write to.") from None
    ledger.set_meta(EXPORTS_META_PREFIX + export_id, json.dumps(
        {"at": dt.datetime.now(dt.UTC).isoformat(), "drafts": len(items),
         "path": str(out) if out else None}))
    return ExportResult(path=out, export_id=export_id, count=len(items), matching=matching,
                        html=html)
