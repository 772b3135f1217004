"""``review serve``: the review page on 127.0.0.1, writing each decision into the ledger.

Why the checks: any web page the reviewer has open could try to POST to a port on
localhost. So the server listens on loopback only; every request must carry a Host that
names this server (which stops DNS rebinding); a POST must come from this server's own
Origin when the browser sends one; and every POST must carry the per-session random token
in the ``X-Enrich-Token`` header, which only the page itself knows (a cross-site page can
neither read the page nor set that header without a CORS preflight this server never
grants). The page itself is only served to a URL holding the token, so another user on
the same machine who guesses the port gets nothing.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from pathlib import Path
from typing import Any

from enrich.config import GuardsConfig
from enrich.errors import EnrichError
from enrich.httpserver import LoopbackServer, Request, Response
from enrich.ledger import Ledger
from enrich.review.decisions import (
    SERVED_DECISIONS,
    GuardChecker,
    apply_decision,
    parse_decision,
)
from enrich.review.export import ledger_counts, new_export_id, render_page, select_items

TOKEN_HEADER = "x-enrich-token"
MAX_DECISION_BYTES = 1_000_000
#: Decisions one POST to /api/decisions may carry (the page sends a bulk action in chunks).
MAX_BATCH = 500
MAX_BATCH_BYTES = 20_000_000

_SECURITY_HEADERS = [
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
]


class ReviewServer:
    """The review page and its JSON API; ``with ReviewServer(path) as s: s.url``."""

    def __init__(self, ledger_path: Path, *, port: int = 0,
                 statuses: tuple[str, ...] = ("drafted", "approved", "rejected"),
                 flagged_only: bool = False, sample: int | None = None, seed: int = 0,
                 token: str | None = None, lease_s: float = 300.0,
                 guards: GuardsConfig | None = None, kind: str | None = None) -> None:
        self.ledger = Ledger(ledger_path, lease_s=lease_s)
        self.token = token or secrets.token_urlsafe(32)
        self.statuses = statuses
        self.kind = kind
        self.flagged_only = flagged_only
        self.sample = sample
        self.seed = seed
        self.export_id = new_export_id()
        self.guards = guards
        self.checker = GuardChecker(self.ledger, guards)
        self._lock = threading.Lock()  # one sqlite connection, many handler threads
        self._sample_ids: list[int] | None = None
        try:
            self.server = LoopbackServer(self.handle, port=port)
        except OSError:
            self.ledger.close()
            raise

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        """The address to open: it carries the token, so keep it to yourself."""
        return f"{self.server.url}/?token={self.token}"

    def start(self) -> ReviewServer:
        self.server.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self) -> None:
        self.server.stop()
        self.checker.close()
        self.ledger.close()

    def __enter__(self) -> ReviewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- checks -----------------------------------------------------------------------------

    def _own_hosts(self) -> set[str]:
        return {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}

    def _refusal(self, request: Request) -> Response | None:
        """Why this request must not be served, or None if it may be."""
        if request.host.lower() not in self._own_hosts():
            return _error(421, "wrong Host header: the review server answers only to "
                               f"127.0.0.1:{self.port}")
        origin = request.headers.get("origin")
        if origin is not None and origin.lower() not in {f"http://{h}"
                                                         for h in self._own_hosts()}:
            return _error(403, "cross-origin request refused")
        site = request.headers.get("sec-fetch-site")
        if request.method != "GET" and site not in (None, "same-origin"):
            return _error(403, "cross-site request refused")
        return None

    def _token_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(),
                                                             self.token.encode())

    # -- routes -----------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        if request.path == "/" and request.method in ("GET", "HEAD"):
            if not self._token_ok(request.arg("token")):
                return Response(403, b"Open the address printed by `enrich review serve` "
                                     b"(it carries the session token).\n",
                                [("Content-Type", "text/plain; charset=utf-8"),
                                 *_SECURITY_HEADERS])
            return self._page()
        if request.path in ("/api/decision", "/api/decisions"):
            if request.method != "POST":
                return _error(405, "use POST", [("Allow", "POST")])
            if not self._token_ok(request.headers.get(TOKEN_HEADER)):
                return _error(403, "missing or wrong session token")
            if "application/json" not in request.headers.get("content-type", ""):
                return _error(415, "send the decision as application/json")
            if request.path == "/api/decisions":
                return self._decisions(request)
            return self._decision(request)
        return _error(404, f"nothing at {request.path}")

    def _page(self) -> Response:
        with self._lock:
            items, matching = select_items(self.ledger, statuses=self.statuses,
                                           flagged_only=self.flagged_only, kind=self.kind)
            if self.sample is not None:
                # The sample is drawn once per session so a reload shows the same drafts.
                if self._sample_ids is None:
                    from enrich.review.sample import stratified_sample
                    self._sample_ids = [i.job_id for i in
                                        stratified_sample(items, self.sample, seed=self.seed)]
                keep = set(self._sample_ids)
                items = [i for i in items if i.job_id in keep]
            html = render_page(
                items, mode="served", export_id=self.export_id,
                ledger_path=str(self.ledger.path.resolve()), token=self.token,
                selection={"statuses": list(self.statuses), "flagged_only": self.flagged_only,
                           "sample": self.sample, "matching": matching, "kind": self.kind},
                ledger_counts=ledger_counts(self.ledger, self.kind), guards=self.guards)
        return Response(200, html.encode("utf-8"),
                        [("Content-Type", "text/html; charset=utf-8"), *_SECURITY_HEADERS])

    def _decision(self, request: Request) -> Response:
        if len(request.body) > MAX_DECISION_BYTES:
            return _error(413, "decision too large")
        try:
            raw: Any = json.loads(request.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"not valid JSON: {exc}")
        try:
            decision = parse_decision(raw, "decision", allowed=SERVED_DECISIONS)
            with self._lock:
                outcome = apply_decision(self.ledger, decision, check=self.checker,
                                         require_ack=True)
        except EnrichError as exc:
            return _error(400, exc.message)
        status = 200 if outcome.applied else 409
        return Response.json(outcome.as_dict(), status, _SECURITY_HEADERS)

    def _decisions(self, request: Request) -> Response:
        """A bulk action: ``{"decisions": [...]}``, each applied (or refused) on its own.

        The whole list is validated before anything is applied, as ``review import`` does.
        """
        if len(request.body) > MAX_BATCH_BYTES:
            return _error(413, "too many decisions in one request")
        try:
            raw: Any = json.loads(request.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"not valid JSON: {exc}")
        items = raw.get("decisions") if isinstance(raw, dict) else None
        if not isinstance(items, list) or not 0 < len(items) <= MAX_BATCH:
            return _error(400, f"send {{\"decisions\": [...]}} with 1 to {MAX_BATCH} decisions")
        try:
            decisions = [parse_decision(item, f"decisions[{i}]", allowed=SERVED_DECISIONS,
                                        index=i) for i, item in enumerate(items)]
        except EnrichError as exc:
            return _error(400, exc.message)
        with self._lock:
            outcomes = [apply_decision(self.ledger, d, check=self.checker, require_ack=True)
                        for d in decisions]
        return Response.json({"results": [o.as_dict() for o in outcomes]}, 200,
                             _SECURITY_HEADERS)


def _error(status: int, message: str,
           headers: list[tuple[str, str]] | None = None) -> Response:
    return Response.json({"applied": False, "error": message}, status,
                         [*_SECURITY_HEADERS, *(headers or [])])
