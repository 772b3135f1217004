"""A local WooCommerce REST v3 store that behaves like the recorded real one.

``SandboxStore.handle`` is the whole store: faults (latency, rate limit, 503/501), key
authentication, routing and the read endpoints live here; writes, batches and the state
file in ``store_writes.py``; product records and rendering in ``store_products.py``. It is
a product feature (``enrich sandbox store`` lets a shop owner try enrich without touching the
live shop) and the server every WooCommerce test talks to, so it reproduces the contract in
``fixtures/woocommerce-contract/`` including its traps, rather than an idealised API.

Known simplifications: ``related_ids`` are chosen deterministically from the same category
rather than at random; JSON escapes non-ASCII like WordPress but not "/".
"""

from __future__ import annotations

import html
import json
import math
import random
import re
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enrich.httpserver import DropConnection, LoopbackServer, Request, Response
from enrich.sandbox.store_auth import ApiKey, Authenticator, AuthError, permission_error
from enrich.sandbox.store_products import (
    UNCATEGORIZED,
    SiteTime,
    compute_price,
    decimal_value,
    product_from_record,
    render_product,
    render_variation,
    slugify,
    to_int,
)
from enrich.sandbox.store_query import (
    ListQuery,
    invalid_params_body,
    page_link,
    parse_list_query,
    pick_fields,
)
from enrich.sandbox.store_replies import (
    COMMON_HEADERS,
    FATAL_BODY,
    NO_CACHE,
    Reply,
    error_reply,
    invalid_id,
)
from enrich.sandbox.store_settings import (
    GROUP_ALLOW,
    SETTING_ALLOW,
    StoreSettings,
    get_setting,
    list_group,
    list_groups,
)
from enrich.sandbox.store_writes import StoreWrites

API_PREFIX = "/wp-json/wc/v3"
BATCH_LIMIT = 100
DEFAULT_EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z: catalog items without dates


@dataclass
class StoreOptions:
    """How the sandbox store behaves; every fault is deterministic under ``seed``."""

    consumer_key: str = "ck_sandbox"
    consumer_secret: str = "cs_sandbox"
    latency_ms: int = 0
    fail_rate: float = 0.0
    drop_rate: float = 0.0  # share of requests whose connection is closed unanswered
    rate_limit: float | None = None
    seed: int = 0
    state_path: Path | None = None
    extra_keys: tuple[ApiKey, ...] = ()  # e.g. ApiKey(..., permissions="read")
    timezone: str | None = "America/New_York"  # None: the fixed offset below
    utc_offset_hours: float = -5.0
    clock: Callable[[], float] = time.time
    batch_limit: int = BATCH_LIMIT
    request_log_size: int = 10_000
    settings: StoreSettings = field(default_factory=StoreSettings)  # units, currency

    def keys(self) -> list[ApiKey]:
        return [ApiKey(self.consumer_key, self.consumer_secret), *self.extra_keys]


@dataclass(frozen=True)
class LoggedRequest:
    """One request the store saw; ``status`` 0 when its connection was dropped."""

    method: str
    route: str
    path: str
    query: str
    status: int


_DROPPED = Response(0)


@dataclass
class _Route:
    name: str
    allow: str
    product_id: int | None = None
    item_id: int | None = None
    group: str | None = None  # settings routes
    setting: str | None = None


_ROUTES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"^/products$"), "products", "GET, POST"),
    (re.compile(r"^/products/batch$"), "products/batch", "POST, PUT, PATCH"),
    (re.compile(r"^/products/(\d+)$"), "product", "GET, POST, PUT, PATCH, DELETE"),
    (re.compile(r"^/products/(\d+)/variations$"), "variations", "GET, POST"),
    (re.compile(r"^/products/(\d+)/variations/batch$"), "variations/batch",
     "POST, PUT, PATCH"),
    (re.compile(r"^/products/(\d+)/variations/(\d+)$"), "variation",
     "GET, POST, PUT, PATCH, DELETE"),
]
# Settings are read, never written, by enrich: the sandbox serves GET and answers with the
# real store's Allow headers.
_SETTINGS_ROUTES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"^/settings$"), "settings", GROUP_ALLOW),
    (re.compile(r"^/settings/([\w-]+)$"), "settings/group", GROUP_ALLOW),
    (re.compile(r"^/settings/([\w-]+)/([\w-]+)$"), "setting", SETTING_ALLOW),
]
_NO_ROUTE = ("rest_no_route", "No route was found matching the URL and request method.")
_DENIED = {  # route, verb -> (code, message) of the permission callback
    ("products", "read"): ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources."),
    ("variations", "read"): ("woocommerce_rest_cannot_view",
                             "Sorry, you cannot list resources."),
    ("product", "read"): ("woocommerce_rest_cannot_view", "Sorry, you cannot view this resource."),
    ("settings", "read"): ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources."),
    ("settings/group", "read"): ("woocommerce_rest_cannot_view",
                                 "Sorry, you cannot list resources."),
    ("setting", "read"): ("woocommerce_rest_cannot_view", "Sorry, you cannot view this resource."),
    ("variation", "read"): ("woocommerce_rest_cannot_view",
                            "Sorry, you cannot view this resource."),
    ("create", "write"): ("woocommerce_rest_cannot_create",
                          "Sorry, you are not allowed to create resources."),
    ("edit", "write"): ("woocommerce_rest_cannot_edit",
                        "Sorry, you are not allowed to edit this resource."),
    ("delete", "write"): ("woocommerce_rest_cannot_delete",
                          "Sorry, you are not allowed to delete this resource."),
    ("batch", "write"): ("woocommerce_rest_cannot_batch",
                         "Sorry, you are not allowed to batch manipulate this resource."),
}


def _match_route(path: str, method: str) -> _Route | None:
    if not path.startswith(API_PREFIX + "/"):
        return None
    sub = path[len(API_PREFIX):].rstrip("/")
    for pattern, name, allow in _ROUTES:
        match = pattern.match(sub)
        if not match:
            continue
        verbs = set(allow.split(", ")) | {"HEAD"} if "GET" in allow else set(allow.split(", "))
        if method not in verbs:
            return None
        groups = [int(g) for g in match.groups()]
        return _Route(name, allow, *groups)
    if method not in ("GET", "HEAD"):
        return None
    for pattern, name, allow in _SETTINGS_ROUTES:
        match = pattern.match(sub)
        if match:
            return _Route(name, allow, None, None, *match.groups())
    return None


def _action(route: _Route, method: str) -> str:
    if method in ("GET", "HEAD"):
        return "read"
    if route.name.endswith("batch"):
        return "batch"
    if route.name in ("products", "variations"):
        return "create"
    return "delete" if method == "DELETE" else "edit"


class SandboxStore(StoreWrites):
    """The store's data and its HTTP handler (thread-safe; one lock around the data)."""

    def __init__(self, products: Iterable[dict[str, Any]], options: StoreOptions | None = None
                 ) -> None:
        self.options = options or StoreOptions()
        self._site = SiteTime(self.options.timezone, self.options.utc_offset_hours)
        self._lock = threading.RLock()
        self._products: dict[int, dict[str, Any]] = {}
        self._children: dict[int, list[int]] = {}
        self._sku: dict[str, int] = {}
        self._categories: dict[int, dict[str, Any]] = {UNCATEGORIZED["id"]: dict(UNCATEGORIZED)}
        self._category_by_name: dict[str, int] = {UNCATEGORIZED["name"]: UNCATEGORIZED["id"]}
        self._next_id = 1
        self._next_meta_id = 1
        self._attachments: dict[int, dict[str, Any]] = {}
        self._version = 0  # any write
        self._struct_version = 0  # writes that change membership, status, category or date
        self._sort_cache: dict[tuple[str, str, str], tuple[int, list[int]]] = {}
        self._result_cache: dict[tuple[Any, ...], tuple[int, list[int]]] = {}
        self._related: tuple[int, dict[int, list[int]]] = (-1, {})
        self._state_json: dict[int, str] = {}
        self._auth = Authenticator(self.options.keys(), self.options.clock)
        self._fault_rng = random.Random(self.options.seed)
        self._rate_window = (-1, 0)
        self.counts: Counter[tuple[str, str]] = Counter()
        # full passes over the catalog (sorts and filter scans): paging must not add any
        self.scans: Counter[str] = Counter()
        #: API writes applied per product id (PUT and batch updates; not ``edit()``), so tests
        #: can check that no product was written twice.
        self.writes: Counter[int] = Counter()
        self.request_log: deque[LoggedRequest] = deque(maxlen=self.options.request_log_size)
        self.base_url = "http://127.0.0.1"
        state = self.options.state_path
        if state is not None and Path(state).exists():
            products = json.loads(Path(state).read_text(encoding="utf-8"))
            if not isinstance(products, list):
                raise ValueError(f"state file {state} is not a JSON array of products")
        self._load(products)

    # --- loading ---------------------------------------------------------------------------

    def _load(self, records: Iterable[dict[str, Any]]) -> None:
        pending_variations: list[dict[str, Any]] = []
        slug_uses: dict[str, int] = {}
        for index, raw in enumerate(records):
            if not isinstance(raw, dict):
                raise ValueError(f"catalog item {index} is not a JSON object")
            raw_id = raw.get("id")
            pid = int(raw_id) if isinstance(raw_id, int) and raw_id > 0 else None
            if pid is None:
                pid = self._next_id
            if pid in self._products:
                raise ValueError(f"catalog item {index}: duplicate product id {pid}")
            self._next_id = max(self._next_id, pid + 1)
            product = product_from_record(raw, pid, DEFAULT_EPOCH + index, self._site)
            slug = product["slug"]
            if slug in slug_uses:  # WordPress keeps post slugs unique: oak-mug, oak-mug-2, ...
                slug_uses[slug] += 1
                while f"{slug}-{slug_uses[slug]}" in slug_uses:
                    slug_uses[slug] += 1
                product["slug"] = f"{slug}-{slug_uses[slug]}"
            slug_uses.setdefault(product["slug"], 1)
            self._register_categories(product)
            for meta in product["meta_data"]:
                if not isinstance(meta.get("id"), int):
                    meta["id"] = self._meta_id()
                self._next_meta_id = max(self._next_meta_id, meta["id"] + 1)
            compute_price(product, DEFAULT_EPOCH)
            self._products[pid] = product
            if product.get("type") == "variation":
                pending_variations.append(product)
            if product.get("sku"):
                self._sku[product["sku"]] = pid
        for variation in pending_variations:
            parent = variation.get("parent_id")
            if parent not in self._products:
                raise ValueError(f"variation {variation['id']}: parent_id {parent} is not a "
                                 "product of this catalog")
            self._children.setdefault(parent, []).append(variation["id"])
        for product in self._products.values():  # attachments take ids after the products
            if product.get("images"):
                product["images"] = self._attach(product["images"], product["_created"])
            if isinstance(product.get("image"), dict):
                product["image"] = self._attach([product["image"]], product["_created"])[0]

    def _register_categories(self, product: dict[str, Any]) -> None:
        resolved = []
        for cat in product.get("categories") or []:
            if not isinstance(cat, dict):
                continue
            name = cat.get("name")
            cid = cat.get("id")
            if isinstance(cid, bool) or not isinstance(cid, int) or cid <= 0:
                cid = None  # 0 or missing: an exported catalog's "no id yet", matched by name
            if cid is not None and cid in self._categories:
                resolved.append(dict(self._categories[cid]))
                continue
            if not isinstance(name, str):
                continue
            if name in self._category_by_name:
                cid = self._category_by_name[name]
            else:
                if cid is None or cid in self._categories:
                    cid = max(max(self._categories) + 1, 16)
                self._categories[cid] = {"id": cid, "name": name,
                                         "slug": cat.get("slug") or slugify(name)}
                self._category_by_name[name] = cid
            resolved.append(dict(self._categories[cid]))
        if product.get("type") != "variation" and not resolved:
            resolved = [dict(UNCATEGORIZED)]
        product["categories"] = resolved if product.get("type") != "variation" else []

    def _meta_id(self) -> int:
        value = self._next_meta_id
        self._next_meta_id += 1
        return value

    def _now(self) -> int:
        return int(self.options.clock())

    # --- public helpers for tests and the CLI ----------------------------------------------

    def product(self, pid: int) -> dict[str, Any]:
        """The edit-context view of a product or variation (what GET ?context=edit returns)."""
        with self._lock:
            if pid not in self._products:
                raise KeyError(pid)
            return self._render(self._products[pid], "edit", self.base_url, copy_values=True)

    def products(self) -> list[dict[str, Any]]:
        """Every product and variation in edit context (what the state file holds)."""
        with self._lock:
            return [self._render(p, "edit", self.base_url, copy_values=True)
                    for p in self._products.values()]

    def edit(self, pid: int, **fields: Any) -> dict[str, Any]:
        """Change a product as a person in wp-admin would (no API checks, bumps the date).

        An administrator's copy is stored as typed (``unfiltered_html``: no kses, and the
        form's slashes are removed again), unlike a REST write's.
        """
        with self._lock:
            if pid not in self._products:
                raise KeyError(pid)
            self._apply(self._products[pid], fields, batch=False)
            for key in ("description", "short_description"):
                if isinstance(fields.get(key), str):
                    self._products[pid][key] = fields[key]
            self._persist()
            return self._render(self._products[pid], "edit", self.base_url, copy_values=True)

    def count(self, route: str | None = None, method: str | None = None) -> int:
        """How many requests reached the store, by route name and/or method."""
        return sum(n for (m, r), n in self.counts.items()
                   if (route is None or r == route) and (method is None or m == method))

    def __len__(self) -> int:
        return len(self._products)

    # --- HTTP ------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        method = request.method.upper()
        if method == "POST":  # WordPress honours these, for hosts that block PUT/DELETE
            override = (request.headers.get("x-http-method-override")
                        or request.arg("_method") or "").upper()
            if override in ("PUT", "PATCH", "DELETE", "GET"):
                method = override
        route = _match_route(request.path, method)
        route_name = route.name if route else "unknown"
        if self.options.latency_ms:
            time.sleep(self.options.latency_ms / 1000)
        response = self._fault(request, method)
        if response is None:
            try:
                response = self._serve(request, method, route)
            except Exception:  # a sandbox bug must look like the store's own fatal, not a hang
                traceback.print_exc(file=sys.stderr)
                response = Response.json(FATAL_BODY, 500, list(COMMON_HEADERS))
        with self._lock:
            self.counts[(method, route_name)] += 1
            self.request_log.append(LoggedRequest(method, route_name, request.path,
                                                  request.raw_query, response.status))
        if response is _DROPPED:
            raise DropConnection
        return response

    def _fault(self, request: Request, method: str) -> Response | None:
        with self._lock:
            if self.options.rate_limit is not None:
                second = int(self.options.clock())
                window, used = self._rate_window
                if window != second:
                    window, used = second, 0
                if used >= self.options.rate_limit:
                    self._rate_window = (window, used)
                    return Response.json(
                        {"code": "too_many_requests",
                         "message": "Too many requests. Slow down and retry later.",
                         "data": {"status": 429}},
                        429, [("Retry-After", "1")])
                self._rate_window = (window, used + 1)
            if self.options.fail_rate > 0:
                draw = self._fault_rng.random()
                if draw < self.options.fail_rate:
                    if self._fault_rng.random() < 0.25:
                        # Apache escapes the method and path it echoes; a page must never
                        # reflect request text as markup.
                        echoed = f"{html.escape(method)} to {html.escape(request.path)}"
                        body = ("<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html>"
                                "<head>\n<title>501 Method Not Implemented</title>\n</head>"
                                f"<body>\n<h1>Method Not Implemented</h1>\n<p>{echoed} not "
                                "supported.<br />\n</p>\n</body></html>\n")
                        return Response(501, body.encode(),
                                        [("Content-Type", "text/html; charset=iso-8859-1")])
                    body = ("<html>\r\n<head><title>503 Service Temporarily Unavailable</title>"
                            "</head>\r\n<body>\r\n<center><h1>503 Service Temporarily "
                            "Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n"
                            "</body>\r\n</html>\r\n")
                    return Response(503, body.encode(), [("Content-Type", "text/html")])
            if self.options.drop_rate > 0 and self._fault_rng.random() < self.options.drop_rate:
                return _DROPPED  # the connection closes before the request is handled
        return None

    def _respond(self, status: int, body: Any, request: Request, *, authed: bool,
                 allow: str | None = None, links: list[str] | None = None,
                 extra: list[tuple[str, str]] | None = None) -> Response:
        base = f"{request.scheme}://{request.host}"
        headers = list(COMMON_HEADERS)
        if links:
            headers += [("Link", link) for link in links]
        else:
            headers.append(("Link", f'<{base}/wp-json/>; rel="https://api.w.org/"'))
        headers += extra or []
        if allow:
            headers.append(("Allow", allow))
        headers += NO_CACHE if authed else [("Vary", "Origin")]
        # WordPress's json_encode escapes non-ASCII as \uXXXX: the same data, and a lone
        # surrogate in a product (bad data a sync must report) still makes valid JSON.
        payload = json.dumps(body, separators=(",", ":")).encode("ascii")
        return Response(status, payload,
                         [("Content-Type", "application/json; charset=UTF-8"), *headers])

    def _serve(self, request: Request, method: str, route: _Route | None) -> Response:
        outcome = self._auth.authenticate(request)
        if outcome.error is None and outcome.key is not None:
            denied = permission_error(outcome.key, method)
            if denied is not None:
                return self._auth_error(request, denied, authed=True)
        if outcome.error is not None:
            return self._auth_error(request, outcome.error, authed=False)
        authed = outcome.key is not None
        if route is None:
            code, message = _NO_ROUTE
            return self._respond(404, {"code": code, "message": message,
                                       "data": {"status": 404}}, request, authed=authed)
        action = _action(route, method)
        if outcome.key is None or outcome.key.role == "customer":
            key = (route.name if action == "read" else action, "read" if action == "read"
                   else "write")
            code, message = _DENIED[key]
            status = 401 if outcome.key is None else 403
            return self._respond(status, {"code": code, "message": message,
                                          "data": {"status": status}}, request, authed=authed)
        base = f"{request.scheme}://{request.host}"
        links: list[str] = []
        extra: list[tuple[str, str]] = []
        try:
            with self._lock:
                status, body = self._dispatch(request, method, route, base, links, extra)
        except Reply as reply:
            status, body = reply.status, reply.body
        return self._respond(status, body, request, authed=True, allow=route.allow,
                             links=links, extra=extra)

    def _auth_error(self, request: Request, error: AuthError, *, authed: bool) -> Response:
        return self._respond(error.status, {"code": error.code, "message": error.message,
                                            "data": {"status": error.status}},
                             request, authed=authed)

    def _body(self, request: Request) -> dict[str, Any]:
        if not request.body.strip():
            return {}
        content_type = request.headers.get("content-type", "")
        if "json" in content_type or request.body.lstrip()[:1] in (b"{", b"["):
            try:
                parsed = json.loads(request.body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise error_reply(400, "rest_invalid_json", "Invalid JSON body passed.",
                             json_error_code=4, json_error_message="Syntax error") from exc
            return parsed if isinstance(parsed, dict) else {}
        if "x-www-form-urlencoded" in content_type:
            from urllib.parse import parse_qsl
            return dict(parse_qsl(request.body.decode("utf-8", "replace")))
        return {}

    def _dispatch(self, request: Request, method: str, route: _Route, base: str,
                  links: list[str], extra: list[tuple[str, str]]) -> tuple[int, Any]:
        name = route.name
        if name == "settings":
            return 200, list_groups(base)
        if name == "settings/group":
            assert route.group is not None
            return 200, list_group(self.options.settings, route.group, base)
        if name == "setting":
            assert route.group is not None and route.setting is not None
            return 200, get_setting(self.options.settings, route.group, route.setting, base)
        if name == "products":
            if method in ("GET", "HEAD"):
                return self._list(request, base, links, extra, parent=None)
            return self._create(self._body(request), base)
        if name == "products/batch":
            return self._batch(self._body(request), base, parent=None)
        if name == "product":
            assert route.product_id is not None
            if method in ("GET", "HEAD"):
                return self._get(request, route.product_id, base)
            if method == "DELETE":
                return self._delete(request, route.product_id, base)
            return self._update(self._body(request), route.product_id, base)
        assert route.product_id is not None
        if name == "variations":
            if method in ("GET", "HEAD"):
                return self._list(request, base, links, extra, parent=route.product_id)
            return self._create_variation(self._body(request), route.product_id, base)
        if name == "variations/batch":
            return self._batch(self._body(request), base, parent=route.product_id)
        assert route.item_id is not None
        if method in ("GET", "HEAD"):
            return self._get_variation(request, route.product_id, route.item_id, base)
        if method == "DELETE":
            return self._delete_variation(request, route.product_id, route.item_id, base)
        return self._update_variation(self._body(request), route.product_id, route.item_id,
                                      base)

    # --- rendering -------------------------------------------------------------------------

    def _render(self, product: dict[str, Any], context: str, base: str, *,
                copy_values: bool = False, fields: list[str] | None = None
                ) -> dict[str, Any]:
        """The wc/v3 object; ``copy_values`` when the caller may keep and mutate it."""
        only = frozenset(f.partition(".")[0] for f in fields) if fields else None
        children = self._children.get(product["id"])
        variations = sorted((self._products[c] for c in children),
                            key=lambda v: (v.get("menu_order", 0), v["id"])) if children else []
        related = self._related_ids(product) if only is None or "related_ids" in only else []
        return render_product(product, context, base, self._site, related, variations,
                              copy_values=copy_values, only=only)

    def _render_variation(self, variation: dict[str, Any], base: str) -> dict[str, Any]:
        parent = self._products.get(variation["parent_id"], {})
        return render_variation(variation, parent.get("slug", ""), base, self._site)

    def _related_ids(self, product: dict[str, Any]) -> list[int]:
        if product.get("type") == "variation":
            return []
        version, index = self._related
        if version != self._struct_version:
            index = {}
            for pid, p in self._products.items():
                if p.get("status") == "publish" and p.get("type") != "variation":
                    for cat in p.get("categories") or []:
                        index.setdefault(cat["id"], []).append(pid)
            self._related = (self._struct_version, index)
        cats = product.get("categories") or []
        if not cats:
            return []
        pool = index.get(cats[0]["id"], [])
        if len(pool) <= 1:
            return []
        picked: list[int] = []
        step = 7919
        for i in range(len(pool)):
            candidate = pool[(product["id"] * step + i * 31) % len(pool)]
            if candidate != product["id"] and candidate not in picked:
                picked.append(candidate)
            if len(picked) == 5:
                break
        return picked

    # --- reads -----------------------------------------------------------------------------

    def _context(self, request: Request) -> tuple[str, list[str] | None]:
        query, errors = parse_list_query(request.raw_query, self._site)
        errors = {k: v for k, v in errors.items() if k == "context"}
        if errors:
            raise Reply(400, invalid_params_body(errors))
        return query.context, query.fields

    def _get(self, request: Request, pid: int, base: str) -> tuple[int, Any]:
        context, fields = self._context(request)
        product = self._products.get(pid)
        if product is None:
            raise invalid_id(404)
        body = self._render(product, context, base)
        return 200, pick_fields(body, fields) if fields else body

    def _sorted_ids(self, orderby: str, order: str, include: list[int] | None
                    ) -> list[int]:
        """Parent ids (variations excluded) in list order; cached per data version."""
        if orderby in ("include", "post__in") and include:
            position = {pid: i for i, pid in enumerate(include)}
            # WordPress ignores ``order`` for post__in ordering: always the include order
            return sorted((pid for pid in dict.fromkeys(include) if pid in self._products
                           and self._products[pid].get("type") != "variation"),
                          key=lambda pid: position[pid])
        key = (orderby, order, "")
        version = self._struct_version if orderby in ("date", "id", "random") else self._version
        cached = self._sort_cache.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        products = self._products
        self.scans["sort"] += 1
        parents = [pid for pid, p in products.items() if p.get("type") != "variation"]
        sort_key: Callable[[int], Any]
        if orderby == "id":
            sort_key = int
        elif orderby == "modified":
            sort_key = lambda pid: (products[pid]["_modified"], pid)  # noqa: E731
        elif orderby == "title":
            sort_key = lambda pid: (str(products[pid].get("name", "")).casefold(),  # noqa: E731
                                    pid)
        elif orderby == "slug":
            sort_key = lambda pid: (str(products[pid].get("slug", "")), pid)  # noqa: E731
        elif orderby == "price":
            sort_key = lambda pid: (self._sort_price(pid), pid)  # noqa: E731
        elif orderby in ("popularity", "sales"):
            sort_key = lambda pid: (to_int(products[pid].get("total_sales")), -pid)  # noqa: E731
        elif orderby == "rating":
            sort_key = lambda pid: (decimal_value(str(products[pid].get(  # noqa: E731
                "average_rating"))) or 0.0, -pid)
        elif orderby == "menu_order":
            sort_key = lambda pid: (to_int(products[pid].get("menu_order")),  # noqa: E731
                                    str(products[pid].get("name", "")).casefold(), pid)
        elif orderby == "random":
            rng = random.Random(self.options.seed)
            ids = sorted(parents)
            rng.shuffle(ids)
            self._sort_cache[key] = (version, ids)
            return ids
        else:
            sort_key = lambda pid: (products[pid]["_created"], pid)  # noqa: E731
        ids = sorted(parents, key=sort_key)
        if order == "desc":
            ids.reverse()
        self._sort_cache[key] = (version, ids)
        return ids

    def _sort_price(self, pid: int) -> float:
        """The price a list is ordered by (a variable product's lowest variation price)."""
        product = self._products[pid]
        if product.get("type") == "variable":
            prices = [decimal_value(self._products[c].get("price"))
                      for c in self._children.get(pid, [])]
            numbers = [p for p in prices if p is not None]
            return min(numbers) if numbers else 0.0
        return decimal_value(product.get("price")) or 0.0

    def _matches(self, p: dict[str, Any], q: ListQuery) -> bool:
        status = p.get("status")
        if q.status == "any":
            if status in ("trash", "auto-draft"):
                return False
        elif status != q.status:
            return False
        if q.type is not None and p.get("type") != q.type:
            return False
        if q.include is not None and p["id"] not in q.include:
            return False
        if q.exclude and p["id"] in q.exclude:
            return False
        if q.parent is not None and p.get("parent_id") not in q.parent:
            return False
        if q.parent_exclude and p.get("parent_id") in q.parent_exclude:
            return False
        if q.slug is not None and p.get("slug") not in q.slug.split(","):
            return False
        if q.search:
            haystack = " ".join(str(p.get(k) or "") for k in
                                ("name", "description", "short_description")).casefold()
            if not all(term in haystack for term in q.search.casefold().split()):
                return False
        if q.search_sku and q.search_sku.casefold() not in str(p.get("sku") or "").casefold():
            return False
        if q.featured is not None and bool(p.get("featured")) != q.featured:
            return False
        if q.on_sale is not None and bool(p.get("on_sale")) != q.on_sale:
            return False
        if q.stock_status is not None and p.get("stock_status") != q.stock_status:
            return False
        if q.category and not any(c["id"] in q.category for c in p.get("categories") or []):
            return False
        if q.tag and not any(t.get("id") in q.tag for t in p.get("tags") or []):
            return False
        price = decimal_value(p.get("price"))
        if q.min_price is not None and (price is None or price < q.min_price):
            return False
        if q.max_price is not None and (price is None or price > q.max_price):
            return False
        dates = q.dates
        if dates:
            if "after" in dates and not p["_created"] > dates["after"]:
                return False
            if "before" in dates and not p["_created"] < dates["before"]:
                return False
            if "modified_after" in dates and not p["_modified"] > dates["modified_after"]:
                return False
            if "modified_before" in dates and not p["_modified"] < dates["modified_before"]:
                return False
        return True

    def _query_ids(self, q: ListQuery) -> list[int]:
        """Ids of the whole result in order; cached, so paging costs a slice per page."""
        key = q.filter_key()
        plain = key[2:] == ListQuery(orderby=q.orderby, order=q.order).filter_key()[2:]
        version = (self._struct_version if plain and q.orderby in ("date", "id", "random")
                   else self._version)
        cached = self._result_cache.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        products = self._products
        self.scans["filter"] += 1
        if q.sku:
            found = {self._sku[s] for s in q.sku if s in self._sku}
            ordered = [pid for pid in self._all_sorted(q) if pid in found]
            ids = [pid for pid in ordered if self._matches(products[pid], q)]
        else:
            ordered = self._sorted_ids(q.orderby, q.order, q.include)
            if plain:
                ids = [pid for pid in ordered
                       if products[pid]["status"] not in ("trash", "auto-draft")]
            else:
                ids = [pid for pid in ordered if self._matches(products[pid], q)]
        if len(self._result_cache) > 64:
            self._result_cache.clear()
        self._result_cache[key] = (version, ids)
        return ids

    def _all_sorted(self, q: ListQuery) -> list[int]:
        """Parents and variations in list order (``sku=`` also returns variations)."""
        parents = self._sorted_ids(q.orderby, q.order, q.include)
        variations = [pid for pid, p in self._products.items() if p.get("type") == "variation"]
        merged = parents + variations
        if q.orderby in ("date", "id", "modified"):
            field_name = {"date": "_created", "id": "id", "modified": "_modified"}[q.orderby]
            merged.sort(key=lambda pid: (self._products[pid][field_name], pid),
                        reverse=q.order == "desc")
        return merged

    def _list(self, request: Request, base: str, links: list[str],
              extra: list[tuple[str, str]], parent: int | None) -> tuple[int, Any]:
        q, errors = parse_list_query(request.raw_query, self._site,
                                     variations=parent is not None)
        if errors:
            raise Reply(400, invalid_params_body(errors))
        if parent is None:
            ids = self._query_ids(q)
        else:
            children = self._children.get(parent, [])
            if self._products.get(parent, {}).get("type") != "variable":
                children = []
            chosen = [c for c in children if self._matches_variation(self._products[c], q)]
            ids = self._order_variations(chosen, q)
        total = len(ids)
        pages = math.ceil(total / q.per_page) if total else 0
        start = q.offset if q.offset is not None else (q.page - 1) * q.per_page
        page_ids = ids[max(start, 0):max(start, 0) + q.per_page]
        if parent is None:
            items = [self._render(self._products[pid], q.context, base, fields=q.fields)
                     for pid in page_ids]
        else:
            items = [self._render_variation(self._products[pid], base) for pid in page_ids]
        if q.fields:
            items = [pick_fields(item, q.fields) for item in items]
        link_base = f"{base}{request.path}"
        if q.page > 1 and pages:
            links.append(f'<{page_link(link_base, request.raw_query, min(q.page - 1, pages))}>;'
                         ' rel="prev"')
        if q.page < pages:
            links.append(f'<{page_link(link_base, request.raw_query, q.page + 1)}>; rel="next"')
        extra += [("X-WP-Total", str(total)), ("X-WP-TotalPages", str(pages))]
        return 200, items

    def _matches_variation(self, v: dict[str, Any], q: ListQuery) -> bool:
        if q.include is not None and v["id"] not in q.include:
            return False
        if q.exclude and v["id"] in q.exclude:
            return False
        if q.sku and v.get("sku") not in q.sku:
            return False
        dates = q.dates
        if "modified_after" in dates and not v["_modified"] > dates["modified_after"]:
            return False
        return not ("modified_before" in dates and not v["_modified"] < dates["modified_before"])

    def _order_variations(self, ids: list[int], q: ListQuery) -> list[int]:
        field_name = {"id": "id", "modified": "_modified"}.get(q.orderby, "_created")
        if q.orderby == "menu_order":
            field_name = "menu_order"
        return sorted(ids, key=lambda c: (self._products[c].get(field_name) or 0, c),
                      reverse=q.order == "desc")

    def _get_variation(self, request: Request, parent: int, vid: int, base: str
                       ) -> tuple[int, Any]:
        _, fields = self._context(request)
        variation = self._variation_of(parent, vid, 404)
        body = self._render_variation(variation, base)
        return 200, pick_fields(body, fields) if fields else body

    def _variation_of(self, parent: int, vid: int, status: int) -> dict[str, Any]:
        variation = self._products.get(vid)
        if (variation is None or variation.get("type") != "variation"
                or variation.get("parent_id") != parent):
            raise error_reply(status, "woocommerce_rest_product_variation_invalid_id",
                              "Invalid ID.")
        return variation


@dataclass
class RunningStore:
    """A served sandbox store: its URL, the store object, and the CA file for HTTPS."""

    url: str
    store: SandboxStore
    consumer_key: str
    consumer_secret: str
    ca_path: Path | None = None
    server: LoopbackServer | None = field(default=None, repr=False)

    @property
    def api_url(self) -> str:
        return f"{self.url}{API_PREFIX}"


@contextmanager
def serve_store(products_or_path: Iterable[dict[str, Any]] | Path | str, *,
                options: StoreOptions | None = None, port: int = 0, https: bool = False
                ) -> Iterator[RunningStore]:
    """Serve a sandbox store on 127.0.0.1 (HTTPS with a fresh self-signed cert if asked)."""
    from enrich.sandbox.catalog import load_catalog

    options = options or StoreOptions()
    if isinstance(products_or_path, str | Path):
        state = options.state_path
        if state is not None and Path(state).exists():
            products: Iterable[dict[str, Any]] = []
        else:
            products = load_catalog(Path(products_or_path))
    else:
        products = products_or_path
    store = SandboxStore(products, options)
    with tempfile.TemporaryDirectory(prefix="enrich-store-tls-") as tmp:
        ctx = None
        ca_path = None
        if https:
            from enrich.sandbox.tls import server_context

            ctx, ca_path = server_context(Path(tmp))
        with LoopbackServer(store.handle, port=port, tls=ctx) as server:
            store.base_url = server.url
            yield RunningStore(server.url, store, options.consumer_key,
                               options.consumer_secret, ca_path, server)
