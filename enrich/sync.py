"""``enrich sync``: read the store page by page and decide, per product, what is missing.

This module runs a sync: paging, the cursor, the jobs and the summary. What it relies on
lives beside it, so publish can use the same code without running a sync:

- ``enrich.product_snapshot``: how a store product becomes a snapshot record (step 2);
- ``enrich.page_reader``: a page of products built into records, here or in page reader
  processes (steps 1-3 for a large catalog);
- ``enrich.missing``: what counts as missing (step 3, and the fingerprints of step 5);
- ``enrich.ledger.products``: the ledger reads sync decides with (SQL lives in the ledger).

How a sync runs, and why:

1. **Stream.** Products come from ``WooClient.iter_product_pages`` 100 at a time
   (``context=edit``, only the fields used), and are written to the ledger a page at a time,
   in store order, so memory stays flat whatever the catalog size. For a catalog of
   ``page_reader.MIN_PAGES`` pages or more, page reader processes (one per CPU, their pages
   fetched for them by ``enrich.woo.fetcher``) build the pages after the first while this
   process decides and writes; only this process touches the ledger, so a sync killed at
   any point leaves it as a one-process sync would.
2. **Snapshot and validate.** Each product becomes a snapshot: the edit-context fields
   enrich reads and may write (name, descriptions, SEO meta of the configured plugin,
   categories, tags, brands, attributes, price, weight, dimensions, image alt texts),
   hashed as canonical JSON (``content_hash``). A malformed field (wrong type, invalid
   UTF-8, larger than ``sync.max_field_bytes``) makes the product ``invalid`` with a reason
   naming product and field; the sync goes on (``build_record``).
3. **Decide.** ``evaluate`` applies the rules of ``[sync]`` to each field: empty, shorter than
   ``min_length`` (HTML stripped), equal to the name, a placeholder ("Lorem ipsum", "TBD",
   "N/A"...), or supplier boilerplate. A product that needs copy but has less than
   ``min_source_chars`` of source text to write from is ``needs_data``, not sent to a model.
4. **Enqueue.** One job per product that is not complete, keyed by its content hash, so a
   second sync of an unchanged store adds nothing and a product changed in the store
   supersedes its old job. A product that became complete has its open job superseded.
   A page's jobs and product rows are written in one transaction (jobs first), so a sync
   killed mid-page leaves neither, and the next one writes both.
5. **Boilerplate, after the stream.** The same supplier text on ``boilerplate_min_products``
   products only shows once many products have been seen, so it cannot be decided while
   streaming. Each snapshot keeps short fingerprints of its texts; after the stream one
   SQL pass over the ledger counts them across the whole catalog (not only the products
   this run fetched). Products are evaluated during the stream with the boilerplate set of
   the previous sync, and only products whose texts entered or left that set are evaluated
   again. When the rules themselves change, every stored snapshot is re-evaluated from the
   ledger without asking the store.
6. **Cursor.** An incremental sync asks only for products modified after the last
   successful one. The bound is exclusive and second-resolution, and a product can be
   edited after the sync has paged past it, so the next cursor is the earlier of the
   newest ``date_modified_gmt`` seen and one second before the store's clock (``Date``
   header) when this sync began. A sync stopped by ``--limit`` or an error leaves the
   cursor where it was.

``--dry-run`` runs exactly this against a throw-away copy of the ledger and reports what
would change; the real ledger is not written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from enrich.config import Settings
from enrich.errors import EnrichError, LedgerError, StoreAuthError
from enrich.ledger import EnqueueItem, JobStatus, Ledger
from enrich.ledger.inputs import (
    count_input_flags,
    expect_store_units,
    mark_duplicate_skus,
    set_store_units,
    with_catalog_flags,
)
from enrich.ledger.priorities import set_priorities
from enrich.ledger.products import (
    ProductState,
    count_by_state,
    open_product_jobs,
    product_states,
    products_boilerplate_may_flip,
    products_queued_since,
    shared_fingerprints,
    valid_products,
)
from enrich.ledger.publishes import published_values
from enrich.ledger.scratch import scratch_copy
from enrich.missing import BOILERPLATE_META, STATES, Rules
from enrich.page_reader import MIN_PAGES, BuiltPage, PageReader, build_page, cpus
from enrich.priority import META_PRIORITY, Tiers, renumber, rules_digest
from enrich.product_snapshot import STORE_KEYS, Record, apply_evaluation, canonical_json
from enrich.woo.client import ProductPage, WooClient

META_CURSOR = "sync.modified_after"
META_STORE = "sync.store_url"
META_BOILERPLATE = BOILERPLATE_META
META_RULES = "sync.rules_hash"
META_UNITS = "sync.store_units"

#: Fields asked of the store (``_fields``): what the snapshot and the cursor need, with an
#: SEO plugin (``fetch_fields``).
FETCH_FIELDS = [
    "id", "parent_id", "type", "status", "sku", "name", "description", "short_description",
    "regular_price", "categories", "tags", "brands", "attributes", "weight", "dimensions",
    "images", "meta_data", "date_modified_gmt", "variations", "stock_status", "total_sales",
]


def fetch_fields(rules: Rules) -> list[str]:
    """The fields sync asks of the store. ``meta_data`` only with an SEO plugin, whose fields
    live there: on many stores it is the bulk of a product (page builders, feeds and other
    plugins keep their data in it too), and enrich reads nothing else of it."""
    if rules.seo_plugin != "none":
        return list(FETCH_FIELDS)
    return [f for f in FETCH_FIELDS if f != "meta_data"]


# -- deciding -----------------------------------------------------------------------------------

def _rules_digest(rules: Rules) -> str:
    """Changes when a rule that decides ``missing`` changes (statuses only choose what is read).

    Stored in the ledger (``sync.rules_hash``): when it differs, every stored snapshot is
    decided again.
    """
    data = asdict(rules)
    data.pop("statuses")
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:16]


# -- summary ------------------------------------------------------------------------------------

@dataclass
class SyncProgress:
    pages: int
    read: int
    total: int | None


@dataclass
class SyncSummary:
    """What a sync saw and did. Counts are of products (and variations) read this run, each
    product once: its final decision (after the boilerplate pass), and ``queued`` /
    ``superseded`` as products whose job this run queued / gave way (a job queued by the
    stream and then re-decided by the boilerplate pass is one product queued, not two)."""

    store: str
    full: bool
    dry_run: bool
    modified_after: str | None
    run_id: int | None = None
    pages: int = 0
    scanned: int = 0
    skipped_status: int = 0
    complete: int = 0
    needs_work: int = 0
    needs_work_by_field: dict[str, int] = field(default_factory=dict)
    needs_data: int = 0
    invalid: int = 0
    queued: int = 0
    superseded: int = 0
    unchanged: int = 0
    reevaluated: int = 0
    boilerplate_texts: int = 0
    skipped_fields: list[str] = field(default_factory=list)
    invalid_examples: list[str] = field(default_factory=list)
    catalog: dict[str, int] = field(default_factory=dict)
    cursor: str | None = None
    #: Listed by the store when paging began but not received (the catalog shrank meanwhile).
    missed: int = 0
    limit_reached: bool = False
    #: The store's weight and dimension units, read once per sync (with the currency, in
    #: meta ``sync.store_units``); empty when the store would not say (bare weights then
    #: keep only their family).
    store_units: dict[str, str] = field(default_factory=dict)
    #: Products per input problem over the whole ledger (``enrich.guards.inputs``).
    input_flags: dict[str, int] = field(default_factory=dict)
    #: How the keys were sent in the end (``auto`` may have fallen back to ``query``).
    auth: str | None = None
    exit_reason: str = "completed"
    elapsed_s: float = 0.0

    def __post_init__(self) -> None:
        #: Products read this run (not a field: never in the JSON), so the boilerplate pass
        #: can move a product it re-decides from one count to another.
        self._seen: set[str] = set()
        #: Pages built by page readers (not a field either: the ledger's record of a sync is
        #: the same however it ran).
        self.reader_pages = 0

    def counts(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("invalid_examples")
        return data

    def _recount(self, before: ProductState, record: Record) -> None:
        """A product read this run was decided again after the stream: count it once, as it
        ended."""
        if record.source_id not in self._seen or record.state == "invalid" \
                or before.state == "invalid":
            return
        self._tally(before.state, before.missing, -1)
        self._tally(record.state, tuple(record.missing), 1)

    def _tally(self, state: str, missing: tuple[str, ...] | list[str], step: int) -> None:
        if state == "complete":
            self.complete += step
            return
        if state == "needs_work":
            self.needs_work += step
        elif state == "needs_data":
            self.needs_data += step
        for f in missing:
            self.needs_work_by_field[f] = self.needs_work_by_field.get(f, 0) + step
            if not self.needs_work_by_field[f]:
                del self.needs_work_by_field[f]

    def _count(self, record: Record) -> None:
        self._seen.add(record.source_id)
        self.scanned += 1
        if record.state == "complete":
            self.complete += 1
        elif record.state == "invalid":
            self.invalid += 1
            if len(self.invalid_examples) < 20 and record.reason:
                self.invalid_examples.append(record.reason)
        else:
            if record.state == "needs_work":
                self.needs_work += 1
            else:
                self.needs_data += 1
            for f in record.missing:
                self.needs_work_by_field[f] = self.needs_work_by_field.get(f, 0) + 1


# -- writing one batch of records ---------------------------------------------------------------

def _supersede(ledger: Ledger, job_ids: Iterable[int], note: str) -> int:
    """Supersede each job through the state machine; one that moved on meanwhile is skipped."""
    done = 0
    for job_id in job_ids:
        try:
            ledger.set_status([job_id], JobStatus.SUPERSEDED, note=note)
            done += 1
        except LedgerError:
            pass  # it moved on meanwhile (published, already superseded): nothing to undo
    return done


#: The job status of each state that needs one.
_JOB_STATUS = {"needs_work": JobStatus.PENDING, "needs_data": JobStatus.NEEDS_DATA,
               "invalid": JobStatus.INVALID}


def _job(record: Record, tiers: Tiers) -> EnqueueItem:
    """The job a product that is not complete is queued as."""
    return EnqueueItem("product", record.source_id, record.content_hash,
                       {"fields": record.missing, "why": record.why},
                       tiers.priority(record), _JOB_STATUS[record.state],
                       record.reason if record.state != "needs_work" else None)


#: Jobs holding a draft a person has yet to review (or approved): a move of the boilerplate
#: set alone never throws them away; the guards flagged what sync would call missing.
_KEEP_ON_BOILERPLATE_MOVE = frozenset({JobStatus.DRAFTED.value, JobStatus.APPROVED.value})


def _write(ledger: Ledger, records: list[Record], summary: SyncSummary, tiers: Tiers,
           *, count: bool, prev: dict[str, ProductState] | None = None,
           keep_drafts: bool = False) -> int:
    """Jobs first, then product rows; returns how many products changed state or input.

    ``keep_drafts``: the re-decision comes from a boilerplate move only, so a drafted or
    approved job of the same input stays (its draft is not discarded). A product whose copy
    is unchanged but whose sales or stock moved keeps its job, which is renumbered
    (``enrich.priority``)."""
    if prev is None:
        prev = product_states(ledger, [r.source_id for r in records])
    items: list[EnqueueItem] = []
    to_supersede: list[int] = []
    changed = 0
    rows: list[Record] = []
    renumbered: dict[str, int] = {}
    for r in records:
        p = prev.get(r.source_id)
        if p is None:  # new to the ledger (a first sync: every product): nothing to compare
            if count:
                summary._count(r)
            changed += 1
            rows.append(r)
            if r.state != "complete":
                items.append(_job(r, tiers))
            continue
        flags_moved = False
        if r.input_flags is not None:  # read this run: the row carries them
            r.input_flags = with_catalog_flags(r.input_flags, p.input_flags)
            flags_moved = list(p.input_flags) != r.input_flags
        same_input = p.content_hash == r.content_hash
        same = same_input and p.state == r.state and p.missing == tuple(r.missing)
        if count:
            summary._count(r)
            if same:
                summary.unchanged += 1
        elif not same:
            summary._recount(p, r)
        if same:
            moved = (p.stock_status, p.total_sales) != (r.stock_status, r.total_sales)
            if moved or flags_moved or p.date_modified_gmt != r.date_modified_gmt:
                rows.append(r)  # same copy, newer date (a stock change): keep the date fresh
            if moved and r.state != "complete":
                renumbered[r.source_id] = tiers.priority(r)
            continue
        changed += 1
        rows.append(r)
        if p.state != "complete":
            if same_input:
                # Same content, new decision (rules or boilerplate changed): the job with this
                # input hash must give way so enqueue can revive it with the new fields.
                open_jobs = open_product_jobs(ledger, r.source_id, r.content_hash)
                if keep_drafts:
                    open_jobs = [j for j in open_jobs
                                 if ledger.get_job(j).status not in _KEEP_ON_BOILERPLATE_MOVE]
                to_supersede += open_jobs
            elif r.state == "complete":
                to_supersede += open_product_jobs(ledger, r.source_id)
        if r.state != "complete":
            items.append(_job(r, tiers))
    if to_supersede:
        _supersede(ledger, to_supersede,
                   "the product changed in the store or the sync rules changed")
    if items:
        ledger.enqueue_many(items)
    if renumbered:
        set_priorities(ledger, renumbered)
    if rows:
        ledger.upsert_products(r.row() for r in rows)
    return changed


# -- the sync -----------------------------------------------------------------------------------

def _store_key(client: WooClient) -> str:
    return client.base_url


def _cursor(max_seen: str | None, started: datetime | None) -> str | None:
    candidates = []
    if max_seen:
        candidates.append(max_seen)
    if started is not None:
        candidates.append((started - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S"))
    return min(candidates) if candidates else None


def sync(ledger: Ledger, client: WooClient, settings: Settings, *, full: bool = False,
         limit: int | None = None, dry_run: bool = False,
         progress: Callable[[SyncProgress], None] | None = None,
         readers: int | None = None) -> SyncSummary:
    """Read the store into the ledger and queue the products that need copy.

    ``dry_run`` does all of it against a scratch copy of the ledger, so the counts are
    exactly what a real sync would report, and throws the copy away. ``readers``: page
    reader processes (``enrich.page_reader``); by default ``[sync] readers``, or one per
    CPU for a catalog of ``MIN_PAGES`` pages or more on a machine with two CPUs or more;
    never with ``limit``. 0 never starts them; a number given here starts that many
    whatever the catalog's size. The ledger ends the same either way.
    """
    if limit is not None and limit < 1:
        raise EnrichError("--limit must be at least 1")
    if not dry_run:
        return _sync(ledger, client, settings, full=full, limit=limit, dry_run=False,
                     progress=progress, readers=readers)
    with scratch_copy(ledger, prefix="enrich-dry-run-") as work:
        summary = _sync(work, client, settings, full=full, limit=limit, dry_run=True,
                        progress=progress, readers=readers)
    summary.run_id = None
    return summary


def _sync(ledger: Ledger, client: WooClient, settings: Settings, *, full: bool,
          limit: int | None, dry_run: bool,
          progress: Callable[[SyncProgress], None] | None,
          readers: int | None) -> SyncSummary:
    started_at = time.monotonic()
    rules = Rules.from_settings(settings)
    store = _store_key(client)
    cursor = None
    if not full and ledger.get_meta(META_STORE) == store:
        cursor = ledger.get_meta(META_CURSOR)
    summary = SyncSummary(store=store, full=cursor is None, dry_run=dry_run,
                          modified_after=cursor, skipped_fields=list(rules.skipped_fields))
    rules_hash = _rules_digest(rules)
    rules_changed = ledger.get_meta(META_RULES) not in (None, rules_hash)
    previous_bp = frozenset(json.loads(ledger.get_meta(META_BOILERPLATE) or "[]"))
    if rules_changed:
        previous_bp = frozenset()
    params = {"full": full, "limit": limit, "dry_run": dry_run, "modified_after": cursor,
              "store": store, "fields": list(rules.fields)}
    summary.run_id = ledger.start_run("sync", params)
    since = time.time()
    tiers = Tiers.load(settings, ledger)
    # Jobs already waiting were numbered by other tiers (or none, before tiers existed):
    # renumbered after the stream. New ones are numbered as they are queued.
    renumber_all = ledger.get_meta(META_PRIORITY) != rules_digest(settings) and bool(
        ledger.list_jobs(kind="product", limit=1))
    try:
        summary.store_units = _store_units(ledger, client)
        expect_store_units(ledger, summary.store_units)
        max_seen, server_start = _stream(ledger, client, rules, previous_bp, summary, tiers,
                                         cursor=cursor, limit=limit, progress=progress,
                                         reuse=not rules_changed, readers=readers,
                                         configured=settings.sync.readers)
        _check_inputs(ledger, summary)
        boilerplate = shared_fingerprints(ledger, rules.boilerplate_min_products)
        summary.boilerplate_texts = len(boilerplate)
        if rules_changed:
            stored = valid_products(ledger)
        elif boilerplate != previous_bp:
            stored = products_boilerplate_may_flip(ledger, rules.fields,
                                                   boilerplate - previous_bp,
                                                   previous_bp - boilerplate)
        else:
            stored = iter(())
        for rows in stored:
            published = published_values(ledger, [row["source_id"] for row in rows])
            chunk = [apply_evaluation(Record(**row), rules, boilerplate,
                                      published.get(row["source_id"])) for row in rows]
            summary.reevaluated += _write(ledger, chunk, summary, tiers, count=False,
                                          keep_drafts=not rules_changed)
        if renumber_all:
            renumber(ledger, tiers)
        if ledger.get_meta(META_PRIORITY) != (priority_hash := rules_digest(settings)):
            ledger.set_meta(META_PRIORITY, priority_hash)
        summary.queued, summary.superseded = products_queued_since(ledger, since)
        ledger.set_meta(META_BOILERPLATE, json.dumps(sorted(boilerplate)))
        ledger.set_meta(META_RULES, rules_hash)
        summary.catalog = dict.fromkeys(STATES, 0) | count_by_state(ledger)
        if summary.missed:
            summary.cursor = cursor
        elif not summary.limit_reached:
            new_cursor = _cursor(max_seen, server_start) or cursor
            summary.cursor = new_cursor
            if new_cursor:
                ledger.set_meta(META_CURSOR, new_cursor)
                ledger.set_meta(META_STORE, store)
        else:
            summary.exit_reason = "limit"
            summary.cursor = cursor
    except BaseException as exc:
        summary.exit_reason = "fatal" if isinstance(exc, StoreAuthError) else (
            "signal" if isinstance(exc, KeyboardInterrupt) else "error")
        summary.elapsed_s = time.monotonic() - started_at
        ledger.finish_run(summary.run_id, exit_reason=summary.exit_reason,
                          counts=summary.counts(), cost_usd=0.0)
        raise
    summary.elapsed_s = time.monotonic() - started_at
    summary.auth = client.auth_mode
    ledger.finish_run(summary.run_id, exit_reason=summary.exit_reason, counts=summary.counts(),
                      cost_usd=0.0)
    return summary


#: Sync's pages are committed together about this often (``Ledger.commit_group``): a sync
#: killed loses at most this much of its work, which the next sync reads again.
COMMIT_EVERY_S = 0.25


def _stream(ledger: Ledger, client: WooClient, rules: Rules, boilerplate: frozenset[str],
            summary: SyncSummary, tiers: Tiers, *, cursor: str | None, limit: int | None,
            progress: Callable[[SyncProgress], None] | None, reuse: bool,
            readers: int | None = None, configured: int | None = None,
            ) -> tuple[str | None, datetime | None]:
    """Pass 1. ``reuse``: an unchanged snapshot keeps its stored decision (the rules and
    the boilerplate set it was decided with are the ones in force)."""
    max_seen: str | None = None
    server_start: datetime | None = None
    read = 0
    listed: int | None = None
    pages = _built_pages(client, rules, boilerplate, summary, cursor=cursor, limit=limit,
                         readers=readers, configured=configured)
    with contextlib.closing(pages), ledger.commit_group(COMMIT_EVERY_S) as group:
        for built in group.between(pages):  # the store may take its time: not holding the lock
            if server_start is None:
                server_start = built.server_time or (datetime.now(UTC) - timedelta(minutes=5))
                listed = built.total
            summary.pages += 1
            summary.reader_pages += built.decided
            summary.skipped_status += built.skipped
            read += built.size + built.skipped
            if built.newest is not None and (max_seen is None or built.newest > max_seen):
                max_seen = built.newest
            records: list[Record] = []
            for item in built.items:
                if isinstance(item, str):
                    _count_skipped(summary, item)
                else:
                    records.append(item)
            prev = product_states(ledger, [r.source_id for r in records])
            published = published_values(ledger, [r.source_id for r in records])
            for r in records:
                p = prev.get(r.source_id)
                if reuse and p is not None and p.content_hash == r.content_hash \
                        and r.state != "invalid" and p.state != "invalid":
                    r.state, r.missing, r.reason = p.state, list(p.missing), p.reason
                elif not built.decided or r.source_id in published:
                    # A reader decided without the ledger: a product with fields enrich
                    # published is decided here, with the values the ledger recorded.
                    r.load_snapshot()
                    apply_evaluation(r, rules, boilerplate, published.get(r.source_id))
            with group.transaction():  # the page's jobs and product rows, all or nothing
                _write(ledger, records, summary, tiers, count=True, prev=prev)
            group.commit_if_due()
            if progress is not None:
                progress(SyncProgress(summary.pages, read, built.total))
    if not summary.limit_reached and listed is not None and read < listed:
        # Products deleted while paging shift later ones onto pages already read; the ones
        # shifted were not received. Keep the cursor so the next sync reads them.
        summary.missed = listed - read
    return max_seen, server_start


def _built_pages(client: WooClient, rules: Rules, boilerplate: frozenset[str],
                 summary: SyncSummary, *, cursor: str | None, limit: int | None,
                 readers: int | None, configured: int | None = None) -> Iterator[BuiltPage]:
    """The store's pages, built, in store order.

    The first page is read and built here. For a catalog of ``MIN_PAGES`` pages or more
    (no ``--limit``, more than one CPU) page readers are started as soon as it arrives and
    build the rest in other processes (``enrich.page_reader``); if they die, the pages
    they did not hand over are read here.
    """
    reader: PageReader | None = None
    first_page = 1
    fields = fetch_fields(rules)
    wanted = _readers_wanted(readers if readers is not None else configured, limit)
    try:
        while True:
            pages = client.iter_product_pages(modified_after=cursor, statuses=rules.statuses,
                                              fields=fields, first_page=first_page)
            try:
                for page in pages:
                    assert isinstance(page, ProductPage)
                    total = page.total_pages or 0
                    if first_page == 1 and page.number == 1 and wanted and total > 1 and (
                            readers or total >= MIN_PAGES):
                        # Readers take over after the next few pages, which are read here
                        # while they start (a fresh interpreter, ~0.2 s of CPU each).
                        handover = page.number + 1 + min(AHEAD_PAGES, (total - 1) // 4)
                        reader = PageReader.start(
                            client, rules, summary.store_units, boilerplate=boilerplate,
                            modified_after=cursor, fields=fields, first_page=handover,
                            readers=wanted)
                    raws: list[dict[str, Any]] = list(page)
                    if limit is not None and summary.scanned + len(raws) >= limit:
                        raws = raws[:limit - summary.scanned]
                        summary.limit_reached = True
                    yield BuiltPage.of(page, raws,
                                       build_page(client, raws, rules, summary.store_units))
                    if summary.limit_reached or (
                            reader is not None and page.number + 1 >= reader.next_page):
                        break
            finally:
                close = getattr(pages, "close", None)
                if close is not None:
                    close()
            if reader is None:
                return
            yield from reader
            if reader.finished:
                return
            first_page = reader.next_page  # the readers died: read on here
            reader.close()
            reader = None
    finally:
        if reader is not None:
            reader.close()


#: Pages read here after the first while the page readers start (at most a quarter).
AHEAD_PAGES = 8


def _readers_wanted(readers: int | None, limit: int | None) -> int:
    """How many page readers to start for a catalog worth it: with ``--limit`` none (each
    page's count decides the next page's cut), else the number asked for, or one per CPU
    when there are two or more."""
    if limit is not None:
        return 0
    if readers is not None:
        return max(0, readers)
    return cpus() if cpus() > 1 else 0


def _count_skipped(summary: SyncSummary, message: str) -> None:
    """A product that could not be recorded at all (no usable id): counted as invalid."""
    summary.invalid += 1
    summary.scanned += 1
    if len(summary.invalid_examples) < 20:
        summary.invalid_examples.append(message)


# -- the store's units and the input checks --------------------------------------------------

def _store_units(ledger: Ledger, client: WooClient) -> dict[str, str]:
    """The store's units, read once per sync and recorded (meta ``sync.store_units``).

    A store that will not answer (an old WooCommerce, a key without settings access) keeps
    the units of the last sync that read them, or none.
    """
    try:
        read = client.store_settings()
    except (StoreAuthError, EnrichError):
        recorded = json.loads(ledger.get_meta(META_UNITS) or "{}")
        return {k: v for k, v in recorded.items() if k in STORE_KEYS and k != "currency"}
    ledger.set_meta(META_UNITS, json.dumps(read.as_dict(), sort_keys=True))
    return read.snapshot_keys()


def _check_inputs(ledger: Ledger, summary: SyncSummary) -> None:
    """After the stream: units into every stored snapshot, duplicate SKUs over the ledger."""
    set_store_units(ledger, summary.store_units)
    mark_duplicate_skus(ledger)
    summary.input_flags = count_input_flags(ledger)


def summary_json(summary: SyncSummary) -> str:
    return json.dumps(asdict(summary), indent=2, sort_keys=True)


__all__ = [
    "FETCH_FIELDS",
    "SyncProgress",
    "SyncSummary",
    "fetch_fields",
    "summary_json",
    "sync",
]
