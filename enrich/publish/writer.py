"""Sending planned items to the store's batch endpoints and settling every publishes row.

Why it looks like this (the crash and retry reasoning, also in docs/publish.md):

* Write-ahead: the rows for a batch are committed as ``planned`` (with the previous values)
  before the request leaves. A crash can therefore only ever leave ``planned`` rows behind,
  never a store write the ledger does not know about.
* Settling a planned row needs proof from the store: the batch response item, or, when there
  is no usable response (crash, timeout, 5xx after the connector's own retries), a fresh
  ``GET`` of the product. Against the row, the product is then in exactly one of three
  states: *applied* (it holds what was written and ``date_modified_gmt`` moved: settled as
  written, never sent again), *untouched* (it holds what was there before and the date did
  not move: every write bumps the date, so nothing reached it and sending is safe), or
  *changed* (anything else: somebody else wrote it; a conflict, never overwritten).
* A batch that failed outright is re-sent only for its *untouched* items, after that fresh
  read, so a retry can never write a product twice or write over an edit that slipped in.
  The connector's own retries (429, 503) happen before this and only for responses that say
  the request was not processed.
* The store is the baseline. WordPress rewrites ``description``/``short_description`` on
  the way in (one level of backslashes removed, kses), so items are sent through
  ``fields.wire`` (backslashes doubled: the store then keeps exactly the item), and a
  confirmed row records what the store holds afterwards (``stored``, and per field in
  ``published_values``): rollback and sync compare with that, never with what was sent.
* Variations go through their parent's ``/products/<parent>/variations/batch`` and are read
  back through the parent's variation list (``/products?include=`` never returns them), so
  one batch request only ever carries items of one endpoint: products, or the variations
  of one parent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from enrich.errors import InputError, StoreAuthError, StoreError, StoreUnavailable
from enrich.ledger import JobStatus, Ledger
from enrich.ledger import publishes as P
from enrich.missing import copy_fingerprint
from enrich.publish import fields as F


class ProductStore(Protocol):
    """The connector calls publish needs (``enrich.woo.WooClient`` provides them)."""

    def get_products(self, ids: Sequence[int], context: str = "edit") -> list[dict[str, Any]]:
        ...

    def batch_update(self, items: list[dict[str, Any]]) -> list[Any]:
        ...

    def get_variations(self, parent_id: int, ids: Sequence[int] | None = None,
                       context: str = "edit") -> list[dict[str, Any]]:
        ...

    def batch_update_variations(self, parent_id: int, items: list[dict[str, Any]]
                                ) -> list[Any]:
        ...


#: (source id, parent id or None): what the store is asked for, and through which endpoint.
Target = tuple[str, str | None]


@dataclass
class Entry:
    """One planned item on its way to the store."""

    row_id: int
    job_id: int
    draft_id: int | None
    source_id: str
    item: dict[str, Any]  # without id
    previous: dict[str, Any]  # {"item": ..., "date_modified_gmt": ...} as recorded
    batch_no: int

    @property
    def parent_id(self) -> str | None:
        """The variable product a variation is written through; None for a product."""
        return self.previous.get("parent_id")

    @property
    def target(self) -> Target:
        return (self.source_id, self.parent_id)


@dataclass
class Settled:
    """How the rows of one command ended, by outcome, with the reasons."""

    written: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    conflicts: dict[str, str] = field(default_factory=dict)
    requeued: list[str] = field(default_factory=list)  # untouched after a crash: sent again
    batch_requests: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"written": len(self.written), "rolled_back": len(self.rolled_back),
                "errors": self.errors, "conflicts": self.conflicts,
                "requeued": len(self.requeued), "batch_requests": self.batch_requests}


def result_parts(result: Any) -> tuple[Any, dict[str, Any] | None, str | None, bool]:
    """(id, product, error message, verified) of one ``BatchItemResult``.

    ``verified`` marks a result the connector established by reading the product back after
    an ambiguous failure; a verified failure is not a refusal by the store but "it does not
    hold what was sent", which publish settles with its own read (applied, untouched or
    changed) before anything is sent again.
    """
    product = getattr(result, "product", None)
    if getattr(result, "ok", False) and isinstance(product, Mapping):
        return getattr(result, "id", None), dict(product), None, False
    code = getattr(result, "error_code", None)
    message = getattr(result, "error", None) or "no detail"
    error = f"{code}: {message}" if code else str(message)
    return getattr(result, "id", None), None, error, bool(getattr(result, "verified", False))


def remember_published(c: Any, source_id: str, row_id: int | None,
                       stored: Mapping[str, Any]) -> None:
    """Record the published fields as the store holds them, so sync counts them as done
    and the boilerplate count leaves them out (``missing``)."""
    values = {name: (value, copy_fingerprint(value))
              for name, value in F.published_fields(stored).items() if isinstance(value, str)}
    if values:
        P.record_published(c, source_id, row_id, values)


def brief(message: str, limit: int = 240) -> str:
    """One line, bounded: a store's error page (HTML) must not flood the ledger or a report."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class BatchWriter:
    """Sends entries, settles their rows; ``mode`` is ``publish`` or ``rollback``."""

    def __init__(self, ledger: Ledger, store: ProductStore, *, run_id: int, mode: str,
                 settled: Settled, max_rounds: int = 3, pause_s: float = 1.0,
                 settle_s: float = 30.0,
                 on_batch: Callable[[int, int], None] | None = None) -> None:
        self.ledger = ledger
        self.store = store
        self.run_id = run_id
        self.mode = mode
        self.settled = settled
        self.max_rounds = max_rounds
        self.pause_s = pause_s
        self.settle_s = settle_s
        self.on_batch = on_batch

    # -- outcomes ------------------------------------------------------------------------

    def _confirm(self, c: Any, entry: Entry, product: Mapping[str, Any]) -> None:
        """Settle an applied write from the store's product right after it (the batch
        response item or the read-back): what it holds is the baseline from now on."""
        store_date = product.get("date_modified_gmt")
        stored = F.values_in(product, entry.item)
        if self.mode == "publish":
            P.settle_row(c, entry.row_id, "written", store_date=store_date, stored=stored)
            if P.move_if(self.ledger, c, entry.job_id, JobStatus.APPROVED,
                         JobStatus.PUBLISHED, last_error=None, run_id=self.run_id):
                remember_published(c, entry.source_id, entry.row_id, stored)
            self.settled.written.append(entry.source_id)
        else:
            P.settle_row(c, entry.row_id, "rolled_back", store_date=store_date, stored=stored)
            P.move_if(self.ledger, c, entry.job_id, JobStatus.PUBLISHED,
                      JobStatus.ROLLED_BACK, last_error=None)
            P.forget_published(c, entry.source_id)
            self.settled.rolled_back.append(entry.source_id)

    def _error(self, c: Any, entry: Entry, message: str) -> None:
        P.settle_row(c, entry.row_id, "error", error=message)
        if self.mode == "publish":
            P.note_error(c, entry.job_id, f"publish: {message}")
        self.settled.errors[entry.source_id] = message

    def _conflict(self, c: Any, entry: Entry, message: str) -> None:
        P.settle_row(c, entry.row_id, "conflict", error=message)
        if self.mode == "publish":
            P.move_if(self.ledger, c, entry.job_id, JobStatus.APPROVED, JobStatus.CONFLICT,
                      last_error=message)
        self.settled.conflicts[entry.source_id] = message

    # -- reading the store back ----------------------------------------------------------

    def classify(self, entry: Entry, product: Mapping[str, Any] | None) -> str:
        """applied | untouched | changed | missing, from the store's product now."""
        if product is None:
            return "missing"
        now = F.values_in(product, entry.item)
        before_date = entry.previous.get("date_modified_gmt")
        moved = product.get("date_modified_gmt") != before_date
        variation = entry.parent_id is not None
        if F.same(now, entry.item, variation=variation) and moved:
            return "applied"
        if F.same(now, entry.previous.get("item") or {}, variation=variation) and not moved:
            return "untouched"
        return "changed"

    def read(self, targets: Sequence[Target]) -> dict[str, dict[str, Any]]:
        """The store's products and variations now (edit context), by source id.

        Products in pages of 100 ids; variations one request per parent (its list).
        """
        found: dict[str, dict[str, Any]] = {}
        ids = [int(s) for s, parent in targets if parent is None]
        for start in range(0, len(ids), 100):
            for product in self.store.get_products(ids[start:start + 100], context="edit"):
                found[str(product.get("id"))] = product
        for parent, members in group_by_parent(targets).items():
            for variation in self.store.get_variations(int(parent),
                                                       [int(s) for s in members],
                                                       context="edit"):
                found[str(variation.get("id"))] = variation
        return found

    def reconcile(self, entries: Sequence[Entry], why: str) -> list[Entry]:
        """Settle entries from a fresh read; returns the untouched ones (safe to send)."""
        current = self.read([e.target for e in entries])
        untouched: list[Entry] = []
        with self.ledger.transaction() as c:
            for entry in entries:
                product = current.get(entry.source_id)
                state = self.classify(entry, product)
                if state == "applied":
                    self._confirm(c, entry, product or {})
                elif state == "untouched":
                    untouched.append(entry)
                elif state == "missing":
                    self._conflict(c, entry, f"{why}; the product no longer exists in the "
                                             "store")
                else:
                    self._conflict(c, entry, f"{why}; the product changed in the store "
                                             "meanwhile, so it was not written again")
        return untouched

    def replan(self, entries: Sequence[Entry], why: str) -> list[Entry]:
        """Close the rows of untouched entries and open fresh planned rows to send again."""
        fresh: list[Entry] = []
        with self.ledger.transaction() as c:
            for entry in entries:
                P.settle_row(c, entry.row_id, "error",
                             error=f"{why}; not applied, sent again as row of a new attempt")
                row_id = P.insert_row(
                    c, run_id=self.run_id, job_id=entry.job_id, draft_id=entry.draft_id,
                    source_id=entry.source_id, batch_no=entry.batch_no, written=entry.item,
                    previous=entry.previous, outcome="planned")
                fresh.append(Entry(row_id, entry.job_id, entry.draft_id, entry.source_id,
                                   entry.item, entry.previous, entry.batch_no))
        return fresh

    # -- sending -------------------------------------------------------------------------

    def send(self, entries: list[Entry]) -> None:
        """Send one batch (<= 100 entries of one endpoint, rows already planned) and settle
        every row."""
        parents = {e.parent_id for e in entries}
        if len(parents) > 1:
            raise ValueError(f"one batch mixes endpoints (parents {sorted(map(str, parents))})")
        parent = parents.pop() if parents else None
        rounds = 0
        while entries:
            rounds += 1
            items = [{"id": int(e.source_id), **F.wire(e.item)} for e in entries]
            self.settled.batch_requests += 1
            if self.on_batch is not None:
                self.on_batch(entries[0].batch_no, len(items))
            retryable = True
            sent_at = time.monotonic()
            try:
                results = (self.store.batch_update(items) if parent is None
                           else self.store.batch_update_variations(int(parent), items))
            except StoreAuthError:
                raise  # nothing was applied; the planned rows are settled by the next run
            except InputError as exc:  # refused client-side: nothing left this process
                with self.ledger.transaction() as c:
                    for entry in entries:
                        self._error(c, entry, f"not sent: {exc.message}")
                return
            except StoreError as exc:
                retryable = isinstance(exc, StoreUnavailable) or (exc.status or 0) >= 500 \
                    or exc.status == 429
                why = f"batch request failed ({brief(exc.message)})"
                unsure = entries
            else:
                unsure = self._record(entries, results)
                why = "the batch request failed and the store did not show the write"
            if not unsure:
                return
            # A request the store may still be running (a timeout, a dropped connection)
            # gets the store timeout to land before the products are read back; only then
            # does "untouched" mean it never will.
            time.sleep(max(0.0, self.settle_s - (time.monotonic() - sent_at)))
            untouched = self.reconcile(unsure, why)
            if not untouched:
                return
            if not retryable or rounds >= self.max_rounds:
                with self.ledger.transaction() as c:
                    for entry in untouched:
                        self._error(c, entry, f"{why}; not applied (gave up after {rounds} "
                                              "attempt(s); the next publish tries again)")
                return
            time.sleep(self.pause_s * rounds)
            entries = self.replan(untouched, why)

    def _record(self, entries: list[Entry], results: list[Any]) -> list[Entry]:
        """Settle rows from the response; returns the entries still in doubt."""
        unsure: list[Entry] = []
        with self.ledger.transaction() as c:
            for i, entry in enumerate(entries):
                if i >= len(results):
                    unsure.append(entry)
                    continue
                result_id, product, error, verified = result_parts(results[i])
                returned_id = (product or {}).get("id", result_id)
                if any(x is not None and str(x) != entry.source_id
                       for x in (result_id, returned_id)):
                    unsure.append(entry)  # the store answered for another product
                elif product is not None:
                    self._confirm(c, entry, product)
                elif verified:
                    unsure.append(entry)
                else:
                    self._error(c, entry, f"the store refused it: {brief(error or '')}")
        return unsure


def recover(ledger: Ledger, store: ProductStore, *, run_id: int, settled: Settled,
            settle_s: float = 30.0) -> None:
    """Settle rows a killed publish or rollback left ``planned``, from the store's state now.

    Applied ones are recorded as written (or rolled back) and never sent again; changed ones
    are conflicts; untouched ones are closed, so this run plans the approved job again.

    A request the killed process sent may still be running inside the store (the client
    died, PHP did not). So an untouched row younger than ``settle_s`` (the store timeout) is
    read once more after that much time has passed since it was planned, before it is
    declared unsent; otherwise a late write and our re-send would both land.
    """
    pending = P.planned_rows(ledger)
    for mode in ("publish", "rollback"):
        rows = [r for r in pending
                if ("rollback" if r.run_kind == "rollback" else "publish") == mode]
        if not rows:
            continue
        writer = BatchWriter(ledger, store, run_id=run_id, mode=mode, settled=settled)
        born = {r.id: r.created_at for r in rows}
        entries = [Entry(r.id, r.job_id, None, r.source_id, r.written, r.previous, 0)
                   for r in rows]
        why = "an earlier run stopped before the store confirmed this write"
        for start in range(0, len(entries), 100):
            untouched = writer.reconcile(entries[start:start + 100], why)
            young = [e for e in untouched if time.time() - born[e.row_id] < settle_s]
            if young:
                time.sleep(max(0.0, max(born[e.row_id] for e in young) + settle_s
                               - time.time()))
                young_ids = {e.row_id for e in young}
                untouched = [e for e in untouched if e.row_id not in young_ids]
                untouched += writer.reconcile(young, why)
            with ledger.transaction() as c:
                for entry in untouched:
                    P.settle_row(c, entry.row_id, "error", error=(
                        "an earlier run stopped before the store applied it; "
                        + ("planned again" if mode == "publish"
                           else "run the rollback again")))
                    settled.requeued.append(entry.source_id)


def group_by_parent(targets: Sequence[Target]) -> dict[str, list[str]]:
    """Variation ids by parent, in first-seen order; products (no parent) are left out."""
    groups: dict[str, list[str]] = {}
    for source_id, parent in targets:
        if parent is not None:
            groups.setdefault(str(parent), []).append(source_id)
    return groups

