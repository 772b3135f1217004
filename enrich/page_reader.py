"""Store pages read and built into records, in the syncing process or in page readers.

``build_page`` turns one page of store products into snapshot records (with variations when
``[sync] variations`` asks, and each record's input checks). Sync calls it for the pages it
reads itself; for a large catalog it starts a ``PageReader``: one Python process per CPU,
reader *i* of *n* building every n-th page, deciding its records and handing each page over
as plain values, while the syncing process takes the pages in store order, decides again
what only the ledger knows, and writes. One more process, the fetcher
(``enrich.woo.fetcher``), asks the store for the readers' pages and hands each reader its
own as the store sent them, so a reader never waits on the store while there is a page to
build.

Why processes: against a fast store, sync's own CPU is what binds. Reading a page (TLS,
JSON), building snapshots and hashes and running the input checks cost about twice what
writing does, and in one process the page-reading thread and the writer take turns at the
GIL. Only the syncing process touches the ledger, so a sync killed at any point leaves it as
a one-process sync would; a reader or the fetcher that dies (killed, out of memory) costs
nothing but speed: sync reads the pages it was not handed itself.

Readers are started only where they can pay for their start-up (a fresh interpreter
importing what it needs, ~0.2 s of CPU): ``MIN_PAGES`` pages or more, no ``--limit``, two
CPUs or more (or ``[sync] readers``), and a client that can be opened again elsewhere
(``WooClient.reopen_args``).
"""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from enrich.errors import StoreError
from enrich.frames import receive, send, send_error
from enrich.guards.inputs import input_flag_dicts
from enrich.ledger.codec import dumps as ledger_json
from enrich.missing import Rules
from enrich.product_snapshot import Record, apply_evaluation, build_record, sales_signals
from enrich.woo.client import ProductPage, WooClient

#: Catalogs of fewer pages are built in the syncing process (a reader would not pay for its
#: start-up).
MIN_PAGES = 20
#: A pipe this large holds several pages (~80 kB as the store sends them, ~100 kB built).
_PIPE_BYTES = 1 << 20
#: The reader's first-generation collection threshold (Python's default is 700): see ``main``.
_GC_YOUNG = 10_000


# -- building a page ----------------------------------------------------------------------------

def build_page(client: WooClient, raws: list[Any], rules: Rules, units: dict[str, str],
               boilerplate: frozenset[str] | None = None) -> list[Record | str]:
    """A page's records in store order (each product, then its variations), each with the
    store's units and its input problems, and decided against ``boilerplate`` when given
    (without what enrich published: the syncing process decides those products again). A
    product that cannot be recorded at all (no usable id) is the sentence saying so, in its
    place."""
    out: list[Record | str] = []
    for raw in raws:
        try:
            record = build_record(raw, rules)
        except ValueError as exc:
            out.append(f"skipped {exc}")
            continue
        record.stock_status, record.total_sales = sales_signals(raw)
        out.append(_with_inputs(record, units, rules, boilerplate))
        if rules.variations and record.type == "variable" and record.state != "invalid":
            for variation in client.iter_variations(int(record.source_id)):
                try:
                    v = build_record(variation, rules, parent=raw)
                except ValueError as exc:
                    out.append(f"skipped a variation of product {record.source_id}: {exc}")
                    continue
                v.stock_status, v.total_sales = sales_signals(variation, parent=raw)
                out.append(_with_inputs(v, units, rules, boilerplate))
    return out


def _with_inputs(record: Record, units: dict[str, str], rules: Rules,
                 boilerplate: frozenset[str] | None) -> Record:
    """The snapshot with the store's units (outside its hash; on every snapshot, which
    ``ledger.inputs.set_store_units`` relies on) and its input problems."""
    record.snapshot.update(units)
    if record.state != "invalid":
        record.input_flags = input_flag_dicts(record.snapshot)
        if boilerplate is not None:
            apply_evaluation(record, rules, boilerplate)
    else:
        record.input_flags = []
    return record


@dataclass
class BuiltPage:
    """One page of the store, built: what sync counts and writes for it."""

    number: int
    total: int | None
    #: Products on the page that were asked for, and those left out for their status.
    size: int
    skipped: int
    #: The newest ``date_modified_gmt`` on the page (for the sync cursor).
    newest: str | None
    items: list[Record | str] = field(default_factory=list)
    #: Whether the records come decided (by a reader, against the boilerplate set of the
    #: last sync, without published values).
    decided: bool = False
    #: The store's clock when it answered (read on the first page only).
    server_time: datetime | None = None

    @classmethod
    def of(cls, page: ProductPage, raws: list[Any], items: list[Record | str]) -> BuiltPage:
        newest = None
        for raw in raws:
            modified = raw.get("date_modified_gmt") if isinstance(raw, dict) else None
            if isinstance(modified, str) and (newest is None or modified > newest):
                newest = modified
        return cls(page.number, page.total, len(page), page.skipped, newest, items,
                   server_time=page.server_time)


# -- records over a pipe ------------------------------------------------------------------------

def _pack(item: Record | str) -> Any:
    """A record as plain values (the snapshot as the ledger stores it: it is encoded here,
    once, and decoded in the syncing process only if it is evaluated there)."""
    if isinstance(item, str):
        return item
    return (item.source_id, item.parent_id, item.type, item.sku, item.name, item.status,
            ledger_json(item.snapshot), ledger_json(item.snapshot.get("fingerprints")),
            item.content_hash, item.date_modified_gmt, item.state, item.missing, item.why,
            item.reason, item.input_flags, item.stock_status, item.total_sales)


def _unpack(item: Any) -> Record | str:
    if isinstance(item, str):
        return item
    (source_id, parent_id, type_, sku, name, status, snapshot_json, fingerprints_json,
     content_hash, modified, state, missing, why, reason, flags, stock, sales) = item
    return Record(source_id, parent_id, type_, sku, name, status, {}, content_hash, modified,
                  state, missing, why, reason, None, flags, stock, sales, snapshot_json,
                  fingerprints_json)


# -- the reader process -------------------------------------------------------------------------

def cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class PageReader:
    """The syncing process's side of the page readers: built pages, in store order.

    Each of ``len(procs)`` readers builds every n-th page (reader i the pages
    ``first_page + i``, ``+ n``, ...), fetched for it by the fetcher, so the readers share
    the CPUs the syncing process leaves, and their pages are taken in turn. Iterating
    raises what a reader or the fetcher raised (a ``StoreAuthError`` stays one). A reader
    that stops without saying why (it or the fetcher was killed) ends the iteration early;
    ``next_page`` then says where the syncing process reads on itself.
    """

    def __init__(self, procs: list[subprocess.Popen[bytes]], first_page: int,
                 fetcher: subprocess.Popen[bytes] | None = None) -> None:
        self._procs = procs
        self._fetcher = fetcher
        self.next_page = first_page
        self.finished = False

    @classmethod
    def start(cls, client: WooClient, rules: Rules, units: dict[str, str], *,
              boilerplate: frozenset[str], modified_after: str | None, fields: list[str],
              first_page: int, readers: int = 1) -> PageReader | None:
        """Readers for the pages from ``first_page`` on, and their fetcher; None when they
        cannot be started (the client cannot be opened elsewhere, no process can be
        spawned)."""
        args = client.reopen_args()
        if args is None:
            return None
        pipes: list[tuple[int, int]] = []
        procs: list[subprocess.Popen[bytes]] = []
        fetcher = None
        try:
            for _ in range(readers):
                pipes.append(os.pipe())
                _widen(pipes[-1][1])
            for read_end, _write_end in pipes:
                proc = _spawn(_READER_MAIN, {"client": args, "rules": rules, "units": units,
                                             "boilerplate": boilerplate, "source": read_end},
                              read_end)
                if proc is None:
                    break
                procs.append(proc)
            if len(procs) == readers:
                fetcher = _spawn(_FETCHER_MAIN, {
                    "client": args, "modified_after": modified_after,
                    "statuses": rules.statuses, "fields": fields, "first_page": first_page,
                    "outs": [w for _r, w in pipes]}, *(w for _r, w in pipes))
        except OSError:
            fetcher = None
        finally:
            # Each end now lives in the one process that uses it: a pipe ends for its
            # reader when the fetcher is gone, and breaks for the fetcher when its reader is.
            for pipe in pipes:
                for end in pipe:
                    os.close(end)
        if fetcher is None:
            for proc in procs:
                _stop(proc)
            return None
        return cls(procs, first_page, fetcher)

    def __iter__(self) -> Iterator[BuiltPage]:
        turn = 0
        while True:
            stdout = self._procs[turn % len(self._procs)].stdout
            assert stdout is not None
            message = receive(stdout)
            if message is None:
                return  # gone without a word: the caller reads on from next_page
            kind, value = message
            if kind == "end":
                self.finished = True
                return
            if kind == "error":
                self.finished = True
                raise value
            if kind == "error_text":
                self.finished = True
                raise StoreError(f"reading the store's pages: {value}")
            page = BuiltPage(*value[:5], [_unpack(i) for i in value[5]], decided=True)
            self.next_page = page.number + 1
            turn += 1
            yield page

    def close(self) -> None:
        for proc in self._procs:
            _stop(proc)
        if self._fetcher is not None:
            _stop(self._fetcher)

    def __enter__(self) -> PageReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: The processes' programs. httpx imports its command-line client (click, rich, pygments)
#: whenever they are installed, as they are for enrich's own CLI: 40 of a reader's ~200 ms
#: of imports, for nothing it runs. Without the module, httpx defines a stub ``main``, as
#: it does when its CLI extras are not installed.
_READER_MAIN = ("import sys; sys.modules.setdefault('httpx._main', None); "
                "from enrich.page_reader import main; main()")
_FETCHER_MAIN = ("import sys; sys.modules.setdefault('httpx._main', None); "
                 "from enrich.woo.fetcher import main; main()")


def _widen(fd: int) -> None:
    """Room for a few pages in a pipe, so the side writing it works ahead instead of waiting
    for each page to be taken (Linux; elsewhere the default stays)."""
    with contextlib.suppress(OSError, AttributeError, ValueError, ImportError):
        import fcntl
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)


def _spawn(program: str, job: dict[str, Any], *fds: int) -> subprocess.Popen[bytes] | None:
    """A process running ``program``, given its job over its stdin (the job holds the
    store's secret) and the pipe ends ``fds``."""
    # It imports this very enrich, wherever the syncing process imported it from.
    home = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (home, os.environ.get("PYTHONPATH")) if p)}
    try:
        proc = subprocess.Popen([sys.executable, "-c", program], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, env=env, pass_fds=fds)
    except OSError:
        return None
    assert proc.stdin is not None and proc.stdout is not None
    _widen(proc.stdout.fileno())
    try:
        send(proc.stdin, job)
        proc.stdin.close()
    except OSError:
        _stop(proc)
        return None
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(OSError):
        if proc.stdout is not None:
            proc.stdout.close()
    proc.wait()


def main() -> None:
    """The reader process: read the job from stdin, then build each page the fetcher hands
    over and answer page by page on stdout."""
    out = sys.stdout.buffer
    job = receive(sys.stdin.buffer)
    if job is None:
        return
    # A page decodes into ~1,500 objects that live until it is handed over, none of them in a
    # cycle; at the default threshold the collector ran twice per page over live objects and
    # every few pages over the whole heap (the imported modules included): 7 % of a
    # reader's CPU samples were collection (perf). Freezing what start-up made and
    # collecting less often cut a reader's instructions by 2.5 % (callgrind, 5,000
    # products over HTTPS). Cycles are still collected, and the process ends with the sync.
    gc.freeze()
    gc.set_threshold(_GC_YOUNG, *gc.get_threshold()[1:])
    try:
        rules: Rules = job["rules"]
        # The client only asks for variations (``build_page``); the fetcher asks for pages.
        with WooClient(**job["client"]) as client, \
                os.fdopen(job["source"], "rb") as source:
            while (message := receive(source)) is not None:
                kind, value = message
                if kind != "body":  # how the fetcher's pages for this reader ended
                    send(out, message)
                    return
                page = client.product_page(value, rules.statuses)
                raws = list(page)
                if not raws and not page.skipped:
                    break  # past the last page (the catalog shrank): the end for every reader
                built = BuiltPage.of(page, raws, build_page(client, raws, rules, job["units"],
                                                            job["boilerplate"]))
                send(out, ("page", (built.number, built.total, built.size, built.skipped,
                                    built.newest, [_pack(i) for i in built.items])))
            else:
                return  # the fetcher is gone without a word: so is this reader
        send(out, ("end", None))
    except BrokenPipeError:
        return  # the syncing process is gone: nobody to tell
    except BaseException as exc:  # handed to the syncing process, raised there
        send_error(out, exc)


__all__ = ["MIN_PAGES", "BuiltPage", "PageReader", "build_page", "cpus"]
