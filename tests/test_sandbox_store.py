"""The sandbox store's REST behaviour over real HTTPS on 127.0.0.1 (served by serve_store)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from enrich.sandbox.catalog import synthetic_catalog
from enrich.sandbox.store import RunningStore, StoreOptions, serve_store
from enrich.sandbox.tls import client_context
from tests.store_helpers import Clock

PRODUCTS = "/products"
START = 1_795_000_000  # 2026-11-18


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def running(clock: Clock) -> Iterator[RunningStore]:
    with serve_store(synthetic_catalog(1050, seed=7), https=True,
                     options=StoreOptions(clock=clock)) as served:
        yield served


@pytest.fixture
def client(running: RunningStore) -> Iterator[httpx.Client]:
    assert running.ca_path is not None
    with httpx.Client(base_url=running.api_url, verify=client_context(running.ca_path),
                      auth=(running.consumer_key, running.consumer_secret),
                      timeout=10) as opened:
        yield opened


def test_paging_1050_products_by_link_headers(client: httpx.Client,
                                              running: RunningStore) -> None:
    seen: list[int] = []
    url: str | None = f"{running.api_url}{PRODUCTS}?per_page=100"
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["X-WP-Total"] == "1050"
        assert response.headers["X-WP-TotalPages"] == "11"
        seen += [p["id"] for p in response.json()]
        url = response.links.get("next", {}).get("url")
        pages += 1
    assert pages == 11
    assert len(seen) == len(set(seen)) == 1050
    assert running.store.count(route="products", method="GET") == 11
    past = client.get(PRODUCTS, params={"per_page": 100, "page": 12})
    assert past.status_code == 200 and past.json() == []
    assert past.headers["X-WP-Total"] == "1050"
    assert past.links["prev"]["url"].endswith("page=11")


def test_default_status_is_any_and_status_filter(client: httpx.Client) -> None:
    every = int(client.get(PRODUCTS).headers["X-WP-Total"])
    by_status = {s: int(client.get(PRODUCTS, params={"status": s}).headers["X-WP-Total"])
                 for s in ("publish", "draft", "pending", "private")}
    assert every == sum(by_status.values()) == 1050
    assert all(n > 0 for n in by_status.values()), by_status


@pytest.mark.parametrize("params, field", [
    ({"per_page": 101}, "per_page"), ({"per_page": 0}, "per_page"),
    ({"page": 0}, "page"), ({"page": "x"}, "page"), ({"orderby": "bogus"}, "orderby"),
    ({"modified_after": "2026-01-01"}, "modified_after"), ({"status": "bogus"}, "status"),
])
def test_bad_list_params_are_400_with_details(client: httpx.Client, params: dict[str, Any],
                                              field: str) -> None:
    response = client.get(PRODUCTS, params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "rest_invalid_param"
    assert set(body["data"]["params"]) == {field}
    assert body["data"]["details"][field]["code"] in (
        "rest_out_of_bounds", "rest_invalid_type", "rest_not_in_enum", "rest_invalid_date")


def test_modified_after_is_exclusive_gmt_and_local_trap(client: httpx.Client,
                                                        running: RunningStore,
                                                        clock: Clock) -> None:
    clock.now = START + 3600
    edited = running.store.edit(5, name="Changed in wp-admin")
    gmt = edited["date_modified_gmt"]
    assert edited["date_modified"] != gmt  # local time is shown next to GMT

    def ids(**params: Any) -> list[int]:
        response = client.get(PRODUCTS, params={"per_page": 100, **params})
        assert response.status_code == 200
        return [p["id"] for p in response.json()]

    before = gmt[:-2] + f"{int(gmt[-2:]) - 1:02d}"
    assert ids(modified_after=gmt, dates_are_gmt="true") == []
    assert ids(modified_after=before, dates_are_gmt="true") == [5]
    assert ids(modified_after=before + "Z") == [5]
    assert ids(modified_after=before) == []  # naive = site-local: misses the last 5 hours


def test_put_meta_merge_and_view_vs_edit_context(client: httpx.Client, clock: Clock) -> None:
    first = client.put(f"{PRODUCTS}/10", json={
        "description": "First paragraph.\n\nSecond paragraph.",
        "meta_data": [{"key": "_yoast_wpseo_title", "value": "T"},
                      {"key": "rank_math_title", "value": "R"}]})
    assert first.status_code == 200
    assert first.json()["description"] == "First paragraph.\n\nSecond paragraph."
    clock.now += 5
    merged = client.put(f"{PRODUCTS}/10", json={"meta_data": [
        {"key": "rank_math_title", "value": "R2"}, {"key": "_yoast_wpseo_title",
                                                    "value": None},
        {"key": "count", "value": 3}, {"id": 1, "value": "no key: ignored"}]})
    meta = {m["key"]: m["value"] for m in merged.json()["meta_data"]}
    assert meta["rank_math_title"] == "R2" and meta["count"] == "3"
    assert "_yoast_wpseo_title" not in meta
    assert meta["supplier_code"] == "SC10"  # untouched
    assert merged.json()["date_modified_gmt"] > first.json()["date_modified_gmt"]
    view = client.get(f"{PRODUCTS}/10").json()
    edit = client.get(f"{PRODUCTS}/10", params={"context": "edit"}).json()
    assert view["description"] == "<p>First paragraph.</p>\n<p>Second paragraph.</p>\n"
    assert edit["description"] == "First paragraph.\n\nSecond paragraph."
    assert {"permalink_template", "generated_slug"} <= set(edit) - set(view)


def test_body_id_overrides_url_id(client: httpx.Client) -> None:
    response = client.put(f"{PRODUCTS}/10", json={"id": 11, "name": "Renamed via body id"})
    assert response.status_code == 200
    assert response.json()["id"] == 11
    assert client.get(f"{PRODUCTS}/11").json()["name"] == "Renamed via body id"
    missing = client.put(f"{PRODUCTS}/10", json={"id": 999999, "name": "x"})
    assert missing.status_code == 400
    assert missing.json()["code"] == "woocommerce_rest_product_invalid_id"


def test_single_put_type_checks(client: httpx.Client) -> None:
    response = client.put(f"{PRODUCTS}/12", json={"regular_price": 19.99, "name": ["x"]})
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid parameter(s): name, regular_price"
    assert client.put(f"{PRODUCTS}/12", json={"regular_price": "19,99"}
                      ).json()["regular_price"] == "1999"


def test_batch_limit_item_errors_and_fatal(client: httpx.Client, running: RunningStore) -> None:
    too_many = client.post(f"{PRODUCTS}/batch",
                           json={"update": [{"id": i} for i in range(1, 102)]})
    assert too_many.status_code == 413
    assert too_many.json()["code"] == "woocommerce_rest_request_entity_too_large"
    mixed = client.post(f"{PRODUCTS}/batch", json={"update": [
        {"id": 20, "short_description": "ok"}, {"id": 999999, "name": "nope"},
        {"id": 21, "regular_price": 5}]})
    assert mixed.status_code == 200
    items = mixed.json()["update"]
    assert items[0]["short_description"] == "ok"
    assert items[1] == {"id": 999999, "error": {
        "code": "woocommerce_rest_product_invalid_id", "message": "Invalid ID.",
        "data": {"status": 400}}}
    assert items[2]["regular_price"] == "5"  # not type-checked in a batch
    fatal = client.post(f"{PRODUCTS}/batch", json={"update": [
        {"id": 30, "short_description": "saved before the crash"},
        {"id": 31, "name": {"rendered": "object"}},
        {"id": 32, "short_description": "never reached"}]})
    assert fatal.status_code == 500
    assert fatal.json()["code"] == "internal_server_error"
    assert running.store.product(30)["short_description"] == "saved before the crash"
    assert running.store.product(32)["short_description"] != "never reached"
    assert running.store.count(route="products/batch", method="POST") == 3


def test_create_delete_and_duplicate_sku(client: httpx.Client) -> None:
    created = client.post(PRODUCTS, json={"regular_price": "5.00", "status": "draft"})
    assert created.status_code == 201
    assert created.json()["name"] == "Product"
    assert created.json()["categories"][0]["name"] == "Uncategorized"
    duplicate = client.put(f"{PRODUCTS}/{created.json()['id']}", json={"sku": "SUP-0001"})
    assert duplicate.status_code == 400
    assert duplicate.json()["data"]["resource_id"] == 1
    gone = client.delete(f"{PRODUCTS}/{created.json()['id']}", params={"force": "true"})
    assert gone.status_code == 200
    assert client.get(f"{PRODUCTS}/{created.json()['id']}").status_code == 404


def test_sku_search_include_and_fields(client: httpx.Client) -> None:
    two = client.get(PRODUCTS, params={"sku": "SUP-0003,SUP-0004"}).json()
    assert sorted(p["sku"] for p in two) == ["SUP-0003", "SUP-0004"]
    assert client.get(PRODUCTS, params={"sku": "SUP-000"}).json() == []
    assert client.get(PRODUCTS, params={"search": "SUP-0003"}).json() == []
    included = client.get(PRODUCTS, params={"include": "9,3,5", "orderby": "include"}).json()
    assert [p["id"] for p in included] == [9, 3, 5]
    slim = client.get(PRODUCTS, params={"_fields": "id,name,meta_data", "per_page": 3}).json()
    assert all(list(p) == ["id", "name", "meta_data"] for p in slim)


def test_variations_endpoint() -> None:
    from tests.store_helpers import SAMPLE_CSV

    with serve_store(SAMPLE_CSV, https=True) as served:
        assert served.ca_path is not None
        with httpx.Client(base_url=served.api_url, verify=client_context(served.ca_path),
                          auth=(served.consumer_key, served.consumer_secret)) as client:
            variable = client.get(PRODUCTS, params={"type": "variable"}).json()
            assert {p["name"] for p in variable} == {"V-Neck T-Shirt", "Hoodie"}
            parent = next(p for p in variable if p["name"] == "Hoodie")
            listed = client.get(f"{PRODUCTS}/{parent['id']}/variations")
            assert listed.headers["X-WP-Total"] == "4"
            assert sorted(v["id"] for v in listed.json()) == sorted(parent["variations"])
            vid = parent["variations"][0]
            before = parent["date_modified_gmt"]
            put = client.put(f"{PRODUCTS}/{parent['id']}/variations/{vid}",
                             json={"description": "Variation copy"})
            assert put.json()["description"] == "<p>Variation copy</p>\n"
            as_product = client.put(f"{PRODUCTS}/{vid}", json={"description": "x"})
            assert as_product.status_code == 404
            assert as_product.json()["code"] == "woocommerce_rest_invalid_product_id"
            after = client.get(f"{PRODUCTS}/{parent['id']}").json()["date_modified_gmt"]
            assert after >= before
            assert client.get(f"{PRODUCTS}/999999/variations").json() == []
            # the product list never holds variations, even when asked for by include=
            listed_ids = client.get(PRODUCTS, params={
                "include": f"{parent['id']},{vid}", "orderby": "include"}).json()
            assert [p["id"] for p in listed_ids] == [parent["id"]]
            other = next(p for p in variable if p["name"] == "V-Neck T-Shirt")
            wrong = client.get(f"{PRODUCTS}/{other['id']}/variations/{vid}")
            assert wrong.status_code == 404
            assert wrong.json()["code"] == "woocommerce_rest_product_variation_invalid_id"


def _median_page_s(n: int, params: dict[str, Any]) -> float:
    """Median time of late pages once the ordering is cached (the first page sorts)."""
    import statistics
    import time

    from tests.store_helpers import OAuth1

    with serve_store(synthetic_catalog(n, seed=1)) as served, httpx.Client(
            base_url=served.api_url, timeout=30,
            auth=OAuth1(served.consumer_key, served.consumer_secret)) as client:
        assert client.get(PRODUCTS, params={**params, "per_page": 100}).status_code == 200
        last = n // 100
        times = []
        for page in range(last - 9, last + 1):
            start = time.perf_counter()
            response = client.get(PRODUCTS, params={**params, "per_page": 100, "page": page})
            times.append(time.perf_counter() - start)
            assert response.status_code == 200 and len(response.json()) == 100
        return statistics.median(times)


def test_late_pages_cost_the_same_in_a_ten_times_bigger_store() -> None:
    params = {"orderby": "id", "order": "asc", "context": "edit"}
    small = _median_page_s(3_000, params)
    big = _median_page_s(30_000, params)
    assert big < 3 * small + 0.03, f"page of 100: {big * 1000:.0f} ms at 30k vs " \
                                     f"{small * 1000:.0f} ms at 3k"


def test_paging_sorts_and_scans_once_per_query_until_a_write(client: httpx.Client,
                                                              running: RunningStore) -> None:
    store = running.store
    queries = [{}, {"orderby": "id", "order": "asc"},
               {"modified_after": "2024-12-31T23:59:59", "dates_are_gmt": "true"}]
    for params in queries:
        before = Counter(store.scans)
        for page in range(1, 12):
            assert client.get(PRODUCTS, params={**params, "per_page": 100, "page": page}
                              ).status_code == 200
        added = Counter(store.scans) - before
        assert added["sort"] <= 1 and added["filter"] <= 1, (params, added)
    before = Counter(store.scans)
    client.put(f"{PRODUCTS}/3", json={"short_description": "a write"})
    for page in (1, 2):
        client.get(PRODUCTS, params={"orderby": "id", "order": "asc", "page": page})
        client.get(PRODUCTS, params={"modified_after": "2024-12-31T23:59:59",
                                     "dates_are_gmt": "true", "page": page})
    added = Counter(store.scans) - before
    # a text write keeps the id order cached; the modified_after result is rebuilt once
    assert added == Counter({"filter": 1}), added


def test_method_override_for_hosts_that_block_put(client: httpx.Client) -> None:
    by_header = client.post(f"{PRODUCTS}/7", json={"name": "Override header"},
                            headers={"X-HTTP-Method-Override": "PUT"})
    by_param = client.post(f"{PRODUCTS}/7", params={"_method": "PATCH"},
                           json={"short_description": "Override param"})
    assert by_header.status_code == by_param.status_code == 200
    stored = client.get(f"{PRODUCTS}/7", params={"context": "edit"}).json()
    assert (stored["name"], stored["short_description"]) == ("Override header",
                                                             "Override param")


def test_trash_without_force_and_listing_by_status(client: httpx.Client) -> None:
    trashed = client.delete(f"{PRODUCTS}/15")
    assert trashed.status_code == 200 and trashed.json()["status"] == "trash"
    assert client.get(f"{PRODUCTS}/15").json()["status"] == "trash"
    assert client.get(PRODUCTS).headers["X-WP-Total"] == "1049"
    assert [p["id"] for p in client.get(PRODUCTS, params={"status": "trash"}).json()] == [15]
    assert client.delete(f"{PRODUCTS}/15", params={"force": "true"}).status_code == 200
    assert client.get(f"{PRODUCTS}/15").status_code == 404


def test_routes_trailing_slash_and_bad_context(client: httpx.Client) -> None:
    assert client.get(f"{PRODUCTS}/3/").status_code == 200
    bad = client.get(f"{PRODUCTS}/3", params={"context": "bogus"})
    assert bad.status_code == 400
    assert bad.json()["data"]["params"] == {"context": "context is not one of view and edit."}
    assert client.get("/productz").json()["code"] == "rest_no_route"
    assert client.delete(PRODUCTS).json()["code"] == "rest_no_route"


def test_variation_batch_create_update_delete() -> None:
    from tests.store_helpers import SAMPLE_CSV

    with serve_store(SAMPLE_CSV, https=True) as served:
        assert served.ca_path is not None
        with httpx.Client(base_url=served.api_url, verify=client_context(served.ca_path),
                          auth=(served.consumer_key, served.consumer_secret)) as client:
            parent = client.get(PRODUCTS, params={"sku": "woo-vneck-tee"}).json()[0]
            vids = parent["variations"]
            response = client.post(f"{PRODUCTS}/{parent['id']}/variations/batch", json={
                "create": [{"regular_price": "30", "sku": "woo-vneck-tee-gold",
                            "attributes": [{"id": 1, "option": "Gold"}]}],
                "update": [{"id": vids[0], "regular_price": "21"}, {"id": 999999}],
                "delete": [vids[1]]})
            assert response.status_code == 200
            body = response.json()
            assert body["create"][0]["sku"] == "woo-vneck-tee-gold"
            assert body["update"][0]["regular_price"] == "21"
            assert body["update"][1]["error"]["code"] == \
                "woocommerce_rest_product_variation_invalid_id"
            assert body["delete"][0]["id"] == vids[1]
            after = client.get(f"{PRODUCTS}/{parent['id']}").json()
            assert sorted(after["variations"]) == sorted(
                [vids[0], vids[2], body["create"][0]["id"]])
            assert after["price"] == "15"  # the lowest variation price (blue) now
