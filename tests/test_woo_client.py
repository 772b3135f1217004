"""WooClient against the sandbox store over real HTTP on 127.0.0.1: paging, auth, faults."""

from __future__ import annotations

import dataclasses
import time
from urllib.parse import parse_qsl

import httpx
import pytest

from enrich.errors import ConfigError, InputError, StoreAuthError, StoreError, StoreUnavailable
from enrich.httpserver import Request, Response
from enrich.sandbox.catalog import synthetic_catalog
from enrich.sandbox.store import serve_store
from enrich.sandbox.store_auth import ApiKey
from enrich.sandbox.tls import client_context
from enrich.woo.auth import make_auth, may_hold_credentials, strip_credentials
from enrich.woo.client import ProductPage, parse_retry_after
from tests.woo_helpers import (
    KEY,
    SECRET,
    StripAuthorization,
    client,
    drop,
    interposed_store,
    options,
    product,
)

ALL = ("publish", "draft", "pending", "private", "future")


@pytest.fixture(scope="module")
def catalog_1050() -> list[dict]:
    return list(synthetic_catalog(1050, seed=7))


def _ids(pages: list[list[dict]]) -> list[int]:
    return [p["id"] for page in pages for p in page]


# -- paging ---------------------------------------------------------------------------------

def test_pages_1050_products_over_oauth1_following_link(catalog_1050: list[dict]) -> None:
    with serve_store(catalog_1050, options=options()) as srv, client(srv.url) as woo:
        assert woo.auth_mode == "oauth1"
        pages = list(woo.iter_product_pages(statuses=ALL))
        log = list(srv.store.request_log)
    assert [len(p) for p in pages] == [100] * 10 + [50]
    assert _ids(pages) == list(range(1, 1051))
    assert pages[0].total == 1050 and pages[0].total_pages == 11
    assert pages[0].server_time is not None
    # 11 requests, all accepted: each Link was stripped of the echoed oauth_* and re-signed.
    assert [entry.status for entry in log] == [200] * 11
    nonces = [dict(parse_qsl(e.query))["oauth_nonce"] for e in log]
    assert len(set(nonces)) == 11
    assert all(dict(parse_qsl(e.query))["context"] == "edit" for e in log)
    assert [int(dict(parse_qsl(e.query))["page"]) for e in log] == list(range(1, 12))


def test_every_nth_page_by_number_as_the_page_fetcher_reads_them(
        catalog_1050: list[dict]) -> None:
    # The fetcher reads pages first, first + step, ... by their numbers (not by Link) and
    # stops at the store's last page, or at an empty page past it (the catalog shrank
    # meanwhile); a reader decodes each as iter_product_pages gives it.
    with serve_store(catalog_1050, options=options()) as srv, client(srv.url) as woo:
        def pages(statuses: tuple[str, ...], first: int, step: int) -> list[ProductPage]:
            return [woo.product_page(body, statuses) for body in woo.iter_page_bodies(
                statuses=statuses, first_page=first, step=step)]

        odd, even = pages(ALL, 1, 2), pages(ALL, 2, 2)
        third, past = pages(("publish",), 3, 3), pages(ALL, 12, 2)
        asked = [int(dict(parse_qsl(e.query))["page"]) for e in srv.store.request_log]
        listed = list(woo.iter_product_pages(statuses=("publish", "draft")))
        bodies = list(woo.iter_page_bodies(statuses=("publish", "draft")))
        decoded = [woo.product_page(b, ("publish", "draft")) for b in bodies]
    assert [p.number for p in odd] == [1, 3, 5, 7, 9, 11]
    assert [p.number for p in even] == [2, 4, 6, 8, 10]
    assert sorted(_ids(odd) + _ids(even)) == list(range(1, 1051))
    assert [p.number for p in third] == [3, 6, 9]
    assert sum(len(p) + p.skipped for p in third) == 300
    assert [(p.number, len(p)) for p in past] == [(12, 0)]  # one empty page, then the end
    assert asked == [1, 3, 5, 7, 9, 11, 2, 4, 6, 8, 10, 3, 6, 9, 12]
    # Fetched, then decoded: the same pages, statuses left out and counted, as one client.
    assert [(list(p), p.number, p.total, p.total_pages, p.skipped) for p in decoded] == \
        [(list(p), p.number, p.total, p.total_pages, p.skipped) for p in listed]
    assert sum(p.skipped for p in decoded) > 0 and all(b.server_time for b in bodies)

    def overstated(request: Request, handle) -> Response:  # type: ignore[no-untyped-def]
        answer = handle(request)  # a store whose count says 50 pages: the empty page ends it
        answer.headers = [(k, "50" if k == "X-WP-TotalPages" else v) for k, v in answer.headers]
        return answer

    with interposed_store(catalog_1050[:250]) as (url, _store, inter):
        inter.hook = overstated
        with client(url) as woo:
            bodies = list(woo.iter_page_bodies(statuses=ALL, first_page=2, step=2))
    assert [(b.number, b.empty) for b in bodies] == [(2, False), (4, True)]


def test_a_fetched_page_that_is_not_a_list_of_products_is_an_error_naming_the_request(
        catalog_1050: list[dict]) -> None:
    with serve_store(catalog_1050[:10], options=options()) as srv, client(srv.url) as woo:
        body = next(woo.iter_page_bodies(statuses=ALL))
    for content, words in ((b'{"code": "x"}', "expected a JSON array of products, got dict"),
                           (b"<html>Fatal error</html>", "a body that is not JSON")):
        with pytest.raises(StoreError, match=words) as err:
            woo.product_page(dataclasses.replace(body, content=content), ALL)
        assert "GET /wp-json/wc/v3/products" in str(err.value)


def test_basic_auth_sends_no_credentials_from_the_url_and_leaves_a_clean_url_alone() -> None:
    # A URL the store handed back (a Link) may echo credentials, percent-encoded or not:
    # Basic sends none of them. A URL without any is sent as it was built, not rebuilt.
    auth = make_auth("basic", KEY, SECRET)
    tainted = ("https://shop.example/wp-json/wc/v3/products?page=2&o%61uth_nonce=n"
               "&consumer%5Fsecret=s&_fields=id%2Cname&oauth_signature=x")
    for url in (tainted, tainted.replace("o%61uth", "oauth")):
        sent = next(auth.sync_auth_flow(httpx.Request("GET", url)))
        assert dict(parse_qsl(sent.url.query.decode())) == {"page": "2", "_fields": "id,name"}
        assert sent.headers["Authorization"].startswith("Basic ")
    clean = httpx.Request("GET", "https://shop.example/wp-json/wc/v3/products?page=2"
                                 "&_fields=id%2Cname%2Cmeta_data&status=any")
    url = clean.url
    assert next(auth.sync_auth_flow(clean)).url is url
    assert not may_hold_credentials("page=2&_fields=id%2Cname") and \
        may_hold_credentials("x=1&consumer%5Fkey=k") and may_hold_credentials("oauth_nonce=1")


def test_following_the_oauth1_link_verbatim_is_refused(catalog_1050: list[dict]) -> None:
    """The trap the client avoids: the Link echoes a used nonce and signature."""
    with serve_store(catalog_1050[:150], options=options()) as srv, client(srv.url) as woo:
        first = woo._request("GET", woo.api_url + "/products", params={"per_page": 100})
        link = first.headers["Link"].split(";")[0].strip("<>")
        assert "oauth_signature=" in link
        replay = httpx.get(link)
        assert replay.status_code == 401
        assert "oauth_" not in strip_credentials(link)


def test_statuses_filter_and_single_status(catalog_1050: list[dict]) -> None:
    with serve_store(catalog_1050, options=options()) as srv, client(srv.url) as woo:
        publish_only = list(woo.iter_product_pages(statuses=("publish",)))
        mixed = list(woo.iter_product_pages(statuses=("draft", "private")))
        queries = [dict(parse_qsl(e.query)) for e in srv.store.request_log]
    statuses = {p["id"]: p["status"] for p in catalog_1050}
    assert {statuses[i] for i in _ids(publish_only)} == {"publish"}
    assert {statuses[i] for i in _ids(mixed)} == {"draft", "private"}
    assert sum(p.skipped for p in mixed) == sum(
        1 for s in statuses.values() if s not in ("draft", "private"))
    assert queries[0]["status"] == "publish"
    assert queries[-1]["status"] == "any"  # the API takes one status; several are filtered here


def test_per_page_over_100_is_refused_before_sending(catalog_1050: list[dict]) -> None:
    with serve_store(catalog_1050[:10], options=options()) as srv, client(srv.url) as woo:
        with pytest.raises(InputError, match="per_page 101"):
            woo.iter_product_pages(per_page=101)
        with pytest.raises(InputError, match="modified_after"):
            woo.iter_product_pages(modified_after="2026-01-01")
        assert srv.store.count() == 0


def test_modified_after_is_exclusive_and_gmt(catalog_1050: list[dict]) -> None:
    with serve_store(catalog_1050[:30], options=options()) as srv, client(srv.url) as woo:
        edited = srv.store.edit(5, description="Changed in wp-admin")
        stamp = edited["date_modified_gmt"]
        at = list(woo.iter_product_pages(modified_after=stamp))
        just_before = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(
            time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")) - time.timezone - 1))
        before = list(woo.iter_product_pages(modified_after=just_before))
        query = dict(parse_qsl(srv.store.request_log[-1].query))
    assert _ids(at) == []  # exclusive bound: a page past the end is 200 [] and ends paging
    assert _ids(before) == [5]
    assert query["dates_are_gmt"] == "true"


def test_get_products_keeps_order_and_reads_edit_context() -> None:
    items = [product(i, description="Line one\n\nLine two") for i in range(1, 6)]
    with serve_store(items, options=options()) as srv, client(srv.url) as woo:
        got = woo.get_products([4, 2, 5])
        assert [p["id"] for p in got] == [4, 2, 5]
        assert got[0]["description"] == "Line one\n\nLine two"  # not wpautop'd
        with pytest.raises(InputError):
            woo.get_products(list(range(1, 102)))


def test_variations_are_paged() -> None:
    parent = product(1, type="variable", attributes=[{"id": 0, "name": "Size", "position": 0,
                                                      "visible": True, "variation": True,
                                                      "options": ["S", "M"]}])
    kids = [{"id": 10 + i, "type": "variation", "parent_id": 1, "sku": f"V-{i}",
             "description": "", "regular_price": "10.00", "status": "publish",
             "attributes": [{"id": 0, "name": "Size", "option": s}]}
            for i, s in enumerate(["S", "M"])]
    with serve_store([parent, *kids], options=options()) as srv, client(srv.url) as woo:
        assert [v["id"] for v in woo.iter_variations(1)] == [10, 11]
        assert list(woo.iter_variations(999)) == []  # a missing parent is 200 [], not 404


# -- auth -----------------------------------------------------------------------------------

def test_basic_over_https_with_the_sandbox_ca() -> None:
    with serve_store([product(1)], options=options(), https=True) as srv:
        assert srv.ca_path is not None
        with client(srv.url, verify=str(srv.ca_path)) as woo:
            assert woo.auth_mode == "basic"
            assert _ids(list(woo.iter_product_pages())) == [1]
        log = list(srv.store.request_log)
    assert "consumer_secret" not in log[0].query


def test_query_keys_over_https_follow_links_without_doubling_keys() -> None:
    items = [product(i) for i in range(1, 251)]
    with serve_store(items, options=options(), https=True) as srv:
        with client(srv.url, auth="query", verify=str(srv.ca_path)) as woo:
            assert _ids(list(woo.iter_product_pages())) == list(range(1, 251))
        queries = [e.query for e in srv.store.request_log]
    assert len(queries) == 3
    assert all(q.count("consumer_key=") == 1 and q.count("consumer_secret=") == 1
               for q in queries)


def test_auto_falls_back_to_query_when_the_host_strips_authorization() -> None:
    with serve_store([product(1), product(2)], options=options(), https=True) as srv:
        assert srv.ca_path is not None
        transport = StripAuthorization(verify=client_context(srv.ca_path))
        with httpx.Client(transport=transport) as http, client(srv.url, http=http) as woo:
            assert woo.auth_mode == "basic"
            assert _ids(list(woo.iter_product_pages())) == [1, 2]
            assert woo.auth_mode == "query"
        statuses = [e.status for e in srv.store.request_log]
    assert statuses == [401, 200]


def test_auto_does_not_fall_back_on_a_wrong_secret() -> None:
    with serve_store([product(1)], options=options(), https=True) as srv, \
            client(srv.url, secret="cs_wrong_one", verify=str(srv.ca_path)) as woo, \
            pytest.raises(StoreAuthError) as info:
        list(woo.iter_product_pages())
    assert "cs_wrong_one" not in str(info.value) and "cs_wrong_one" not in info.value.hint
    assert "WOO_CONSUMER_SECRET" in info.value.hint
    assert info.value.status == 401


def test_oauth1_wrong_secret_names_the_signature() -> None:
    with serve_store([product(1)], options=options()) as srv, \
            client(srv.url, secret="cs_bad") as woo, pytest.raises(StoreAuthError) as info:
        list(woo.iter_product_pages())
    assert "signature" in str(info.value).lower()
    assert "store.url" in info.value.hint


def test_basic_over_plain_http_is_refused_with_a_hint() -> None:
    with serve_store([product(1)], options=options()) as srv, \
            client(srv.url, auth="basic") as woo, pytest.raises(StoreAuthError) as info:
        list(woo.iter_product_pages())
    assert "oauth1" in info.value.hint
    with pytest.raises(ConfigError, match="unencrypted"):
        client("http://shop.example.com", auth="query")


def test_permissions_read_only_key_and_customer_key() -> None:
    extra = (ApiKey("ck_readonly", "cs_readonly", permissions="read"),
             ApiKey("ck_customer", "cs_customer", role="customer"))
    with serve_store([product(1)], options=options(extra_keys=extra)) as srv:
        with client(srv.url, key="ck_readonly", secret="cs_readonly") as woo:
            assert len(woo.get_products([1])) == 1
            with pytest.raises(StoreAuthError) as info:
                woo.update_product(1, {"short_description": "x"})
            assert "read-only" in info.value.hint
        with client(srv.url, key="ck_customer", secret="cs_customer") as woo:
            with pytest.raises(StoreAuthError) as info:
                woo.get_products([1])
            assert info.value.status == 403
            assert "administrator or shop manager" in info.value.hint


# -- faults ---------------------------------------------------------------------------------

def test_survives_503_and_501_fail_rate(catalog_1050: list[dict]) -> None:
    with serve_store(catalog_1050, options=options(fail_rate=0.3, seed=3)) as srv, \
            client(srv.url, max_attempts=10) as woo:
        pages = list(woo.iter_product_pages(statuses=ALL))
        statuses = [e.status for e in srv.store.request_log]
    assert _ids(pages) == list(range(1, 1051))
    assert 503 in statuses and 501 in statuses
    assert statuses.count(200) == 11


def test_429_retry_after_is_honoured(catalog_1050: list[dict]) -> None:
    with serve_store(catalog_1050[:500], options=options(rate_limit=2)) as srv, \
            client(srv.url) as woo:
        started = time.monotonic()
        pages = list(woo.iter_product_pages(statuses=ALL))
        elapsed = time.monotonic() - started
        statuses = [e.status for e in srv.store.request_log]
    assert _ids(pages) == list(range(1, 501))
    assert 429 in statuses
    assert elapsed >= 1.0  # Retry-After: 1 was waited, not the millisecond backoff


def test_latency_and_timeouts() -> None:
    with serve_store([product(1)], options=options(latency_ms=50)) as srv:
        with client(srv.url) as woo:
            assert _ids(list(woo.iter_product_pages())) == [1]
        with client(srv.url, timeout_s=0.02, max_attempts=3) as woo:
            with pytest.raises(StoreUnavailable, match="ReadTimeout") as info:
                list(woo.iter_product_pages())
            assert "gave up after 3" in str(info.value)


def test_dropped_connections_are_retried_on_reads() -> None:
    items = [product(i) for i in range(1, 251)]
    calls = {"n": 0}

    def every_other(request: Request, handle) -> Response:  # type: ignore[no-untyped-def]
        calls["n"] += 1
        return drop(request) if calls["n"] % 2 == 1 else handle(request)

    with interposed_store(items) as (url, _store, inter):
        inter.hook = every_other
        with client(url) as woo:
            assert _ids(list(woo.iter_product_pages())) == list(range(1, 251))
    assert calls["n"] == 6


def test_gives_up_after_max_attempts_naming_the_request() -> None:
    with serve_store([product(1)], options=options(fail_rate=1.0)) as srv, \
            client(srv.url, max_attempts=4) as woo:
        with pytest.raises(StoreUnavailable) as info:
            list(woo.iter_product_pages())
        assert srv.store.count() == 4
    assert "GET /wp-json/wc/v3/products" in str(info.value)
    assert "503 Service Temporarily Unavailable" in str(info.value) \
        or "Method Not Implemented" in str(info.value)  # the WAF page's title, not its HTML
    assert "<html" not in str(info.value).lower()
    assert SECRET not in str(info.value)


def test_a_retry_after_longer_than_allowed_stops_at_once() -> None:
    def busy(request: Request, handle) -> Response:  # type: ignore[no-untyped-def]
        return Response.json({"code": "busy", "message": "later", "data": {"status": 429}},
                             429, [("Retry-After", "3600")])

    with interposed_store([product(1)]) as (url, _store, inter):
        inter.hook = busy
        with client(url, max_retry_after_s=5) as woo, pytest.raises(StoreUnavailable,
                                                                     match="3600"):
            woo.get_products([1])


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert 0 <= (parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") or 0) == 0


# -- writes ---------------------------------------------------------------------------------

def test_batch_items_are_validated_before_anything_is_sent() -> None:
    with serve_store([product(1), product(2)], options=options()) as srv, \
            client(srv.url) as woo:
        bad = [
            [{"id": 1, "regular_price": 19.99}],
            [{"id": 1, "name": {"bad": "type"}}],
            [{"id": 1, "name": "   "}],
            [{"id": 1, "description": "x\udcff"}],
            [{"id": 1, "status": "bogus"}],
            [{"id": 1, "meta_data": {"key": "a"}}],
            [{"id": 1, "meta_data": [{"id": 5, "value": "x"}]}],
            [{"id": 1, "categories": [17]}],
            [{"id": 1, "short_description": "a"}, {"id": 1, "short_description": "b"}],
            [{"id": 1, "bogus_field": 1}],
            [{"id": i, "short_description": "x"} for i in range(1, 102)],
            [{"short_description": "no id"}],
        ]
        for items in bad:
            with pytest.raises(InputError):
                woo.batch_update(items)
        with pytest.raises(InputError, match="product 1: field regular_price"):
            woo.batch_update([{"id": 1, "regular_price": 19.99}])
        assert srv.store.count(method="POST") == 0
        assert srv.store.product(1)["regular_price"] == "149.00"


def test_batch_per_item_errors_and_success() -> None:
    with serve_store([product(1), product(2)], options=options()) as srv, \
            client(srv.url) as woo:
        results = woo.batch_update([
            {"id": 1, "short_description": "Short and sweet walnut table.",
             "meta_data": [{"key": "_yoast_wpseo_title", "value": "Walnut table"}]},
            {"id": 999999, "short_description": "nobody"},
        ])
        assert [r.ok for r in results] == [True, False]
        assert results[1].error_code == "woocommerce_rest_product_invalid_id"
        stored = srv.store.product(1)
    assert stored["short_description"] == "Short and sweet walnut table."
    assert {"_yoast_wpseo_title": "Walnut table"}.items() <= {
        m["key"]: m["value"] for m in stored["meta_data"]}.items()


def test_batch_dropped_after_apply_is_verified_not_resent() -> None:
    def apply_then_drop(request: Request, handle) -> Response:  # type: ignore[no-untyped-def]
        if request.method == "POST":
            handle(request)
            return drop(request)
        return handle(request)

    with interposed_store([product(1), product(2)]) as (url, store, inter):
        inter.hook = apply_then_drop
        with client(url) as woo:
            results = woo.batch_update([{"id": 1, "short_description": "Applied once."},
                                        {"id": 2, "short_description": "Applied too."}])
        assert store.count(method="POST") == 1
    assert all(r.ok and r.verified for r in results)
    assert results[0].product is not None
    assert results[0].product["short_description"] == "Applied once."


def test_batch_500_before_apply_is_reported_not_resent() -> None:
    def crash(request: Request, handle) -> Response:  # type: ignore[no-untyped-def]
        if request.method == "POST":
            return Response.json({"code": "internal_server_error", "message": "critical",
                                  "data": {"status": 500}}, 500)
        return handle(request)

    with interposed_store([product(1)]) as (url, store, inter):
        inter.hook = crash
        with client(url) as woo:
            results = woo.batch_update([{"id": 1, "short_description": "Never stored."}])
        assert store.count(method="POST") == 0  # the interposer answered; nothing re-sent
        assert store.product(1)["short_description"] == ""
    assert not results[0].ok and results[0].verified
    assert results[0].error_code == "enrich_batch_not_applied"
    assert "HTTP 500" in (results[0].error or "")


def test_batch_503_is_safe_to_resend() -> None:
    with serve_store([product(1)], options=options(fail_rate=0.5, seed=11)) as srv, \
            client(srv.url, max_attempts=15) as woo:
        results = woo.batch_update([{"id": 1, "short_description": "Written after 503s."}])
        posts = [e.status for e in srv.store.request_log if e.method == "POST"]
    assert results[0].ok and not results[0].verified
    assert posts[-1] == 200 and all(s in (501, 503) for s in posts[:-1])


def test_update_product_never_sends_a_body_id() -> None:
    with serve_store([product(1), product(2)], options=options()) as srv, \
            client(srv.url) as woo:
        with pytest.raises(InputError, match="body carries id 2"):
            woo.update_product(1, {"id": 2, "short_description": "x"})
        out = woo.update_product(1, {"id": 1, "description": "<p>Stored as sent.</p>"})
        assert out["description"] == "<p>Stored as sent.</p>"
        assert srv.store.product(2)["description"] == ""


def test_secret_never_in_repr_or_messages() -> None:
    woo = client("http://127.0.0.1:9", max_attempts=1)
    assert SECRET not in repr(woo) and KEY not in repr(woo)
    with pytest.raises(StoreUnavailable) as info:
        woo.get_products([1])
    assert "cannot connect" in str(info.value) and SECRET not in str(info.value)
    woo.close()


def test_a_link_to_another_host_is_not_followed() -> None:
    """A misconfigured home URL must not make the client send keys elsewhere."""
    def foreign_links(request: Request, handle) -> Response:  # type: ignore[no-untyped-def]
        response = handle(request)
        response.headers = [(k, v.replace("127.0.0.1", "shop.example.com") if k == "Link"
                             else v) for k, v in response.headers]
        return response

    with interposed_store([product(i) for i in range(1, 251)]) as (url, store, inter):
        inter.hook = foreign_links
        with client(url) as woo:
            assert _ids(list(woo.iter_product_pages())) == list(range(1, 251))
        assert [dict(parse_qsl(e.query))["page"] for e in store.request_log] == ["1", "2", "3"]
