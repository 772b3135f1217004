"""The one class in front of a WooCommerce store's REST API (wc/v3).

What it takes care of, so callers do not have to:

* **Paging.** ``per_page`` over 100 is a 400 (never clamped), a page past the end is a
  200 ``[]``, and the ``Link`` header of an OAuth1 request echoes that request's ``oauth_*``
  parameters (following it verbatim is a 401). Pages are read ``orderby=id&order=asc`` so
  products created while a sync runs land at the end instead of shifting every page; the
  next page comes from ``Link rel="next"`` with credentials stripped and the request
  re-signed, and the page after is fetched in the background while the caller works on
  the current one.
* **Context.** Reads use ``context=edit``: the view context passes descriptions through
  wpautop, so comparing or hashing view text would see changes that are not there.
* **Dates.** ``modified_after`` must be a full datetime and is sent with
  ``dates_are_gmt=true``: without it WordPress compares against site-local time and
  silently misses hours of changes. The bound is exclusive.
* **Retries** (tenacity): 429, 5xx, connection errors and timeouts, with exponential backoff
  and full jitter, waiting at least what ``Retry-After`` asks. Other 4xx are not retried;
  401/403 raise ``StoreAuthError`` saying what to check, without the secret.
* **Writes are never retried blindly.** A 500 on ``POST /products/batch`` can come after part
  of the batch was saved (a PHP fatal on one item), and a timeout or dropped connection
  after sending says nothing about what was applied. A write is re-sent automatically only
  when the store certainly did not process it: the connection was never made, or the answer
  was 429 / 503 / 501 (rate limiter, maintenance, WAF: refused before WooCommerce ran). On
  any other failure the client reads the products back (``context=edit``) and reports, per
  item, whether the store now holds what was sent (``verified=True``); items it does not
  hold are reported as failed and *not* re-sent, so the caller decides with its own conflict
  check (publish does, on its next run) instead of this class overwriting an edit someone
  made in between.
* **Validation.** Every write is checked field by field first (``validate.py``): batch items
  are not type-checked by WooCommerce and a wrong type can crash the whole batch after
  saving part of it. A body ``id`` overrides the URL id, so none is ever sent to ``PUT``.
"""

from __future__ import annotations

import json
import queue
import random
import re
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import orjson
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from enrich.errors import ConfigError, InputError, StoreAuthError, StoreError, StoreUnavailable
from enrich.woo.auth import AuthMode, default_mode, make_auth, strip_credentials
from enrich.woo.validate import (
    DEFAULT_MAX_FIELD_BYTES,
    MAX_BATCH_ITEMS,
    check_batch,
    check_product_update,
)

if TYPE_CHECKING:
    from enrich.config import Secrets, Settings

API_PREFIX = "/wp-json/wc/v3"
PER_PAGE_MAX = 100
ALL_STATUSES = ("publish", "draft", "pending", "private", "future")
DEFAULT_STATUSES = ("publish", "draft", "pending", "private")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_GMT_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_HTML_TITLE = re.compile(r"<title>([^<]{1,200})</title>", re.IGNORECASE)
_LINK_NEXT = re.compile(r"<([^>]*)>\s*;\s*rel=\"?next\"?")
#: Answers that mean "refused before WooCommerce ran": a write can be re-sent safely.
_NOT_APPLIED_STATUSES = frozenset({429, 501, 503})


@dataclass
class BatchItemResult:
    """How one item of a batch write ended.

    ``verified`` is true when the request failed ambiguously and the outcome was
    established by reading the product back: ``ok`` then means the store holds exactly
    what was sent; ``not ok`` means it does not, and the item was not re-sent.
    """

    id: int
    ok: bool
    product: dict[str, Any] | None = None
    error_code: str | None = None
    error: str | None = None
    status: int | None = None
    verified: bool = False


_SETTINGS = (("products", "woocommerce_weight_unit"), ("products", "woocommerce_dimension_unit"),
             ("general", "woocommerce_currency"))
#: GETs ``store_settings`` sends (one per setting: a group listing is ~30 settings long).
SETTINGS_READS = len(_SETTINGS)


@dataclass(frozen=True)
class StoreUnits:
    """The units a store's bare numbers are in (Settings > Products and General)."""

    weight_unit: str
    dimension_unit: str
    currency: str

    def snapshot_keys(self) -> dict[str, str]:
        """What sync adds to each product snapshot, so guards and writers read bare values.

        Not the currency: it says nothing a shopper reads that the price does not, and a
        writer handed "currency: EUR" writes it into the copy.
        """
        return {"weight_unit": self.weight_unit, "dimension_unit": self.dimension_unit}

    def as_dict(self) -> dict[str, str]:
        return {"weight_unit": self.weight_unit, "dimension_unit": self.dimension_unit,
                "currency": self.currency}


class ProductPage(list[dict[str, Any]]):
    """One page of a listing, with the totals the store reported for the whole listing."""

    number: int = 1
    total: int | None = None
    total_pages: int | None = None
    #: The store's clock (``Date`` header) when it answered, UTC; used for sync cursors.
    server_time: datetime | None = None
    #: Products on this page left out because their status is not one asked for.
    skipped: int = 0


@dataclass(frozen=True)
class PageBody:
    """One page of a product listing as the store sent it, before decoding.

    Sync's page fetcher (``enrich.woo.fetcher``) hands these to the processes that build
    them: the bytes cross the pipe once and are decoded once, where they are built
    (``WooClient.product_page``)."""

    number: int
    total: int | None
    total_pages: int | None
    server_time: datetime | None
    #: The request, for errors ("GET /wp-json/wc/v3/products"; never the query).
    what: str
    content: bytes

    @property
    def empty(self) -> bool:
        """Whether the page is an empty JSON array (past the last page)."""
        return len(self.content) < 64 and _EMPTY_ARRAY.fullmatch(self.content) is not None


_EMPTY_ARRAY = re.compile(rb"\s*\[\s*\]\s*")


class _Transient(Exception):
    """A failure worth retrying; ``maybe_applied`` when a write may have been processed."""

    def __init__(self, detail: str, *, status: int | None = None,
                 retry_after: float | None = None, maybe_applied: bool = True) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        self.maybe_applied = maybe_applied


class _Ambiguous(Exception):
    """A write failed in a way that says nothing about whether the store applied it."""

    def __init__(self, detail: str, status: int | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def check_gmt_datetime(value: str) -> str:
    """``modified_after`` as the store needs it: ``YYYY-MM-DDTHH:MM:SS`` in GMT."""
    if not isinstance(value, str) or not _GMT_DATETIME.match(value):
        raise InputError(
            f"modified_after {value!r}: not a full GMT datetime like 2026-01-31T23:59:59",
            "The store answers 400 to a date without a time; pass the store's "
            "date_modified_gmt format (sent with dates_are_gmt=true).")
    return value


def _listing(statuses: Sequence[str], modified_after: str | None, fields: list[str] | None,
             per_page: int, first_page: int) -> tuple[dict[str, Any], frozenset[str] | None]:
    """The query of a product listing, and the statuses to keep of what it returns (None:
    all of them).

    One status is asked of the store; several are read with ``status=any`` (the API takes
    one value) and filtered on our side."""
    if not 1 <= per_page <= PER_PAGE_MAX:
        raise InputError(f"per_page {per_page}: the store accepts 1 to {PER_PAGE_MAX} "
                         "(it answers 400 rather than clamping)")
    wanted = tuple(dict.fromkeys(statuses))
    unknown = [s for s in wanted if s not in ALL_STATUSES]
    if unknown or not wanted:
        raise InputError(f"statuses {list(statuses)!r}: each must be one of "
                         f"{', '.join(ALL_STATUSES)}")
    params: dict[str, Any] = {"per_page": per_page, "page": max(1, first_page),
                              "orderby": "id", "order": "asc", "context": "edit"}
    keep: frozenset[str] | None = None
    if len(wanted) == 1:
        params["status"] = wanted[0]
    else:
        params["status"] = "any"
        if set(wanted) != set(ALL_STATUSES):
            keep = frozenset(wanted)
    if modified_after is not None:
        params["modified_after"] = check_gmt_datetime(modified_after)
        params["dates_are_gmt"] = "true"
    if fields:
        params["_fields"] = ",".join(dict.fromkeys([*fields, "id", "status", "date_modified_gmt"]))
    return params, keep


def _decode_json(raw: bytes) -> Any:
    """JSON from the store, tolerating invalid UTF-8 inside strings.

    One product with broken bytes must not cost the whole page: undecodable bytes become
    lone surrogates, which validation later reports as that product's input error.

    orjson reads a page in half the time ``json`` takes. Where the two could differ it
    refuses (invalid UTF-8, a lone surrogate escape, NaN, a byte order mark) and ``json``
    reads the body as before. The one value orjson reads differently, an integer beyond
    64 bits (a float to orjson), is one PHP cannot send: its integers are 64-bit.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        return json.loads(raw.decode("utf-8", errors="surrogateescape"))


def _json_body(content: bytes, status: int, what: str) -> Any:
    """A response body's JSON, or a ``StoreError`` saying what the store sent instead."""
    try:
        return _decode_json(content)
    except ValueError:
        text = content.decode("utf-8", errors="surrogateescape")
        starts = [i for i in (text.find("["), text.find("{")) if i >= 0]
        if starts:  # PHP notices printed before the JSON, a classic WordPress fault
            try:
                return json.loads(text[min(starts):])
            except ValueError:
                pass
        raise StoreError(
            f"{what}: the store answered {status} with a body that is not JSON "
            f"(starts {content[:60]!r})",
            "A plugin or PHP notice may be printing into REST responses; check the store's "
            "error log and that WP_DEBUG_DISPLAY is off.") from None


def _error_body(resp: httpx.Response) -> tuple[str | None, str]:
    try:
        body = _decode_json(resp.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("code")
        message = body.get("message")
        return (str(code) if code is not None else None,
                str(message) if message is not None else "")
    text = resp.content[:2000].decode("utf-8", errors="replace")
    title = _HTML_TITLE.search(text)  # a proxy's or WAF's HTML error page
    return None, (title.group(1).strip() if title else text[:200].strip())


class WooClient:
    """A WooCommerce store's products API on one pooled ``httpx.Client``."""

    def __init__(self, url: str, key: str, secret: str, *, auth: str = "auto",
                 timeout_s: float = 30.0, verify: bool | str | ssl.SSLContext = True,
                 max_attempts: int = 5, http: httpx.Client | None = None,
                 backoff_base_s: float = 0.5, backoff_max_s: float = 30.0,
                 max_retry_after_s: float = 300.0, prefetch: bool = True,
                 max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
                 sleep: Callable[[float], None] | None = None) -> None:
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"store.url {url!r}: not an http(s) URL")
        if auth not in ("auto", "basic", "oauth1", "query"):
            raise ConfigError(f"store.auth {auth!r}: one of auto, basic, oauth1, query")
        if (parts.scheme == "http" and auth in ("basic", "query")
                and parts.hostname not in _LOOPBACK):
            raise ConfigError(
                f"store.auth = {auth!r} over plain HTTP would send the consumer secret "
                f"unencrypted to {parts.hostname}.",
                "Use the store's https:// address, or store.auth = \"oauth1\" (or \"auto\").")
        if not key or not secret:
            raise ConfigError("the store's consumer key and secret must not be empty",
                              "Set WOO_CONSUMER_KEY and WOO_CONSUMER_SECRET.")
        self.base_url = urlunsplit(parts._replace(query="", fragment=""))
        self.api_url = self.base_url + API_PREFIX
        self._origin = (parts.scheme, parts.hostname, parts.port)
        # For messages: the address without any user:password@ the URL may carry.
        self._address = (f"{parts.scheme}://{parts.hostname}"
                         + (f":{parts.port}" if parts.port else "") + parts.path)
        self._key = key
        self._secret = secret
        self.auth_setting = auth
        self.auth_mode: AuthMode = default_mode(self.base_url) if auth == "auto" else auth  # type: ignore[assignment]
        self._auth = make_auth(self.auth_mode, key, secret)
        self._auth_settled = auth != "auto"
        self._auth_lock = threading.Lock()
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.max_retry_after_s = max_retry_after_s
        self.prefetch = prefetch
        self.max_field_bytes = max_field_bytes
        self._sleep = sleep
        self.requests_sent = 0
        self.retries = 0
        # How to open this same client in another process (``reopen_args``); none when the
        # caller handed in its own connection or TLS context, which cannot be passed on.
        self._reopen: dict[str, Any] | None = None
        if http is None and not isinstance(verify, ssl.SSLContext):
            self._reopen = {"url": url, "key": key, "secret": secret, "timeout_s": timeout_s,
                            "verify": verify, "max_attempts": max_attempts,
                            "backoff_base_s": backoff_base_s, "backoff_max_s": backoff_max_s,
                            "max_retry_after_s": max_retry_after_s,
                            "max_field_bytes": max_field_bytes}
        if http is None:
            if isinstance(verify, str):
                try:
                    verify = ssl.create_default_context(cafile=verify)
                except (OSError, ssl.SSLError) as exc:
                    raise ConfigError(f"store.verify_tls: cannot use {verify} as a CA bundle "
                                      f"({exc})", "Point it at a PEM file, or set it to "
                                      "true to use the system's certificates.") from None
            self._http = httpx.Client(
                timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
                verify=verify, follow_redirects=False,
                limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
                headers={"User-Agent": "enrich (WooCommerce catalog enrichment)",
                         "Accept": "application/json"})
            self._owns_http = True
        else:
            self._http = http
            self._owns_http = False

    @classmethod
    def from_settings(cls, settings: Settings, secrets: Secrets) -> WooClient:
        from enrich.config import ENV_WOO_KEY, ENV_WOO_SECRET

        store = settings.store
        key = secrets.require(ENV_WOO_KEY, "to read and write the store's products")
        secret = secrets.require(ENV_WOO_SECRET, "to read and write the store's products")
        verify: bool | str = store.verify_tls
        if isinstance(verify, str):
            verify = str(settings.resolve(verify))
        return cls(store.url, key, secret, auth=store.auth, timeout_s=store.timeout_s,
                   verify=verify, max_attempts=store.max_attempts,
                   max_field_bytes=settings.sync.max_field_bytes)

    def reopen_args(self) -> dict[str, Any] | None:
        """Keyword arguments that open this client again in another process, with the auth
        mode it settled on; None when it cannot be (a connection or TLS context of the
        caller's). They hold the secret: hand them over a pipe, never a command line."""
        if self._reopen is None or self._sleep is not None:
            return None
        return {**self._reopen, "auth": self.auth_mode}

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> WooClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WooClient({self.base_url!r}, auth={self.auth_mode!r})"

    # -- plumbing -----------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        """Never let the secret (or the key) reach a message, a log or the ledger."""
        for value in (self._secret, self._key):
            if value:
                text = text.replace(value, "***")
        return text

    def _what(self, method: str, url: str) -> str:
        return f"{method} {urlsplit(url).path}"  # no query: it may carry credentials

    def _send_once(self, method: str, url: str, params: Mapping[str, Any] | None,
                   body: Any) -> httpx.Response:
        self.requests_sent += 1
        try:
            resp = self._http.request(method, url, params=params, json=body, auth=self._auth)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _Transient(f"cannot connect to {self._address} ({type(exc).__name__}: "
                             f"{exc})", maybe_applied=False) from exc
        except httpx.TransportError as exc:
            raise _Transient(f"{type(exc).__name__}: {str(exc) or 'connection lost'}") from exc
        status = resp.status_code
        if status == 429 or status >= 500:
            code, message = _error_body(resp)
            detail = f"HTTP {status}" + (f" {code}" if code else "") + (
                f": {message}" if message else "")
            raise _Transient(detail, status=status,
                             retry_after=parse_retry_after(resp.headers.get("Retry-After")),
                             maybe_applied=status not in _NOT_APPLIED_STATUSES)
        return resp

    def _should_retry(self, exc: BaseException, *, write: bool) -> bool:
        if not isinstance(exc, _Transient):
            return False
        if write and exc.maybe_applied:
            return False
        return not (exc.retry_after is not None and exc.retry_after > self.max_retry_after_s)

    def _wait(self, state: RetryCallState) -> float:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        cap = min(self.backoff_max_s, self.backoff_base_s * 2 ** (state.attempt_number - 1))
        jitter = random.uniform(0, cap)
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return exc.retry_after + random.uniform(0, min(1.0, self.backoff_base_s))
        return jitter

    def _retried(self, method: str, url: str, params: Mapping[str, Any] | None, body: Any,
                 *, write: bool) -> httpx.Response:
        what = self._what(method, url)
        kwargs: dict[str, Any] = {}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts), wait=self._wait, reraise=True,
            retry=retry_if_exception(lambda e: self._should_retry(e, write=write)), **kwargs)
        try:
            for attempt in retrying:
                with attempt:
                    return self._send_once(method, url, params, body)
        except _Transient as exc:
            tries = retrying.statistics.get("attempt_number", 1)
            detail = self._scrub(exc.detail)
            if write and exc.maybe_applied:
                raise _Ambiguous(detail, exc.status) from None
            if exc.retry_after is not None and exc.retry_after > self.max_retry_after_s:
                raise StoreUnavailable(
                    f"{what}: the store asked to wait {exc.retry_after:.0f} s (Retry-After), "
                    f"longer than enrich waits ({self.max_retry_after_s:.0f} s)",
                    status=exc.status) from None
            hint = None
            if isinstance(exc.__cause__, (httpx.ConnectError, httpx.ConnectTimeout)):
                hint = (f"Check that store.url (now {self._address}) is the shop's address "
                        "and that the site is up; try it in a browser from this machine.")
            raise StoreUnavailable(f"{what}: {detail} (gave up after {tries} attempt(s))",
                                   hint, status=exc.status) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _request(self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
                 body: Any = None, write: bool = False) -> httpx.Response:
        """Send with retries; on 401/403 fall back (auto) or raise ``StoreAuthError``."""
        resp = self._retried(method, url, params, body, write=write)
        if resp.status_code in (401, 403) and self._may_fall_back(resp):
            with self._auth_lock:
                self.auth_mode = "query"
                self._auth = make_auth("query", self._key, self._secret)
            resp = self._retried(method, url, params, body, write=write)
        if resp.status_code in (401, 403):
            raise self._auth_error(resp, self._what(method, url))
        if resp.status_code < 300:
            self._auth_settled = True
        return resp

    def _may_fall_back(self, resp: httpx.Response) -> bool:
        """auto over HTTPS: Basic that the store did not see at all -> query-string keys.

        Hosts that strip the ``Authorization`` header make Basic look like no key at all
        (the generic "cannot list/view" 401, or a "missing" key). Over plain HTTP there is
        no fallback: query keys would put the secret on the wire in clear text.
        """
        if self._auth_settled or self.auth_mode != "basic" or resp.status_code != 401:
            return False
        code, message = _error_body(resp)
        return code == "woocommerce_rest_cannot_view" or "missing" in (message or "").lower()

    def _auth_error(self, resp: httpx.Response, what: str) -> StoreAuthError:
        code, message = _error_body(resp)
        status = resp.status_code
        text = self._scrub(f"{what}: the store refused the request (HTTP {status}"
                           + (f" {code}" if code else "") + f": {message or 'no message'})")
        low = (message or "").lower()
        if "secret is invalid" in low:
            hint = ("WOO_CONSUMER_SECRET does not match WOO_CONSUMER_KEY: copy both again from "
                    "WooCommerce > Settings > Advanced > REST API.")
        elif "signature" in low:
            hint = ("Check WOO_CONSUMER_SECRET, and that store.url is exactly the site's address "
                    "(scheme, host, port, path): OAuth 1.0a signs the URL.")
        elif "timestamp" in low or "nonce" in low:
            hint = "Check this machine's clock (OAuth 1.0a refuses old timestamps)."
        elif "write permission" in low:
            hint = ("The key is read-only: give it Read/Write permission in WooCommerce > "
                    "Settings > Advanced > REST API.")
        elif "read permission" in low:
            hint = "The key is write-only: give it Read/Write permission."
        elif status == 403:
            hint = ("The key's WordPress user may not manage products: create the key for an "
                    "administrator or shop manager.")
        elif self.auth_mode in ("basic", "query") and self._origin[0] == "http":
            hint = ("Plain-HTTP stores accept only OAuth 1.0a: set store.auth = \"oauth1\" "
                    "(or \"auto\"), or use the https:// address.")
        else:
            hint = ("The store did not accept the key: check WOO_CONSUMER_KEY exists in "
                    "WooCommerce > Settings > Advanced > REST API"
                    + ("; if the host strips the Authorization header, set store.auth = "
                       "\"query\"." if self.auth_mode == "basic" else "."))
        return StoreAuthError(text, hint, status=status, code=code)

    def _store_error(self, resp: httpx.Response, what: str) -> StoreError:
        code, message = _error_body(resp)
        text = self._scrub(f"{what}: HTTP {resp.status_code}" + (f" {code}" if code else "")
                           + (f": {message}" if message else ""))
        if resp.status_code == 413:
            hint = f"Send at most {MAX_BATCH_ITEMS} items per batch."
        elif code and "invalid_id" in code:
            hint = "The product no longer exists in the store (or is a variation); run sync."
        else:
            hint = "This request was refused as it is; retrying will not help."
        return StoreError(text, hint, status=resp.status_code, code=code)

    def _json(self, resp: httpx.Response, what: str) -> Any:
        return _json_body(resp.content, resp.status_code, what)

    # -- reads --------------------------------------------------------------------------------

    def _next_url(self, resp: httpx.Response, params: Mapping[str, Any] | None,
                  page_no: int, total_pages: int | None, got: int) -> str | None:
        """The next page's URL: the ``Link rel=next`` with credentials stripped, or our own.

        A link to another origin (a misconfigured home URL) or one that lost our parameters
        is not followed as is; the next page is built from our own parameters instead, so
        credentials never go to a host other than store.url.
        """
        own_params = dict(params or {})
        if not own_params:
            own_params = dict(parse_qsl(urlsplit(str(resp.request.url)).query))
        for name in ("oauth_consumer_key", "oauth_nonce", "oauth_signature",
                     "oauth_signature_method", "oauth_timestamp", "oauth_version",
                     "consumer_key", "consumer_secret"):
            own_params.pop(name, None)
        base = str(resp.request.url).split("?", 1)[0]
        match = _LINK_NEXT.search(resp.headers.get("Link", ""))
        if match:
            link = strip_credentials(match.group(1))
            lp = urlsplit(link)
            link_query = dict(parse_qsl(lp.query, keep_blank_values=True))
            same_origin = (lp.scheme, lp.hostname, lp.port) == self._origin
            if same_origin and set(link_query) >= set(own_params) - {"page"}:
                return link
            if "page" in link_query and link_query["page"].isdigit():
                own_params["page"] = int(link_query["page"])
                return f"{base}?{urlencode(own_params)}"
        if got and total_pages is not None and page_no < total_pages:
            own_params["page"] = page_no + 1
            return f"{base}?{urlencode(own_params)}"
        return None

    def _fetch_page(self, url: str, params: Mapping[str, Any] | None
                    ) -> tuple[PageBody, httpx.Response]:
        """A listing page as the store sent it (an answer other than 200 raises)."""
        if params and "?" not in url:
            # Spelled here, as ``_next_url`` spells the pages it builds: httpx merging
            # ``params`` into the URL parses and encodes the whole query again, ~0.2-0.5 ms
            # a page (the page fetcher asks for every page this way).
            resp = self._request("GET", f"{url}?{urlencode(params)}")
        else:
            resp = self._request("GET", url, params=params)
        what = self._what("GET", url)
        if resp.status_code != 200:
            raise self._store_error(resp, what)
        asked = params.get("page") if params and "?" not in url else None
        if type(asked) is int and asked >= 1:
            number = asked  # what the URL says, without parsing its long query again
        else:
            query = dict(parse_qsl(urlsplit(str(resp.request.url)).query))
            number = int(query.get("page", "1")) if query.get("page", "1").isdigit() else 1
        total, total_pages = (int(v) if (v := resp.headers.get(h, "")).isdigit() else None
                              for h in ("X-WP-Total", "X-WP-TotalPages"))
        server_time = None
        if date := resp.headers.get("Date"):
            try:
                server_time = parsedate_to_datetime(date).astimezone(UTC)
            except (TypeError, ValueError):
                server_time = None
        return PageBody(number, total, total_pages, server_time, what, resp.content), resp

    @staticmethod
    def _page_of(body: PageBody, keep_status: frozenset[str] | None
                 ) -> tuple[ProductPage, int]:
        """The page decoded, without the products of other statuses; and how many the store
        sent."""
        data = _json_body(body.content, 200, body.what)
        if not isinstance(data, list):
            raise StoreError(f"{body.what}: expected a JSON array of products, got "
                             f"{type(data).__name__}")
        page = ProductPage()
        page.number, page.total, page.total_pages, page.server_time = (
            body.number, body.total, body.total_pages, body.server_time)
        if keep_status is None:
            page.extend(data)
        else:
            for item in data:
                if isinstance(item, dict) and item.get("status") not in keep_status:
                    page.skipped += 1
                else:
                    page.append(item)
        return page, len(data)

    def _get_page(self, url: str, params: Mapping[str, Any] | None,
                  keep_status: frozenset[str] | None) -> tuple[ProductPage, str | None]:
        """A page, and the next page's URL."""
        body, resp = self._fetch_page(url, params)
        page, got = self._page_of(body, keep_status)
        if not got:
            return page, None
        return page, self._next_url(resp, None if url.find("?") >= 0 else params, page.number,
                                    page.total_pages, got)

    def _page_chain(self, path: str, params: dict[str, Any],
                    keep_status: frozenset[str] | None) -> Iterator[tuple[ProductPage, bool]]:
        """Pages in order, each with whether another follows; one request at a time."""
        page, next_url = self._get_page(self.api_url + path, params, keep_status)
        seen = 1
        while True:
            last = next_url is None or (page.total_pages is not None
                                        and seen >= page.total_pages + 1)
            yield page, not last  # past its own total +1 the store is looping: stop
            if last:
                return
            page, next_url = self._get_page(next_url, None, keep_status)
            seen += 1

    def _iter_pages(self, path: str, params: dict[str, Any],
                    keep_status: frozenset[str] | None = None, *,
                    prefetch: bool | None = None) -> Iterator[ProductPage]:
        """Pages in order; with ``prefetch``, a reader thread stays one page ahead.

        The reader asks for the next page as soon as it has the previous one, so the store
        is never idle while the caller works on a page, and never has more than one of our
        requests at a time. At most two pages wait in memory.
        """
        chain = self._page_chain(path, params, keep_status)
        if not (self.prefetch if prefetch is None else prefetch):
            for page, _more in chain:
                yield page
            return
        pages: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
        stop = threading.Event()

        def hand_over(item: tuple[str, Any]) -> bool:
            while not stop.is_set():
                try:
                    pages.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def read() -> None:
            try:
                for page, more in chain:
                    if not hand_over(("page", page)) or not more:
                        break
                hand_over(("end", None))
            except BaseException as exc:  # handed to the caller's thread, raised there
                hand_over(("error", exc))

        reader = threading.Thread(target=read, name="woo-pages", daemon=True)
        reader.start()
        try:
            while True:
                kind, value = pages.get()
                if kind == "error":
                    raise value
                if kind == "end":
                    return
                yield value
        finally:
            stop.set()
            reader.join(timeout=1.0)  # it may be mid-request; it exits when that ends

    def iter_product_pages(self, *, modified_after: str | None = None,
                           statuses: Sequence[str] = DEFAULT_STATUSES,
                           fields: list[str] | None = None,
                           per_page: int = PER_PAGE_MAX,
                           first_page: int = 1) -> Iterator[ProductPage]:
        """Every product (not variations) in pages of up to 100, oldest id first.

        ``statuses``: one status is asked of the store; several are read with
        ``status=any`` (the API takes one value) and filtered here, counted in
        ``page.skipped``. ``modified_after`` is exclusive and GMT. ``first_page``: start
        there (the pages before it were read already).
        """
        params, keep = _listing(statuses, modified_after, fields, per_page, first_page)
        return self._iter_pages("/products", params, keep)

    def iter_page_bodies(self, *, modified_after: str | None = None,
                         statuses: Sequence[str] = DEFAULT_STATUSES,
                         fields: list[str] | None = None, first_page: int = 1,
                         step: int = 1) -> Iterator[PageBody]:
        """Pages ``first_page``, ``+ step``, ... of the listing ``iter_product_pages`` reads,
        by number, as the store sent them (``product_page`` decodes one).

        For sync's page fetcher, which reads pages for other processes to build: others
        may read the pages between. Ends after the last page by the store's count, or at an
        empty page (the catalog shrank meanwhile).
        """
        params, _keep = _listing(statuses, modified_after, fields, PER_PAGE_MAX, first_page)
        url = self.api_url + "/products"
        number = max(1, first_page)
        while True:
            body, _resp = self._fetch_page(url, {**params, "page": number})
            yield body
            if body.empty or body.total_pages is None or number + step > body.total_pages:
                return
            number += step

    def product_page(self, body: PageBody, statuses: Sequence[str] = DEFAULT_STATUSES
                     ) -> ProductPage:
        """A page from ``iter_page_bodies`` decoded as ``iter_product_pages`` gives it."""
        return self._page_of(body, _listing(statuses, None, None, PER_PAGE_MAX, 1)[1])[0]

    def get_products(self, ids: Sequence[int], *, context: str = "edit") -> list[dict[str, Any]]:
        """These products as the store holds them now (any status), in the order asked."""
        ids = [int(i) for i in ids]
        if not ids:
            return []
        if len(ids) > PER_PAGE_MAX:
            raise InputError(f"get_products: {len(ids)} ids, at most {PER_PAGE_MAX} per call")
        url = self.api_url + "/products"
        params = {"include": ",".join(map(str, ids)), "per_page": len(ids),
                  "orderby": "include", "order": "asc", "status": "any",
                  "context": context}
        resp = self._request("GET", url, params=params)
        if resp.status_code != 200:
            raise self._store_error(resp, self._what("GET", url))
        data = self._json(resp, self._what("GET", url))
        if not isinstance(data, list):
            raise StoreError(f"GET /products?include=: expected an array, got "
                             f"{type(data).__name__}")
        # Order client-side: stores differ on whether ``order`` applies to orderby=include.
        by_id = {p.get("id"): p for p in data if isinstance(p, dict)}
        return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]

    def iter_variations(self, parent_id: int) -> Iterator[dict[str, Any]]:
        """A variable product's variations (edit context); none for other products."""
        params: dict[str, Any] = {"per_page": PER_PAGE_MAX, "page": 1, "orderby": "id",
                                  "order": "asc", "context": "edit"}
        # Usually one page: a reader thread per variable product would cost more than it saves.
        for page in self._iter_pages(f"/products/{int(parent_id)}/variations", params,
                                     prefetch=False):
            yield from page

    def store_settings(self) -> StoreUnits:
        """The store's weight and dimension units and its currency.

        WooCommerce keeps ``weight`` and ``dimensions`` as bare numbers in the units of
        Settings > Products (``woocommerce_weight_unit``, ``woocommerce_dimension_unit``), so
        "500" is 500 g in one store and 500 lbs in another; the guards need the unit to tell
        a gram from a kilogram. Three GETs, once per sync.
        """
        values: dict[str, str] = {}
        for group, sid in _SETTINGS:
            url = f"{self.api_url}/settings/{group}/{sid}"
            resp = self._request("GET", url)
            if resp.status_code != 200:
                raise self._store_error(resp, self._what("GET", url))
            body = self._json(resp, self._what("GET", url))
            value = body.get("value") if isinstance(body, dict) else None
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise StoreError(f"GET {url}: expected a setting with a value, got "
                                 f"{type(body).__name__}",
                                 "Check the store's REST API answers settings as WooCommerce "
                                 "does (wc/v3/settings).")
            values[sid] = str(value)
        return StoreUnits(weight_unit=values["woocommerce_weight_unit"],
                          dimension_unit=values["woocommerce_dimension_unit"],
                          currency=values["woocommerce_currency"])

    # -- writes -------------------------------------------------------------------------------

    def update_product(self, id: int, data: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /products/<id>`` after validation; returns the product as stored."""
        record = f"product {id}"
        if isinstance(id, bool) or not isinstance(id, int) or id <= 0:
            raise InputError(f"{record}: not a product id")
        if "id" in data and data["id"] != id:
            raise InputError(f"{record}: the body carries id {data['id']!r}; the store would "
                             "write to that product instead (a body id overrides the URL)")
        body = {k: v for k, v in data.items() if k != "id"}
        check_product_update(body, record, max_field_bytes=self.max_field_bytes)
        url = f"{self.api_url}/products/{id}"
        try:
            resp = self._request("PUT", url, body=body, write=True)
        except _Ambiguous as exc:
            stored = {p.get("id"): p for p in self.get_products([id])}.get(id)
            if stored is not None and not _differences(body, stored):
                return stored
            raise StoreUnavailable(
                f"{record}: PUT failed ({exc.detail}) and the store does not show the change; "
                "it was not re-sent", "Run the command again: it checks the store first.",
                status=exc.status) from None
        if resp.status_code != 200:
            raise self._store_error(resp, f"{record}: PUT")
        product = self._json(resp, f"{record}: PUT")
        if not isinstance(product, dict):
            raise StoreError(f"{record}: PUT answered with {type(product).__name__}")
        return product

    def batch_update(self, items: list[dict[str, Any]]) -> list[BatchItemResult]:
        """``POST /products/batch`` with up to 100 updates, validated first.

        Per-item errors come back inside a 200; the result list follows ``items``' order.
        """
        return self._batch_write("/products/batch", items, self.get_products)

    def batch_update_variations(self, parent_id: int, items: list[dict[str, Any]]
                                ) -> list[BatchItemResult]:
        """``POST /products/<parent>/variations/batch``: the same contract as products.

        Variations cannot be written through ``/products/batch`` (a per-item
        ``woocommerce_rest_invalid_product_id``), and the response items are variation
        objects (``image``, no ``short_description``). Every item must be a variation of
        ``parent_id``; one of another parent comes back as that item's error.
        """
        parent = int(parent_id)
        return self._batch_write(f"/products/{parent}/variations/batch", items,
                                 lambda ids: self.get_variations(parent, ids))

    def get_variations(self, parent_id: int, ids: Sequence[int] | None = None, *,
                       context: str = "edit") -> list[dict[str, Any]]:
        """These variations of ``parent_id`` as the store holds them now, in the order asked.

        ``/products?include=`` never returns variations, so they are read through their
        parent's list (one request for up to 100 variations). ``None``: all of them.
        """
        if context != "edit":
            raise InputError(f"get_variations: context {context!r}; only edit is read")
        found = {v.get("id"): v for v in self.iter_variations(int(parent_id))
                 if isinstance(v, dict)}
        if ids is None:
            return list(found.values())
        return [found[i] for i in dict.fromkeys(int(i) for i in ids) if i in found]

    def _batch_write(self, path: str, items: list[dict[str, Any]],
                     read_back: Callable[[list[int]], list[dict[str, Any]]]
                     ) -> list[BatchItemResult]:
        ids = check_batch(items, max_field_bytes=self.max_field_bytes)
        if not items:
            return []
        url = f"{self.api_url}{path}"
        what = f"POST {path}"
        try:
            resp = self._request("POST", url, body={"update": list(items)}, write=True)
        except _Ambiguous as exc:
            return self._verify_batch(items, ids, exc, read_back, what)
        if resp.status_code != 200:
            raise self._store_error(resp, what)
        data = self._json(resp, what)
        updates = data.get("update") if isinstance(data, dict) else None
        if not isinstance(updates, list) or len(updates) != len(items):
            raise StoreError(f"{what}: expected {len(items)} results in "
                             f"'update', got {type(updates).__name__}",
                             "Check the store directly; the batch may have been applied.")
        results = []
        for product_id, out in zip(ids, updates, strict=True):
            error = out.get("error") if isinstance(out, dict) else None
            if isinstance(error, dict):
                data_part = error.get("data") if isinstance(error.get("data"), dict) else {}
                results.append(BatchItemResult(
                    id=product_id, ok=False, error_code=error.get("code"),
                    error=self._scrub(str(error.get("message") or "")),
                    status=data_part.get("status")))
            elif isinstance(out, dict):
                results.append(BatchItemResult(id=product_id, ok=True, product=out))
            else:
                results.append(BatchItemResult(id=product_id, ok=False,
                                               error=f"unexpected result {out!r}"))
        return results

    def _verify_batch(self, items: list[dict[str, Any]], ids: list[int], exc: _Ambiguous,
                      read_back: Callable[[list[int]], list[dict[str, Any]]], what: str
                      ) -> list[BatchItemResult]:
        try:
            stored = {p.get("id"): p for p in read_back(ids)}
        except StoreError as read_exc:
            raise StoreUnavailable(
                f"{what} failed ({exc.detail}) and reading the {len(ids)} "
                f"products back failed too ({read_exc.message}); outcome unknown for ids "
                f"{ids}", "Run the command again once the store answers: it checks each "
                "product before writing.", status=exc.status) from None
        results = []
        for product_id, item in zip(ids, items, strict=True):
            product = stored.get(product_id)
            diff = _differences(item, product) if product is not None else ["missing"]
            if not diff:
                results.append(BatchItemResult(id=product_id, ok=True, product=product,
                                               verified=True, status=exc.status))
            else:
                results.append(BatchItemResult(
                    id=product_id, ok=False, product=product, verified=True,
                    status=exc.status, error_code="enrich_batch_not_applied",
                    error=(f"the batch request failed ({exc.detail}) and the store does not "
                           f"hold {', '.join(diff)} as sent; not re-sent")))
        return results


def _differences(sent: Mapping[str, Any], stored: Mapping[str, Any]) -> list[str]:
    """Fields of ``sent`` that ``stored`` (edit context) does not hold as sent."""
    diff: list[str] = []
    for field, value in sent.items():
        if field == "id":
            continue
        if field == "meta_data":
            have = {m.get("key"): m.get("value") for m in stored.get("meta_data") or []
                    if isinstance(m, dict)}
            for entry in value:
                key, want = entry["key"], entry.get("value")
                if (want is None and key in have) or (want is not None and have.get(key) != want):
                    diff.append(f"meta_data {key}")
        elif field == "images":
            have_alt = {i.get("id"): i.get("alt") for i in stored.get("images") or []
                        if isinstance(i, dict)}
            for image in value:
                if "alt" in image and have_alt.get(image["id"]) != image["alt"]:
                    diff.append(f"images {image['id']} alt")
        elif field in ("categories", "tags"):
            want_ids = {t["id"] for t in value}
            have_ids = {t.get("id") for t in stored.get(field) or [] if isinstance(t, dict)}
            if want_ids != have_ids:
                diff.append(field)
        elif stored.get(field) != value:
            diff.append(field)
    return diff
