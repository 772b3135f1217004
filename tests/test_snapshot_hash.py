"""The fast paths of sync (orjson hashing and decoding) give exactly what ``json`` gives.

Every ledger's content hashes were made with ``canonical_json``; a hash that changed for the
same product would supersede its job and throw its draft away. So the orjson path is checked
against the definition on real catalogs and on the values where the two libraries differ.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest

from enrich.config import Settings, StoreConfig
from enrich.missing import Rules
from enrich.product_snapshot import STORE_KEYS, build_record, canonical_json, content_hash
from enrich.sandbox.catalog import synthetic_catalog
from enrich.woo.client import _decode_json
from tests.guard_helpers import catalog

RULES = Rules.from_settings(Settings(store=StoreConfig(url="https://shop.example")))


def _definition(snapshot: dict[str, Any]) -> str:
    own = {k: v for k, v in snapshot.items() if k not in STORE_KEYS}
    return hashlib.sha256(canonical_json(own).encode("ascii")).hexdigest()


def _products() -> list[dict[str, Any]]:
    """The fixture catalogs with store ids (some keep their source's SKU-like ids)."""
    fixtures = [{**p, "id": i} for i, p in enumerate(catalog(), start=1)]
    return [*fixtures, *synthetic_catalog(300, seed=3)]


def test_every_fixture_product_hashes_as_the_definition_says() -> None:
    products = _products()
    assert len(products) > 2000
    for raw in products:
        record = build_record(raw, RULES)
        assert record.content_hash == _definition(record.snapshot), raw.get("id")


#: Characters orjson writes differently from ``json(ensure_ascii=True)``, or that both escape:
#: ASCII ones (DEL is raw to orjson, \\u007f to json) and others (UTF-8 against \\u escapes).
AWKWARD_ASCII = ["\x7f", "\x00", "\x1f", "\x08", "\n", "\t", '"', "\\", "/", "</script>", "\r\n"]
AWKWARD = [*AWKWARD_ASCII, "é", "\u2013", "😀", "\u2028", "ß"]


@pytest.mark.parametrize(("seed", "alphabet"), [(0, AWKWARD_ASCII), (1, AWKWARD_ASCII),
                                                (2, AWKWARD), (3, AWKWARD)])
def test_awkward_text_hashes_as_the_definition_says(seed: int, alphabet: list[str]) -> None:
    rng = random.Random(seed)
    for raw in synthetic_catalog(60, seed=seed):
        for field in ("name", "description", "short_description", "sku"):
            raw[field] = "".join(rng.choice([*alphabet, "a", " ", "1"])
                                 for _ in range(rng.randint(1, 40)))
        record = build_record(raw, RULES)
        assert record.content_hash == _definition(record.snapshot)


@pytest.mark.parametrize("image_id", [12.0, 1e16, 1e-7, float("nan"), float("inf"), 2**70, None,
                                      "12", True])
def test_an_image_id_of_any_json_type_hashes_as_the_definition_says(image_id: Any) -> None:
    raw = next(iter(synthetic_catalog(1, seed=1)))
    raw["images"] = [{"id": image_id, "alt": "Front"}]
    record = build_record(raw, RULES)
    assert record.state != "invalid"
    assert record.content_hash == _definition(record.snapshot)


def test_store_units_stay_outside_the_hash() -> None:
    record = build_record(next(iter(synthetic_catalog(1, seed=1))), RULES)
    with_units = {**record.snapshot, "weight_unit": "lbs", "dimension_unit": "in"}
    assert content_hash(with_units) == record.content_hash


@pytest.mark.parametrize("body", [
    b'[{"id": 1, "name": "Caf\\u00e9", "n": 12.5, "big": 9223372036854775807}]',
    b'[{"id": 1, "name": "x\\ud800y"}]',         # a lone surrogate escape: json reads it
    b'[{"id": 1, "name": "caf\xe9"}]',            # Latin-1 bytes: read as surrogates
    b'[{"id": 1, "price": NaN}]',                 # not JSON, but json reads it
    b'\xef\xbb\xbf[{"id": 1}]',                   # a byte order mark
    b'[{"id": 1, "id": 2}]',                      # the last key wins in both
])
def test_store_bodies_decode_as_json_decodes_them(body: bytes) -> None:
    try:
        expected = json.loads(body)
    except UnicodeDecodeError:
        expected = json.loads(body.decode("utf-8", errors="surrogateescape"))
    got = _decode_json(body)
    assert repr(got) == repr(expected)  # repr: NaN is not equal to itself


def test_fingerprints_of_ascii_text_are_the_regex_definition() -> None:
    """Fingerprints are stored in snapshots (and hashed with them): the ASCII fast path
    must part words exactly where ``[^\\w]+`` does, control characters included."""
    import re

    from enrich.missing import fingerprint

    def definition(text: str) -> str:
        norm = re.sub(r"[^\w]+", " ", text.lower()).strip()
        return hashlib.sha256(norm.encode("utf-8", "surrogatepass")).hexdigest()[:16]

    rng = random.Random(7)
    alphabet = [chr(i) for i in range(128)] + ["  ", "_", "Wool", "3.5 kg", "\x1c", "é", "ß"]
    texts = ["", "   ", "_", "Solid walnut -- side table!", "\tTabs\x0band\x1fseparators\x1c"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60)))
              for _ in range(3000)]
    for text in texts:
        assert fingerprint(text) == definition(text), repr(text)


@pytest.mark.parametrize(("option", "problem"), [
    ("Wool", None), ("Grün", None), (None, None), (7, "expected a string, got integer"),
    ("Caf\udcff", "not valid UTF-8"),
    ("x" * 1_000_001, "1,000,001 bytes, over sync.max_field_bytes")])
def test_an_attribute_with_one_option_is_checked_as_one_with_several(option: Any,
                                                                      problem: str | None) -> None:
    # One option (Colour: Green) takes a shorter path than several; the verdict, the
    # reason and the stored value must be what the path for several gives.
    one = build_record({"id": 1, "attributes": [{"name": "Colour", "options": [option]}]},
                       RULES)
    two = build_record({"id": 1, "attributes": [{"name": "Colour",
                                                 "options": [option, "Blue"]}]}, RULES)
    assert one.snapshot["attributes"][0]["options"] == \
        two.snapshot["attributes"][0]["options"][:1]
    if problem is None:
        assert one.state == two.state != "invalid"
        assert one.snapshot["attributes"][0]["options"] == [option or ""]
    else:
        assert one.state == two.state == "invalid"
        assert one.reason == two.reason
        assert f"field attributes[0].options: {problem}" in (one.reason or "")
