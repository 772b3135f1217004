"""A small threaded HTTP/1.1 server on loopback, for the sandboxes and ``review serve``.

It lives outside ``enrich.sandbox`` so production code (the review page) never imports the
sandbox. The standard library's server is enough here: both serve one machine on loopback,
the sandboxes need keep-alive (the SDKs pool connections) and low-level control to inject
faults a framework would hide (dropping a connection without a response, stalling past a
timeout). A server is a plain function ``handle(Request) -> Response``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass
class Request:
    method: str
    path: str
    raw_query: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    scheme: str = "http"
    host: str = "127.0.0.1"

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.raw_query, keep_blank_values=True)

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}{self.path}" + (
            f"?{self.raw_query}" if self.raw_query else ""
        )

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, obj: Any, status: int = 200,
             headers: list[tuple[str, str]] | None = None) -> Response:
        body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(status, body, [("Content-Type", "application/json; charset=UTF-8"),
                                  *(headers or [])])


class DropConnection(Exception):
    """Raised by a handler to close the socket without answering (a fault to inject)."""


Handler = Callable[[Request], Response]


def _make_request_handler(handle: Handler, scheme: str) -> type[BaseHTTPRequestHandler]:
    class _RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "enrich"
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle plus delayed
        # ACK stalls every keep-alive response by ~40 ms.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the sandboxes are used by tests and benchmarks, and the review
            # page's URLs carry its session token

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.send_error(413)
                return
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = Request(
                method=self.command,
                path=parts.path,
                raw_query=parts.query,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                scheme=scheme,
                host=self.headers.get("Host", "127.0.0.1"),
            )
            try:
                response = handle(request)
            except DropConnection:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.send_response(response.status)
            names = set()
            for name, value in response.headers:
                self.send_header(name, value)
                names.add(name.lower())
            if "content-length" not in names:
                self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    return _RequestHandler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up before its answer is sent (a run stopping, a timeout) is
        normal here; it is not worth a traceback in the terminal serving the sandbox."""
        if isinstance(sys.exc_info()[1], ConnectionError | ssl.SSLError | TimeoutError):
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    """Serve ``handle`` on loopback only (never a network interface); usable as a context
    manager for tests."""

    def __init__(self, handle: Handler, *, host: str = "127.0.0.1", port: int = 0,
                 tls: ssl.SSLContext | None = None) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"enrich's servers listen on loopback only, not {host!r}")
        self.scheme = "https" if tls else "http"
        self._server = _Server((host, port), _make_request_handler(handle, self.scheme))
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True,
                                        name=f"http:{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
