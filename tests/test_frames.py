"""Messages between sync and its page processes (``enrich.frames``), over a real pipe."""

from __future__ import annotations

import contextlib
import os

from enrich.errors import StoreAuthError
from enrich.frames import receive, send, send_error


class _Unpicklable(Exception):
    def __init__(self) -> None:
        super().__init__("the store closed the stream")
        self.callback = lambda: None  # a lambda cannot be pickled


def test_an_error_crosses_as_itself_or_as_its_words_and_a_gone_reader_is_no_error() -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as inbox, os.fdopen(write_fd, "wb") as out:
        send(out, ("page", [1, 2]))
        send_error(out, StoreAuthError("GET /products: HTTP 401", "Check the key."))
        send_error(out, _Unpicklable())
        out.close()
        assert receive(inbox) == ("page", [1, 2])
        kind, exc = receive(inbox)
        assert kind == "error" and isinstance(exc, StoreAuthError) and "401" in str(exc)
        assert receive(inbox) == ("error_text", "_Unpicklable: the store closed the stream")
        assert receive(inbox) is None  # the end of the stream

    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    out = os.fdopen(write_fd, "wb")
    send_error(out, StoreAuthError("x"))  # nobody to tell: no exception
    with contextlib.suppress(BrokenPipeError):
        out.close()
