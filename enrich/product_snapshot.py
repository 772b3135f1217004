"""How a store product becomes a snapshot record: validated, made safe, hashed.

A snapshot holds the edit-context fields enrich reads and may write (name, descriptions, the
SEO meta of the configured plugin, categories, tags, brands, attributes, price, weight,
dimensions, image alt texts) and the fingerprints of its texts, and is hashed as canonical
JSON (``content_hash``). That hash keys the product's job, so an unchanged product queues
nothing and a changed one supersedes its old job; publish hashes the store's current product
with this same code to detect an edit made in the store since the sync.

A malformed field (wrong type, invalid UTF-8, larger than ``sync.max_field_bytes``) never
raises: the record is ``invalid`` with a reason naming the product and the field, and its
snapshot holds only safe text. Deciding what is missing is ``enrich.missing``'s job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from enrich.ledger.codec import dumps as ledger_json
from enrich.ledger.rows import ProductRow
from enrich.missing import (
    FINGERPRINT_MIN_CHARS,
    FINGERPRINTED,
    Rules,
    evaluate,
    fingerprint,
    literal_escapes,
    visible_texts,
)
from enrich.woo.seo import read_seo

# -- hashing ------------------------------------------------------------------------------------

def canonical_json(value: Any) -> str:
    """The exact bytes ``content_hash`` is computed from (ASCII, sorted keys, no spaces).

    This spelling is what every ledger's hashes were made with, so it never changes.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      default=repr)


def _canonical_bytes(value: Any) -> bytes:
    """``canonical_json(value)`` as bytes, by orjson when that gives the same bytes.

    Sync hashes every product, and orjson is about six times faster. The two agree on
    every value without floats (the caller's promise: a snapshot holds none, see
    ``_has_float``) whose text is printable ASCII; orjson writes other characters as
    UTF-8 or raw (DEL), so any byte outside that range sends the value to ``json``.
    """
    try:
        out = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # a non-str key, an integer beyond 64 bits, a lone surrogate
        return canonical_json(value).encode("ascii")
    if out.isascii() and b"\x7f" not in out:
        return out
    return canonical_json(value).encode("ascii")


#: Snapshot keys that are the store's settings, not the product's (sync adds them from
#: ``WooClient.store_settings``): outside the hash, so a product hashes the same with or
#: without them and publish's conflict check (which hashes the store's product) agrees.
STORE_KEYS = frozenset({"weight_unit", "dimension_unit", "currency"})
#: The stock statuses a product's ``stock_status`` may hold (``sales_signals``).
STOCK_STATUSES = ("instock", "outofstock", "onbackorder")


def content_hash(snapshot: Mapping[str, Any]) -> str:
    own = snapshot if STORE_KEYS.isdisjoint(snapshot) else \
        {k: v for k, v in snapshot.items() if k not in STORE_KEYS}
    return _digest(own, floats=_has_float(own))


def _digest(own: Mapping[str, Any], *, floats: bool) -> str:
    """SHA-256 of ``canonical_json(own)``; ``floats``: it holds one (then json spells it)."""
    return hashlib.sha256(canonical_json(own).encode("ascii") if floats
                          else _canonical_bytes(own)).hexdigest()


def _has_float(snapshot: Mapping[str, Any]) -> bool:
    """Whether a snapshot holds a float (Python and orjson spell some differently: 1e+16 /
    1e16, NaN / null). Only an image id is copied from the store as it came; every other
    value of a snapshot is text, a validated integer, or built from those."""
    return any(type(image.get("id")) is float for image in snapshot.get("images") or ()
               if isinstance(image, Mapping)) or any(
        type(v) is float for v in snapshot.values())


# -- validation ---------------------------------------------------------------------------------

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


#: Copy a model reads and enrich may replace: literal ``\\n`` in it is the supplier's line
#: break (``missing.literal_escapes``), so the snapshot, the prompt and the hash see that.
_COPY = frozenset({"name", "description", "short_description"})
#: The text fields of a product snapshot, and of a variation's (which has no short one).
_PRODUCT_TEXT = ("sku", "name", "description", "short_description", "regular_price", "weight")
_VARIATION_TEXT = tuple(f for f in _PRODUCT_TEXT if f != "short_description")


def _unescaped(value: str | None) -> str | None:
    return literal_escapes(value) if value else value


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


# -- the record ---------------------------------------------------------------------------------

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
    #: Problems of the product's own data (``enrich.guards.inputs``), set by sync; None
    #: when they were not looked at (the row then keeps the stored ones).
    input_flags: list[dict[str, str]] | None = field(default=None, compare=False)
    # Priority signals (enrich.priority): stored beside the snapshot, never hashed.
    stock_status: str | None = None
    total_sales: int | None = None
    #: The snapshot as the ledger stores it, when it came that way (``enrich.page_reader``):
    #: written as is, and decoded into ``snapshot`` only when it is needed.
    snapshot_json: str | None = field(default=None, repr=False, compare=False)
    #: With ``snapshot_json``: the snapshot's fingerprints, spelled the same way.
    fingerprints_json: str | None = field(default=None, repr=False, compare=False)

    def load_snapshot(self) -> dict[str, Any]:
        if not self.snapshot and self.snapshot_json is not None:
            self.snapshot = orjson.loads(self.snapshot_json)
        return self.snapshot

    def row(self) -> ProductRow:
        """The record as ``Ledger.upsert_products`` writes it."""
        if self.snapshot_json:  # spelled by a page reader, fingerprints beside it
            snapshot_json = self.snapshot_json
            fingerprints = self.fingerprints_json or ledger_json(
                self.load_snapshot().get("fingerprints"))
        else:
            snapshot_json = ledger_json(self.snapshot)
            fingerprints = ledger_json(self.snapshot.get("fingerprints"))
        flags = self.input_flags
        return ProductRow(  # by name: a reordered row would still be spelled right
            source_id=self.source_id, parent_id=self.parent_id, type=self.type, sku=self.sku,
            name=self.name, status=self.status, snapshot=snapshot_json,
            content_hash=self.content_hash, date_modified_gmt=self.date_modified_gmt,
            state=self.state, missing=ledger_json(self.missing), reason=self.reason,
            stock_status=self.stock_status, total_sales=self.total_sales,
            fingerprints=fingerprints, input_flags=None if flags is None else ledger_json(flags))


def build_record(raw: Any, rules: Rules, *, parent: Mapping[str, Any] | None = None) -> Record:
    """A product from the store as a snapshot, flagged ``invalid`` when a field is malformed.

    A malformed field never raises: it is recorded in the reason. Only a product without a
    usable id cannot be recorded at all; that raises ``ValueError``, which the caller counts.

    Sync runs this on every product, so the common value (short ASCII text) is taken where
    it stands and only anything else goes through ``_Problems``, which says what is wrong.
    """
    if not isinstance(raw, dict):
        raise ValueError(f"a product that is not an object ({_kind(raw)})")
    pid = raw.get("id")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise ValueError(f"a product without a valid id (id {pid!r})")
    is_variation = parent is not None or raw.get("type") == "variation"
    record = f"{'variation' if is_variation else 'product'} {pid}"
    chk = _Problems(record, rules.max_field_bytes)
    most = rules.max_field_bytes
    get = raw.get
    snap: dict[str, Any] = {"id": pid}
    parent_id = get("parent_id") or (parent.get("id") if parent else None)
    if parent_id is not None and (isinstance(parent_id, bool) or not isinstance(parent_id, int)):
        chk.found.append(f"field parent_id: expected an integer, got {_kind(parent_id)}")
        parent_id = None
    snap["parent_id"] = parent_id or None
    if is_variation:
        snap["type"] = "variation"
    else:
        v = get("type")
        snap["type"] = v if type(v) is str and v.isascii() and len(v) <= most \
            else chk.text(v, "type")
    v = get("status")
    snap["status"] = v if type(v) is str and v.isascii() and len(v) <= most \
        else chk.text(v, "status")
    for f in _VARIATION_TEXT if is_variation else _PRODUCT_TEXT:
        v = get(f)
        v = (v if type(v) is str and v.isascii() and len(v) <= most else chk.text(v, f)) or ""
        snap[f] = literal_escapes(v) if f in _COPY and "\\" in v else v
    if parent is not None:
        snap["parent_name"] = chk.text(parent.get("name"), "parent name") or ""
    if not is_variation:
        for f in ("categories", "tags", "brands"):
            terms = get(f)
            names = []
            if type(terms) is list:
                for term in terms:
                    v = term.get("name") if type(term) is dict else None
                    if type(v) is str and v.isascii() and len(v) <= most:
                        if v:
                            names.append(v)
                    else:
                        names = chk.names(terms, f)  # says what is wrong, in order
                        break
            elif terms is not None:
                names = chk.names(terms, f)
            snap[f] = names
    attrs = get("attributes")
    attributes: list[dict[str, Any]] = []
    snap["attributes"] = attributes
    if attrs is not None and not isinstance(attrs, list):
        chk.found.append(f"field attributes: expected an array, got {_kind(attrs)}")
    for i, attr in enumerate(attrs if isinstance(attrs, list) else ()):
        if not isinstance(attr, dict):
            chk.found.append(f"field attributes[{i}]: expected an object, got {_kind(attr)}")
            continue
        options = attr.get("options")
        if options is None and "option" in attr:
            options = [attr.get("option")]
        if not isinstance(options, list):
            chk.found.append(f"field attributes[{i}].options: expected an array")
            options = []
        v = attr.get("name")
        name = (v if type(v) is str and v.isascii() and len(v) <= most
                else chk.text(v, f"attributes[{i}].name")) or ""
        if len(options) == 1 and type(o := options[0]) is str and o.isascii() \
                and len(o) <= most:
            values = [o]  # the common attribute (Colour: Green), without a comprehension
        else:
            values = [o if type(o) is str and o.isascii() and len(o) <= most
                      else chk.text(o, f"attributes[{i}].options") or "" for o in options]
        attributes.append({"name": name, "options": values})
    dims = get("dimensions")
    if isinstance(dims, dict):
        sizes = {}
        for k in ("length", "width", "height"):
            v = dims.get(k)
            sizes[k] = (v if type(v) is str and v.isascii() and len(v) <= most
                        else chk.text(v, f"dimensions.{k}")) or ""
        snap["dimensions"] = sizes
    elif dims is not None:
        chk.found.append(f"field dimensions: expected an object, got {_kind(dims)}")
    images = get("images")
    if is_variation:
        images = [raw["image"]] if isinstance(get("image"), dict) else []
    pictures: list[dict[str, Any]] = []
    snap["images"] = pictures
    if images is not None and not isinstance(images, list):
        chk.found.append(f"field images: expected an array, got {_kind(images)}")
    float_ids = False
    for i, image in enumerate(images if isinstance(images, list) else ()):
        if not isinstance(image, dict):
            chk.found.append(f"field images[{i}]: expected an object, got {_kind(image)}")
            continue
        image_id = image.get("id")
        float_ids = float_ids or type(image_id) is float
        v = image.get("alt")
        pictures.append({"id": image_id, "alt": (
            v if type(v) is str and v.isascii() and len(v) <= most
            else chk.text(v, f"images[{i}].alt")) or ""})
    if rules.seo_plugin != "none":
        # Only a plugin's fields are read from the meta; without one, sync does not even ask
        # for it (``sync.fetch_fields``), so its shape is nothing of enrich's.
        meta = get("meta_data")
        if meta is not None and not isinstance(meta, list):
            chk.found.append(f"field meta_data: expected an array, got {_kind(meta)}")
            meta = []
        seo = read_seo(meta, rules.seo_plugin)
        snap["seo_plugin"] = rules.seo_plugin
        snap["seo"] = {f: _unescaped(chk.text(v, f"meta_data {f}")) for f, v in seo.items()}
    texts = visible_texts(snap)
    snap["fingerprints"] = {f: fingerprint(texts[f]) for f in FINGERPRINTED
                            if len(texts[f]) >= FINGERPRINT_MIN_CHARS}
    modified = get("date_modified_gmt")
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
    # Every value of the snapshot is text, a checked integer or built from those, but for
    # image ids, copied as they came: a float among them is hashed by json (``_has_float``).
    out = Record(str(pid), str(parent_id) if parent_id else None, snap.get("type"),
                 snap.get("sku") or None, snap.get("name") or None, snap.get("status"),
                 snap, _digest(snap, floats=float_ids), modified)
    out.texts = texts
    return out


def sales_signals(raw: Mapping[str, Any], parent: Mapping[str, Any] | None = None
                  ) -> tuple[str | None, int | None]:
    """(stock_status, total_sales) of a product as the store sent it; a variation counts its
    parent's sales (WooCommerce keeps none per variation).

    Never an error: these only order the queue, so an odd value (a string count, an unknown
    stock status) is read as well as it can be, or as unknown, and the product is synced.
    """
    stock = raw.get("stock_status")
    stock = stock if isinstance(stock, str) and stock in STOCK_STATUSES else None
    sales = (parent if parent is not None else raw).get("total_sales")
    if isinstance(sales, str) and sales.strip().isdigit():
        sales = int(sales.strip())
    if isinstance(sales, bool) or not isinstance(sales, int) or sales < 0:
        sales = None
    return stock, sales


def apply_evaluation(record: Record, rules: Rules, boilerplate: frozenset[str],
                     published: dict[str, Any] | None = None) -> Record:
    """Decide ``record`` in place; an invalid one keeps the reason its snapshot gave it.

    ``published``: the fields enrich published on it, as stored; one still holding that
    value is done (``enrich.missing``)."""
    if record.state != "invalid":
        ev = evaluate(record.snapshot, rules, boilerplate, record.texts, published)
        record.state, record.missing, record.why, record.reason = (
            ev.state, ev.missing, ev.why, ev.reason)
    return record


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


__all__ = [
    "STORE_KEYS",
    "Record",
    "apply_evaluation",
    "build_record",
    "canonical_json",
    "content_hash",
    "sales_signals",
    "store_snapshot",
]
