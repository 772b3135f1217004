"""Where each SEO plugin keeps a product's title, meta description and focus keyword.

Yoast SEO, Rank Math and SEOPress store them as ordinary post meta, which the WooCommerce
REST API reads and writes through ``meta_data`` (merged by key; ``value: null`` deletes).
All in One SEO keeps them in its own ``wp_aioseo_posts`` table, which the products API
never sees, so it is deliberately not offered: a mapping that wrote post meta AIOSEO
ignores would look like success and change nothing (see docs/woocommerce.md).

enrich names the three fields neutrally (``seo_title``, ``meta_description``,
``focus_keyword``); this module is the one place that turns them into meta keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

SeoPlugin = Literal["yoast", "rankmath", "seopress", "none"]
SEO_FIELDS = ("seo_title", "meta_description", "focus_keyword")

META_KEYS: dict[str, dict[str, str]] = {
    "yoast": {
        "seo_title": "_yoast_wpseo_title",
        "meta_description": "_yoast_wpseo_metadesc",
        "focus_keyword": "_yoast_wpseo_focuskw",
    },
    "rankmath": {
        "seo_title": "rank_math_title",
        "meta_description": "rank_math_description",
        "focus_keyword": "rank_math_focus_keyword",
    },
    "seopress": {
        "seo_title": "_seopress_titles_title",
        "meta_description": "_seopress_titles_desc",
        "focus_keyword": "_seopress_analysis_target_kw",
    },
    "none": {},
}


def meta_keys(plugin: SeoPlugin | str) -> dict[str, str]:
    """Field name -> meta key for ``plugin`` (empty for ``none``)."""
    try:
        return META_KEYS[plugin]
    except KeyError:
        raise ValueError(f"unknown SEO plugin {plugin!r}; one of {', '.join(META_KEYS)}") from None


def writable_fields(plugin: SeoPlugin | str) -> tuple[str, ...]:
    """The SEO fields this store can hold; none when no supported plugin is configured."""
    return tuple(meta_keys(plugin))


def read_seo(meta_data: Iterable[Mapping[str, Any]] | None,
             plugin: SeoPlugin | str) -> dict[str, Any]:
    """The plugin's SEO values from a product's ``meta_data`` (absent key -> ``None``).

    When a key appears twice the last one wins, as WordPress returns the newest row last.
    """
    keys = meta_keys(plugin)
    if not keys:
        return {}
    by_key = {v: k for k, v in keys.items()}
    found: dict[str, Any] = dict.fromkeys(keys)
    for entry in meta_data or ():
        if isinstance(entry, Mapping):
            field = by_key.get(entry.get("key"))  # type: ignore[arg-type]
            if field is not None:
                found[field] = entry.get("value")
    return found


def to_meta_data(fields: Mapping[str, str | None], plugin: SeoPlugin | str) -> list[dict[str, Any]]:
    """``meta_data`` entries that write ``fields`` (``None`` deletes the key in the store)."""
    keys = meta_keys(plugin)
    unknown = [name for name in fields if name not in keys]
    if unknown:
        where = f"store.seo_plugin = {plugin!r}"
        raise ValueError(f"{', '.join(unknown)} cannot be written with {where}")
    return [{"key": keys[name], "value": value} for name, value in fields.items()]
