"""``enrich sync``: read the store page by page and decide, per product, what is missing.

How a sync runs, and why:

1. **Stream.** Products come from ``WooClient.iter_product_pages`` 100 at a time
   (``context=edit``, only the fields used). Each page is handled and written to the ledger
   before the next is looked at, so memory stays flat whatever the catalog size.
2. **Snapshot and validate.** Each product becomes a snapshot: the edit-context fields
   enrich reads and may write (name, descriptions, SEO meta of the configured plugin,
   categories, tags, brands, attributes, price, weight, dimensions, image alt texts),
   hashed as canonical JSON (``content_hash``). A malformed field (wrong type, invalid
   UTF-8, larger than ``sync.max_field_bytes``) makes the product ``invalid`` with a reason
   naming product and field; the sync goes on.
3. **Decide.** ``evaluate`` applies the rules of ``[sync]`` to each field: empty, shorter than
   ``min_length`` (HTML stripped), equal to the name, a placeholder ("Lorem ipsum", "TBD",
   "N/A"...), or supplier boilerplate. A product that needs copy but has less than
   ``min_source_chars`` of source text to write from is ``needs_data``, not sent to a model.
4. **Enqueue.** One job per product that is not complete, keyed by its content hash, so a
   second sync of an unchanged store adds nothing and a product changed in the store
   supersedes its old job. A product that became complete has its open job superseded.
   Jobs are written before the product row, so a sync killed between the two writes is
   repaired by the next one instead of leaving a product without its job.
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

import functools
import hashlib
import html
import json
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from enrich.config import Settings, SyncConfig
from enrich.errors import EnrichError, LedgerError, StoreAuthError
from enrich.ledger import EnqueueItem, JobStatus, Ledger
from enrich.ledger.states import SUPERSEDABLE
from enrich.woo.client import ProductPage, WooClient
from enrich.woo.seo import SEO_FIELDS, read_seo, writable_fields

META_CURSOR = "sync.modified_after"
META_STORE = "sync.store_url"
META_BOILERPLATE = "sync.boilerplate"
META_RULES = "sync.rules_hash"

#: Fields asked of the store (``_fields``): what the snapshot and the cursor need.
FETCH_FIELDS = [
    "id", "parent_id", "type", "status", "sku", "name", "description", "short_description",
    "regular_price", "categories", "tags", "brands", "attributes", "weight", "dimensions",
    "images", "meta_data", "date_modified_gmt", "variations",
]
TEXT_FIELDS = ("name", "description", "short_description")
FINGERPRINTED = ("description", "short_description", "seo_title", "meta_description")
VARIATION_FIELDS = ("description", "image_alt")
#: Filler that marks a text as missing wherever it appears, not only at the start.
FILLER_ANYWHERE = ("lorem ipsum",)
FINGERPRINT_MIN_CHARS = 20
STATES = ("complete", "needs_work", "needs_data", "invalid")

_TAG = re.compile(r"<[^>]*>")
_SHORTCODE = re.compile(r"\[/?[a-zA-Z_][^\]]{0,200}\]")
_WS = re.compile(r"\s+")


# -- text rules ---------------------------------------------------------------------------------

def plain_text(value: Any) -> str:
    """Visible text of stored HTML: tags and shortcodes dropped, entities decoded."""
    if not isinstance(value, str) or not value:
        return ""
    if "<" in value or "[" in value:
        value = _SHORTCODE.sub(" ", _TAG.sub(" ", value))
    if "&" in value:
        value = html.unescape(value)
    return _WS.sub(" ", value).strip()


def fingerprint(text: str) -> str:
    """A short hash of normalised visible text, to count the same text across products."""
    norm = re.sub(r"[^\w]+", " ", text.lower()).strip()
    return hashlib.sha256(norm.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def canonical_json(value: Any) -> str:
    """The exact bytes ``content_hash`` is computed from (ASCII, sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      default=repr)


def content_hash(snapshot: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(snapshot).encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Rules:
    """``[sync]`` resolved against the store: which fields, and when one counts as missing."""

    fields: tuple[str, ...]
    skipped_fields: tuple[str, ...]
    min_length: dict[str, int]
    placeholders: tuple[str, ...]
    boilerplate_min_products: int
    min_source_chars: int
    max_field_bytes: int
    variations: bool
    seo_plugin: str
    statuses: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        cfg: SyncConfig = settings.sync
        seo_ok = set(writable_fields(settings.store.seo_plugin))
        fields = tuple(f for f in cfg.fields if f not in SEO_FIELDS or f in seo_ok)
        skipped = tuple(f for f in cfg.fields if f not in fields)
        return cls(fields=fields, skipped_fields=skipped, min_length=dict(cfg.min_length),
                   placeholders=tuple(p.strip().lower() for p in cfg.placeholders if p.strip()),
                   boilerplate_min_products=cfg.boilerplate_min_products,
                   min_source_chars=cfg.min_source_chars, max_field_bytes=cfg.max_field_bytes,
                   variations=cfg.variations, seo_plugin=settings.store.seo_plugin,
                   statuses=tuple(settings.store.statuses))

    def digest(self) -> str:
        """Changes when a rule that decides ``missing`` changes (statuses do not count)."""
        data = asdict(self)
        data.pop("statuses")
        return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=16)
def _longest(placeholders: tuple[str, ...]) -> int:
    return max(map(len, placeholders), default=0)


def _placeholder(low: str, placeholders: Sequence[str]) -> str | None:
    bare = low.strip(" .!?-–—:;*_()[]")
    if len(bare) >= _longest(tuple(placeholders)) + 40:  # only filler can match
        return next((p for p in FILLER_ANYWHERE if p in placeholders and p in bare), None)
    for p in placeholders:
        if bare == p:
            return p
        if p in FILLER_ANYWHERE and p in bare:
            return p
        rest = bare[len(p):]
        if bare.startswith(p) and (not rest or not rest[0].isalnum()) and len(rest) < 40:
            return p
    return None


def field_problem(name: str, text: str, *, product_name: str, sku: str, rules: Rules,
                  boilerplate: frozenset[str]) -> str | None:
    """Why ``text`` (visible text) does not count as copy for field ``name``, or None."""
    if not text:
        return "empty"
    low = text.lower()
    found = _placeholder(low, rules.placeholders)
    if found:
        return f"placeholder {found!r}"
    if name == "name":
        if sku and low == sku.lower():
            return "same as the SKU"
        if low == "product":
            return "WooCommerce's default name"
    elif product_name and low == product_name.lower():
        return "same as the name"
    minimum = rules.min_length.get(name, 0)
    if len(text) < minimum:
        return f"shorter than {minimum} characters"
    if boilerplate and name in FINGERPRINTED and len(text) >= FINGERPRINT_MIN_CHARS \
            and fingerprint(text) in boilerplate:
        return f"supplier boilerplate (the same text on {rules.boilerplate_min_products}+ products)"
    return None


@dataclass
class Evaluation:
    state: str
    missing: list[str]
    why: dict[str, str]
    reason: str | None


def visible_texts(snapshot: Mapping[str, Any]) -> dict[str, str]:
    """The visible text of every copy field of a snapshot (SEO ones included)."""
    seo = snapshot.get("seo") or {}
    texts = {f: plain_text(snapshot.get(f)) for f in ("name", "description",
                                                       "short_description")}
    for f in SEO_FIELDS:
        texts[f] = plain_text(seo.get(f))
    return texts


def evaluate(snapshot: Mapping[str, Any], rules: Rules,
             boilerplate: frozenset[str] = frozenset(),
             texts: Mapping[str, str] | None = None) -> Evaluation:
    """Decide complete / needs_work / needs_data for a valid snapshot (pure function).

    ``texts`` is ``visible_texts(snapshot)`` when the caller already has it.
    """
    is_variation = snapshot.get("type") == "variation"
    fields = [f for f in rules.fields if not is_variation or f in VARIATION_FIELDS]
    if texts is None:
        texts = visible_texts(snapshot)
    name = texts["name"]
    sku = snapshot.get("sku") or ""
    why: dict[str, str] = {}
    name_problem = field_problem("name", name, product_name=name, sku=sku, rules=rules,
                                 boilerplate=boilerplate)
    for f in fields:
        if f == "image_alt":
            images = snapshot.get("images") or []
            bare = sum(1 for i in images if not plain_text(i.get("alt")))
            if bare:
                why[f] = f"{bare} of {len(images)} image(s) without alt text"
            continue
        if f == "name":
            if name_problem and not is_variation:
                why[f] = name_problem
            continue
        problem = field_problem(f, texts[f], product_name=name, sku=sku, rules=rules,
                                boilerplate=boilerplate)
        if problem:
            why[f] = problem
    if not why:
        return Evaluation("complete", [], {}, None)
    missing = list(why)
    source = source_chars(snapshot, texts, exclude=set(missing), name_ok=name_problem is None)
    if source < rules.min_source_chars:
        reason = (f"only {source} characters of source text to write from (name, attributes, "
                  f"categories, tags, existing copy; at least {rules.min_source_chars} needed)")
        return Evaluation("needs_data", missing, why, reason)
    reason = "; ".join(f"{f}: {w}" for f, w in why.items())
    return Evaluation("needs_work", missing, why, reason)


def source_chars(snapshot: Mapping[str, Any], texts: Mapping[str, str], *, exclude: set[str],
                 name_ok: bool) -> int:
    """How much real text a model would have to write from."""
    total = len(texts["name"]) if name_ok else 0
    total += len(str(snapshot.get("parent_name") or "").strip())
    for attr in snapshot.get("attributes") or []:
        total += len(str(attr.get("name") or "").strip())
        total += sum(len(str(o).strip()) for o in attr.get("options") or [])
    for key in ("categories", "tags", "brands"):
        total += sum(len(t.strip()) for t in snapshot.get(key) or []
                     if t.lower() != "uncategorized")
    for f in ("description", "short_description"):
        if f not in exclude:
            total += len(texts[f])
    return total


# -- snapshots ------------------------------------------------------------------------------

class _Problems:
    """Collects malformed fields of one product while its snapshot is built."""

    def __init__(self, record: str, max_bytes: int) -> None:
        self.record = record
        self.max_bytes = max_bytes
        self.found: list[str] = []

    def text(self, value: Any, field: str, *, allow_none: bool = True) -> str | None:
        if value is None:
            if not allow_none:
                self.found.append(f"field {field}: missing")
            return None
        if not isinstance(value, str):
            self.found.append(f"field {field}: expected a string, got {_kind(value)}")
            return None
        if value.isascii() and len(value) <= self.max_bytes:
            return value  # the common case: no surrogates, one byte per character
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError as exc:
            self.found.append(f"field {field}: not valid UTF-8 (bad byte or lone surrogate "
                              f"at character {exc.start})")
            return value.encode("utf-8", "replace").decode("utf-8")
        if size > self.max_bytes:
            self.found.append(f"field {field}: {size:,} bytes, over sync.max_field_bytes "
                              f"({self.max_bytes:,})")
            return value[:2000] + f" [… truncated by enrich: {size:,} bytes]"
        return value

    def names(self, value: Any, field: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.found.append(f"field {field}: expected an array, got {_kind(value)}")
            return []
        out = []
        for i, term in enumerate(value):
            if not isinstance(term, dict):
                self.found.append(f"field {field}[{i}]: expected an object, got {_kind(term)}")
                continue
            name = self.text(term.get("name"), f"{field}[{i}].name")
            if name:
                out.append(name)
        return out


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


@dataclass
class Record:
    """One product (or variation) as sync hands it to the ledger."""

    source_id: str
    parent_id: str | None
    type: str | None
    sku: str | None
    name: str | None
    status: str | None
    snapshot: dict[str, Any]
    content_hash: str
    date_modified_gmt: str | None
    state: str = "complete"
    missing: list[str] = field(default_factory=list)
    why: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    texts: dict[str, str] | None = field(default=None, repr=False, compare=False)

    def row(self) -> dict[str, Any]:
        return {"source_id": self.source_id, "parent_id": self.parent_id, "type": self.type,
                "sku": self.sku, "name": self.name, "status": self.status,
                "snapshot": self.snapshot, "content_hash": self.content_hash,
                "date_modified_gmt": self.date_modified_gmt, "state": self.state,
                "missing": self.missing, "reason": self.reason}


def build_record(raw: Any, rules: Rules, *, parent: Mapping[str, Any] | None = None) -> Record:
    """A product from the store as a snapshot, flagged ``invalid`` when a field is malformed.

    A malformed field never raises: it is recorded in the reason. Only a product without a
    usable id cannot be recorded at all; that raises ``ValueError``, which the caller counts.
    """
    if not isinstance(raw, dict):
        raise ValueError(f"a product that is not an object ({_kind(raw)})")
    pid = raw.get("id")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise ValueError(f"a product without a valid id (id {pid!r})")
    is_variation = parent is not None or raw.get("type") == "variation"
    record = f"{'variation' if is_variation else 'product'} {pid}"
    chk = _Problems(record, rules.max_field_bytes)
    snap: dict[str, Any] = {"id": pid}
    parent_id = raw.get("parent_id") or (parent.get("id") if parent else None)
    if parent_id is not None and (isinstance(parent_id, bool) or not isinstance(parent_id, int)):
        chk.found.append(f"field parent_id: expected an integer, got {_kind(parent_id)}")
        parent_id = None
    snap["parent_id"] = parent_id or None
    snap["type"] = "variation" if is_variation else chk.text(raw.get("type"), "type")
    snap["status"] = chk.text(raw.get("status"), "status")
    for f in ("sku", "name", "description", "short_description", "regular_price", "weight"):
        if is_variation and f == "short_description":
            continue
        snap[f] = chk.text(raw.get(f), f) or ""
    if parent is not None:
        snap["parent_name"] = chk.text(parent.get("name"), "parent name") or ""
    for f in ("categories", "tags", "brands"):
        if not is_variation:
            snap[f] = chk.names(raw.get(f), f)
    attrs = raw.get("attributes")
    snap["attributes"] = []
    if attrs is not None and not isinstance(attrs, list):
        chk.found.append(f"field attributes: expected an array, got {_kind(attrs)}")
    for i, attr in enumerate(attrs if isinstance(attrs, list) else []):
        if not isinstance(attr, dict):
            chk.found.append(f"field attributes[{i}]: expected an object, got {_kind(attr)}")
            continue
        options = attr.get("options")
        if options is None and "option" in attr:
            options = [attr.get("option")]
        if not isinstance(options, list):
            chk.found.append(f"field attributes[{i}].options: expected an array")
            options = []
        snap["attributes"].append({
            "name": chk.text(attr.get("name"), f"attributes[{i}].name") or "",
            "options": [chk.text(o, f"attributes[{i}].options") or "" for o in options]})
    dims = raw.get("dimensions")
    if isinstance(dims, dict):
        snap["dimensions"] = {k: chk.text(dims.get(k), f"dimensions.{k}") or ""
                              for k in ("length", "width", "height")}
    elif dims is not None:
        chk.found.append(f"field dimensions: expected an object, got {_kind(dims)}")
    images = raw.get("images")
    if is_variation:
        images = [raw["image"]] if isinstance(raw.get("image"), dict) else []
    snap["images"] = []
    if images is not None and not isinstance(images, list):
        chk.found.append(f"field images: expected an array, got {_kind(images)}")
    for i, image in enumerate(images if isinstance(images, list) else []):
        if not isinstance(image, dict):
            chk.found.append(f"field images[{i}]: expected an object, got {_kind(image)}")
            continue
        snap["images"].append({"id": image.get("id"),
                               "alt": chk.text(image.get("alt"), f"images[{i}].alt") or ""})
    meta = raw.get("meta_data")
    if meta is not None and not isinstance(meta, list):
        chk.found.append(f"field meta_data: expected an array, got {_kind(meta)}")
        meta = []
    if rules.seo_plugin != "none":
        seo = read_seo(meta, rules.seo_plugin)
        snap["seo_plugin"] = rules.seo_plugin
        snap["seo"] = {f: chk.text(v, f"meta_data {f}") for f, v in seo.items()}
    texts = visible_texts(snap)
    snap["fingerprints"] = {f: fingerprint(texts[f]) for f in FINGERPRINTED
                            if len(texts[f]) >= FINGERPRINT_MIN_CHARS}
    modified = raw.get("date_modified_gmt")
    modified = modified if isinstance(modified, str) else None
    if chk.found:
        # The hash covers the store's raw values, so fixing the field in the store changes it
        # (and supersedes the invalid job); the stored snapshot holds only safe text.
        digest = hashlib.sha256(canonical_json(
            {k: raw.get(k) for k in sorted(raw) if k not in ("date_modified", "date_modified_gmt",
                                                              "_links")}).encode()).hexdigest()
        reason = f"{record}: " + "; ".join(chk.found)
        return Record(str(pid), str(parent_id) if parent_id else None, snap.get("type"),
                      snap.get("sku") or None, snap.get("name") or None, snap.get("status"),
                      snap, digest, modified, state="invalid", reason=reason)
    out = Record(str(pid), str(parent_id) if parent_id else None, snap.get("type"),
                 snap.get("sku") or None, snap.get("name") or None, snap.get("status"),
                 snap, content_hash(snap), modified)
    out.texts = texts
    return out


def store_snapshot(product: Mapping[str, Any], *, seo_plugin: str = "none",
                   max_field_bytes: int = 1_000_000) -> tuple[dict[str, Any], str]:
    """(snapshot, content_hash) of a product read in edit context, exactly as sync records it.

    For publish's conflict check: hashing the store's current product any other way would
    see changes that are not there (or miss real ones).
    """
    rules = Rules(fields=(), skipped_fields=(), min_length={}, placeholders=(),
                  boilerplate_min_products=2, min_source_chars=0,
                  max_field_bytes=max_field_bytes, variations=False, seo_plugin=seo_plugin,
                  statuses=())
    record = build_record(dict(product), rules)
    return record.snapshot, record.content_hash


def apply_evaluation(record: Record, rules: Rules, boilerplate: frozenset[str]) -> Record:
    if record.state != "invalid":
        ev = evaluate(record.snapshot, rules, boilerplate, record.texts)
        record.state, record.missing, record.why, record.reason = (
            ev.state, ev.missing, ev.why, ev.reason)
    return record


# -- summary ------------------------------------------------------------------------------------

@dataclass
class SyncProgress:
    pages: int
    read: int
    total: int | None


@dataclass
class SyncSummary:
    """What a sync saw and did. Counts are of products (and variations) read this run."""

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
    #: How the keys were sent in the end (``auto`` may have fallen back to ``query``).
    auth: str | None = None
    exit_reason: str = "completed"
    elapsed_s: float = 0.0

    def counts(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("invalid_examples")
        return data

    def _count(self, record: Record) -> None:
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


# -- ledger reads (writes go through the Ledger API) ------------------------------------------

@dataclass(frozen=True)
class _Previous:
    content_hash: str
    state: str
    missing: tuple[str, ...]
    reason: str | None
    date_modified_gmt: str | None


def _previous(ledger: Ledger, source_ids: Sequence[str]) -> dict[str, _Previous]:
    if not source_ids:
        return {}
    marks = ",".join("?" * len(source_ids))
    rows = ledger.conn.execute(
        f"SELECT source_id, content_hash, state, missing, reason, date_modified_gmt "
        f"FROM products WHERE source_id IN ({marks})", list(source_ids)).fetchall()
    return {r[0]: _Previous(r[1], r[2], tuple(json.loads(r[3]) if r[3] else ()), r[4], r[5])
            for r in rows}


def _open_jobs(ledger: Ledger, source_id: str, input_hash: str | None = None) -> list[int]:
    statuses = [s.value for s in SUPERSEDABLE]
    sql = (f"SELECT id FROM jobs WHERE kind = 'product' AND source_id = ? "
           f"AND status IN ({','.join('?' * len(statuses))})")
    args: list[Any] = [source_id, *statuses]
    if input_hash is not None:
        sql += " AND input_hash = ?"
        args.append(input_hash)
    return [r[0] for r in ledger.conn.execute(sql, args)]


def _supersede(ledger: Ledger, job_ids: Iterable[int], note: str) -> int:
    done = 0
    for job_id in job_ids:
        try:
            ledger.set_status([job_id], JobStatus.SUPERSEDED, note=note)
            done += 1
        except LedgerError:
            pass  # it moved on meanwhile (published, already superseded): nothing to undo
    return done


def _boilerplate_counts(ledger: Ledger, min_products: int) -> frozenset[str]:
    rows = ledger.conn.execute(
        "SELECT j.value FROM products p, json_each(p.snapshot, '$.fingerprints') j "
        "WHERE p.state != 'invalid' GROUP BY j.value "
        "HAVING COUNT(DISTINCT p.source_id) >= ?", (min_products,)).fetchall()
    return frozenset(r[0] for r in rows)


_ROW_COLUMNS = ("source_id, parent_id, type, sku, name, status, snapshot, content_hash, "
                "date_modified_gmt, state, missing, reason")


_AFFECTED = (
    "EXISTS (SELECT 1 FROM json_each(products.snapshot, '$.fingerprints') j "
    "WHERE j.key IN (SELECT value FROM json_each(?)) AND ("
    " (j.value IN (SELECT value FROM json_each(?)) AND NOT EXISTS "
    "   (SELECT 1 FROM json_each(products.missing) m WHERE m.value = j.key))"
    " OR (j.value IN (SELECT value FROM json_each(?)) AND EXISTS "
    "   (SELECT 1 FROM json_each(products.missing) m WHERE m.value = j.key))))")


def _stored_records(ledger: Ledger, change: tuple[Sequence[str], frozenset[str],
                                                  frozenset[str]] | None,
                    chunk: int = 500) -> Iterator[list[Record]]:
    """Stored products, in chunks: all, or those a boilerplate change can affect.

    ``change`` is (fields checked, texts that became boilerplate, texts that stopped being
    boilerplate): a product is affected when a checked field holds an entering text and is
    not yet missing, or holds a leaving text and is missing.
    """
    last = ""
    while True:
        if change is None:
            rows = ledger.conn.execute(
                f"SELECT {_ROW_COLUMNS} FROM products WHERE source_id > ? AND state != 'invalid'"
                f" ORDER BY source_id LIMIT ?", (last, chunk)).fetchall()
        else:
            fields, entering, leaving = change
            rows = ledger.conn.execute(
                f"SELECT {_ROW_COLUMNS} FROM products WHERE source_id > ? AND state != 'invalid'"
                f" AND {_AFFECTED} ORDER BY source_id LIMIT ?",
                (last, json.dumps(list(fields)), json.dumps(sorted(entering)),
                 json.dumps(sorted(leaving)), chunk)).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        yield [Record(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8],
                      state=r[9], missing=list(json.loads(r[10]) if r[10] else []),
                      reason=r[11]) for r in rows]


# -- writing one batch of records ---------------------------------------------------------------

def _payload(record: Record) -> dict[str, Any]:
    return {"fields": record.missing, "why": record.why}


def _write(ledger: Ledger, records: list[Record], summary: SyncSummary,
           *, count: bool, prev: dict[str, _Previous] | None = None) -> int:
    """Jobs first, then product rows; returns how many products changed state or input."""
    if prev is None:
        prev = _previous(ledger, [r.source_id for r in records])
    items: list[EnqueueItem] = []
    to_supersede: list[int] = []
    changed = 0
    rows: list[Record] = []
    for r in records:
        p = prev.get(r.source_id)
        same_input = p is not None and p.content_hash == r.content_hash
        same = same_input and p is not None and p.state == r.state and \
            p.missing == tuple(r.missing)
        if count:
            summary._count(r)
            if same:
                summary.unchanged += 1
        if same:
            if p is not None and p.date_modified_gmt != r.date_modified_gmt:
                rows.append(r)  # same copy, newer date (a stock change): keep the date fresh
            continue
        changed += 1
        rows.append(r)
        if p is not None and p.state != "complete":
            if same_input:
                # Same content, new decision (rules or boilerplate changed): the job with this
                # input hash must give way so enqueue can revive it with the new fields.
                to_supersede += _open_jobs(ledger, r.source_id, r.content_hash)
            elif r.state == "complete":
                to_supersede += _open_jobs(ledger, r.source_id)
        if r.state != "complete":
            status = {"needs_work": JobStatus.PENDING, "needs_data": JobStatus.NEEDS_DATA,
                      "invalid": JobStatus.INVALID}[r.state]
            items.append(EnqueueItem(kind="product", source_id=r.source_id,
                                     input_hash=r.content_hash, payload=_payload(r),
                                     status=status,
                                     reason=r.reason if r.state != "needs_work" else None))
    if to_supersede:
        summary.superseded += _supersede(ledger, to_supersede,
                                         "the product changed in the store or the sync rules "
                                         "changed")
    if items:
        counts = ledger.enqueue_many(items)
        summary.queued += counts.queued + counts.revived
        summary.superseded += counts.superseded
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
         progress: Callable[[SyncProgress], None] | None = None) -> SyncSummary:
    """Read the store into the ledger and queue the products that need copy.

    ``dry_run`` does all of it against a scratch copy of the ledger, so the counts are
    exactly what a real sync would report, and throws the copy away.
    """
    if limit is not None and limit < 1:
        raise EnrichError("--limit must be at least 1")
    if not dry_run:
        return _sync(ledger, client, settings, full=full, limit=limit, dry_run=False,
                     progress=progress)
    with tempfile.TemporaryDirectory(prefix="enrich-dry-run-") as tmp:
        scratch = Path(tmp) / "ledger.db"
        target = sqlite3.connect(scratch)
        try:
            ledger.conn.backup(target)
        finally:
            target.close()
        with Ledger(scratch) as work:
            summary = _sync(work, client, settings, full=full, limit=limit, dry_run=True,
                            progress=progress)
        summary.run_id = None
        return summary


def _sync(ledger: Ledger, client: WooClient, settings: Settings, *, full: bool,
          limit: int | None, dry_run: bool,
          progress: Callable[[SyncProgress], None] | None) -> SyncSummary:
    started_at = time.monotonic()
    rules = Rules.from_settings(settings)
    store = _store_key(client)
    cursor = None
    if not full and ledger.get_meta(META_STORE) == store:
        cursor = ledger.get_meta(META_CURSOR)
    summary = SyncSummary(store=store, full=cursor is None, dry_run=dry_run,
                          modified_after=cursor, skipped_fields=list(rules.skipped_fields))
    rules_hash = rules.digest()
    rules_changed = ledger.get_meta(META_RULES) not in (None, rules_hash)
    previous_bp = frozenset(json.loads(ledger.get_meta(META_BOILERPLATE) or "[]"))
    if rules_changed:
        previous_bp = frozenset()
    params = {"full": full, "limit": limit, "dry_run": dry_run, "modified_after": cursor,
              "store": store, "fields": list(rules.fields)}
    summary.run_id = ledger.start_run("sync", params)
    try:
        max_seen, server_start = _stream(ledger, client, rules, previous_bp, summary,
                                         cursor=cursor, limit=limit, progress=progress,
                                         reuse=not rules_changed)
        boilerplate = _boilerplate_counts(ledger, rules.boilerplate_min_products)
        summary.boilerplate_texts = len(boilerplate)
        if rules_changed:
            stored = _stored_records(ledger, None)
        elif boilerplate != previous_bp:
            stored = _stored_records(ledger, (rules.fields, boilerplate - previous_bp,
                                              previous_bp - boilerplate))
        else:
            stored = iter(())
        for chunk in stored:
            for r in chunk:
                apply_evaluation(r, rules, boilerplate)
            summary.reevaluated += _write(ledger, chunk, summary, count=False)
        ledger.set_meta(META_BOILERPLATE, json.dumps(sorted(boilerplate)))
        ledger.set_meta(META_RULES, rules_hash)
        summary.catalog = _catalog_states(ledger)
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


def _catalog_states(ledger: Ledger) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for state, n in ledger.conn.execute("SELECT state, COUNT(*) FROM products GROUP BY state"):
        counts[state] = n
    return counts


def _stream(ledger: Ledger, client: WooClient, rules: Rules, boilerplate: frozenset[str],
            summary: SyncSummary, *, cursor: str | None, limit: int | None,
            progress: Callable[[SyncProgress], None] | None, reuse: bool,
            ) -> tuple[str | None, datetime | None]:
    """Pass 1. ``reuse``: an unchanged snapshot keeps its stored decision (the rules and
    the boilerplate set it was decided with are the ones in force)."""
    max_seen: str | None = None
    server_start: datetime | None = None
    read = 0
    listed: int | None = None
    pages = client.iter_product_pages(modified_after=cursor, statuses=rules.statuses,
                                      fields=FETCH_FIELDS)
    try:
        for page in pages:
            assert isinstance(page, ProductPage)
            if server_start is None:
                server_start = page.server_time or (datetime.now(UTC) - timedelta(minutes=5))
                listed = page.total
            summary.pages += 1
            summary.skipped_status += page.skipped
            read += len(page) + page.skipped
            raws: list[dict[str, Any]] = list(page)
            if limit is not None and summary.scanned + len(raws) >= limit:
                raws = raws[:limit - summary.scanned]
                summary.limit_reached = True
            records: list[Record] = []
            for raw in raws:
                records.extend(_records_for(client, raw, rules, summary))
                modified = raw.get("date_modified_gmt") if isinstance(raw, dict) else None
                if isinstance(modified, str) and (max_seen is None or modified > max_seen):
                    max_seen = modified
            prev = _previous(ledger, [r.source_id for r in records])
            for r in records:
                p = prev.get(r.source_id)
                if reuse and p is not None and p.content_hash == r.content_hash \
                        and r.state != "invalid" and p.state != "invalid":
                    r.state, r.missing, r.reason = p.state, list(p.missing), p.reason
                else:
                    apply_evaluation(r, rules, boilerplate)
            _write(ledger, records, summary, count=True, prev=prev)
            if progress is not None:
                progress(SyncProgress(summary.pages, read, page.total))
            if summary.limit_reached:
                break
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()
    if not summary.limit_reached and listed is not None and read < listed:
        # Products deleted while paging shift later ones onto pages already read; the ones
        # shifted were not received. Keep the cursor so the next sync reads them.
        summary.missed = listed - read
    return max_seen, server_start


def _records_for(client: WooClient, raw: Any, rules: Rules,
                 summary: SyncSummary) -> list[Record]:
    """Snapshots of a product (and its variations when configured), not yet decided."""
    try:
        record = build_record(raw, rules)
    except ValueError as exc:
        summary.invalid += 1
        summary.scanned += 1
        if len(summary.invalid_examples) < 20:
            summary.invalid_examples.append(f"skipped {exc}")
        return []
    out = [record]
    if rules.variations and record.type == "variable" and record.state != "invalid":
        for variation in client.iter_variations(int(record.source_id)):
            try:
                v = build_record(variation, rules, parent=raw)
            except ValueError as exc:
                summary.invalid += 1
                summary.scanned += 1
                if len(summary.invalid_examples) < 20:
                    summary.invalid_examples.append(
                        f"skipped a variation of product {record.source_id}: {exc}")
                continue
            out.append(v)
    return out


def summary_json(summary: SyncSummary) -> str:
    return json.dumps(asdict(summary), indent=2, sort_keys=True)


__all__ = [
    "FETCH_FIELDS",
    "Evaluation",
    "Record",
    "Rules",
    "SyncProgress",
    "SyncSummary",
    "build_record",
    "canonical_json",
    "content_hash",
    "evaluate",
    "fingerprint",
    "plain_text",
    "store_snapshot",
    "summary_json",
    "sync",
]
