"""Real products from fixtures/products, shaped like the WooCommerce REST products enrich
syncs, for the prompt and guard tests."""

from __future__ import annotations

import csv
import json
import re
from functools import cache
from typing import Any

from tests.paths import PRODUCTS as CORPUS

WOO_CSV = CORPUS / "woocommerce" / "sample_products.csv"
MAGENTO_GEAR = sorted((CORPUS / "magento2-sample-data" / "CatalogSampleData" / "SimpleProduct")
                      .glob("products_gear_*.csv"))
SALEOR = CORPUS / "saleor" / "populatedb_data.json"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def woo_products() -> list[dict[str, Any]]:
    """The 25 WooCommerce sample products as REST-shaped dicts (id, name, categories...)."""
    with WOO_CSV.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    products = []
    for row in rows:
        categories = []
        for path in filter(None, (p.strip() for p in row["Categories"].split(","))):
            leaf = path.split(">")[-1].strip()
            categories.append({"name": leaf, "slug": _slug(leaf)})
        attributes = []
        for i in (1, 2):
            name = row.get(f"Attribute {i} name", "")
            if name:
                values = [v.strip() for v in row[f"Attribute {i} value(s)"].split(",")]
                attributes.append({"name": name, "options": values})
        images = [{"src": src.strip()} for src in row["Images"].split(",") if src.strip()]
        products.append({
            "id": int(row["ID"]),
            "type": row["Type"],
            "sku": row["SKU"],
            "name": row["Name"],
            "short_description": row["Short description"],
            "description": row["Description"],
            "regular_price": row["Regular price"],
            "sale_price": row["Sale price"],
            "weight": row["Weight (lbs)"],
            "dimensions": {"length": row["Length (in)"], "width": row["Width (in)"],
                           "height": row["Height (in)"]},
            "categories": categories,
            "images": images,
            "attributes": attributes,
            "external_url": row["External URL"],
        })
    return products


def woo_product(name: str) -> dict[str, Any]:
    return next(p for p in woo_products() if p["name"] == name)


def magento_gear_products() -> list[dict[str, Any]]:
    """The 44 Magento Luma gear products (real HTML descriptions with numbers and units)."""
    products = []
    for path in MAGENTO_GEAR:
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                attributes = [{"name": k, "options": v.split("\n")} for k, v in row.items()
                              if k not in {"category", "name", "sku", "price", "qty",
                                           "description", "url_key"} and v]
                category = row["category"].split("\n")[-1]
                products.append({
                    "id": row["sku"], "sku": row["sku"], "name": row["name"],
                    "regular_price": row["price"], "description": row["description"],
                    "categories": [{"name": category, "slug": _slug(category)}],
                    "attributes": attributes,
                })
    return products


def saleor_products() -> list[dict[str, Any]]:
    """Saleor's demo products (plain-text descriptions, SEO fields)."""
    data = json.loads(SALEOR.read_text(encoding="utf-8"))
    products = []
    for obj in data:
        if obj["model"] != "product.product":
            continue
        fields = obj["fields"]
        products.append({
            "id": obj["pk"], "name": fields["name"],
            "description": fields.get("description_plaintext") or "",
            "seo_title": fields.get("seo_title") or "",
            "meta_description": fields.get("seo_description") or "",
        })
    return products


MAGENTO_CONFIGURABLE = CORPUS / "magento2-sample-data" / "ConfigurableSampleData" / "products.csv"


def magento_configurable_products() -> list[dict[str, Any]]:
    """The 1,994 Magento Luma clothing rows (147 parents, 1,847 variants) as REST-shaped
    dicts: category paths as leaf names, ``additional_attributes`` as attributes (the
    ``has_options``/``required_options`` 0/1 flags kept: they are what a writer must drop)."""
    products = []
    with MAGENTO_CONFIGURABLE.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            pairs = [p.split("=", 1) for p in row["additional_attributes"].split(",") if "=" in p]
            leaves = dict.fromkeys(p.rsplit("/", 1)[-1] for p in row["categories"].split(",")
                                   if p.strip())
            products.append({
                "id": row["sku"], "sku": row["sku"], "type": row["product_type"],
                "name": row["name"], "description": row["description"],
                "short_description": row["short_description"],
                "regular_price": row["price"], "weight": row["weight"],
                "categories": [{"name": leaf, "slug": _slug(leaf)} for leaf in leaves],
                "attributes": [{"name": k, "options": [v]} for k, v in pairs],
            })
    return products


@cache
def catalog() -> tuple[dict[str, Any], ...]:
    """Every fixture product once: 25 WooCommerce, 44 + 1,994 Magento, Saleor's demo (what
    the input checks' false-flag rate is measured on)."""
    return (*woo_products(), *magento_gear_products(), *magento_configurable_products(),
            *saleor_products())
