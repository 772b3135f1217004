"""Catalog loading (WooCommerce CSV, JSON) and synthetic supplier catalogs."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from enrich.errors import InputError
from enrich.sandbox.catalog import load_catalog, synthetic_catalog
from enrich.sandbox.store import SandboxStore
from tests.store_helpers import SAMPLE_CSV


def test_woocommerce_csv_with_variations() -> None:
    products = load_catalog(SAMPLE_CSV)
    assert len(products) == 25
    kinds = Counter(p["type"] for p in products)
    assert kinds == {"simple": 14, "variation": 7, "variable": 2, "grouped": 1,
                     "external": 1}
    by_sku = {p["sku"]: p for p in products}
    vneck = by_sku["woo-vneck-tee"]
    red = by_sku["woo-vneck-tee-red"]
    assert red["parent_id"] == vneck["id"]
    assert red["attributes"] == [{"id": 1, "name": "Color", "slug": "pa_color",
                                  "option": "Red"}]
    assert vneck["categories"] == [{"name": "Tshirts"}]
    assert vneck["short_description"] == "This is a variable product."
    assert vneck["meta_data"] == [{"key": "_wpcom_is_markdown", "value": "1"}]
    assert by_sku["woo-album"]["virtual"] and by_sku["woo-album"]["downloadable"]
    assert by_sku["logo-collection"]["grouped_products"] == [
        by_sku["woo-hoodie-with-logo"]["id"], by_sku["woo-tshirt"]["id"],
        by_sku["woo-beanie"]["id"]]
    store = SandboxStore(products)
    assert store.product(vneck["id"])["variations"] == sorted(
        p["id"] for p in products if p.get("parent_id") == vneck["id"])


def test_json_catalog_round_trips_the_state_format(tmp_path: Path) -> None:
    store = SandboxStore(load_catalog(SAMPLE_CSV))
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(store.products()))
    again = SandboxStore(load_catalog(path))
    assert again.products() == store.products()


@pytest.mark.parametrize("content, fragment", [
    ('{"id": 1}', "a JSON object, not an array"),
    ("[1, 2]", "item 0 is not a JSON object"),
    ("[{", "invalid JSON"),
    ("Foo,Bar\n1,2\n", "not a WooCommerce product CSV"),
    ("Type,SKU,Name,Parent\nvariation,V-1,Red,NOPE\n", "names parent 'NOPE'"),
    ("Type,SKU,Name\nsimple,A,B,C,D\n", "line 2 has 5 cells"),
])
def test_bad_catalogs_name_the_file_and_record(tmp_path: Path, content: str,
                                               fragment: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError) as error:
        load_catalog(path)
    assert fragment in error.value.message
    assert str(path) in error.value.message
    assert error.value.hint


def test_synthetic_catalog_is_sparse_like_supplier_data() -> None:
    products = list(synthetic_catalog(4000, seed=5))
    assert products == list(synthetic_catalog(4000, seed=5))
    assert products != list(synthetic_catalog(4000, seed=6))
    n = len(products)
    full = [p for p in products if p["name"]]
    neither = sum(1 for p in full if not p["description"] and not p["short_description"])
    only_short = sum(1 for p in full if p["short_description"] and not p["description"])
    only_long = sum(1 for p in full if p["description"] and not p["short_description"])
    assert 0.20 < neither / n < 0.30
    assert 0.11 < only_short / n < 0.19
    assert 0.11 < only_long / n < 0.19
    statuses = Counter(p["status"] for p in products)
    assert statuses["draft"] and statuses["pending"] and statuses["private"]
    assert statuses["publish"] > 0.85 * n
    bare = [p for p in products if not p["name"]]
    assert 0.01 < len(bare) / n < 0.04
    assert all(p["sku"] and p["weight"] and not p["attributes"] for p in bare)
    assert all(p["attributes"] and p["categories"] for p in full)
    coded = [p["id"] for p in products if p["meta_data"]]
    assert coded == list(range(10, n + 1, 10))


def test_synthetic_catalog_is_cheap_for_100k() -> None:
    start = time.perf_counter()
    count = sum(1 for _ in synthetic_catalog(100_000))
    elapsed = time.perf_counter() - start
    assert count == 100_000
    assert elapsed < 20, f"100,000 synthetic products took {elapsed:.1f} s"


def test_wordpress_wxr_export_matches_the_csv_catalog() -> None:
    wxr = load_catalog(SAMPLE_CSV.with_suffix(".xml"))
    csv_products = load_catalog(SAMPLE_CSV)
    assert Counter(p["type"] for p in wxr) == Counter(p["type"] for p in csv_products)
    assert {p["sku"] for p in wxr} == {p["sku"] for p in csv_products}
    by_sku = {p["sku"]: p for p in wxr}
    red = by_sku["woo-vneck-tee-red"]
    assert red["parent_id"] == by_sku["woo-vneck-tee"]["id"]
    assert red["attributes"][0]["option"] == "Red"
    store = SandboxStore(wxr)
    parent = store.product(by_sku["woo-vneck-tee"]["id"])
    assert len(parent["variations"]) == 3
    assert parent["price"] == "15"
    assert parent["date_created_gmt"] == "2019-01-16T13:01:52"


def test_other_shops_csv_through_common_column_names(tmp_path: Path) -> None:
    path = tmp_path / "shopify.csv"
    path.write_text(
        "Handle,Title,Body (HTML),Vendor,Product Category,Published,Variant SKU,"
        "Variant Price,Variant Inventory Qty\n"
        "oak-mug,Oak Mug,<p>Turned oak.</p>,Acme,Kitchen > Mugs,TRUE,MUG-1,12.50,4\n"
        "oak-mug,,,,,,MUG-2,13.00,1\n"
        "tea-tin,Tea Tin,,Acme,Kitchen,FALSE,TIN-1,5,0\n")
    products = load_catalog(path)
    assert [(p["name"], p["sku"], p["regular_price"], p["status"]) for p in products] == [
        ("Oak Mug", "MUG-1", "12.50", "publish"), ("Tea Tin", "TIN-1", "5", "draft")]
    assert products[0]["categories"] == [{"name": "Mugs"}]
    assert products[0]["description"] == "<p>Turned oak.</p>"
    assert products[0]["stock_quantity"] == 4


def test_bad_wxr_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "export.xml"
    path.write_text("<rss><channel><item><title>x</title></item></channel></rss>")
    with pytest.raises(InputError) as error:
        load_catalog(path)
    assert "no product items" in error.value.message
    path.write_text("<rss><channel>")
    with pytest.raises(InputError) as error:
        load_catalog(path)
    assert "not well-formed XML" in error.value.message


def test_catalog_images_become_attachments() -> None:
    store = SandboxStore(load_catalog(SAMPLE_CSV))
    hoodie = next(p for p in store.products() if p["name"] == "Hoodie")
    images = hoodie["images"]
    assert len(images) == 4  # the Hoodie row lists four image URLs
    assert [set(i) for i in images] == [{"id", "date_created", "date_created_gmt",
                                         "date_modified", "date_modified_gmt", "src", "name",
                                         "alt"}] * 4
    assert images[0]["src"].endswith("hoodie-2.jpg") and images[0]["name"] == "hoodie-2"
    ids = [i["id"] for i in images]
    assert len(set(ids)) == 4 and not set(ids) & {p["id"] for p in store.products()}
    edited = store.edit(hoodie["id"], images=[{"id": ids[1], "alt": "Blue hoodie"},
                                              {"src": "https://example.test/new.png"}])
    assert edited["images"][0]["src"] == images[1]["src"]
    assert edited["images"][0]["alt"] == "Blue hoodie"
    assert edited["images"][1]["name"] == "new" and edited["images"][1]["id"] not in ids


def test_invalid_utf8_catalog_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"Type,SKU,Name\nsimple,A-1,Chair\nsimple,A-2,Caf\xe9 table\n")
    with pytest.raises(InputError) as error:
        load_catalog(path)
    assert "line 3: not valid UTF-8 (byte 0xe9" in error.value.message


def test_django_fixture_products_and_variants(tmp_path: Path) -> None:
    fixture = [
        {"model": "product.category", "pk": 3, "fields": {"name": "Sneakers"}},
        {"model": "product.product", "pk": 10, "fields": {
            "name": "Plimsolls", "slug": "plimsolls", "category": 3,
            "created_at": "2022-05-13T14:34:39.123Z", "updated_at": "2022-05-14T10:00:00Z",
            "description": {"blocks": [{"type": "paragraph", "data": {"text": "Canvas."}},
                                       {"type": "list", "data": {"items": ["Light"]}}]}}},
        {"model": "product.product", "pk": 11, "fields": {"name": "Tote", "category": 3}},
        {"model": "product.productvariant", "pk": 1, "fields": {"product": 10, "sku": "P-39",
                                                                "name": "39", "sort_order": 0}},
        {"model": "product.productvariant", "pk": 2, "fields": {"product": 10, "sku": "P-40",
                                                                "name": "40", "sort_order": 1}},
        {"model": "product.productvariant", "pk": 3, "fields": {"product": 11, "sku": "T-1",
                                                                "name": "One"}},
        {"model": "product.productvariantchannellisting", "pk": 1,
         "fields": {"variant": 1, "price_amount": "24.000"}},
        {"model": "product.productvariantchannellisting", "pk": 2,
         "fields": {"variant": 3, "price_amount": "9"}},
    ]
    path = tmp_path / "saleor.json"
    path.write_text(json.dumps(fixture))
    store = SandboxStore(load_catalog(path))
    plimsolls = store.product(10)
    assert plimsolls["type"] == "variable" and len(plimsolls["variations"]) == 2
    assert plimsolls["description"] == "<p>Canvas.</p><ul><li>Light</li></ul>"
    assert plimsolls["categories"][0]["name"] == "Sneakers"
    assert plimsolls["date_created_gmt"] == "2022-05-13T14:34:39"
    assert plimsolls["price"] == "24"
    tote = store.product(11)
    assert (tote["type"], tote["sku"], tote["regular_price"]) == ("simple", "T-1", "9.00")


def test_json_array_of_something_else_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    path.write_text(json.dumps([{"order_number": 1, "total": "5.00"}]))
    with pytest.raises(InputError) as error:
        load_catalog(path)
    assert "item 0 has none of the wc/v3 product fields" in error.value.message


def test_shopify_json_and_json_lines(tmp_path: Path) -> None:
    shopify = {"products": [
        {"id": 632910392, "title": "Oak Mug", "body_html": "<p>Turned oak.</p>",
         "product_type": "Mugs", "handle": "oak-mug", "status": "active", "tags": "oak, mug",
         "variants": [{"sku": "MUG-1", "price": "12.5", "inventory_quantity": 4}]},
        {"id": 632910393, "title": "Tee", "body_html": "", "status": "draft",
         "variants": [{"title": "S", "sku": "TEE-S", "price": "10"},
                      {"title": "M", "sku": "TEE-M", "price": "11"}]}]}
    path = tmp_path / "products.json"
    path.write_text(json.dumps(shopify))
    store = SandboxStore(load_catalog(path))
    mug = store.product(632910392)
    assert (mug["name"], mug["sku"], mug["regular_price"], mug["stock_quantity"]) == (
        "Oak Mug", "MUG-1", "12.50", 4)
    assert [t["name"] for t in mug["tags"]] == ["oak", "mug"]
    tee = store.product(632910393)
    assert tee["type"] == "variable" and tee["status"] == "draft"
    assert len(tee["variations"]) == 2 and tee["price"] == "10"
    lines = tmp_path / "catalog.jsonl"
    lines.write_text('{"name": "A", "sku": "A-1"}\n{"name": "B", "sku": "B-1"}\n')
    assert [p["sku"] for p in load_catalog(lines)] == ["A-1", "B-1"]


def test_google_merchant_feed(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(
        '<?xml version="1.0"?><rss xmlns:g="http://base.google.com/ns/1.0" version="2.0">'
        "<channel><item><g:id>LAMP-7</g:id><g:title>Brass Lamp</g:title>"
        "<g:description>Solid brass.</g:description><g:price>49.90 USD</g:price>"
        "<g:availability>out_of_stock</g:availability>"
        "<g:product_type>Home &gt; Lighting</g:product_type><g:brand>Acme</g:brand>"
        "<g:shipping_weight>2.5 kg</g:shipping_weight></item></channel></rss>")
    (product,) = load_catalog(path)
    assert (product["name"], product["sku"], product["regular_price"]) == (
        "Brass Lamp", "LAMP-7", "49.90")
    assert product["stock_status"] == "outofstock"
    assert product["categories"] == [{"name": "Lighting"}]
    assert product["weight"] == "2.5"
    assert product["attributes"][0]["options"] == ["Acme"]


def test_slugs_are_unique_like_wordpress_post_names() -> None:
    store = SandboxStore([{"name": "Oak Mug"}, {"name": "Oak Mug"}, {"name": ""},
                          {"name": ""}])
    assert [p["slug"] for p in store.products()] == ["oak-mug", "oak-mug-2", "product",
                                                     "product-2"]


def test_categories_without_an_id_are_matched_by_name(tmp_path: Path) -> None:
    # An exported catalog writes "id": 0 (or no id) for terms the target store has not made
    # yet: each name is its own category, and one name is one category across products.
    path = tmp_path / "export.json"
    path.write_text(json.dumps([
        {"name": "Oak Mug", "categories": [{"id": 0, "name": "Kitchen"}]},
        {"name": "Wool Hat", "categories": [{"id": 0, "name": "Hats"},
                                             {"name": "Winter", "slug": "winter"}]},
        {"name": "Tea Pot", "categories": [{"id": 0, "name": "Kitchen"}]},
        {"name": "Scarf", "categories": [{"name": "Winter"}]},
    ]))
    store = SandboxStore(load_catalog(path))
    cats = {p["name"]: [(c["id"], c["name"]) for c in p["categories"]]
            for p in store.products()}
    kitchen, hats, winter = cats["Oak Mug"][0], *cats["Wool Hat"]
    assert [kitchen[1], hats[1], winter[1]] == ["Kitchen", "Hats", "Winter"]
    assert len({kitchen[0], hats[0], winter[0]}) == 3 and 0 not in {kitchen[0], hats[0]}
    assert cats["Tea Pot"] == [kitchen] and cats["Scarf"] == [winter]
