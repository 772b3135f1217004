"""What the review reads: a draft joined with its job and the store's snapshot.

The queries live in ``enrich.ledger.drafts`` (the ledger owns SQL); this module keeps the
review's names for them and reads the store's current text out of a snapshot. Every write
goes through ``Ledger`` methods so the state machine stays the one gate for status changes.
"""

from __future__ import annotations

from typing import Any

from enrich.ledger.drafts import DraftView, categories_of, draft_view, draft_views

#: ``meta`` key prefix under which each export of the review page is recorded.
EXPORTS_META_PREFIX = "review_export:"

#: Key a guard flag carries (in ``drafts.flags``) once a reviewer approved the draft after
#: the page asked "this draft is flagged: approve anyway?"; its value is the UTC time.
#: The flags JSON is where the record lives because the acknowledgement is about those
#: flags: a redraft or a re-checked edit replaces them, and the acknowledgement with them.
ACK_KEY = "acknowledged_at"

#: Where each SEO plugin keeps a field in ``meta_data`` (WooCommerce REST v3 shape).
SEO_META_KEYS: dict[str, tuple[str, ...]] = {
    "seo_title": ("_yoast_wpseo_title", "rank_math_title", "_seopress_titles_title"),
    "meta_description": ("_yoast_wpseo_metadesc", "rank_math_description",
                         "_seopress_titles_desc"),
    "focus_keyword": ("_yoast_wpseo_focuskw", "rank_math_focus_keyword",
                      "_seopress_analysis_target_kw"),
}


def current_text(snapshot: dict[str, Any] | None, name: str) -> str:
    """The store's current text for a draft field, from the sync snapshot ('' if none).

    Sync may store SEO fields flat (``seo_title``) or leave them in ``meta_data`` under the
    plugin's key; both are read so the page shows what a publish would replace.
    """
    if not snapshot:
        return ""
    value = snapshot.get(name)
    if isinstance(value, str):
        return value
    if value is not None and not isinstance(value, dict | list):
        return str(value)
    seo = snapshot.get("seo")
    if isinstance(seo, dict) and isinstance(seo.get(name), str):
        return str(seo[name])
    for key in SEO_META_KEYS.get(name, ()):
        for meta in snapshot.get("meta_data") or []:
            if isinstance(meta, dict) and meta.get("key") == key and meta.get("value"):
                return str(meta["value"])
    if name == "image_alt":
        images = snapshot.get("images") or []
        if images and isinstance(images[0], dict):
            return str(images[0].get("alt") or "")
    return ""


#: A draft as the reviewer sees it: the same record publish reads, from the same query.
ReviewItem = DraftView
#: Drafts whose job is in one of ``statuses`` (any status if empty), by job id.
review_items = draft_views
#: One job's draft as a ReviewItem, whatever its status (None if it has no draft).
review_item = draft_view


__all__ = ["ACK_KEY", "EXPORTS_META_PREFIX", "SEO_META_KEYS", "ReviewItem", "categories_of",
           "current_text", "review_item", "review_items"]
