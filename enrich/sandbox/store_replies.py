"""What the sandbox store answers with besides products: error bodies and common headers.

Shared by the read side (``store.py``) and the write side (``store_writes.py``). The bodies
and headers are the ones recorded from the real store.
"""

from __future__ import annotations

from typing import Any

NO_CACHE = [("Expires", "Wed, 11 Jan 1984 05:00:00 GMT"),
            ("Cache-Control", "no-cache, must-revalidate, max-age=0, no-store, private")]
COMMON_HEADERS = [
    ("X-Robots-Tag", "noindex"),
    ("X-Content-Type-Options", "nosniff"),
    ("Access-Control-Expose-Headers", "X-WP-Total, X-WP-TotalPages, Link"),
    ("Access-Control-Allow-Headers",
     "Authorization, X-WP-Nonce, Content-Disposition, Content-MD5, Content-Type"),
]
FATAL_BODY = {
    "code": "internal_server_error",
    "message": "<p>There has been a critical error on this website.</p><p><a href=\"https://"
               "wordpress.org/documentation/article/faq-troubleshooting/\">Learn more about "
               "troubleshooting WordPress.</a></p>",
    "data": {"status": 500},
    "additional_errors": [],
}
VARIATION_VIA_PRODUCTS = ("To manipulate product variations you should use the "
                          "/products/&lt;product_id&gt;/variations/&lt;id&gt; endpoint.")


class Reply(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def error_reply(status: int, code: str, message: str, **data: Any) -> Reply:
    return Reply(status, {"code": code, "message": message, "data": {"status": status, **data}})


def invalid_id(status: int) -> Reply:
    return error_reply(status, "woocommerce_rest_product_invalid_id", "Invalid ID.")
