"""Helpers for tests that talk to the sandbox WooCommerce store over real HTTP.

``contract_store()`` rebuilds the store the contract was recorded on (WooCommerce's sample
CSV as ids 11..35 and 180 ``SUP-xxxx`` supplier products as ids 36..215, with the recorded
statuses, stock and sale patterns) and serves it on HTTPS and plain HTTP at once, with the
kinds of keys the recordings used. ``OAuth1`` signs requests with authlib's OAuth 1.0a
client (HMAC-SHA256 registered on it), so signatures are checked against an independent
implementation rather than the sandbox's own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import tempfile
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from authlib.oauth1 import ClientAuth
from authlib.oauth1.rfc5849.signature import generate_signature_base_string
from authlib.oauth1.rfc5849.util import escape

from enrich.httpserver import LoopbackServer
from enrich.sandbox.catalog import load_catalog
from enrich.sandbox.store import SandboxStore, StoreOptions
from enrich.sandbox.store_auth import ApiKey
from enrich.sandbox.tls import client_context, server_context
from tests.paths import CONTRACT_DIR
from tests.paths import WOO_SAMPLE_CSV as SAMPLE_CSV

ADMIN = ApiKey("ck_admin_rw", "cs_admin_rw")
READ_ONLY = ApiKey("ck_read_only", "cs_read_only", permissions="read")
WRITE_ONLY = ApiKey("ck_write_only", "cs_write_only", permissions="write")
CUSTOMER = ApiKey("ck_customer", "cs_customer", role="customer")
SHOP_MANAGER = ApiKey("ck_shop_manager", "cs_shop_manager", role="shop_manager")
RECORDED_DAY = 1_795_343_040  # 2026-11-22T10:24:00Z, the recording session


def _sign_hmac_sha256(client: ClientAuth, request: Any) -> str:
    base = generate_signature_base_string(request)
    key = escape(client.client_secret or "") + "&" + escape(client.token_secret or "")
    return base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha256).digest()
                            ).decode()


ClientAuth.register_signature_method("HMAC-SHA256", _sign_hmac_sha256)


class OAuth1(httpx.Auth):
    """One-legged OAuth 1.0a in the query string, signed by authlib (as WooCommerce wants)."""

    def __init__(self, key: str, secret: str, method: str = "HMAC-SHA256") -> None:
        self._client = ClientAuth(key, secret, signature_method=method, signature_type="QUERY")

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        url, _, _ = self._client.sign(request.method, str(request.url), {}, b"")
        request.url = httpx.URL(url)
        yield request


class Clock:
    """A settable clock for the store, so recorded timestamps can be reproduced."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


_ORIGINAL_NAME = re.compile(r"^[A-Z][a-z]+ [A-Z][a-z]+ \d{3}$")


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _recorded_sup_facts() -> dict[str, Any]:
    """Statuses, names, prices and stock of the SUP products, read from the recordings."""
    cases = json.loads((CONTRACT_DIR / "list_products_filters.json").read_text())["cases"]
    by_label = {c["label"]: c for c in cases}
    names: dict[int, str] = {}
    prices: dict[int, str] = {}
    stocks: dict[int, int] = {}
    for path in sorted(CONTRACT_DIR.glob("*.json")):
        for obj in _walk(json.loads(path.read_text())):
            pid, name, sku = obj.get("id"), obj.get("name"), obj.get("sku")
            if not (isinstance(pid, int) and 36 <= pid <= 215 and isinstance(name, str)
                    and _ORIGINAL_NAME.match(name)):
                continue
            if isinstance(sku, str) and sku != f"SUP-{pid - 35:04d}":
                continue
            names.setdefault(pid, name)
            stock = obj.get("stock_quantity")
            if isinstance(stock, int):
                stocks.setdefault(pid, stock)
            price = obj.get("regular_price")
            if isinstance(price, str) and re.match(r"^\d+\.\d\d$", price):
                prices.setdefault(pid, price)
    return {
        "draft": set(by_label["status=draft"]["ids"]),
        "pending": set(by_label["status=pending"]["ids"]),
        "private": set(by_label["status=private"]["ids"]),
        "outofstock": set(by_label["stock_status=outofstock"]["ids"]),
        "oak": set(by_label["search=Oak (name/content search)"]["ids"]),
        "names": names,
        "prices": prices,
        "stocks": stocks,
    }


_OTHER_MATERIALS = ("Steel", "Linen", "Ceramic", "Glass", "Wool", "Cotton", "Bamboo",
                    "Leather", "Copper")
_ITEMS = ("Mug", "Chair", "Lamp", "Vase", "Shelf", "Towel", "Bowl", "Blanket", "Stool")


def contract_catalog() -> list[dict[str, Any]]:
    """The recorded store's 25 sample products and 180 SUP products, ids as recorded."""
    facts = _recorded_sup_facts()
    products = load_catalog(SAMPLE_CSV, first_id=11)
    for product in products:
        product["images"] = []  # the recording store imported the CSV without images
        offset = 3 if product["type"] in ("variable", "variation") else 4
        product["date_created_gmt"] = _iso(RECORDED_DAY + offset)
        product["date_modified_gmt"] = _iso(RECORDED_DAY + 5 if product["type"] in (
            "variable", "variation", "external", "grouped") or product["id"] > 19 else
            RECORDED_DAY + 4)
    for n in range(1, 181):
        pid = 35 + n
        material = "Oak" if pid in facts["oak"] else _OTHER_MATERIALS[n % len(_OTHER_MATERIALS)]
        name = facts["names"].get(pid) or f"{material} {_ITEMS[n % len(_ITEMS)]} {n:03d}"
        if pid not in facts["oak"] and "oak" in name.lower():
            name = f"{_OTHER_MATERIALS[n % 9]} {_ITEMS[n % 9]} {n:03d}"
        created = _iso(RECORDED_DAY + 6 + (n - 1) * 8 // 180)
        bucket = n % 20
        long_text = short_text = ""
        if n == 10:
            short_text = f"Short blurb for item {n}."
        elif n in (3, 180) or bucket >= 11:
            long_text = (f"<p>Full description for item {n}.</p><ul><li>Feature A</li>"
                         "<li>Feature B</li></ul>")
            short_text = f"<p>Short description {n}.</p>"
        elif n in (2, 4) or 8 <= bucket <= 10:
            long_text = f"<p>Supplier description for item {n}. Material and care info.</p>"
        elif n == 10 or 5 <= bucket <= 7:
            short_text = f"Short blurb for item {n}."
        if n in (1,):
            long_text = short_text = ""
        regular = facts["prices"].get(pid) or f"{(n * 37) % 280 + 5}.{('00', '50', '99')[n % 3]}"
        status = ("draft" if pid in facts["draft"] else "pending" if pid in facts["pending"]
                  else "private" if pid in facts["private"] else "publish")
        products.append({
            "id": pid,
            "name": name,
            "type": "simple",
            "status": status,
            "sku": f"SUP-{n:04d}",
            "regular_price": regular,
            "sale_price": "2.00" if n % 9 == 0 else "",
            "categories": [{"id": 30, "name": "Supplier Import"}],
            "manage_stock": True,
            "stock_quantity": 0 if pid in facts["outofstock"] else facts["stocks"].get(
                pid, (n * 7) % 40 + 1),
            "stock_status": "outofstock" if pid in facts["outofstock"] else "instock",
            "description": long_text,
            "short_description": short_text,
            "meta_data": [{"key": "supplier_code", "value": f"SC{n}"}] if n % 10 == 0 else [],
            "date_created_gmt": created,
            "date_modified_gmt": created,
        })
    # The list recordings were made after date_modified_behaviour moved this product's
    # date_created to 2020 (it lists last by date).
    products[-1 - (215 - 55)]["date_created_gmt"] = "2020-05-05T12:00:00"
    return products


def _iso(ts: int) -> str:
    from enrich.sandbox.store_products import fmt_time

    value = fmt_time(ts)
    assert value is not None
    return value


@dataclass
class ContractStore:
    store: SandboxStore
    https_url: str
    http_url: str
    verify: Any
    clock: Clock
    clients: dict[tuple[Any, ...], httpx.Client] = field(default_factory=dict)

    def client(self, key: ApiKey | None = ADMIN, *, https: bool = True,
               oauth: bool = False) -> httpx.Client:
        """A client for the store with the given key (Basic on HTTPS, OAuth1 on HTTP).

        Clients are kept and closed when the store stops; callers must not close them.
        """
        cache_key = (key, https, oauth)
        if cache_key not in self.clients:
            auth: httpx.Auth | tuple[str, str] | None = None
            if key is not None:
                auth = (OAuth1(key.consumer_key, key.consumer_secret) if oauth
                        else (key.consumer_key, key.consumer_secret))
            self.clients[cache_key] = httpx.Client(
                base_url=self.https_url if https else self.http_url, auth=auth,
                verify=self.verify if https else True, timeout=10)
        return self.clients[cache_key]

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


@contextmanager
def contract_store(products: list[dict[str, Any]] | None = None, **option_overrides: Any
                   ) -> Iterator[ContractStore]:
    """The recorded store rebuilt, served on HTTPS and plain HTTP (same data)."""
    clock = option_overrides.pop("clock", None) or Clock(RECORDED_DAY + 60)
    options = StoreOptions(consumer_key=ADMIN.consumer_key,
                           consumer_secret=ADMIN.consumer_secret,
                           extra_keys=(READ_ONLY, WRITE_ONLY, CUSTOMER, SHOP_MANAGER),
                           clock=clock, **option_overrides)
    store = SandboxStore(contract_catalog() if products is None else products, options)
    with tempfile.TemporaryDirectory(prefix="store-tls-") as tmp:
        ctx, ca_path = server_context(Path(tmp))
        with LoopbackServer(store.handle, tls=ctx) as https_server, \
                LoopbackServer(store.handle) as http_server:
            store.base_url = https_server.url
            running = ContractStore(store, https_server.url, http_server.url,
                                    client_context(ca_path), clock)
            try:
                yield running
            finally:
                running.close()
