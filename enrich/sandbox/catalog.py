"""Catalogs for the sandbox store: files a shop owner has, and synthetic supplier data.

``load_catalog`` reads what a store owner can export: a JSON array of wc/v3 product objects
(what the REST API returns, e.g. a state file) or WooCommerce's product CSV (BOM, the
importer's column names, variations attached to their parent by ``Parent`` SKU or
``id:NN``). ``synthetic_catalog`` makes sparse supplier-style catalogs of any size, cheaply
and deterministically, so tests and benchmarks have gaps to fill and data to fill them from.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from enrich.errors import InputError

CSV_TRUE = {"1", "yes", "true", "y"}
_PRODUCT_FIELDS = frozenset({"id", "name", "sku", "description", "short_description", "type",
                             "status", "regular_price", "slug", "parent_id"})


def load_catalog(path: Path, *, first_id: int = 1) -> list[dict[str, Any]]:
    """Products of a catalog file as wc/v3 product dicts (variations included, typed
    ``variation`` with ``parent_id``).

    Formats: a JSON array of wc/v3 products (ids kept), WooCommerce's product CSV (ids from
    ``first_id`` in file order; other shops' CSV exports are read through common column
    names such as ``title``/``price``/``body (html)``), a WordPress WXR export (ids kept),
    or a Django fixture as Saleor dumps it. A JSON array whose items are not products is
    refused rather than loaded as empty products.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"catalog {path}: cannot be read ({exc.strerror})",
                         hint="Pass --catalog with a JSON array of products or a "
                              "WooCommerce product CSV.") from exc
    try:
        text = raw.decode("utf-8-sig") if raw else ""
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise InputError(f"catalog {path}: line {line}: not valid UTF-8 (byte "
                         f"0x{raw[exc.start]:02x} at offset {exc.start})",
                         hint="Save the file as UTF-8 (WooCommerce exports are).") from exc
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        return _products_from_json(text, path)
    if stripped.startswith("<"):
        return _products_from_wxr(raw, path)
    return _products_from_csv(text, path, first_id)


def _products_from_json(text: str, path: Path) -> list[dict[str, Any]]:
    """A JSON array of products, ``{"products": [...]}``, or JSON Lines; foreign shapes
    (Shopify's product JSON, Django fixtures) are converted, anything else refused."""
    try:
        doc: Any = json.loads(text)
    except ValueError as exc:
        lines = [line for line in text.splitlines() if line.strip()]
        if not text.lstrip().startswith("{") or len(lines) < 2:
            raise InputError(f"catalog {path}: invalid JSON ({exc})",
                             hint="Fix the file or export it again.") from exc
        doc = []
        for number, line in enumerate(text.splitlines(), start=1):  # JSON Lines
            if line.strip():
                try:
                    doc.append(json.loads(line))
                except ValueError as line_exc:
                    raise InputError(f"catalog {path}: line {number}: invalid JSON "
                                     f"({line_exc})", hint="Fix that line.") from line_exc
    if isinstance(doc, dict):
        wrapped = [doc[k] for k in ("products", "items", "data") if isinstance(doc.get(k), list)]
        if not wrapped:
            raise InputError(f"catalog {path}: a JSON object, not an array of products",
                             hint="Wrap the products in a JSON array.")
        doc = wrapped[0]
    if not isinstance(doc, list):
        raise InputError(f"catalog {path}: JSON {type(doc).__name__}, not an array of "
                         "products", hint="Pass a JSON array of product objects.")
    for index, item in enumerate(doc):
        if not isinstance(item, dict):
            raise InputError(f"catalog {path}: item {index} is not a JSON object",
                             hint="Each item must be a wc/v3 product object.")
    if doc and all({"model", "fields"} <= item.keys() for item in doc):
        return _products_from_django_fixture(doc, path)
    if any(_is_foreign(item) for item in doc):
        return _products_from_foreign_json(doc, path)
    for index, item in enumerate(doc):
        if not item.keys() & _PRODUCT_FIELDS:
            raise InputError(f"catalog {path}: item {index} has none of the wc/v3 product "
                             f"fields (keys: {', '.join(sorted(item)[:6])})",
                             hint="Each item must be a wc/v3 product object (name, sku, "
                                  "description, ...).")
    return doc


def _is_foreign(item: dict[str, Any]) -> bool:
    return "name" not in item and bool(item.keys() & {"title", "body_html", "product_type",
                                                      "variants", "handle"})


def _products_from_foreign_json(items: list[dict[str, Any]], path: Path
                                ) -> list[dict[str, Any]]:
    """Other shops' product JSON (Shopify's ``products.json`` shape) as wc/v3 products."""
    products: list[dict[str, Any]] = []
    pending: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for index, item in enumerate(items):
        if not _is_foreign(item):
            raise InputError(f"catalog {path}: item {index} mixes shapes (no title/body_html"
                             " like the other items)", hint="Use one export format per file.")
        variants = [v for v in item.get("variants") or [] if isinstance(v, dict)]
        status = str(item.get("status") or "active").lower()
        tags = item.get("tags") or []
        product: dict[str, Any] = {
            "name": str(item.get("title") or ""),
            "slug": str(item.get("handle") or ""),
            "description": str(item.get("body_html") or item.get("description") or ""),
            "short_description": str(item.get("summary") or ""),
            "status": {"active": "publish", "draft": "draft", "archived": "private"}.get(
                status, "publish"),
            "categories": [{"name": str(item["product_type"])}] if item.get("product_type")
            else [],
            "tags": [{"name": str(t).strip()} for t in
                     (tags.split(",") if isinstance(tags, str) else tags) if str(t).strip()],
            "images": [{"src": str(i.get("src") or ""), "alt": str(i.get("alt") or "")}
                       for i in item.get("images") or [] if isinstance(i, dict)],
            "date_created_gmt": str(item.get("created_at") or "")[:19],
            "date_modified_gmt": str(item.get("updated_at") or "")[:19],
        }
        if isinstance(item.get("id"), int):
            product["id"] = item["id"]
        if len(variants) <= 1:
            product.update(_variant_fields(variants[0] if variants else item))
        else:
            product["type"] = "variable"
        products.append(product)
        pending.append((product, variants if len(variants) > 1 else []))
    next_id = max([p["id"] for p in products if "id" in p] or [0]) + 1
    for product in products:
        if "id" not in product:
            product["id"] = next_id
            next_id += 1
    for product, variants in pending:
        for variant in variants:
            products.append({"id": next_id, "type": "variation", "parent_id": product["id"],
                             "name": f"{product['name']} - {variant.get('title') or ''}",
                             "attributes": [{"id": 0, "name": "Variant", "slug": "variant",
                                             "option": str(variant.get("title") or "")}],
                             **_variant_fields(variant)})
            next_id += 1
    return products


def _variant_fields(variant: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {"sku": str(variant.get("sku") or ""),
                              "regular_price": _price(str(variant.get("price") or ""))}
    if variant.get("weight") not in (None, "", 0):
        fields["weight"] = str(variant["weight"])
    quantity = variant.get("inventory_quantity")
    if isinstance(quantity, int):
        fields.update(manage_stock=True, stock_quantity=quantity)
    return fields


def _cell(row: dict[str, str], *names: str) -> str:
    for name in names:
        value = row.get(name.lower())
        if value is not None:
            return value.strip()
    return ""


def _split_list(value: str) -> list[str]:
    """WooCommerce CSV lists: comma-separated, ``\\,`` escapes a comma."""
    if not value:
        return []
    parts, current, i = [], "", 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] == ",":
            current += ","
            i += 2
            continue
        if ch == ",":
            parts.append(current.strip())
            current = ""
        else:
            current += ch
        i += 1
    parts.append(current.strip())
    return [p for p in parts if p]


def _csv_text(value: str) -> str:
    return value.replace("\\n", "\n")


def _products_from_csv(text: str, path: Path, first_id: int) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return []
    columns = [h.strip().lower() for h in header]
    if not set(columns) & {"name", "sku", "title", "product name", "product_name",
                           "variant sku"}:
        raise InputError(f"catalog {path}: not a WooCommerce product CSV (no Name or SKU "
                         "column)", hint="Export products from WooCommerce > Products > "
                                         "Export, or pass a JSON array.")
    rows: list[dict[str, str]] = []
    handles: set[str] = set()
    for line_no, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        if "handle" in columns and len(values) == len(columns):
            # other shops' exports: extra rows of a handle carry images/variants only
            handle = values[columns.index("handle")].strip()
            title = values[columns.index("title")].strip() if "title" in columns else "x"
            if handle in handles and not title:
                continue
            handles.add(handle)
        if len(values) > len(columns):
            raise InputError(f"catalog {path}: line {line_no} has {len(values)} cells for "
                             f"{len(columns)} columns", hint="Check the quoting of that row.")
        rows.append(dict(zip(columns, values, strict=False)))
    products: list[dict[str, Any]] = []
    by_sku: dict[str, dict[str, Any]] = {}
    by_csv_id: dict[str, dict[str, Any]] = {}
    # Global attribute taxonomies get ids in the order first seen (WooCommerce numbers them
    # as they are created); local attributes have id 0.
    global_attributes: dict[str, int] = {}
    for line_no, row in enumerate(rows, start=2):
        product = _product_from_row(row, path, line_no, global_attributes)
        products.append(product)
        if product.get("sku"):
            by_sku[product["sku"]] = product
        csv_id = _cell(row, "ID")
        if csv_id:
            by_csv_id[csv_id] = product
    next_id = first_id
    for product in products:
        product["id"] = next_id
        next_id += 1
    for product in products:
        parent_ref = product.pop("_parent_ref", "")
        if product["type"] != "variation":
            continue
        parent = (by_csv_id.get(parent_ref[3:]) if parent_ref.startswith("id:")
                  else by_sku.get(parent_ref))
        if parent is None:
            raise InputError(f"catalog {path}: variation {product.get('sku') or product['name']}"
                             f" names parent {parent_ref!r}, which is not in the file",
                             hint="Include the parent product row, or drop the variation.")
        product["parent_id"] = parent["id"]
        if not product["description"] and not product.get("short_description"):
            product["description"] = ""
    for product in products:
        refs = product.pop("_grouped_refs", [])
        product["grouped_products"] = [by_sku[r]["id"] for r in refs if r in by_sku]
    return products


def _product_from_row(row: dict[str, str], path: Path, line_no: int,
                      global_attributes: dict[str, int]) -> dict[str, Any]:
    types = [t.strip().lower() for t in _cell(row, "Type").split(",") if t.strip()]
    kind = next((t for t in types if t in ("simple", "variable", "grouped", "external",
                                           "variation")), "simple")
    published = _cell(row, "Published", "Status", "product_online").lower()
    status = {"1": "publish", "true": "publish", "active": "publish", "0": "draft",
              "false": "draft", "draft": "draft", "2": "draft", "archived": "private",
              "-1": "private"}.get(published, "publish")
    name = _cell(row, "Name", "Title", "Product Name", "product_name")
    product: dict[str, Any] = {
        "name": name,
        "type": kind,
        "status": status,
        "sku": _cell(row, "SKU", "Variant SKU", "product_code"),
        "featured": _cell(row, "Is featured?").lower() in CSV_TRUE,
        "catalog_visibility": _cell(row, "Visibility in catalog") or "visible",
        "short_description": _csv_text(_cell(row, "Short description", "short_description",
                                                  "Summary", "Excerpt")),
        "description": _csv_text(_cell(row, "Description", "Body (HTML)", "body_html",
                                            "long_description")),
        "tax_status": _cell(row, "Tax status") or "taxable",
        "tax_class": _cell(row, "Tax class"),
        "regular_price": _cell(row, "Regular price", "regular_price", "price", "Variant Price"),
        "sale_price": _cell(row, "Sale price", "sale_price", "special_price"),
        "weight": _cell(row, "Weight (lbs)", "Weight (kg)", "Weight (oz)", "Weight (g)",
                        "Weight"),
        "dimensions": {
            "length": _cell(row, "Length (in)", "Length (cm)", "Length"),
            "width": _cell(row, "Width (in)", "Width (cm)", "Width"),
            "height": _cell(row, "Height (in)", "Height (cm)", "Height"),
        },
        "reviews_allowed": _cell(row, "Allow customer reviews?") != "0",
        "purchase_note": _csv_text(_cell(row, "Purchase note")),
        "virtual": "virtual" in types,
        "downloadable": "downloadable" in types,
        "external_url": _cell(row, "External URL"),
        "button_text": _cell(row, "Button text"),
        "menu_order": _int(_cell(row, "Position"), 0),
        "sold_individually": _cell(row, "Sold individually?").lower() in CSV_TRUE,
        "backorders": {"1": "yes", "notify": "notify"}.get(_cell(row, "Backorders allowed?"),
                                                           "no"),
    }
    stock = _cell(row, "Stock", "qty", "quantity", "Variant Inventory Qty")
    if stock:
        product["manage_stock"] = True
        product["stock_quantity"] = _int(stock, 0)
    in_stock = _cell(row, "In stock?")
    product["stock_status"] = ("outofstock" if in_stock == "0" else
                               "onbackorder" if in_stock == "backorder" else "instock")
    categories = []
    for entry in _split_list(_cell(row, "Categories", "category", "Product Category")
                             .replace("\n", ",")):
        leaf = re.split(r"[>/]", entry)[-1].strip()
        if leaf:
            categories.append({"name": leaf})
    product["categories"] = categories
    product["tags"] = [{"name": t} for t in _split_list(_cell(row, "Tags"))]
    product["images"] = [{"src": src} for src in _split_list(_cell(row, "Images"))]
    attributes = []
    for n in range(1, 10):
        attr_name = _cell(row, f"Attribute {n} name")
        if not attr_name:
            continue
        values = _split_list(_cell(row, f"Attribute {n} value(s)"))
        is_global = _cell(row, f"Attribute {n} global") == "1"
        attr_id = global_attributes.setdefault(attr_name.lower(), len(global_attributes) + 1
                                               ) if is_global else 0
        slug = f"pa_{attr_name.lower().replace(' ', '-')}" if is_global else attr_name
        if kind == "variation":
            if not values:
                continue  # "any" value: WooCommerce does not list it on the variation
            attributes.append({"id": attr_id, "name": attr_name, "slug": slug,
                               "option": values[0] if values else ""})
        else:
            attributes.append({"id": attr_id, "name": attr_name, "slug": slug,
                               "position": n - 1,
                               "visible": _cell(row, f"Attribute {n} visible") != "0",
                               "variation": kind == "variable", "options": values})
    product["attributes"] = attributes
    meta = []
    for column, value in row.items():
        if column.startswith("meta:") and value is not None and value.strip() != "":
            meta.append({"key": column[len("meta:"):].strip(), "value": value})
    product["meta_data"] = meta
    product["_parent_ref"] = _cell(row, "Parent")
    product["_grouped_refs"] = _split_list(_cell(row, "Grouped products"))
    if kind == "variation" and not name:
        raise InputError(f"catalog {path}: line {line_no}: variation without a Name",
                         hint="Give every row a Name.")
    return product


def _int(value: str, default: int) -> int:
    try:
        return int(float(value))
    except ValueError:
        return default


# --- synthetic supplier catalogs -------------------------------------------------------------

_MATERIALS = ("Oak", "Steel", "Linen", "Ceramic", "Glass", "Wool", "Cotton", "Bamboo",
              "Leather", "Copper")
_ITEMS = ("Mug", "Chair", "Lamp", "Vase", "Shelf", "Towel", "Bowl", "Blanket", "Stool",
          "Tray", "Basket", "Apron")
_COLOURS = ("Natural", "Black", "White", "Grey", "Blue", "Green", "Red", "Sand")
_CATEGORIES = ("Kitchen", "Living Room", "Bedroom", "Bathroom", "Garden", "Office")
_ORIGINS = ("Portugal", "Vietnam", "Poland", "India", "Turkey", "Mexico")


def synthetic_catalog(n: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """``n`` sparse supplier-style products (ids 1..n), deterministic under ``seed``.

    Like the recorded ``SUP-0001..`` items: about 25 % with neither description nor short
    description, 15 % with only a short one, 15 % with only a long one; some drafts, pending
    and private products; a ``supplier_code`` meta on every 10th; every 9th on sale; and
    attributes, category and weight to write copy from. About 2 % carry only a SKU and a
    weight (too little to write from). Cheap enough for 100,000 items.
    """
    rng = random.Random(seed)
    for i in range(1, n + 1):
        r = rng.random()
        material = _MATERIALS[rng.randrange(len(_MATERIALS))]
        item = _ITEMS[rng.randrange(len(_ITEMS))]
        colour = _COLOURS[rng.randrange(len(_COLOURS))]
        category = _CATEGORIES[rng.randrange(len(_CATEGORIES))]
        origin = _ORIGINS[rng.randrange(len(_ORIGINS))]
        price = f"{rng.randrange(5, 300)}.{rng.choice(('00', '50', '99'))}"
        weight = f"{rng.randrange(1, 200) / 10:.1f}"
        sku = f"SUP-{i:06d}" if n > 9999 else f"SUP-{i:04d}"
        status_draw = rng.random()
        status = ("draft" if status_draw < 0.055 else "pending" if status_draw < 0.072
                  else "private" if status_draw < 0.094 else "publish")
        bare = rng.random() < 0.02
        product: dict[str, Any] = {
            "id": i,
            "name": "" if bare else f"{material} {item} {i % 1000:03d}",
            "type": "simple",
            "status": status,
            "sku": sku,
            "regular_price": "" if bare else price,
            "weight": weight,
            "manage_stock": not bare,
            "stock_quantity": None if bare else rng.randrange(0, 60),
            "description": "",
            "short_description": "",
            "categories": [] if bare else [{"name": category}],
            "attributes": [] if bare else [
                {"id": 0, "name": "Material", "position": 0, "visible": True,
                 "variation": False, "options": [material]},
                {"id": 0, "name": "Colour", "position": 1, "visible": True,
                 "variation": False, "options": [colour]},
                {"id": 0, "name": "Origin", "position": 2, "visible": True,
                 "variation": False, "options": [origin]},
            ],
            "dimensions": {"length": str(rng.randrange(5, 120)), "width":
                           str(rng.randrange(5, 80)), "height": str(rng.randrange(2, 90))},
            "meta_data": [],
        }
        if not bare:
            if r < 0.25:
                pass
            elif r < 0.40:
                product["short_description"] = f"{material} {item.lower()} in {colour.lower()}."
            elif r < 0.55:
                product["description"] = (f"<p>Supplier description for item {i}. "
                                          "Material and care info.</p>")
            else:
                product["description"] = (f"<p>{material} {item.lower()} made in {origin}."
                                          "</p><ul><li>Colour: " + colour + "</li><li>Weight: "
                                          + weight + " kg</li></ul>")
                product["short_description"] = f"{colour} {material.lower()} {item.lower()}."
            if i % 9 == 0:
                product["sale_price"] = f"{max(1, int(float(price) * 0.8))}.00"
        if i % 10 == 0:
            product["meta_data"].append({"key": "supplier_code", "value": f"SC{i}"})
        yield product


# --- WordPress export (WXR) ------------------------------------------------------------------

_WP = "{http://wordpress.org/export/1.2/}"
_CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
_EXCERPT = "{http://wordpress.org/export/1.2/excerpt/}encoded"


def _products_from_wxr(raw: bytes, path: Path) -> list[dict[str, Any]]:
    """Products and variations of a WordPress WXR export (Tools > Export > Products)."""
    import xml.etree.ElementTree as ET

    from enrich.sandbox.store_products import INTERNAL_META_KEYS

    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise InputError(f"catalog {path}: not well-formed XML ({exc})",
                         hint="Export the products again from WordPress.") from exc
    products: list[dict[str, Any]] = []
    attribute_ids: dict[str, int] = {}
    for item in root.iter("item"):
        post_type = (item.findtext(f"{_WP}post_type") or "").strip()
        if post_type not in ("product", "product_variation"):
            continue
        post_id = (item.findtext(f"{_WP}post_id") or "").strip()
        if not post_id.isdigit():
            raise InputError(f"catalog {path}: an item has no numeric wp:post_id",
                             hint="Export the products again from WordPress.")
        meta = {(m.findtext(f"{_WP}meta_key") or "").strip(): m.findtext(f"{_WP}meta_value")
                or "" for m in item.findall(f"{_WP}postmeta")}
        terms: dict[str, list[str]] = {}
        for category in item.findall("category"):
            terms.setdefault(category.get("domain", ""), []).append(category.text or "")
        variation = post_type == "product_variation"
        product: dict[str, Any] = {
            "id": int(post_id),
            "name": item.findtext("title") or "",
            "slug": item.findtext(f"{_WP}post_name") or "",
            "status": item.findtext(f"{_WP}status") or "publish",
            "menu_order": _int(item.findtext(f"{_WP}menu_order") or "0", 0),
            "date_created_gmt": (item.findtext(f"{_WP}post_date_gmt") or "").replace(" ", "T"),
            "type": "variation" if variation else next(
                (t for t in terms.get("product_type", []) if t in
                 ("simple", "grouped", "external", "variable")), "simple"),
            "description": (meta.get("_variation_description", "") if variation
                            else item.findtext(_CONTENT) or ""),
            "short_description": "" if variation else item.findtext(_EXCERPT) or "",
            "sku": meta.get("_sku", ""),
            "regular_price": meta.get("_regular_price", ""),
            "sale_price": meta.get("_sale_price", ""),
            "weight": meta.get("_weight", ""),
            "dimensions": {"length": meta.get("_length", ""), "width": meta.get("_width", ""),
                           "height": meta.get("_height", "")},
            "tax_status": meta.get("_tax_status") or "taxable",
            "tax_class": meta.get("_tax_class", ""),
            "manage_stock": meta.get("_manage_stock") == "yes",
            "stock_status": meta.get("_stock_status") or "instock",
            "backorders": meta.get("_backorders") or "no",
            "virtual": meta.get("_virtual") == "yes",
            "downloadable": meta.get("_downloadable") == "yes",
            "purchase_note": meta.get("_purchase_note", ""),
            "featured": "featured" in terms.get("product_visibility", []),
            "categories": [{"name": n} for n in terms.get("product_cat", [])],
            "tags": [{"name": n} for n in terms.get("product_tag", [])],
            "meta_data": [{"key": k, "value": v} for k, v in meta.items()
                          if k and k not in INTERNAL_META_KEYS and not k.startswith(
                              ("attribute_", "_wc_", "_product_", "_price", "_edit_"))],
        }
        if product["manage_stock"]:
            product["stock_quantity"] = _int(meta.get("_stock") or "0", 0)
        if variation:
            product["parent_id"] = _int(item.findtext(f"{_WP}post_parent") or "0", 0)
            product["attributes"] = [
                {"id": attribute_ids.setdefault(k[len("attribute_"):],
                                                len(attribute_ids) + 1),
                 "name": _attribute_label(k[len("attribute_"):]),
                 "slug": k[len("attribute_"):], "option": v.replace("-", " ").title()}
                for k, v in meta.items() if k.startswith("attribute_") and v]
        else:
            product["attributes"] = [
                {"id": attribute_ids.setdefault(domain, len(attribute_ids) + 1),
                 "name": _attribute_label(domain), "slug": domain, "position": position,
                 "visible": True, "variation": product["type"] == "variable",
                 "options": options}
                for position, (domain, options) in enumerate(
                    (d, o) for d, o in terms.items() if d.startswith("pa_"))]
        products.append(product)
    if not products:
        feed = _products_from_merchant_feed(root)
        if feed:
            return feed
        raise InputError(f"catalog {path}: no product items in this XML",
                         hint="Export with Tools > Export > Products in WordPress, or pass "
                              "a Google Merchant product feed.")
    ids = {p["id"] for p in products}
    for product in products:
        if product["type"] == "variation" and product.get("parent_id") not in ids:
            raise InputError(f"catalog {path}: variation {product['id']} names parent "
                             f"{product.get('parent_id')}, which is not in the file",
                             hint="Include the parent product, or drop the variation.")
    return products


def _attribute_label(taxonomy: str) -> str:
    return taxonomy.removeprefix("pa_").replace("-", " ").replace("_", " ").title()


# --- Django fixtures (Saleor's populatedb_data.json) ------------------------------------------

def _editorjs_html(value: Any) -> str:
    """Saleor descriptions are Editor.js documents: paragraphs, headers and lists to HTML."""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        return ""
    parts = []
    for block in value.get("blocks") or []:
        data = block.get("data") or {}
        kind = block.get("type")
        if kind == "header":
            level = int(data.get("level") or 2)
            parts.append(f"<h{level}>{data.get('text', '')}</h{level}>")
        elif kind == "list":
            tag = "ol" if data.get("style") == "ordered" else "ul"
            items = "".join(f"<li>{i if isinstance(i, str) else i.get('content', '')}</li>"
                            for i in data.get("items") or [])
            parts.append(f"<{tag}>{items}</{tag}>")
        elif data.get("text"):
            parts.append(f"<p>{data['text']}</p>")
    return "".join(parts)


def _products_from_django_fixture(objects: list[dict[str, Any]], path: Path
                                  ) -> list[dict[str, Any]]:
    """Products of a Django fixture as Saleor dumps it: products, variants, prices, categories.

    A product with one variant becomes a simple product (the variant's SKU and price); with
    several it becomes a variable product whose variants are its variations (ids after the
    products' own). Prices come from the first channel listing of each variant.
    """
    by_model: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_model.setdefault(str(obj.get("model")), []).append(obj)
    source = by_model.get("product.product", [])
    if not source:
        raise InputError(f"catalog {path}: a Django fixture without product.product objects",
                         hint="Pass a catalog of products.")
    categories = {o["pk"]: o["fields"].get("name", "") for o in by_model.get("product.category",
                                                                             [])}
    prices: dict[Any, str] = {}
    for listing in by_model.get("product.productvariantchannellisting", []):
        fields = listing["fields"]
        prices.setdefault(fields.get("variant"), str(fields.get("price_amount") or ""))
    variants: dict[Any, list[dict[str, Any]]] = {}
    for variant in sorted(by_model.get("product.productvariant", []),
                          key=lambda o: (o["fields"].get("sort_order") or 0, o["pk"])):
        variants.setdefault(variant["fields"].get("product"), []).append(variant)
    offset = max(int(o["pk"]) for o in source)
    products: list[dict[str, Any]] = []
    for obj in source:
        fields = obj["fields"]
        own = variants.get(obj["pk"], [])
        product: dict[str, Any] = {
            "id": int(obj["pk"]),
            "name": fields.get("name") or "",
            "slug": fields.get("slug") or "",
            "type": "variable" if len(own) > 1 else "simple",
            "description": _editorjs_html(fields.get("description")),
            "short_description": "",
            "categories": ([{"name": categories[fields["category"]]}]
                           if fields.get("category") in categories else []),
            "weight": str(fields.get("weight") or ""),
            "date_created_gmt": str(fields.get("created_at") or "")[:19],
            "date_modified_gmt": str(fields.get("updated_at") or "")[:19],
        }
        if len(own) == 1:
            product["sku"] = own[0]["fields"].get("sku") or ""
            product["regular_price"] = _price(prices.get(own[0]["pk"]))
        products.append(product)
        if len(own) > 1:
            for variant in own:
                vfields = variant["fields"]
                products.append({
                    "id": offset + int(variant["pk"]),
                    "type": "variation",
                    "parent_id": product["id"],
                    "name": f"{product['name']} - {vfields.get('name') or ''}",
                    "sku": vfields.get("sku") or "",
                    "regular_price": _price(prices.get(variant["pk"])),
                    "attributes": [{"id": 0, "name": "Variant", "slug": "variant",
                                    "option": vfields.get("name") or ""}],
                })
    return products


def _price(amount: str | None) -> str:
    if not amount:
        return ""
    try:
        return f"{float(amount):.2f}"
    except ValueError:
        return ""


# --- Google Merchant Center product feeds (RSS 2.0 or Atom with the g: namespace) --------------

_G = "{http://base.google.com/ns/1.0}"
_ATOM = "{http://www.w3.org/2005/Atom}"


def _products_from_merchant_feed(root: Any) -> list[dict[str, Any]]:
    """Items of a Merchant Center feed as simple products (empty if it is not one)."""
    entries = list(root.iter("item")) + list(root.iter(f"{_ATOM}entry"))
    products: list[dict[str, Any]] = []
    for entry in entries:
        def text(*names: str, node: Any = entry) -> str:
            for name in names:
                found = node.findtext(name)
                if found:
                    return found.strip()
            return ""

        sku = text(f"{_G}id", f"{_G}mpn")
        if not sku:
            continue
        availability = text(f"{_G}availability").replace("_", " ").lower()
        category = text(f"{_G}product_type", f"{_G}google_product_category")
        attributes = [
            {"id": 0, "name": label, "slug": label.lower(), "position": n, "visible": True,
             "variation": False, "options": [value]}
            for n, (label, value) in enumerate(
                (label, text(f"{_G}{tag}")) for label, tag in
                (("Brand", "brand"), ("Color", "color"), ("Material", "material"),
                 ("Size", "size"), ("Pattern", "pattern")))
            if value]
        image = text(f"{_G}image_link")
        products.append({
            "name": text(f"{_G}title", "title", f"{_ATOM}title"),
            "sku": sku,
            "description": text(f"{_G}description", "description", f"{_ATOM}summary"),
            "regular_price": _price(_amount(text(f"{_G}price"))),
            "sale_price": _price(_amount(text(f"{_G}sale_price"))),
            "stock_status": "outofstock" if availability == "out of stock" else (
                "onbackorder" if availability in ("backorder", "preorder") else "instock"),
            "categories": [{"name": category.split(">")[-1].strip()}] if category else [],
            "weight": _amount(text(f"{_G}shipping_weight")),
            "attributes": attributes,
            "images": [{"src": image}] if image else [],
        })
    return products


def _amount(value: str) -> str:
    """The number in "15.00 USD" or "2.5 kg"."""
    match = re.search(r"\d+(?:[.,]\d+)?", value)
    return match.group(0).replace(",", ".") if match else ""
