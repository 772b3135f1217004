"""From a draft's fields to the body of one batch update item, and back.

Why it looks like this: a publish item, the values it replaces and the values a rollback
restores all have the same shape (a batch item body without its ``id``), so one function,
``values_in``, answers every question publish and rollback ask of the store: "what does the
store hold for exactly the keys this item writes?". An item is applied when that equals
what was written, untouched when it equals what was there before, and anything else means a
person (or another tool) changed the product in between.

Only the keys a draft sets are ever sent: text fields at the top level, SEO fields as
``meta_data`` entries (WooCommerce merges meta by key, so other meta are left alone), and
``images`` only when the draft owns image alt text (then every current image is sent back
by id, in order, so none is dropped from the gallery). A body ``id`` is never part of an
item here: the writer adds the product's own id and nothing else.

A variation (written through ``/products/<parent>/variations/batch``) takes the same item
shape for what it has: ``description`` and meta. The store returns a variation's
description formatted in every context (``wc_format_content``: wpautop adds ``<p>`` and
``<br />``; the recorded PUT of "Variation description via REST" reads back as
"<p>Variation description via REST</p>\n"), so for a variation ``same`` compares the
description's visible text, not its bytes. It has no short description, its name is
made from its attributes, and its one ``image`` is not written by enrich (no recorded
exchange shows how the store treats an alt sent there), so those draft fields are skipped
with the reason.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from enrich.errors import InputError
from enrich.woo import seo

#: Draft fields written as top-level product fields.
TEXT_FIELDS = ("name", "description", "short_description")
#: Draft fields written as SEO plugin meta.
SEO_FIELDS = seo.SEO_FIELDS
#: Draft fields written through the product's images.
IMAGE_FIELDS = ("image_alt",)
PUBLISHABLE = TEXT_FIELDS + SEO_FIELDS + IMAGE_FIELDS
#: Draft fields a variation cannot take, and why.
NOT_ON_VARIATIONS = {
    "name": "a variation's name is made from its attributes; it is not written",
    "short_description": "a variation has no short description",
    "image_alt": "variation images are not written by enrich (only products' images are)",
}

def seo_meta_key(plugin: str, draft_field: str) -> str | None:
    """The meta key ``plugin`` stores ``draft_field`` under, or None when it has none."""
    try:
        return seo.meta_keys(plugin).get(draft_field)
    except ValueError:
        return None


@dataclass
class ItemBuild:
    """The item to send for one product, or why it cannot be sent."""

    item: dict[str, Any] = field(default_factory=dict)
    fields: list[str] = field(default_factory=list)  # the draft fields the item carries
    skipped: dict[str, str] = field(default_factory=dict)  # draft field -> why not sent


def effective_fields(fields: Mapping[str, Any] | None,
                     edited: Mapping[str, Any] | None) -> dict[str, Any]:
    """The draft as approved: a reviewer's edit wins over the generated value, per field."""
    merged = dict(fields or {})
    merged.update(edited or {})
    return merged


def _text(source_id: str, name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InputError(
            f"product {source_id}: draft field {name} is {type(value).__name__}, not text",
            "Edit the draft in the review page (or reject it) and publish again.")
    if "\x00" in value:
        raise InputError(f"product {source_id}: draft field {name} contains a NUL byte",
                         "Edit the draft in the review page (or reject it) and publish again.")
    return value


def build_item(source_id: str, draft: Mapping[str, Any], *, seo_plugin: str,
               current: Mapping[str, Any], wanted: list[str] | None = None,
               variation: bool = False) -> ItemBuild:
    """The batch item (no ``id``) that writes the draft's set fields onto ``current``.

    ``wanted`` is the list of fields sync asked for (the job payload); a draft field outside
    it is not sent, so a model that also rewrote a good name cannot overwrite it. Empty and
    missing values are never sent: publish fills gaps, it does not blank fields. With
    ``variation`` the fields a variation cannot take are skipped (``NOT_ON_VARIATIONS``).
    Raises InputError naming the product and field when a value cannot be sent at all.
    """
    build = ItemBuild()
    meta: list[dict[str, Any]] = []
    for name, value in draft.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if name not in PUBLISHABLE:
            build.skipped[name] = "not a field enrich writes to the store"
            continue
        if variation and name in NOT_ON_VARIATIONS:
            build.skipped[name] = NOT_ON_VARIATIONS[name]
            continue
        if wanted is not None and name not in wanted:
            build.skipped[name] = "sync did not ask for it (the store's value is kept)"
            continue
        if name in TEXT_FIELDS:
            build.item[name] = _text(source_id, name, value)
        elif name in SEO_FIELDS:
            key = seo_meta_key(seo_plugin, name)
            if key is None:
                raise InputError(
                    f"product {source_id}: draft field {name} needs an SEO plugin, but "
                    f"store.seo_plugin is {seo_plugin!r}",
                    "Set [store] seo_plugin to yoast, rankmath or seopress, or remove "
                    f"{name} from [sync] fields.")
            meta.append({"key": key, "value": _text(source_id, name, value)})
        else:
            build.item["images"] = _images_with_alt(source_id, value, current)
        build.fields.append(name)
    if meta:
        build.item["meta_data"] = meta
    return build


def _images_with_alt(source_id: str, value: Any, current: Mapping[str, Any]) -> list[dict]:
    """Every current image by id, in order, with the draft's alt text where one is missing.

    ``value`` is one text (the featured image), a list (by position, as the prompts produce
    it) or a mapping of image id to text. Sending the whole list is what keeps the gallery
    intact: WooCommerce treats ``images`` as the complete new list. Alt text already in the
    store is kept, like every other field publish only fills.
    """
    images = [img for img in current.get("images") or [] if isinstance(img, Mapping)]
    if not images:
        raise InputError(f"product {source_id}: draft field image_alt is set but the product "
                         "has no image in the store",
                         "Add the image in the store first, or reject the draft.")
    if isinstance(value, str):
        alts: dict[int, str] = {0: value}
    elif isinstance(value, list):
        alts = {i: _text(source_id, f"image_alt[{i}]", v) for i, v in enumerate(value)
                if v is not None}
    elif isinstance(value, Mapping):
        position = {str(img.get("id")): i for i, img in enumerate(images)}
        alts = {}
        for image_id, text in value.items():
            if str(image_id) not in position:
                raise InputError(f"product {source_id}: draft field image_alt names image "
                                 f"{image_id}, which the product no longer has",
                                 "Re-sync and redraft the product.")
            alts[position[str(image_id)]] = _text(source_id, f"image_alt[{image_id}]", text)
    else:
        raise InputError(f"product {source_id}: draft field image_alt is "
                         f"{type(value).__name__}, not text",
                         "Edit the draft in the review page (or reject it).")
    # Fill gaps only: an image that already has alt text keeps it.
    return [{"id": img.get("id"),
             "alt": img.get("alt") if (img.get("alt") or "").strip() else alts.get(i, "")}
            for i, img in enumerate(images)]


#: Fields WordPress unslashes on the way in (``wp_insert_post`` for products,
#: ``update_post_meta`` for a variation's description); meta values are stored as sent.
SLASHED_FIELDS = ("description", "short_description")


def wire(item: Mapping[str, Any]) -> dict[str, Any]:
    """``item`` as it must be sent so the store keeps exactly ``item``.

    WordPress removes one level of backslashes from the two HTML fields
    (``copy_normalisation.json``: ``\\n`` sent comes back as ``n``), so each backslash is
    doubled there. Everything else in an item (meta, images, the name) is stored as sent.
    """
    out = dict(item)
    for key in SLASHED_FIELDS:
        value = out.get(key)
        if isinstance(value, str) and "\\" in value:
            out[key] = value.replace("\\", "\\\\")
    return out


def published_fields(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Draft field -> value, from an item's keys as the store holds them after a write.

    Image alt texts are left out: sync judges them per image (bare or not), never by value.
    """
    by_key = {key: name for keys in seo.META_KEYS.values() for name, key in keys.items()}
    out: dict[str, Any] = {}
    for key, value in stored.items():
        if key in TEXT_FIELDS:
            out[key] = value
        elif key == "meta_data":
            for entry in value or []:
                name = by_key.get(entry.get("key"))
                if name is not None:
                    out[name] = entry.get("value")
    return out


def _norm(value: Any) -> Any:
    """The store returns meta numbers and booleans as strings; compare like it stores."""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, int | float):
        return str(value)
    return value


def _meta(product: Mapping[str, Any]) -> dict[str, Any]:
    """Meta by key; when a key appears twice the last wins, as in ``enrich.woo.seo``."""
    found: dict[str, Any] = {}
    for entry in product.get("meta_data") or []:
        if isinstance(entry, Mapping) and "key" in entry:
            found[entry["key"]] = entry.get("value")
    return found


def values_in(product: Mapping[str, Any], item: Mapping[str, Any]) -> dict[str, Any]:
    """What ``product`` holds for exactly the keys ``item`` writes, in the item's shape.

    A meta key the product does not have is ``None``: sending that back deletes the key,
    which is what a rollback of a newly added SEO key must do.
    """
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key == "meta_data":
            meta = _meta(product)
            out[key] = [{"key": m["key"], "value": _norm(meta.get(m["key"]))} for m in value]
        elif key == "images":
            out[key] = [{"id": img.get("id"), "alt": img.get("alt") or ""}
                        for img in product.get("images") or [] if isinstance(img, Mapping)]
        else:
            out[key] = product.get(key)
    return out


def normalized(item: Mapping[str, Any]) -> dict[str, Any]:
    """``item`` with meta values as the store would return them, for comparisons."""
    out = dict(item)
    if "meta_data" in out:
        out["meta_data"] = [{"key": m["key"], "value": _norm(m.get("value"))}
                            for m in out["meta_data"]]
    return out


#: Fields the store formats when it reads a variation back (see the module docstring).
FORMATTED_ON_VARIATIONS = ("description",)
_TAGS = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def _visible(value: Any) -> Any:
    """Text as a reader sees it: tags dropped, entities decoded, whitespace collapsed."""
    if not isinstance(value, str):
        return value
    return _SPACE.sub(" ", html.unescape(_TAGS.sub(" ", value))).strip()


def same(a: Mapping[str, Any], b: Mapping[str, Any], *, variation: bool = False) -> bool:
    """Whether two items hold the same values (for a variation: its description as text)."""
    x, y = normalized(a), normalized(b)
    if variation:
        for key in FORMATTED_ON_VARIATIONS:
            if key in x and key in y:
                x[key], y[key] = _visible(x[key]), _visible(y[key])
    return x == y


def without_unchanged(item: dict[str, Any], previous: dict[str, Any]
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Drop the keys whose store value already equals the draft's (nothing to write)."""
    new_item: dict[str, Any] = {}
    new_prev: dict[str, Any] = {}
    for key, value in item.items():
        if key == "meta_data":
            pairs = [(m, p) for m, p in zip(value, previous[key], strict=True)
                     if _norm(m["value"]) != p["value"]]
            if pairs:
                new_item[key] = [m for m, _ in pairs]
                new_prev[key] = [p for _, p in pairs]
        elif value != previous.get(key):
            new_item[key] = value
            new_prev[key] = previous.get(key)
    return new_item, new_prev


def changes(item: Mapping[str, Any], previous: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One ``{field, old, new}`` per key the item changes, for plans and reports."""
    rows: list[dict[str, Any]] = []
    for key, value in item.items():
        if key == "meta_data":
            for new, old in zip(value, previous.get(key) or [], strict=False):
                rows.append({"field": f"meta:{new['key']}", "old": old.get("value"),
                             "new": new.get("value")})
        elif key == "images":
            olds = {img.get("id"): img.get("alt") for img in previous.get(key) or []}
            for img in value:
                if olds.get(img.get("id")) != img.get("alt"):
                    rows.append({"field": f"image:{img.get('id')}:alt",
                                 "old": olds.get(img.get("id")), "new": img.get("alt")})
        else:
            rows.append({"field": key, "old": previous.get(key), "new": value})
    return rows
