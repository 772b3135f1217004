"""Every product of the fixture catalogs (WooCommerce, Magento, Saleor samples), shaped like
the WooCommerce REST products enrich syncs: what the input checks are measured on."""

from __future__ import annotations

import csv
from functools import cache
from typing import Any

from guard_helpers import magento_gear_products, saleor_products, woo_products

from tests.paths import PRODUCTS as CORPUS

MAGENTO_CONFIGURABLE = CORPUS / "magento2-sample-data" / "ConfigurableSampleData" / "products.csv"


def magento_catalog_products() -> list[dict[str, Any]]:
    """The 1,994 rows of Magento's configurable sample catalog (parents and children)."""
    products = []
    with MAGENTO_CONFIGURABLE.open(encoding="utf-8", newline="") as handle:
        for i, row in enumerate(csv.DictReader(handle), 1):
            attributes = []
            for pair in filter(None, row["additional_attributes"].split(",")):
                key, _, value = pair.partition("=")
                if value and key not in {"has_options", "required_options"}:
                    attributes.append({"name": key, "options": value.split("|")})
            categories = [{"name": path.split("/")[-1]}
                          for path in row["categories"].split(",") if path.strip()]
            products.append({
                "id": 100000 + i, "sku": row["sku"], "name": row["name"],
                "type": "variable" if row["product_type"] == "configurable" else "simple",
                "description": row["description"],
                "short_description": row["short_description"],
                "regular_price": row["price"], "weight": row["weight"],
                "categories": categories, "attributes": attributes,
            })
    return products


@cache
def catalog() -> tuple[dict[str, Any], ...]:
    """Every fixture product once: 25 WooCommerce, 44 + 1,994 Magento, Saleor's demo."""
    return (*woo_products(), *magento_gear_products(), *magento_catalog_products(),
            *saleor_products())
