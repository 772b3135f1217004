"""Client-side checks of every field enrich writes, before anything is sent.

Why this exists: WooCommerce checks types on a single ``PUT``, but items of
``POST /products/batch`` are not validated at all. A price sent as an object is stored and
returned as an object forever after; ``status: "bogus"`` silently becomes ``draft``; and a
``name`` that is not a string crashes PHP with a 500 for the whole request *after* the items
before it were already saved (recorded in fixtures/woocommerce-contract/). So a write
leaves this process only when every field of every item has the type and shape the store
expects; otherwise an ``InputError`` names the product and the field and nothing is sent.

Only the fields enrich has a reason to write are allowed; anything else is refused, so a
typo cannot become a silently ignored (unknown top-level fields are ignored by the store)
or a surprising write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from enrich.errors import InputError

MAX_BATCH_ITEMS = 100
DEFAULT_MAX_FIELD_BYTES = 1_000_000
MAX_NAME_CHARS = 400

TEXT_FIELDS = ("description", "short_description")
STATUSES = ("publish", "draft", "pending", "private", "future")
_PRICE = re.compile(r"^(\d+(\.\d+)?)?$")
# C0 controls other than tab, newline and carriage return never belong in copy.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

_HINT = "Nothing was sent to the store. Fix the draft or the caller and publish again."


def _fail(record: str, field: str, problem: str) -> InputError:
    return InputError(f"{record}: field {field}: {problem}", _HINT)


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


def check_text(value: Any, record: str, field: str, *, max_bytes: int = DEFAULT_MAX_FIELD_BYTES,
               allow_empty: bool = True) -> str:
    """A string of valid UTF-8, without control characters, at most ``max_bytes`` long."""
    if not isinstance(value, str):
        raise _fail(record, field, f"expected a string, got {_type_name(value)}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise _fail(record, field, f"not valid UTF-8 (lone surrogate at character "
                                   f"{exc.start})") from None
    if size > max_bytes:
        raise _fail(record, field, f"{size:,} bytes, over the limit of {max_bytes:,}")
    bad = _CONTROL.search(value)
    if bad:
        raise _fail(record, field, f"control character {bad.group()!r} at character "
                                   f"{bad.start()}")
    if not allow_empty and not value.strip():
        raise _fail(record, field, "empty")
    return value


def _check_id(value: Any, record: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _fail(record, field, f"expected a positive integer id, got {value!r}")
    return value


def _check_meta(value: Any, record: str, max_bytes: int) -> None:
    if not isinstance(value, list):
        raise _fail(record, "meta_data", f"expected an array, got {_type_name(value)}")
    seen: set[str] = set()
    for i, entry in enumerate(value):
        where = f"meta_data[{i}]"
        if not isinstance(entry, Mapping):
            raise _fail(record, where, f"expected an object, got {_type_name(entry)}")
        extra = set(entry) - {"key", "value"}
        if extra:
            raise _fail(record, where, f"unexpected keys {sorted(extra)} (send key and value "
                                       "only: an id without a key is ignored by the store)")
        key = check_text(entry.get("key"), record, f"{where}.key", max_bytes=255,
                         allow_empty=False)
        if key in ("_sku", "_price", "_regular_price", "_sale_price"):
            raise _fail(record, f"{where}.key", f"{key} is an internal WooCommerce key, "
                                                 "not plain meta")
        if key in seen:
            raise _fail(record, f"{where}.key", f"{key} appears twice")
        seen.add(key)
        if entry.get("value") is not None:
            check_text(entry.get("value"), record, f"{where}.value", max_bytes=max_bytes)


def _check_images(value: Any, record: str) -> None:
    if not isinstance(value, list):
        raise _fail(record, "images", f"expected an array, got {_type_name(value)}")
    for i, image in enumerate(value):
        where = f"images[{i}]"
        if not isinstance(image, Mapping):
            raise _fail(record, where, f"expected an object, got {_type_name(image)}")
        extra = set(image) - {"id", "alt", "name", "position"}
        if extra:
            raise _fail(record, where, f"unexpected keys {sorted(extra)}")
        _check_id(image.get("id"), record, f"{where}.id")
        for key in ("alt", "name"):
            if key in image:
                check_text(image[key], record, f"{where}.{key}", max_bytes=4096)
        if "position" in image and (isinstance(image["position"], bool)
                                    or not isinstance(image["position"], int)):
            raise _fail(record, f"{where}.position", "expected an integer")


def _check_terms(value: Any, record: str, field: str) -> None:
    if not isinstance(value, list):
        raise _fail(record, field, f"expected an array, got {_type_name(value)}")
    for i, term in enumerate(value):
        if not isinstance(term, Mapping) or set(term) != {"id"}:
            raise _fail(record, f"{field}[{i}]", "expected {\"id\": <term id>} (an unknown id "
                                                 "silently becomes Uncategorized)")
        _check_id(term["id"], record, f"{field}[{i}].id")


def check_product_update(data: Mapping[str, Any], record: str, *,
                         max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES) -> None:
    """Raise ``InputError`` unless every field of one product update is well formed."""
    if not isinstance(data, Mapping):
        raise InputError(f"{record}: expected an object of fields, got {_type_name(data)}",
                         _HINT)
    for field, value in data.items():
        if field == "id":
            continue  # checked by the caller: it must match the target
        if field == "name":
            text = check_text(value, record, field, max_bytes=max_field_bytes,
                              allow_empty=False)
            if len(text) > MAX_NAME_CHARS:
                raise _fail(record, field, f"{len(text)} characters, over {MAX_NAME_CHARS}")
        elif field in TEXT_FIELDS:
            check_text(value, record, field, max_bytes=max_field_bytes)
        elif field == "meta_data":
            _check_meta(value, record, max_field_bytes)
        elif field == "images":
            _check_images(value, record)
        elif field in ("categories", "tags"):
            _check_terms(value, record, field)
        elif field in ("regular_price", "sale_price"):
            check_text(value, record, field, max_bytes=32)
            if not _PRICE.match(value):
                raise _fail(record, field, f"{value!r} is not a price like \"19.99\" (the store "
                                           "clears or mangles it instead of refusing)")
        elif field == "status":
            if value not in STATUSES:
                raise _fail(record, field, f"{value!r} is not one of {', '.join(STATUSES)}")
        elif field in ("sku", "slug"):
            check_text(value, record, field, max_bytes=400)
        else:
            raise _fail(record, field, "not a field enrich writes")


def check_batch(items: Sequence[Mapping[str, Any]], *,
                max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES) -> list[int]:
    """Check a ``/products/batch`` update list; returns the ids in order."""
    if len(items) > MAX_BATCH_ITEMS:
        raise InputError(f"batch of {len(items)} items: WooCommerce refuses more than "
                         f"{MAX_BATCH_ITEMS} (413) and applies none",
                         f"Split it into batches of at most {MAX_BATCH_ITEMS}.")
    ids: list[int] = []
    for i, item in enumerate(items):
        record = f"batch item {i}"
        if not isinstance(item, Mapping):
            raise InputError(f"{record}: expected an object, got {_type_name(item)}", _HINT)
        product_id = _check_id(item.get("id"), record, "id")
        record = f"product {product_id}"
        if product_id in ids:
            raise _fail(record, "id", "appears twice in one batch (both would be applied)")
        ids.append(product_id)
        check_product_update(item, record, max_field_bytes=max_field_bytes)
    return ids
