"""Messages between sync and its page processes: pickled values, each behind its length.

Both ends are enrich processes started by the syncing process for this one sync
(``enrich.page_reader``, ``enrich.woo.fetcher``), so pickle carries what they exchange
(records, store errors) as it is.
"""

from __future__ import annotations

import contextlib
import pickle
import struct
from typing import IO, Any

_FRAME = struct.Struct("!I")


def send(out: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_FRAME.pack(len(data)) + data)
    out.flush()


def send_error(out: IO[bytes], exc: BaseException) -> None:
    """Hand ``exc`` to the other side, to be raised there: as it is, or as its words when it
    cannot be pickled. Nothing when the other side is gone."""
    try:
        send(out, ("error", exc))
    except BrokenPipeError:
        return
    except Exception:
        with contextlib.suppress(BrokenPipeError):
            send(out, ("error_text", f"{type(exc).__name__}: {exc}"))


def receive(stream: IO[bytes]) -> Any:
    """The next message, or None at the end of the stream (the other side is gone)."""
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None
    (size,) = _FRAME.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


__all__ = ["receive", "send", "send_error"]
