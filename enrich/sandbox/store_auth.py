"""REST API key authentication as WooCommerce's ``WC_REST_Authentication`` does it.

Over HTTPS the store reads HTTP Basic credentials or ``consumer_key``/``consumer_secret``
query parameters; over plain HTTP it accepts only one-legged OAuth 1.0a (HMAC-SHA1/SHA256,
timestamp window, single-use nonces), with signatures verified for real. An unknown key is
not an error at this stage: the request goes on anonymous and the route's permission check
answers with the generic 401, which is what the real store does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote

from enrich.httpserver import Request

Permissions = Literal["read", "write", "read_write"]
Role = Literal["administrator", "shop_manager", "customer"]

OAUTH_REQUIRED = ("oauth_consumer_key", "oauth_timestamp", "oauth_nonce", "oauth_signature",
                  "oauth_signature_method")
TIMESTAMP_WINDOW_S = 15 * 60


@dataclass(frozen=True)
class ApiKey:
    """One REST API key of the store, with its permission level and owner's role."""

    consumer_key: str
    consumer_secret: str
    permissions: Permissions = "read_write"
    role: Role = "administrator"


@dataclass(frozen=True)
class AuthError:
    status: int
    code: str
    message: str


@dataclass(frozen=True)
class AuthOutcome:
    key: ApiKey | None = None  # None: anonymous (no or unknown credentials)
    error: AuthError | None = None
    method: str = "none"  # basic | query | oauth1 | none


def _rawurlencode(text: str) -> str:
    return quote(text, safe="-_.~")


def php_query(raw_query: str) -> dict[str, str]:
    """``$_GET`` as PHP builds it: '+' is a space, the last of repeated names wins."""
    return dict(parse_qsl(raw_query, keep_blank_values=True))


def _parse_oauth_header(header: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in header[len("OAuth "):].split(","):
        if "=" not in part:
            continue
        name, value = part.strip().split("=", 1)
        params[unquote(name.strip())] = unquote(value.strip().strip('"'))
    return params


def oauth_signature(method: str, base_uri: str, params: dict[str, str], secret: str,
                    algorithm: str) -> str:
    """The signature WooCommerce computes (``check_oauth_signature``)."""
    signed = {k: v for k, v in params.items() if k != "oauth_signature"}
    pairs = [f"{_rawurlencode(k)}={_rawurlencode(v)}" for k, v in sorted(signed.items())]
    query = "%26".join(_rawurlencode(pair) for pair in pairs)
    base = f"{method.upper()}&{_rawurlencode(base_uri)}&{query}"
    digest = hashlib.sha256 if algorithm == "sha256" else hashlib.sha1
    mac = hmac.new((secret + "&").encode(), base.encode(), digest).digest()
    return base64.b64encode(mac).decode()


class Authenticator:
    """Checks credentials of a request against the store's keys."""

    def __init__(self, keys: list[ApiKey], clock: Callable[[], float]) -> None:
        self._keys = {k.consumer_key: k for k in keys}
        self._clock = clock
        self._nonces: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def authenticate(self, request: Request) -> AuthOutcome:
        if request.scheme == "https":
            return self._basic(request)
        return self._oauth(request)

    def _basic(self, request: Request) -> AuthOutcome:
        header = request.headers.get("authorization", "")
        method = "basic"
        if header[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return AuthOutcome()
            ck, _, cs = decoded.partition(":")
        else:
            query = php_query(request.raw_query)
            if "consumer_key" not in query or "consumer_secret" not in query:
                return AuthOutcome()
            ck, cs, method = query["consumer_key"], query["consumer_secret"], "query"
        key = self._keys.get(ck)
        if key is None:
            return AuthOutcome()
        if not hmac.compare_digest(key.consumer_secret.encode(), cs.encode()):
            return AuthOutcome(error=AuthError(401, "woocommerce_rest_authentication_error",
                                               "Consumer secret is invalid."))
        return AuthOutcome(key=key, method=method)

    def _oauth(self, request: Request) -> AuthOutcome:
        params = php_query(request.raw_query)
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded") and request.body:
            params.update(php_query(request.body.decode("utf-8", "replace")))
        header = request.headers.get("authorization", "").strip()
        if header[:6].lower() == "oauth ":
            params.update(_parse_oauth_header(header))
        missing = [name for name in OAUTH_REQUIRED if not params.get(name)]
        if len(missing) == len(OAUTH_REQUIRED):
            return AuthOutcome()
        if missing:
            return AuthOutcome(error=AuthError(
                401, "woocommerce_rest_authentication_missing_parameter",
                f"Missing OAuth parameter {', '.join(missing)}"))
        key = self._keys.get(params["oauth_consumer_key"])
        if key is None:
            return AuthOutcome(error=AuthError(401, "woocommerce_rest_authentication_error",
                                               "Consumer key is invalid."))
        method_name = params["oauth_signature_method"]
        if method_name not in ("HMAC-SHA1", "HMAC-SHA256"):
            return AuthOutcome(error=AuthError(
                401, "woocommerce_rest_authentication_error",
                "Invalid signature - signature method is invalid."))
        base_uri = f"{request.scheme}://{request.host}{request.path}"
        expected = oauth_signature(request.method, base_uri, params, key.consumer_secret,
                                   method_name.removeprefix("HMAC-").lower())
        provided = unquote(params["oauth_signature"].replace(" ", "+"))
        if not hmac.compare_digest(expected.encode(), provided.encode()):
            return AuthOutcome(error=AuthError(
                401, "woocommerce_rest_authentication_error",
                "Invalid signature - provided signature does not match."))
        now = self._clock()
        try:
            timestamp = int(params["oauth_timestamp"])
        except ValueError:
            timestamp = 0
        if timestamp < now - TIMESTAMP_WINDOW_S:
            return AuthOutcome(error=AuthError(401, "woocommerce_rest_authentication_error",
                                               "Invalid timestamp."))
        nonce_key = (key.consumer_key, params["oauth_nonce"])
        with self._lock:
            if nonce_key in self._nonces:
                return AuthOutcome(error=AuthError(
                    401, "woocommerce_rest_authentication_error",
                    "Invalid nonce - nonce has already been used."))
            self._nonces[nonce_key] = timestamp
            if len(self._nonces) > 100_000:
                cutoff = now - TIMESTAMP_WINDOW_S
                self._nonces = {k: t for k, t in self._nonces.items() if t >= cutoff}
        return AuthOutcome(key=key, method="oauth1")


def permission_error(key: ApiKey, method: str) -> AuthError | None:
    """``check_permissions``: a read-only key cannot write, a write-only key cannot read."""
    if method in ("GET", "HEAD"):
        if key.permissions == "write":
            return AuthError(401, "woocommerce_rest_authentication_error",
                             "The API key provided does not have read permissions.")
    elif method in ("POST", "PUT", "PATCH", "DELETE") and key.permissions == "read":
        return AuthError(401, "woocommerce_rest_authentication_error",
                         "The API key provided does not have write permissions.")
    return None
