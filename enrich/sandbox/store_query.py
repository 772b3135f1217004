"""The collection query of ``GET /products``: parameter checks, filters, order, pages.

Parameters are validated the way WordPress validates a route's args (all bad ones reported
at once, with ``data.params`` and ``data.details``). Filtering and ordering work on ids; the
store caches sorted id lists and whole filtered results per data version, so paging through
100,000 products costs one sort and then a slice per page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote_plus, unquote_plus

from enrich.sandbox.store_products import (
    SiteTime,
    enum_message,
    is_rest_boolean,
    is_rest_integer,
)

LIST_STATUSES = ("any", "future", "trash", "draft", "pending", "private", "publish")
ORDERBY = ("date", "id", "include", "title", "slug", "modified", "popularity", "rating",
           "post__in", "price", "sales", "menu_order", "random", "popularity", "rating",
           "menu_order", "price", "popularity", "rating")
LIST_TYPES = ("simple", "grouped", "external", "variable")
STOCK_STATUSES = ("instock", "outofstock", "onbackorder")
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?"
    r"([Zz]|[+-]\d{2}(?::?\d{2})?)?$"
)
DATE_PARAMS = ("after", "before", "modified_after", "modified_before")


def parse_rest_date(value: str, dates_are_gmt: bool, site: SiteTime) -> int | None:
    """A list bound as UTC epoch seconds, or None when WordPress says "Invalid date."

    A value with ``Z``/an offset is converted; a naive one is UTC only with
    ``dates_are_gmt``, otherwise it is site-local time (the trap that misses 5 hours).
    """
    match = _RFC3339.match(value)
    if not match:
        return None
    y, mo, d, h, mi, s = (int(match.group(i)) for i in range(1, 7))
    try:
        naive = datetime(y, mo, d, h, mi, s, tzinfo=UTC)
    except ValueError:
        return None
    ts = int(naive.timestamp())
    zone = match.group(8)
    if zone:
        if zone in ("Z", "z"):
            return ts
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) >= 4 else 0)
        return ts - sign * minutes * 60
    return ts if dates_are_gmt else site.utc(ts)


def _truthy(value: str) -> bool:
    return value.lower() in ("true", "1")


@dataclass
class ListQuery:
    """Validated list parameters (only the ones the sandbox acts on)."""

    context: str = "view"
    page: int = 1
    per_page: int = 10
    offset: int | None = None
    order: str = "desc"
    orderby: str = "date"
    status: str = "any"
    search: str | None = None
    search_sku: str | None = None
    sku: list[str] | None = None
    include: list[int] | None = None
    exclude: list[int] | None = None
    parent: list[int] | None = None
    parent_exclude: list[int] | None = None
    type: str | None = None
    slug: str | None = None
    featured: bool | None = None
    on_sale: bool | None = None
    category: list[int] | None = None
    tag: list[int] | None = None
    stock_status: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    dates: dict[str, int] = field(default_factory=dict)
    fields: list[str] | None = None

    def filter_key(self) -> tuple[Any, ...]:
        """Everything that decides the result set and its order (not the page)."""
        return (self.orderby, self.order, self.status, self.search, self.search_sku,
                tuple(self.sku or ()), tuple(self.include or ()), tuple(self.exclude or ()),
                tuple(self.parent or ()), tuple(self.parent_exclude or ()), self.type,
                self.slug, self.featured, self.on_sale, tuple(self.category or ()),
                tuple(self.tag or ()), self.stock_status, self.min_price, self.max_price,
                tuple(sorted(self.dates.items())))


def _int_list(name: str, raw: str, errors: dict[str, dict[str, Any]]) -> list[int] | None:
    items = [x for x in re.split(r"[,\s]+", raw) if x != ""]
    for i, item in enumerate(items):
        if not is_rest_integer(item):
            param = f"{name}[{i}]"
            errors[name] = {"code": "rest_invalid_type",
                            "message": f"{param} is not of type integer.",
                            "data": {"param": param}}
            return None
    return [int(float(x)) for x in items]


def parse_list_query(raw_query: str, site: SiteTime, *, variations: bool = False
                     ) -> tuple[ListQuery, dict[str, dict[str, Any]]]:
    """Validate the query string of a collection request; return the query and errors."""
    params = dict(parse_qsl(raw_query, keep_blank_values=True))
    q = ListQuery()
    errors: dict[str, dict[str, Any]] = {}

    def enum(name: str, allowed: tuple[str, ...]) -> str | None:
        value = params[name]
        if value not in allowed:
            unique = tuple(dict.fromkeys(allowed)) if name != "orderby" else allowed
            errors[name] = {"code": "rest_not_in_enum", "message": enum_message(name, unique),
                            "data": None}
            return None
        return value

    def integer(name: str, minimum: int | None, maximum: int | None) -> int | None:
        value = params[name]
        if not is_rest_integer(value):
            errors[name] = {"code": "rest_invalid_type",
                            "message": f"{name} is not of type integer.",
                            "data": {"param": name}}
            return None
        number = int(float(value))
        if maximum is not None and minimum is not None and not minimum <= number <= maximum:
            errors[name] = {"code": "rest_out_of_bounds",
                            "message": f"{name} must be between {minimum} (inclusive) and "
                                       f"{maximum} (inclusive)", "data": None}
            return None
        if minimum is not None and maximum is None and number < minimum:
            errors[name] = {"code": "rest_out_of_bounds",
                            "message": f"{name} must be greater than or equal to {minimum}",
                            "data": None}
            return None
        return number

    def boolean(name: str) -> bool | None:
        value = params[name]
        if not is_rest_boolean(value):
            errors[name] = {"code": "rest_invalid_type",
                            "message": f"{name} is not of type boolean.",
                            "data": {"param": name}}
            return None
        return _truthy(value)

    if "context" in params and (v := enum("context", ("view", "edit"))):
        q.context = v
    if "page" in params and (n := integer("page", 1, None)) is not None:
        q.page = n
    if "per_page" in params and (n := integer("per_page", 1, 100)) is not None:
        q.per_page = n
    if "search" in params:
        q.search = params["search"]
    gmt = False
    if "dates_are_gmt" in params:
        gmt = bool(boolean("dates_are_gmt"))
    for name in DATE_PARAMS:
        if name in params:
            ts = parse_rest_date(params[name], gmt, site)
            if ts is None:
                errors[name] = {"code": "rest_invalid_date", "message": "Invalid date.",
                                "data": None}
            else:
                q.dates[name] = ts
    for name in ("exclude", "include", "parent", "parent_exclude"):
        if name in params:
            setattr(q, name, _int_list(name, params[name], errors))
    if "offset" in params and (n := integer("offset", None, None)) is not None:
        q.offset = n
    if "order" in params and (v := enum("order", ("asc", "desc"))):
        q.order = v
    if "orderby" in params and (v := enum("orderby", ORDERBY)):
        q.orderby = v
    if "slug" in params:
        q.slug = params["slug"]
    if not variations and "status" in params and (v := enum("status", LIST_STATUSES)):
        q.status = v
    if not variations and "type" in params and (v := enum("type", LIST_TYPES)):
        q.type = v
    if "sku" in params:
        q.sku = [s.strip() for s in params["sku"].split(",") if s.strip()]
    if "search_sku" in params:
        q.search_sku = params["search_sku"]
    for name in ("featured", "on_sale"):
        if name in params:
            setattr(q, name, boolean(name))
    for name in ("category", "tag"):
        if name in params:
            setattr(q, name, _int_list(name, params[name], errors))
    if "stock_status" in params and (v := enum("stock_status", STOCK_STATUSES)):
        q.stock_status = v
    for name in ("min_price", "max_price"):
        if name in params:
            try:
                setattr(q, name, float(params[name]))
            except ValueError:
                setattr(q, name, None)
    if "_fields" in params:
        q.fields = [f.strip() for f in params["_fields"].split(",") if f.strip()]
    return q, errors


def invalid_params_body(errors: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "code": "rest_invalid_param",
        "message": f"Invalid parameter(s): {', '.join(errors)}",
        "data": {"status": 400,
                 "params": {k: v["message"] for k, v in errors.items()},
                 "details": errors},
    }


_EMPTY_VALUE = re.compile(r"=(&|$)")


def page_link(base: str, raw_query: str, page: int) -> str:
    """The URL of another page, built from the request's own parameters as WordPress does.

    WordPress echoes every query parameter, ``oauth_*`` ones and query-string keys included,
    so a client following the link verbatim replays a signature and a nonce. The echo is
    lossy in WordPress's own way: ``add_query_arg`` joins the (once-decoded) values raw,
    strips an ``=`` before ``&`` or the end (so base64 padding of ``oauth_signature``
    goes), then parses them again (a ``+`` becomes a space) and ``urlencode``s them.
    """
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        params[name] = value  # PHP's $_GET: the last of repeated names wins
    if "dates_are_gmt" in params:  # sanitized to a boolean before the links are built
        params["dates_are_gmt"] = "1" if _truthy(params["dates_are_gmt"]) else ""
    joined = _EMPTY_VALUE.sub(r"\1", "&".join(f"{k}={v}" for k, v in params.items()))
    again: dict[str, str] = {}
    for part in joined.split("&"):
        if part:
            name, _, value = part.partition("=")
            again[unquote_plus(name)] = unquote_plus(value)
    again["page"] = str(page)
    query = "&".join(f"{k}={quote_plus(v, safe='-_.')}" for k, v in again.items())
    return base + "?" + _EMPTY_VALUE.sub(r"\1", query)


def pick_fields(obj: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """``_fields``: keep the named top-level keys (and ``a.b`` nested ones), in object order."""
    wanted: dict[str, list[str]] = {}
    for name in fields:
        top, _, rest = name.partition(".")
        wanted.setdefault(top, [])
        if rest:
            wanted[top].append(rest)
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key not in wanted:
            continue
        nested = wanted[key]
        if nested and isinstance(value, dict):
            out[key] = pick_fields(value, nested)
        else:
            out[key] = value
    return out
