"""The three ways a WooCommerce store accepts REST keys, as httpx ``Auth`` objects.

Why three: WooCommerce accepts HTTP Basic and query-string keys only when WordPress thinks
the request came over HTTPS (``is_ssl()``), and only OAuth 1.0a one-legged over plain HTTP.
Some hosts (Apache with CGI/FastCGI) drop the ``Authorization`` header, which makes Basic
look like "no key at all"; query-string keys are the documented way around that.

OAuth 1.0a is signed with authlib's RFC 5849 client (base string, parameter normalisation,
query rendering); only the HMAC-SHA256 step WooCommerce uses is added here, since authlib
ships HMAC-SHA1. authlib's own httpx integration targets ``httpx2``, so the signer is wrapped
in an ``httpx.Auth`` here. The signature goes in the query string, as WooCommerce's own
clients send it; a JSON body is not part of the signature (WooCommerce signs the query only).

Every auth re-signs on each send, so a retried request carries a fresh nonce and timestamp,
and any ``oauth_*`` / ``consumer_*`` parameters already in the URL (a ``Link`` header echoes
them) are removed before signing: replaying them is refused as a used nonce / bad signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Generator
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

import httpx
from authlib.oauth1 import SIGNATURE_TYPE_QUERY, ClientAuth
from authlib.oauth1.rfc5849.signature import generate_signature_base_string
from authlib.oauth1.rfc5849.util import escape
from authlib.oauth1.rfc5849.wrapper import OAuth1Request

AuthMode = Literal["basic", "oauth1", "query"]
SIGNATURE_HMAC_SHA256 = "HMAC-SHA256"

#: Query parameters that carry credentials; never kept from a URL the store handed back.
CREDENTIAL_PARAMS = ("consumer_key", "consumer_secret")


_CREDENTIAL_VALUE = re.compile(
    r"(?<=[?&;])(consumer_key|consumer_secret|oauth_consumer_key|oauth_signature)=[^&#\s\"']*",
    re.IGNORECASE)


def redact_credentials(text: str) -> str:
    """``text`` with the values of credential query parameters replaced by ``***``."""
    return _CREDENTIAL_VALUE.sub(r"\1=***", text)


class _RedactCredentialsInLogs(logging.Filter):
    """httpx logs every request's full URL at INFO ("HTTP Request: GET <url>") and httpcore
    every response's headers at DEBUG, the ``Link`` header echoing OAuth 1.0a parameters
    included: with query or OAuth 1.0a keys they hold the consumer key, and the secret itself
    for query keys. enrich configures no logging, but an application using it as a library
    may. (A logger's filters do not apply to its children's records: one per logger.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_credentials(str(arg)) if isinstance(arg, httpx.URL | str)
                and _CREDENTIAL_VALUE.search(str(arg)) else arg for arg in record.args)
        if isinstance(record.msg, str) and _CREDENTIAL_VALUE.search(record.msg):
            record.msg = redact_credentials(record.msg)
        return True


_LOG_FILTER = _RedactCredentialsInLogs()
for _name in ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2",
              "httpcore.proxy", "httpcore.socks"):
    logging.getLogger(_name).addFilter(_LOG_FILTER)


def strip_credentials(url: str) -> str:
    """Remove ``oauth_*`` and ``consumer_key``/``consumer_secret`` from a URL's query."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not k.startswith("oauth_") and k not in CREDENTIAL_PARAMS]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def may_hold_credentials(query: str) -> bool:
    """Whether a URL's query may hold a parameter ``strip_credentials`` removes: False only
    when none can be there. Every name it removes, decoded, is in the decoded query."""
    text = unquote_plus(query)
    return "oauth_" in text or any(p in text for p in CREDENTIAL_PARAMS)


def _sign_hmac_sha256(client: ClientAuth, request: Any) -> str:
    """RFC 5849 section 3.4.2 with SHA-256 instead of SHA-1 (what WooCommerce verifies)."""
    base_string = generate_signature_base_string(request)
    key = f"{escape(client.client_secret or '')}&{escape(client.token_secret or '')}"
    digest = hmac.new(key.encode(), base_string.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class _WooSigner(ClientAuth):
    """authlib's client signer with HMAC-SHA256 added (without touching authlib's registry)."""

    SIGNATURE_METHODS: ClassVar[dict[str, Any]] = {
        **ClientAuth.SIGNATURE_METHODS, SIGNATURE_HMAC_SHA256: _sign_hmac_sha256}

    def get_oauth_signature(self, method: str, uri: str, headers: Any, body: Any) -> str:
        """authlib refuses to sign for http:// unless the host is loopback, but WooCommerce
        uses OAuth 1.0a exactly on plain-HTTP shops. The request is built from the https
        twin of the URL (which passes that check) and signed with the real one."""
        sign = self.SIGNATURE_METHODS.get(self.signature_method)
        if not sign:
            raise ValueError("Invalid signature method.")
        twin = "https://" + uri[len("http://"):] if uri.startswith("http://") else uri
        request = OAuth1Request(method, twin, body=body, headers=headers)
        request.uri = uri
        return str(sign(self, request))


def _replace_url(request: httpx.Request, url: str) -> None:
    request.url = httpx.URL(url)


class OAuth1QueryAuth(httpx.Auth):
    """OAuth 1.0a one-legged (no token), HMAC-SHA256, parameters in the query string."""

    def __init__(self, key: str, secret: str) -> None:
        self._signer = _WooSigner(key, secret, signature_method=SIGNATURE_HMAC_SHA256,
                                  signature_type=SIGNATURE_TYPE_QUERY)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        url = strip_credentials(str(request.url))
        signed_url, _, _ = self._signer.sign(request.method, url, {}, b"")
        _replace_url(request, signed_url)
        yield request

    def __repr__(self) -> str:
        return "OAuth1QueryAuth(<redacted>)"


class QueryKeyAuth(httpx.Auth):
    """``consumer_key`` / ``consumer_secret`` in the query string (HTTPS only)."""

    def __init__(self, key: str, secret: str) -> None:
        self._key = key
        self._secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        parts = urlsplit(strip_credentials(str(request.url)))
        query = parse_qsl(parts.query, keep_blank_values=True)
        query += [("consumer_key", self._key), ("consumer_secret", self._secret)]
        _replace_url(request, urlunsplit(parts._replace(query=urlencode(query))))
        yield request

    def __repr__(self) -> str:
        return "QueryKeyAuth(<redacted>)"


class BasicKeyAuth(httpx.BasicAuth):
    """HTTP Basic with the key as user name (HTTPS only); the URL is cleaned first.

    Only a URL that may hold credentials is rebuilt: parsing and encoding the query and
    parsing the URL again cost a page request more CPU than anything else enrich does with
    it (a fifth of a page fetch), and enrich's own URLs hold none."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if may_hold_credentials(request.url.query.decode("ascii", "replace")):
            _replace_url(request, strip_credentials(str(request.url)))
        yield from super().auth_flow(request)

    def __repr__(self) -> str:
        return "BasicKeyAuth(<redacted>)"


def make_auth(mode: AuthMode, key: str, secret: str) -> httpx.Auth:
    if mode == "basic":
        return BasicKeyAuth(key, secret)
    if mode == "oauth1":
        return OAuth1QueryAuth(key, secret)
    if mode == "query":
        return QueryKeyAuth(key, secret)
    raise ValueError(f"unknown auth mode {mode!r}")


def default_mode(url: str) -> AuthMode:
    """What ``auth = "auto"`` tries first: Basic over HTTPS, OAuth 1.0a over plain HTTP."""
    return "basic" if urlsplit(url).scheme == "https" else "oauth1"
