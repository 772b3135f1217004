"""Fault injection of the sandbox store: 503/501, 429 with Retry-After, latency.

Bounded: each test makes at most a few dozen requests on loopback.
"""

from __future__ import annotations

import time

import httpx

from enrich.sandbox.catalog import synthetic_catalog
from enrich.sandbox.store import StoreOptions, serve_store
from tests.store_helpers import Clock, OAuth1


def _statuses(fail_rate: float, seed: int, n: int = 40) -> list[int]:
    options = StoreOptions(fail_rate=fail_rate, seed=seed)
    with serve_store(synthetic_catalog(20), options=options) as running, \
            httpx.Client(base_url=running.api_url, timeout=10,
                         auth=OAuth1(running.consumer_key, running.consumer_secret)) as client:
        statuses = []
        for i in range(n):
            response = (client.get("/products", params={"per_page": 5}) if i % 2 else
                        client.put("/products/3", json={"short_description": f"try {i}"}))
            statuses.append(response.status_code)
            if response.status_code == 501:
                assert "Method Not Implemented" in response.text
                assert response.headers["Content-Type"].startswith("text/html")
            elif response.status_code == 503:
                assert "503 Service Temporarily Unavailable" in response.text
        assert running.store.count(route="products") + running.store.count(
            route="product") == n
        return statuses


def test_fail_rate_gives_503_and_501_deterministically() -> None:
    first = _statuses(0.5, seed=11, n=60)
    again = _statuses(0.5, seed=11, n=60)
    other = _statuses(0.5, seed=12, n=60)
    assert first == again
    assert first != other
    assert {200, 503, 501} <= set(first)
    assert 15 <= first.count(200) <= 45


def test_no_faults_by_default() -> None:
    assert set(_statuses(0.0, seed=11, n=10)) == {200}


def test_rate_limit_answers_429_with_retry_after() -> None:
    clock = Clock(1_795_000_000.2)
    options = StoreOptions(rate_limit=5, clock=clock)
    with serve_store(synthetic_catalog(5), options=options) as running, \
            httpx.Client(base_url=running.api_url, timeout=10) as client:
        # unauthenticated requests count too: the limit sits in front of the store
        statuses = [client.get("/products").status_code for _ in range(7)]
        assert statuses == [401] * 5 + [429, 429]
        limited = client.get("/products")
        assert limited.headers["Retry-After"] == "1"
        assert limited.json()["data"]["status"] == 429
        clock.now += 1.0
        assert client.get("/products").status_code == 401  # a new second: served again


def test_latency_is_added_to_every_request() -> None:
    options = StoreOptions(latency_ms=150)
    with serve_store(synthetic_catalog(5), options=options) as running, \
            httpx.Client(base_url=running.api_url, timeout=10,
                         auth=OAuth1(running.consumer_key, running.consumer_secret)) as client:
        client.get("/products")
        start = time.perf_counter()
        assert client.get("/products").status_code == 200
        assert time.perf_counter() - start >= 0.15


def test_drop_rate_closes_connections_unanswered() -> None:
    options = StoreOptions(drop_rate=0.5, seed=4)
    outcomes = []
    with serve_store(synthetic_catalog(5), options=options) as running:
        for _ in range(16):
            with httpx.Client(base_url=running.api_url, timeout=5,
                              auth=OAuth1(running.consumer_key, running.consumer_secret)
                              ) as client:
                try:
                    outcomes.append(client.get("/products").status_code)
                except httpx.TransportError:
                    outcomes.append(0)
        logged = [e.status for e in running.store.request_log]
    assert outcomes == logged  # each dropped request is logged with status 0
    assert 0 in outcomes and 200 in outcomes
