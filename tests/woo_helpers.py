"""Shared pieces for the WooCommerce connector and sync tests.

Everything here talks real HTTP on 127.0.0.1 to the project's sandbox store. Faults the
sandbox does not inject itself (a dropped connection after a write was applied, a host that
strips the Authorization header, a proxy that corrupts bytes) are put *between* client and
store: a handler wrapping ``SandboxStore.handle`` on the project's own ``LoopbackServer``, or
an httpx transport that edits the request on its way out. Nothing of enrich is patched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from enrich.httpserver import DropConnection, LoopbackServer, Request, Response
from enrich.sandbox.store import SandboxStore, StoreOptions
from enrich.woo.client import WooClient

KEY = "ck_test_0123456789"
SECRET = "cs_test_super_secret_value"


def options(**kw: Any) -> StoreOptions:
    kw.setdefault("consumer_key", KEY)
    kw.setdefault("consumer_secret", SECRET)
    return StoreOptions(**kw)


def client(url: str, *, key: str = KEY, secret: str = SECRET, **kw: Any) -> WooClient:
    """A client with fast backoff so fault tests take milliseconds, not minutes."""
    kw.setdefault("backoff_base_s", 0.001)
    kw.setdefault("backoff_max_s", 0.01)
    kw.setdefault("timeout_s", 5.0)
    return WooClient(url, key, secret, **kw)


def product(pid: int, **fields: Any) -> dict[str, Any]:
    """A catalog product with enough source data to write from."""
    base: dict[str, Any] = {
        "id": pid, "name": f"Walnut side table {pid}", "type": "simple", "status": "publish",
        "sku": f"WT-{pid:04d}", "regular_price": "149.00", "weight": "7.5",
        "description": "", "short_description": "",
        "categories": [{"name": "Tables"}],
        "attributes": [{"id": 0, "name": "Material", "position": 0, "visible": True,
                        "variation": False, "options": ["Walnut"]}],
        "meta_data": [],
    }
    base.update(fields)
    return base


LONG_COPY = ("A compact side table in solid walnut with a hand-oiled finish, rounded edges and "
             "a lower shelf for books. Assembled in minutes with the included tools.")


class Interposer:
    """Runs a hook around ``SandboxStore.handle``: the hook may answer, drop, or pass on."""

    def __init__(self, store: SandboxStore) -> None:
        self.store = store
        self.hook: Callable[[Request, Callable[[Request], Response]], Response] | None = None
        self.lock = threading.Lock()

    def handle(self, request: Request) -> Response:
        hook = self.hook
        if hook is None:
            return self.store.handle(request)
        return hook(request, self.store.handle)


@contextmanager
def interposed_store(products: list[dict[str, Any]], opts: StoreOptions | None = None
                     ) -> Iterator[tuple[str, SandboxStore, Interposer]]:
    """A sandbox store (plain HTTP, OAuth1) with an interposer in front of it."""
    store = SandboxStore(products, opts or options())
    inter = Interposer(store)
    with LoopbackServer(inter.handle) as server:
        store.base_url = server.url
        yield server.url, store, inter


def drop(request: Request) -> Response:
    raise DropConnection()


class StripAuthorization(httpx.HTTPTransport):
    """A hop that drops the Authorization header, as Apache with CGI/FastCGI does."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.headers.pop("Authorization", None)
        return super().handle_request(request)
