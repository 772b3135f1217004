"""Sync's page fetcher: one process asking the store for pages that other processes build.

Sync's page readers (``enrich.page_reader``) build pages; this process fetches them. It
runs one thread per reader, each with its own connection asking for that reader's pages
(every n-th, by number) and writing them, as the store sent them, into that reader's pipe.

Why apart: a reader that asked the store itself sat idle while the store answered, and
with every reader waiting at once a CPU had nothing to do (10-13 % of the sync's CPU time
against the in-memory store). A thread in the reader that asked ahead cost the reader 15 %
of its CPU in turns at the GIL. Here the threads only wait on sockets and pipes, so the
store always has the next pages asked for, and a reader finds its next page waiting in its
pipe while it builds the last.

Each pipe carries ``("body", PageBody)`` messages, then ``("end", None)`` or the error
that stopped that reader's pages (``enrich.frames``). When a reader is gone its thread
stops; when this process is gone the readers see their pipes end and stop too.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any

from enrich import frames
from enrich.woo.client import WooClient


def _fetch(job: dict[str, Any], index: int, fd: int) -> None:
    """One reader's pages into its pipe, then how they ended."""
    step = len(job["outs"])
    out = os.fdopen(fd, "wb")
    try:
        with WooClient(**job["client"]) as client:
            for body in client.iter_page_bodies(
                    modified_after=job["modified_after"], statuses=job["statuses"],
                    fields=job["fields"], first_page=job["first_page"] + index, step=step):
                frames.send(out, ("body", body))
        frames.send(out, ("end", None))
    except BrokenPipeError:
        return  # that reader is gone: nobody to fetch for
    except BaseException as exc:  # handed to the reader, which hands it to sync
        frames.send_error(out, exc)
    finally:
        # A write that broke leaves its bytes in the buffer, and closing tries them again:
        # the reader is gone, so that is no error (not a traceback on the user's terminal).
        with contextlib.suppress(BrokenPipeError):
            out.close()


def main() -> None:
    """The fetcher process: the job from stdin (it holds the store's secret), then one
    thread per reader's pipe."""
    job = frames.receive(sys.stdin.buffer)
    if job is None:
        return
    threads = [threading.Thread(target=_fetch, args=(job, i, fd), name=f"fetch-{i}")
               for i, fd in enumerate(job["outs"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


__all__ = ["main"]
