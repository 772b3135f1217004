"""Each auth mode of the sandbox store over real HTTP(S) on 127.0.0.1.

OAuth 1.0a requests are signed by authlib (an independent implementation), so a passing
test means the sandbox verifies real signatures, not its own idea of them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from authlib.oauth1 import ClientAuth

from enrich.sandbox.store_auth import ApiKey
from tests.store_helpers import (
    ADMIN,
    CUSTOMER,
    READ_ONLY,
    SHOP_MANAGER,
    WRITE_ONLY,
    ContractStore,
    OAuth1,
    contract_store,
)

PRODUCTS = "/wp-json/wc/v3/products"
CANNOT_LIST = {"code": "woocommerce_rest_cannot_view",
               "message": "Sorry, you cannot list resources.", "data": {"status": 401}}
BAD_SECRET = {"code": "woocommerce_rest_authentication_error",
              "message": "Consumer secret is invalid.", "data": {"status": 401}}
BAD_SIGNATURE = {"code": "woocommerce_rest_authentication_error",
                 "message": "Invalid signature - provided signature does not match.",
                 "data": {"status": 401}}


@pytest.fixture(scope="module")
def shop() -> Iterator[ContractStore]:
    with contract_store() as running:
        yield running


def _https(shop: ContractStore, auth: object = None) -> httpx.Client:
    return httpx.Client(base_url=shop.https_url, verify=shop.verify, auth=auth,  # type: ignore[arg-type]
                        timeout=10)


def _http(shop: ContractStore, auth: object = None) -> httpx.Client:
    return httpx.Client(base_url=shop.http_url, auth=auth, timeout=10)  # type: ignore[arg-type]


def test_basic_over_https(shop: ContractStore) -> None:
    with _https(shop, (ADMIN.consumer_key, ADMIN.consumer_secret)) as client:
        response = client.get(PRODUCTS, params={"per_page": 5})
    assert response.status_code == 200
    assert response.headers["X-WP-Total"] == "198"
    assert len(response.json()) == 5
    assert "no-store" in response.headers["Cache-Control"]


@pytest.mark.parametrize("auth, expected", [
    (None, CANNOT_LIST),
    ((ADMIN.consumer_key, "cs_wrong"), BAD_SECRET),
    (("ck_unknown", "cs_unknown"), CANNOT_LIST),
])
def test_basic_failures_get_the_real_401_bodies(shop: ContractStore, auth: object,
                                                expected: dict[str, object]) -> None:
    with _https(shop, auth) as client:
        response = client.get(PRODUCTS)
    assert response.status_code == 401
    assert response.json() == expected
    assert response.headers.get("Vary") == "Origin"
    assert "Allow" not in response.headers


def test_single_product_without_auth_says_view(shop: ContractStore) -> None:
    with _https(shop) as client:
        response = client.get(f"{PRODUCTS}/20")
    assert response.status_code == 401
    assert response.json()["message"] == "Sorry, you cannot view this resource."


def test_query_string_keys_over_https(shop: ContractStore) -> None:
    with _https(shop) as client:
        ok = client.get(PRODUCTS, params={"consumer_key": ADMIN.consumer_key,
                                          "consumer_secret": ADMIN.consumer_secret,
                                          "per_page": 1})
        wrong = client.get(PRODUCTS, params={"consumer_key": ADMIN.consumer_key,
                                             "consumer_secret": "nope"})
    assert ok.status_code == 200 and len(ok.json()) == 1
    assert "consumer_secret=" in ok.headers["Link"]  # echoed, as the real store does
    assert wrong.status_code == 401 and wrong.json() == BAD_SECRET


def test_basic_and_query_keys_over_plain_http_are_anonymous(shop: ContractStore) -> None:
    with _http(shop, (ADMIN.consumer_key, ADMIN.consumer_secret)) as client:
        basic = client.get(PRODUCTS)
    with _http(shop) as client:
        query = client.get(PRODUCTS, params={"consumer_key": ADMIN.consumer_key,
                                             "consumer_secret": ADMIN.consumer_secret})
    assert basic.status_code == query.status_code == 401
    assert basic.json() == query.json() == CANNOT_LIST


@pytest.mark.parametrize("method", ["HMAC-SHA256", "HMAC-SHA1"])
def test_oauth1_over_http_signed_by_authlib(shop: ContractStore, method: str) -> None:
    with _http(shop, OAuth1(ADMIN.consumer_key, ADMIN.consumer_secret, method)) as client:
        listing = client.get(PRODUCTS, params={"per_page": 100, "page": 2,
                                               "search": "a b+c/d"})
        put = client.put(f"{PRODUCTS}/20", json={"short_description": "signed write"})
    assert listing.status_code == 200, listing.text
    assert put.status_code == 200, put.text
    assert put.json()["short_description"] == "signed write"


def test_oauth1_in_the_authorization_header(shop: ContractStore) -> None:
    signer = ClientAuth(ADMIN.consumer_key, ADMIN.consumer_secret,
                        signature_method="HMAC-SHA256", signature_type="HEADER")
    url = f"{shop.http_url}{PRODUCTS}?per_page=3"
    _, headers, _ = signer.sign("GET", url, {}, b"")
    with _http(shop) as client:
        response = client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    assert len(response.json()) == 3


def test_oauth1_wrong_secret_and_tampered_query(shop: ContractStore) -> None:
    with _http(shop, OAuth1(ADMIN.consumer_key, "cs_wrong")) as client:
        wrong = client.get(PRODUCTS)
    signer = ClientAuth(ADMIN.consumer_key, ADMIN.consumer_secret,
                        signature_method="HMAC-SHA256", signature_type="QUERY")
    url, _, _ = signer.sign("GET", f"{shop.http_url}{PRODUCTS}?per_page=1", {}, b"")
    with _http(shop) as client:
        tampered = client.get(url.replace("per_page=1", "per_page=2"))
    assert wrong.status_code == tampered.status_code == 401
    assert wrong.json() == tampered.json() == BAD_SIGNATURE


def test_oauth1_nonce_replay_and_old_timestamp(shop: ContractStore) -> None:
    signer = ClientAuth(ADMIN.consumer_key, ADMIN.consumer_secret,
                        signature_method="HMAC-SHA256", signature_type="QUERY")
    url, _, _ = signer.sign("GET", f"{shop.http_url}{PRODUCTS}?per_page=1", {}, b"")
    with _http(shop) as client:
        first = client.get(url)
        replay = client.get(url)
    assert first.status_code == 200
    assert replay.status_code == 401
    assert replay.json()["message"] == "Invalid nonce - nonce has already been used."
    url, _, _ = signer.sign("GET", f"{shop.http_url}{PRODUCTS}?per_page=1", {}, b"")
    saved = shop.clock.now
    shop.clock.now = time.time() + 3600  # the store's clock is an hour past the signature
    try:
        with _http(shop) as client:
            stale = client.get(url)
    finally:
        shop.clock.now = saved
    assert stale.status_code == 401
    assert stale.json()["message"] == "Invalid timestamp."


def test_oauth1_unknown_key_and_missing_parameters(shop: ContractStore) -> None:
    with _http(shop, OAuth1("ck_unknown", "cs_unknown")) as client:
        unknown = client.get(PRODUCTS)
    with _http(shop) as client:
        partial = client.get(PRODUCTS, params={"oauth_consumer_key": ADMIN.consumer_key})
    assert unknown.status_code == 401
    assert unknown.json()["message"] == "Consumer key is invalid."
    assert partial.status_code == 401
    assert partial.json()["code"] == "woocommerce_rest_authentication_missing_parameter"


def test_oauth1_link_echoes_signature_and_verbatim_follow_fails(shop: ContractStore) -> None:
    with _http(shop, OAuth1(ADMIN.consumer_key, ADMIN.consumer_secret)) as client:
        page1 = client.get(PRODUCTS, params={"per_page": 100})
        next_url = page1.links["next"]["url"]
        echoed = dict(parse_qsl(urlsplit(next_url).query))
        assert echoed["oauth_consumer_key"] == ADMIN.consumer_key
        assert echoed["page"] == "2"
    with _http(shop) as bare:
        verbatim = bare.get(next_url)
    assert verbatim.status_code == 401
    # stripping oauth_* and re-signing is what a client must do
    clean = {k: v for k, v in echoed.items() if not k.startswith("oauth_")}
    with _http(shop, OAuth1(ADMIN.consumer_key, ADMIN.consumer_secret)) as client:
        page2 = client.get(PRODUCTS, params=clean)
    assert page2.status_code == 200
    assert len(page2.json()) == 98


@pytest.mark.parametrize("key, method, path, body, status, code, message", [
    (READ_ONLY, "PUT", f"{PRODUCTS}/20", {"name": "x"}, 401,
     "woocommerce_rest_authentication_error",
     "The API key provided does not have write permissions."),
    (READ_ONLY, "POST", f"{PRODUCTS}/batch", {"update": [{"id": 20}]}, 401,
     "woocommerce_rest_authentication_error",
     "The API key provided does not have write permissions."),
    (WRITE_ONLY, "GET", PRODUCTS, None, 401, "woocommerce_rest_authentication_error",
     "The API key provided does not have read permissions."),
    (CUSTOMER, "GET", PRODUCTS, None, 403, "woocommerce_rest_cannot_view",
     "Sorry, you cannot list resources."),
    (CUSTOMER, "PUT", f"{PRODUCTS}/20", {"name": "x"}, 403, "woocommerce_rest_cannot_edit",
     "Sorry, you are not allowed to edit this resource."),
    (CUSTOMER, "POST", f"{PRODUCTS}/batch", {"update": []}, 403,
     "woocommerce_rest_cannot_batch",
     "Sorry, you are not allowed to batch manipulate this resource."),
])
def test_key_permissions(shop: ContractStore, key: ApiKey, method: str, path: str,
                         body: object, status: int, code: str, message: str) -> None:
    with _https(shop, (key.consumer_key, key.consumer_secret)) as client:
        response = client.request(method, path, json=body)
    assert response.status_code == status
    assert response.json() == {"code": code, "message": message, "data": {"status": status}}


def test_read_only_and_shop_manager_keys_can_read(shop: ContractStore) -> None:
    for key in (READ_ONLY, SHOP_MANAGER):
        with _https(shop, (key.consumer_key, key.consumer_secret)) as client:
            assert client.get(PRODUCTS, params={"per_page": 1}).status_code == 200
    with _https(shop, (SHOP_MANAGER.consumer_key, SHOP_MANAGER.consumer_secret)) as client:
        assert client.put(f"{PRODUCTS}/21", json={"sku": "woo-long-sleeve-tee"}
                          ).status_code == 200
