"""Sandbox store throughput: load N synthetic products, page them all, write a batch.

    uv run python bench/store.py [--products 100000] [--seed 0] [--oauth]

Prints load time, the store's RSS after loading, paging time for the whole catalog with
plain httpx (``per_page=100``, ``orderby=id``, ``context=edit``, following ``Link`` next),
products/s, ms per page, and the time of one 100-item batch update. HTTPS + Basic by
default; ``--oauth`` uses plain HTTP + OAuth 1.0a (HMAC-SHA1, signed by authlib, the
echoed ``oauth_*`` parameters stripped and re-signed on every page). Bounded: one pass.
"""

from __future__ import annotations

import argparse
import resource
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from authlib.oauth1 import ClientAuth

from enrich.sandbox.catalog import synthetic_catalog
from enrich.sandbox.store import StoreOptions, serve_store
from enrich.sandbox.tls import client_context


class _OAuth1(httpx.Auth):
    def __init__(self, key: str, secret: str) -> None:
        self._signer = ClientAuth(key, secret, signature_type="QUERY")

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        url, _, _ = self._signer.sign(request.method, str(request.url), {}, b"")
        request.url = httpx.URL(url)
        yield request


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--oauth", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    with serve_store(synthetic_catalog(args.products, args.seed), https=not args.oauth,
                     options=StoreOptions(seed=args.seed)) as running:
        load_s = time.perf_counter() - start
        store_rss = _rss_mb()
        auth: httpx.Auth | tuple[str, str]
        if args.oauth:
            auth, verify = _OAuth1(running.consumer_key, running.consumer_secret), True
        else:
            assert running.ca_path is not None
            auth = (running.consumer_key, running.consumer_secret)
            verify = client_context(running.ca_path)  # type: ignore[assignment]
        with httpx.Client(auth=auth, verify=verify, timeout=60) as client:
            url: str | None = (f"{running.api_url}/products?per_page=100&orderby=id&order=asc"
                               "&context=edit")
            products = pages = 0
            first_page_s = 0.0
            start = time.perf_counter()
            while url:
                response = client.get(url)
                response.raise_for_status()
                products += len(response.json())
                pages += 1
                if pages == 1:
                    first_page_s = time.perf_counter() - start
                url = response.links.get("next", {}).get("url")
                if url and args.oauth:  # the store echoes oauth_* in Link: strip, re-sign
                    query = [(k, v) for k, v in parse_qsl(urlsplit(url).query)
                             if not k.startswith("oauth_")]
                    url = f"{running.api_url}/products?{urlencode(query)}"
            paging_s = time.perf_counter() - start
            start = time.perf_counter()
            batch = client.post(f"{running.api_url}/products/batch", json={"update": [
                {"id": i, "short_description": "bench"} for i in range(1, 101)]})
            batch.raise_for_status()
            batch_s = time.perf_counter() - start
    mode = "HTTP + OAuth1" if args.oauth else "HTTPS + Basic"
    print(f"sandbox store, {args.products:,} products, {mode}")
    print(f"  load:        {load_s:.1f} s, store RSS {store_rss:.0f} MB")
    print(f"  paging:      {products:,} products in {pages} pages, {paging_s:.1f} s "
          f"({products / paging_s:,.0f} products/s, {paging_s / pages * 1000:.0f} ms/page, "
          f"first page {first_page_s * 1000:.0f} ms)")
    print(f"  batch:       100 updates in {batch_s * 1000:.0f} ms")
    print(f"  peak RSS:    {_rss_mb():.0f} MB (store and client in one process)")


if __name__ == "__main__":
    main()
