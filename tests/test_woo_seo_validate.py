"""SEO meta mapping and client-side write validation (pure functions, no server needed)."""

from __future__ import annotations

import pytest

from enrich.errors import InputError
from enrich.httpserver import Request, Response
from enrich.woo.seo import META_KEYS, meta_keys, read_seo, to_meta_data, writable_fields
from enrich.woo.validate import check_batch, check_product_update
from tests.woo_helpers import client, drop, interposed_store, product


@pytest.mark.parametrize(("plugin", "title", "desc", "kw"), [
    ("yoast", "_yoast_wpseo_title", "_yoast_wpseo_metadesc", "_yoast_wpseo_focuskw"),
    ("rankmath", "rank_math_title", "rank_math_description", "rank_math_focus_keyword"),
    ("seopress", "_seopress_titles_title", "_seopress_titles_desc",
     "_seopress_analysis_target_kw"),
])
def test_each_plugin_maps_three_keys(plugin: str, title: str, desc: str, kw: str) -> None:
    assert meta_keys(plugin) == {"seo_title": title, "meta_description": desc,
                                 "focus_keyword": kw}
    meta = [{"id": 1, "key": title, "value": "old"}, {"id": 2, "key": "other", "value": "x"},
            {"id": 3, "key": title, "value": "new"}, {"id": 4, "key": desc, "value": "d"}]
    assert read_seo(meta, plugin) == {"seo_title": "new", "meta_description": "d",
                                      "focus_keyword": None}
    assert to_meta_data({"seo_title": "T", "focus_keyword": None}, plugin) == [
        {"key": title, "value": "T"}, {"key": kw, "value": None}]


def test_none_and_unknown_plugins() -> None:
    assert writable_fields("none") == () and read_seo([{"key": "a"}], "none") == {}
    with pytest.raises(ValueError, match="cannot be written"):
        to_meta_data({"seo_title": "x"}, "none")
    with pytest.raises(ValueError, match="unknown SEO plugin"):
        meta_keys("aioseo")
    assert "aioseo" not in META_KEYS  # its data lives in its own table, not post meta


def test_validation_names_product_and_field() -> None:
    cases = {
        "field description: expected a string, got integer": {"description": 42},
        "field name: empty": {"name": ""},
        "control character": {"short_description": "ok\x00no"},
        "over the limit": {"description": "é" * 600_000},
        "meta_data[0].key: _sku is an internal": {"meta_data": [{"key": "_sku", "value": "x"}]},
        "images[0].id": {"images": [{"id": "7", "alt": "x"}]},
        "not a price": {"regular_price": "19,99"},
    }
    for expected, data in cases.items():
        with pytest.raises(InputError, match="product 7") as info:
            check_product_update(data, "product 7")
        assert expected in str(info.value)
    check_product_update({"name": "Fine", "description": "<p>ok</p>", "regular_price": "19.99",
                          "images": [{"id": 3, "alt": "Walnut table"}],
                          "meta_data": [{"key": "_yoast_wpseo_title", "value": None}]},
                         "product 7")
    assert check_batch([{"id": 2, "short_description": "x"}, {"id": 3}]) == [2, 3]


def test_update_product_dropped_after_apply_is_read_back() -> None:
    def apply_then_drop(request: Request, handle) -> Response:  # type: ignore[no-untyped-def]
        if request.method == "PUT":
            handle(request)
            return drop(request)
        return handle(request)

    with interposed_store([product(1)]) as (url, store, inter):
        inter.hook = apply_then_drop
        with client(url) as woo:
            out = woo.update_product(1, {"short_description": "Once."})
        assert out["short_description"] == "Once."
        assert store.count(method="PUT") == 1


def test_oauth1_signature_matches_the_recorded_real_store() -> None:
    """Sign the recorded request's parameters: the result is the signature the real
    WooCommerce accepted (same nonce and timestamp; throwaway keys of that install)."""
    import json
    from urllib.parse import parse_qsl, unquote, urlsplit

    from authlib.oauth1 import SIGNATURE_TYPE_QUERY

    from enrich.woo.auth import SIGNATURE_HMAC_SHA256, _WooSigner
    from tests.paths import CONTRACT_DIR as contract

    recorded = json.loads((contract / "list_products_oauth1_http_page2.json").read_text())
    link = recorded["response"]["headers"]["Link"]
    key = dict(parse_qsl(urlsplit(link.split(">")[0].strip("<")).query))["oauth_consumer_key"]
    errors = json.loads((contract / "errors_auth_permissions.json").read_text())
    secret = next(c["request"]["params"]["consumer_secret"] for c in errors["cases"]
                  if c["status"] == 200 and (c["request"].get("params") or {}).get(
                      "consumer_key") == key)
    url = recorded["request"]["url"].replace("{CK}", key)
    query = dict(parse_qsl(urlsplit(url).query))
    expected = query.pop("oauth_signature")
    unsigned = "http://127.0.0.1:8080/wp-json/wc/v3/products?" + "&".join(
        f"{k}={v}" for k, v in query.items())
    signer = _WooSigner(key, secret, signature_method=SIGNATURE_HMAC_SHA256,
                        signature_type=SIGNATURE_TYPE_QUERY)
    assert signer.get_oauth_signature("GET", unsigned, {}, b"") == unquote(expected)


def test_a_missing_ca_file_is_a_config_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from enrich.errors import ConfigError

    with pytest.raises(ConfigError, match="verify_tls"):
        client("https://127.0.0.1:9", verify=str(tmp_path / "nope.pem"))
