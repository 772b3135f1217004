"""The product record of the sandbox store: defaults, derived fields, rendering, writes.

Products are held as plain dicts with the wc/v3 edit-context fields (raw descriptions) plus
a few private ``_``-prefixed fields (epoch seconds for dates) that never reach the wire.
Rendering builds the response in the real key order; view context runs the descriptions
through ``wpautop`` as WordPress does. Writes follow what the recorded store does, quirks
included: schema type checks on single writes, none in batches, ``meta_data`` merged by key.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from enrich.sandbox.store_wpautop import view_description, view_short_description

PRODUCT_KEYS = (
    "id", "name", "slug", "permalink", "date_created", "date_created_gmt", "date_modified",
    "date_modified_gmt", "type", "status", "featured", "catalog_visibility", "description",
    "short_description", "sku", "price", "regular_price", "sale_price", "date_on_sale_from",
    "date_on_sale_from_gmt", "date_on_sale_to", "date_on_sale_to_gmt", "on_sale", "purchasable",
    "total_sales", "virtual", "downloadable", "downloads", "download_limit", "download_expiry",
    "external_url", "button_text", "tax_status", "tax_class", "manage_stock", "stock_quantity",
    "backorders", "backorders_allowed", "backordered", "low_stock_amount", "sold_individually",
    "weight", "dimensions", "shipping_required", "shipping_taxable", "shipping_class",
    "shipping_class_id", "reviews_allowed", "average_rating", "rating_count", "upsell_ids",
    "cross_sell_ids", "parent_id", "purchase_note", "categories", "brands", "tags", "images",
    "attributes", "default_attributes", "variations", "grouped_products", "menu_order",
    "price_html", "related_ids", "meta_data", "stock_status", "has_options", "post_password",
    "global_unique_id",
)
EDIT_ONLY_KEYS = ("permalink_template", "generated_slug")
VARIATION_KEYS = (
    "id", "type", "date_created", "date_created_gmt", "date_modified", "date_modified_gmt",
    "description", "permalink", "sku", "global_unique_id", "price", "regular_price",
    "sale_price", "date_on_sale_from", "date_on_sale_from_gmt", "date_on_sale_to",
    "date_on_sale_to_gmt", "on_sale", "status", "purchasable", "virtual", "downloadable",
    "downloads", "download_limit", "download_expiry", "tax_status", "tax_class",
    "manage_stock", "stock_quantity", "stock_status", "backorders", "backorders_allowed",
    "backordered", "low_stock_amount", "weight", "dimensions", "shipping_class",
    "shipping_class_id", "image", "gallery_image_ids", "attributes", "menu_order",
    "meta_data", "name", "parent_id",
)

PRODUCT_TYPES = ("simple", "grouped", "external", "variable")
POST_STATUSES = ("draft", "pending", "private", "publish", "future", "auto-draft", "trash")
UNCATEGORIZED = {"id": 15, "name": "Uncategorized", "slug": "uncategorized"}
DERIVED_KEYS = frozenset({
    "id", "permalink", "date_created", "date_created_gmt", "date_modified",
    "date_modified_gmt", "price", "on_sale", "purchasable", "backorders_allowed",
    "backordered", "shipping_required", "shipping_taxable", "price_html", "related_ids",
    "has_options", "variations", "permalink_template", "generated_slug", "_links",
})
# WooCommerce keeps these in post meta but maps them to product props: never plain meta.
INTERNAL_META_KEYS = frozenset({
    "_sku", "_price", "_regular_price", "_sale_price", "_sale_price_dates_from",
    "_sale_price_dates_to", "_stock", "_stock_status", "_manage_stock", "_backorders",
    "_low_stock_amount", "_sold_individually", "_weight", "_length", "_width", "_height",
    "_tax_status", "_tax_class", "_virtual", "_downloadable", "_downloadable_files",
    "_download_limit", "_download_expiry", "_product_attributes", "_default_attributes",
    "_upsell_ids", "_crosssell_ids", "_purchase_note", "_thumbnail_id",
    "_product_image_gallery", "_wc_average_rating", "_wc_rating_count", "_wc_review_count",
    "_variation_description", "_global_unique_id", "_edit_lock", "_edit_last",
    "_product_version", "total_sales", "_children", "_featured", "_visibility",
})
_WORD = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    return _WORD.sub("-", text.lower()).strip("-")


class SiteTime:
    """The site's timezone: WordPress shows local wall-clock dates next to the GMT ones.

    ``America/New_York`` by default, as recorded (UTC-5 in November, UTC-4 in summer); a
    fixed offset when the zone database is missing or a fixed offset is asked for.
    """

    def __init__(self, zone: str | None = "America/New_York",
                 fixed_offset_hours: float = -5.0) -> None:
        self._zone = None
        if zone:
            try:
                from zoneinfo import ZoneInfo

                self._zone = ZoneInfo(zone)
            except (ImportError, KeyError, ValueError):
                self._zone = None
        self._fixed = int(fixed_offset_hours * 3600)
        self._offsets: dict[int, int] = {}

    def offset(self, ts: int) -> int:
        if self._zone is None:
            return self._fixed
        delta = datetime.fromtimestamp(ts, UTC).astimezone(self._zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else self._fixed

    def local(self, ts: int) -> int:
        """UTC epoch seconds -> the local wall clock, as naive epoch seconds."""
        if self._zone is None:
            return ts + self._fixed
        hour = ts // 3600  # offsets change on the hour: cache per hour
        offset = self._offsets.get(hour)
        if offset is None:
            if len(self._offsets) > 100_000:
                self._offsets.clear()
            offset = self._offsets[hour] = self.offset(ts)
        return ts + offset

    def utc(self, naive_local: int) -> int:
        """Local wall-clock time (naive epoch seconds) -> UTC epoch seconds."""
        if self._zone is None:
            return naive_local - self._fixed
        wall = datetime.fromtimestamp(naive_local, UTC).replace(tzinfo=self._zone)
        return int(wall.timestamp())


def fmt_time(ts: int | None) -> str | None:
    if ts is None:
        return None
    return _fmt_time(ts)


@lru_cache(maxsize=1 << 17)
def _fmt_time(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()[:19]


def parse_naive(value: str) -> int | None:
    """Seconds since the epoch for ``YYYY-MM-DDTHH:MM:SS`` read as UTC; None if unparsable."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "T"))
    except (ValueError, AttributeError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


# --- type checks, as WordPress's rest_validate_value_from_schema does them -----------------

def is_rest_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, str):
        try:
            return float(value).is_integer()
        except ValueError:
            return False
    return False


def is_rest_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int) and value in (0, 1):
        return True
    return isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "")


def to_bool(value: Any) -> bool:
    """``wc_string_to_bool``: anything but the truthy spellings is false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value == 1
    return isinstance(value, str) and value.lower() in ("1", "yes", "true", "on")


_STRING = "string"
_INTEGER = "integer"
_BOOLEAN = "boolean"
_ARRAY = "array"
_OBJECT = "object"
_NUMBER = "number"

# field -> (type, enum or None, item type for arrays)
PRODUCT_SCHEMA: dict[str, tuple[str, tuple[str, ...] | None, str | None]] = {
    "name": (_STRING, None, None),
    "slug": (_STRING, None, None),
    "date_created": (_STRING, None, None),
    "date_created_gmt": (_STRING, None, None),
    "type": (_STRING, PRODUCT_TYPES, None),
    "status": (_STRING, POST_STATUSES, None),
    "featured": (_BOOLEAN, None, None),
    "catalog_visibility": (_STRING, ("visible", "catalog", "search", "hidden"), None),
    "description": (_STRING, None, None),
    "short_description": (_STRING, None, None),
    "sku": (_STRING, None, None),
    "global_unique_id": (_STRING, None, None),
    "regular_price": (_STRING, None, None),
    "sale_price": (_STRING, None, None),
    "date_on_sale_from": (_STRING, None, None),
    "date_on_sale_from_gmt": (_STRING, None, None),
    "date_on_sale_to": (_STRING, None, None),
    "date_on_sale_to_gmt": (_STRING, None, None),
    "virtual": (_BOOLEAN, None, None),
    "downloadable": (_BOOLEAN, None, None),
    "downloads": (_ARRAY, None, _OBJECT),
    "download_limit": (_INTEGER, None, None),
    "download_expiry": (_INTEGER, None, None),
    "external_url": (_STRING, None, None),
    "button_text": (_STRING, None, None),
    "tax_status": (_STRING, ("taxable", "shipping", "none"), None),
    "tax_class": (_STRING, None, None),
    "manage_stock": (_BOOLEAN, None, None),
    "stock_quantity": (_INTEGER, None, None),
    "stock_status": (_STRING, ("instock", "outofstock", "onbackorder"), None),
    "backorders": (_STRING, ("no", "notify", "yes"), None),
    "low_stock_amount": (_INTEGER, None, None),
    "sold_individually": (_BOOLEAN, None, None),
    "weight": (_STRING, None, None),
    "dimensions": (_OBJECT, None, None),
    "shipping_class": (_STRING, None, None),
    "reviews_allowed": (_BOOLEAN, None, None),
    "upsell_ids": (_ARRAY, None, _INTEGER),
    "cross_sell_ids": (_ARRAY, None, _INTEGER),
    "parent_id": (_INTEGER, None, None),
    "purchase_note": (_STRING, None, None),
    "categories": (_ARRAY, None, _OBJECT),
    "brands": (_ARRAY, None, _OBJECT),
    "tags": (_ARRAY, None, _OBJECT),
    "images": (_ARRAY, None, _OBJECT),
    "attributes": (_ARRAY, None, _OBJECT),
    "default_attributes": (_ARRAY, None, _OBJECT),
    "grouped_products": (_ARRAY, None, _INTEGER),
    "menu_order": (_INTEGER, None, None),
    "meta_data": (_ARRAY, None, _OBJECT),
    "post_password": (_STRING, None, None),
}
VARIATION_SCHEMA = {
    k: v for k, v in PRODUCT_SCHEMA.items()
    if k in VARIATION_KEYS or k in ("image",)
} | {"status": (_STRING, ("draft", "pending", "private", "publish"), None),
     "image": (_OBJECT, None, None)}


def enum_message(name: str, enum: tuple[str, ...]) -> str:
    if len(enum) == 1:
        return f"{name} is not one of {enum[0]}."
    if len(enum) == 2:
        return f"{name} is not one of {enum[0]} and {enum[1]}."
    return f"{name} is not one of {', '.join(enum[:-1])}, and {enum[-1]}."


def _type_ok(kind: str, value: Any) -> bool:
    if kind == _STRING:
        return isinstance(value, str)
    if kind == _INTEGER:
        return is_rest_integer(value)
    if kind == _BOOLEAN:
        return is_rest_boolean(value)
    if kind == _ARRAY:
        return isinstance(value, list)
    if kind == _OBJECT:
        return isinstance(value, dict)
    if kind == _NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True


def param_error(name: str, code: str, message: str, data: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "data": data}


def validate_fields(body: dict[str, Any], schema: dict[str, tuple[str, Any, Any]]
                    ) -> dict[str, dict[str, Any]]:
    """Per-field schema errors of a single create/update, in schema order (as WordPress)."""
    errors: dict[str, dict[str, Any]] = {}
    for name, (kind, enum, item_kind) in schema.items():
        if name not in body or body[name] is None:
            continue
        value = body[name]
        if not _type_ok(kind, value):
            errors[name] = param_error(name, "rest_invalid_type",
                                       f"{name} is not of type {kind}.", {"param": name})
            continue
        if enum is not None and value not in enum:
            errors[name] = param_error(name, "rest_not_in_enum", enum_message(name, enum), None)
            continue
        if kind == _ARRAY and item_kind is not None:
            for i, item in enumerate(value):
                if not _type_ok(item_kind, item):
                    param = f"{name}[{i}]"
                    errors[name] = param_error(name, "rest_invalid_type",
                                               f"{param} is not of type {item_kind}.",
                                               {"param": param})
                    break
        if name in ("date_created", "date_created_gmt") and parse_naive(value) is None:
            errors[name] = param_error(name, "rest_invalid_date", "Invalid date.", None)
    return errors


# --- value normalisation -------------------------------------------------------------------

def format_decimal(value: Any) -> Any:
    """``wc_format_decimal`` as the store applies it to prices.

    "19,99" loses its comma ("1999"), text without digits clears the price, numbers become
    strings; a dict keeps its keys with emptied values, as the recorded batch trap shows.
    """
    if value is None:
        return ""
    if isinstance(value, dict):
        return {k: "" for k in value}
    if isinstance(value, list):
        return ["" for _ in value]
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(int(value))
    text = re.sub(r"[^0-9.\-]", "", str(value))
    return text if re.search(r"\d", text) else ""


def meta_value(value: Any) -> Any:
    """What WordPress gives back for a stored meta value: scalars as strings."""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _trim_number(value)
    return value


def to_int(value: Any, default: int | None = 0) -> int | None:
    if value is None or value == "":
        return default
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


def decimal_value(price: Any) -> float | None:
    if isinstance(price, str) and price not in ("", "-"):
        try:
            return float(price)
        except ValueError:
            return None
    return None


def money(price: Any) -> str:
    number = decimal_value(price)
    return f"{number:.2f}" if number is not None else "1.00"


def _amount_html(value: str) -> str:
    return ('<span class="woocommerce-Price-amount amount"><bdi><span class="woocommerce-'
            'Price-currencySymbol" translate="no">&#36;</span>' + value + "</bdi></span>")


def price_html(price: Any, regular: Any, on_sale: bool) -> str:
    """``get_price_html()`` of a simple product (USD, two decimals)."""
    if not isinstance(price, str):
        return _amount_html("1.00")
    if price == "":
        return ""
    if on_sale:
        regular_text = money(regular)
        sale = money(price)
        return (f'<del aria-hidden="true">{_amount_html(regular_text)}</del> <span class="'
                f'screen-reader-text">Original price was: &#036;{regular_text}.</span><ins '
                f'aria-hidden="true">{_amount_html(sale)}</ins><span class="screen-reader-text'
                f'">Current price is: &#036;{sale}.</span>')
    return _amount_html(money(price))


def range_price_html(low: float, high: float) -> str:
    """``get_price_html()`` of a variable product whose variations differ in price."""
    def amount(value: float) -> str:
        return _amount_html(f"{value:.2f}").replace(
            'class="woocommerce-Price-amount amount"',
            'class="woocommerce-Price-amount amount" aria-hidden="true"', 1)

    return (f'{amount(low)} <span aria-hidden="true">&ndash;</span> {amount(high)}<span '
            f'class="screen-reader-text">Price range: &#36;{low:.2f} through &#36;{high:.2f}'
            "</span>")


# --- records -------------------------------------------------------------------------------

# Field values every product starts with. A stored product holds only what differs, and
# reads fall back to these: 100,000 products then fit in a fraction of the memory. The
# shared lists/dicts here are never mutated; writes always assign new values.
PRODUCT_DEFAULTS: dict[str, Any] = {
    "featured": False, "catalog_visibility": "visible", "description": "",
    "short_description": "", "sku": "", "regular_price": "", "sale_price": "",
    "date_on_sale_from": None, "date_on_sale_to": None, "total_sales": 0,
    "virtual": False, "downloadable": False, "downloads": [], "download_limit": -1,
    "download_expiry": -1, "external_url": "", "button_text": "",
    "tax_status": "taxable", "tax_class": "", "manage_stock": False,
    "stock_quantity": None, "backorders": "no", "low_stock_amount": None,
    "sold_individually": False, "weight": "",
    "dimensions": {"length": "", "width": "", "height": ""}, "shipping_class": "",
    "shipping_class_id": 0, "reviews_allowed": True, "average_rating": "0",
    "rating_count": 0, "upsell_ids": [], "cross_sell_ids": [], "parent_id": 0,
    "purchase_note": "", "brands": [], "tags": [], "images": [],
    "attributes": [], "default_attributes": [], "grouped_products": [], "menu_order": 0,
    "stock_status": "instock", "post_password": "", "global_unique_id": "",
    "image": None, "gallery_image_ids": [], "price": "", "on_sale": False,
}


class Product(dict[str, Any]):
    """A stored product: a dict whose missing fields read as ``PRODUCT_DEFAULTS``."""

    __slots__ = ()

    def __missing__(self, key: str) -> Any:
        if key in PRODUCT_DEFAULTS:
            return PRODUCT_DEFAULTS[key]
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if key in self:
            return dict.__getitem__(self, key)
        return PRODUCT_DEFAULTS.get(key, default)


def default_product(pid: int, created: int) -> Product:
    return Product({"id": pid, "name": "Product", "slug": "", "type": "simple",
                    "status": "publish", "categories": [], "meta_data": [],
                    "_created": created, "_modified": created})


def _is_default(key: str, value: Any) -> bool:
    default = PRODUCT_DEFAULTS.get(key, _NO_DEFAULT)
    return default is not _NO_DEFAULT and type(default) is type(value) and default == value


_NO_DEFAULT = object()


def _timestamp_from(raw: dict[str, Any], gmt_key: str, local_key: str,
                    site: SiteTime) -> int | None:
    gmt = raw.get(gmt_key)
    if isinstance(gmt, str) and (ts := parse_naive(gmt)) is not None:
        return ts
    local = raw.get(local_key)
    if isinstance(local, str) and (ts := parse_naive(local)) is not None:
        return site.utc(ts)
    return None


def product_from_record(raw: dict[str, Any], pid: int, default_created: int,
                        site: SiteTime) -> Product:
    """A stored product from a wc/v3 product dict (catalog file, state file or create).

    The store takes the record's values without copying them (it never mutates a value in
    place), which keeps loading 100,000 products fast.
    """
    product = default_product(pid, default_created)
    for key, value in raw.items():
        if key in DERIVED_KEYS or key.startswith("_") or _is_default(key, value):
            continue
        product[key] = value
    created = _timestamp_from(raw, "date_created_gmt", "date_created", site)
    modified = _timestamp_from(raw, "date_modified_gmt", "date_modified", site)
    product["_created"] = created if created is not None else default_created
    product["_modified"] = modified if modified is not None else product["_created"]
    for which in ("from", "to"):
        ts = _timestamp_from(raw, f"date_on_sale_{which}_gmt", f"date_on_sale_{which}",
                             site)
        product[f"date_on_sale_{which}"] = ts
    product.pop("date_on_sale_from_gmt", None)
    product.pop("date_on_sale_to_gmt", None)
    if not product.get("slug"):
        product["slug"] = slugify(str(product.get("name") or "product")) or str(pid)
    product["meta_data"] = [
        {"id": m.get("id"), "key": m["key"], "value": m.get("value")}
        for m in product.get("meta_data") or [] if isinstance(m, dict) and "key" in m
    ]
    return product


def compute_price(product: dict[str, Any], now: int) -> None:
    """Derive ``price`` and ``on_sale`` from the regular/sale prices and the sale window."""
    regular, sale = product.get("regular_price"), product.get("sale_price")
    start, end = product.get("date_on_sale_from"), product.get("date_on_sale_to")
    in_window = (start is None or start <= now) and (end is None or end > now)
    if not isinstance(regular, str) or not isinstance(sale, str):
        product["price"] = regular if not isinstance(regular, str) else sale
        product["on_sale"] = False
        return
    if sale != "" and in_window:
        product["price"] = sale
        reg, sal = decimal_value(regular), decimal_value(sale)
        product["on_sale"] = reg is None or sal is None or sal < reg
    else:
        product["price"] = regular
        product["on_sale"] = False


def render_product(product: dict[str, Any], context: str, base: str, site: SiteTime,
                   related_ids: list[int], variations: list[dict[str, Any]], *,
                   copy_values: bool = True, only: frozenset[str] | None = None
                   ) -> dict[str, Any]:
    """The wc/v3 product object, in the real key order, for view or edit context.

    ``variations`` are the product's variation records in menu order (a variable product
    takes its price, sale flag and price range from them).
    """
    p = product
    pid = p["id"]
    out: dict[str, Any] = {}
    price = p.get("price", "")
    on_sale = bool(p.get("on_sale"))
    html: str | None = None
    if p.get("type") == "variable":
        numbers = sorted(x for x in (decimal_value(v.get("price")) for v in variations)
                         if x is not None)
        price = _trim_number(numbers[0]) if numbers else ""
        on_sale = any(v.get("on_sale") for v in variations)
        if numbers and numbers[0] != numbers[-1]:
            html = range_price_html(numbers[0], numbers[-1])
        elif numbers:
            html = _amount_html(f"{numbers[0]:.2f}")
        else:
            html = ""
    view = context != "edit"
    for key in PRODUCT_KEYS:
        if only is not None and key not in only:
            continue
        if key == "permalink":
            out[key] = f"{base}/product/{p['slug']}/"
        elif key in ("date_created", "date_modified"):
            ts = p["_created"] if key == "date_created" else p["_modified"]
            out[key] = fmt_time(site.local(ts))
        elif key in ("date_created_gmt", "date_modified_gmt"):
            out[key] = fmt_time(p["_created"] if key == "date_created_gmt" else p["_modified"])
        elif key in ("date_on_sale_from", "date_on_sale_to"):
            ts = p.get(key)
            out[key] = fmt_time(site.local(ts)) if ts is not None else None
        elif key in ("date_on_sale_from_gmt", "date_on_sale_to_gmt"):
            out[key] = fmt_time(p.get(key[:-4]))
        elif key == "description":
            out[key] = view_description(p["description"]) if view else p["description"]
        elif key == "short_description":
            out[key] = (view_short_description(p["short_description"]) if view
                        else p["short_description"])
        elif key == "price":
            out[key] = price
        elif key == "on_sale":
            out[key] = on_sale
        elif key == "average_rating":
            rating = p.get("average_rating")
            number = decimal_value(rating) if isinstance(rating, str) else None
            out[key] = f"{number:.2f}" if view and number is not None else rating
        elif key == "purchasable":
            out[key] = price != "" and p.get("status") != "trash"
        elif key == "backorders_allowed":
            out[key] = p.get("backorders") in ("yes", "notify")
        elif key == "backordered":
            out[key] = False
        elif key in ("shipping_required", "shipping_taxable"):
            out[key] = not p.get("virtual", False) if key == "shipping_required" else (
                not p.get("virtual", False) and p.get("tax_status") in ("taxable", "shipping"))
        elif key == "price_html":
            out[key] = html if html is not None else price_html(
                price, p.get("regular_price"), on_sale)
        elif key == "related_ids":
            out[key] = list(related_ids)
        elif key == "variations":
            out[key] = [v["id"] for v in variations]
        elif key == "has_options":
            out[key] = p.get("type") == "variable" or bool(p.get("grouped_products"))
        else:
            value = p.get(key)
            out[key] = clone(value) if copy_values and isinstance(value, list | dict) else value
    if not view:
        out["permalink_template"] = f"{base}/product/%pagename%/"
        out["generated_slug"] = slugify(str(p.get("name") or "")) or p["slug"]
    out["_links"] = {
        "self": [{"href": f"{base}/wp-json/wc/v3/products/{pid}",
                  "targetHints": {"allow": ["GET", "POST", "PUT", "PATCH", "DELETE"]}}],
        "collection": [{"href": f"{base}/wp-json/wc/v3/products"}],
    }
    if p.get("parent_id"):
        out["_links"]["up"] = [{"href": f"{base}/wp-json/wc/v3/products/{p['parent_id']}"}]
    return out


def clone(value: Any) -> Any:
    """A copy of JSON-shaped data (much faster than ``copy.deepcopy`` for it)."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def _trim_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def render_variation(v: dict[str, Any], parent_slug: str, base: str,
                     site: SiteTime) -> dict[str, Any]:
    """The object of ``/products/<id>/variations``: its own keys; description always autop'd."""
    out: dict[str, Any] = {}
    for key in VARIATION_KEYS:
        if key == "permalink":
            query = "&".join(f"attribute_{a.get('slug') or slugify(str(a.get('name')))}="
                             f"{slugify(str(a.get('option', '')))}"
                             for a in v.get("attributes") or [])
            out[key] = f"{base}/product/{parent_slug}/" + (f"?{query}" if query else "")
        elif key in ("date_created", "date_modified"):
            out[key] = fmt_time(site.local(v["_created"] if key == "date_created"
                                           else v["_modified"]))
        elif key in ("date_created_gmt", "date_modified_gmt"):
            out[key] = fmt_time(v["_created"] if key == "date_created_gmt" else v["_modified"])
        elif key in ("date_on_sale_from", "date_on_sale_to"):
            ts = v.get(key)
            out[key] = fmt_time(site.local(ts)) if ts is not None else None
        elif key in ("date_on_sale_from_gmt", "date_on_sale_to_gmt"):
            out[key] = fmt_time(v.get(key[:-4]))
        elif key == "description":
            out[key] = view_description(v.get("description") or "")
        elif key == "type":
            out[key] = "variation"
        elif key == "purchasable":
            out[key] = v.get("price", "") != ""
        elif key == "backorders_allowed":
            out[key] = v.get("backorders") in ("yes", "notify")
        elif key == "backordered":
            out[key] = False
        elif key == "name":
            out[key] = ", ".join(str(a.get("option", "")) for a in v.get("attributes") or []
                                 ) or v.get("name", "")
        else:
            value = v.get(key)
            out[key] = clone(value) if isinstance(value, list | dict) else value
    pid = v["parent_id"]
    out["_links"] = {
        "self": [{"href": f"{base}/wp-json/wc/v3/products/{pid}/variations/{v['id']}",
                  "targetHints": {"allow": ["GET", "POST", "PUT", "PATCH", "DELETE"]}}],
        "collection": [{"href": f"{base}/wp-json/wc/v3/products/{pid}/variations"}],
        "up": [{"href": f"{base}/wp-json/wc/v3/products/{pid}"}],
    }
    return out


def state_record(rendered: dict[str, Any]) -> str:
    return json.dumps(rendered, ensure_ascii=False, separators=(",", ":"))


class FatalBatchItem(Exception):
    """A batch item that crashes PHP (``name`` not a string): the whole request dies."""


def coerce_batch_item(item: dict[str, Any], variation: bool = False) -> dict[str, Any]:
    """What the store makes of an unvalidated batch item (no schema check in batches)."""
    out = dict(item)
    if "name" in out and isinstance(out["name"], dict | list):
        raise FatalBatchItem("name")
    for key in ("name", "description", "short_description", "sku", "purchase_note",
                "weight", "slug", "tax_class", "shipping_class", "external_url",
                "button_text", "global_unique_id"):
        if key in out and out[key] is not None and not isinstance(out[key], str):
            value = out[key]
            out[key] = (("1" if value else "") if isinstance(value, bool)
                        else str(value) if isinstance(value, int | float) else "")
    statuses = POST_STATUSES if not variation else ("draft", "pending", "private", "publish")
    if "status" in out and out["status"] not in statuses:
        out["status"] = "draft"
    for key in ("stock_quantity", "menu_order", "download_limit", "download_expiry",
                "low_stock_amount"):
        if key in out and out[key] is not None and not is_rest_integer(out[key]):
            out[key] = to_int(out[key]) if not isinstance(out[key], str) else _php_intval(
                out[key])
    for key in ("featured", "virtual", "downloadable", "manage_stock", "sold_individually",
                "reviews_allowed"):
        if key in out:
            out[key] = to_bool(out[key])
    for key in ("meta_data", "categories", "tags", "images", "attributes", "upsell_ids",
                "cross_sell_ids", "grouped_products", "default_attributes", "downloads"):
        if key in out and not isinstance(out[key], list):
            del out[key]
    if "categories" in out:
        out["categories"] = [c for c in out["categories"] if isinstance(c, dict)]
    return out


def _php_intval(text: str) -> int:
    match = re.match(r"\s*[+-]?\d+", text)
    return int(match.group(0)) if match else 0


def merge_meta(meta: list[dict[str, Any]], items: list[Any], next_meta_id: Any
               ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Merge ``meta_data`` by key; returns the new list and internal keys to map to props.

    Items without a key are ignored (even with an id); ``value: null`` deletes the key;
    the same key twice keeps the last value in one row; an existing key keeps its meta id.
    """
    result = [dict(m) for m in meta]
    internal: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            continue
        key = item["key"]
        if key in INTERNAL_META_KEYS:
            internal[key] = item.get("value")
            continue
        value = item.get("value")
        if value is None:
            result = [m for m in result if m["key"] != key]
            continue
        stored = meta_value(value)
        for m in result:
            if m["key"] == key:
                m["value"] = stored
                break
        else:
            result.append({"id": next_meta_id(), "key": key, "value": stored})
    return result, internal


def sale_timestamp(value: Any, site: SiteTime, gmt: bool) -> int | None:
    """Sale dates accept anything; an unparsable one is stored as the epoch (as recorded)."""
    if value is None or value == "":
        return None
    ts = parse_naive(str(value))
    if ts is None:
        return 0 if gmt else site.utc(0)
    return ts if gmt else site.utc(ts)


