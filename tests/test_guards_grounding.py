"""The grounding guard's number reading, and the property that copy made only of the
source's own text is never flagged (on every product of three real catalogs)."""

from __future__ import annotations

import random
import re
from decimal import Decimal
from typing import Any

import pytest
from guard_helpers import magento_gear_products, saleor_products, woo_products

from enrich.guards.draft import check_draft
from enrich.guards.grounding import codes, number_values, quantities
from enrich.guards.text import Source

CATALOG = woo_products() + magento_gear_products() + saleor_products()


def _runs(product: dict[str, Any]) -> list[list[str]]:
    """Each source string as whole words (split on plain spaces), tags stripped."""
    source = Source(product)
    return [text.split(" ") for _key, _parent, text in source.texts if text.strip()]


def _draft_from_source(product: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    runs = _runs(product)
    pieces = []
    for _ in range(rng.randint(1, 6)):
        words = rng.choice(runs)
        start = rng.randrange(len(words))
        end = rng.randint(start + 1, min(len(words), start + 25))
        pieces.append(" ".join(words[start:end]))
    html = "".join(f"<p>{p}</p>" if rng.random() < 0.5 else f"<li>{p}</li>" for p in pieces)
    return {"description": html, "meta_description": pieces[0],
            "seo_title": pieces[-1], "short_description": "\n\n".join(pieces)}


@pytest.mark.parametrize("seed", range(5))
def test_copy_built_only_from_source_text_is_never_flagged_for_grounding(seed: int) -> None:
    rng = random.Random(seed)
    checked = 0
    for product in CATALOG:
        for _ in range(4):
            draft = _draft_from_source(product, rng)
            flags = [f for f in check_draft(draft, product).flags if f.guard == "grounding"]
            assert flags == [], (product["id"], draft, flags)
            checked += 1
    assert checked == 4 * len(CATALOG) > 400


def test_the_catalog_has_numbers_to_ground() -> None:
    """The property above is only meaningful if the drafts carry numbers and units."""
    with_units = sum(1 for p in CATALOG for q in quantities(Source(p).text) if q.unit)
    assert with_units > 50


def test_a_changed_number_in_copied_text_is_flagged() -> None:
    rng = random.Random(7)
    flagged = 0
    for product in magento_gear_products():
        text = Source(product).text
        found = [q for q in quantities(text) if all(v < 10_000 for v in q.values)]
        if not found:
            continue
        q = rng.choice(found)
        bigger = max(max(v for qq in quantities(text) for v in qq.values), Decimal(0)) + 17
        changed = str(int(bigger)) + (f" {q.unit}" if q.unit else "")
        draft = {"description": f"<p>{product['name']} now with {changed} more.</p>"}
        details = [f.detail for f in check_draft(draft, product).flags
                   if f.guard == "grounding"]
        assert any(str(int(bigger)) in d for d in details), (product["id"], changed, details)
        flagged += 1
    assert flagged > 20


@pytest.mark.parametrize(("text", "values", "unit"), [
    ("300W", {"300"}, "W"), ("300 W", {"300"}, "W"), ("300 watts", {"300"}, "W"),
    ("300-watt", {"300"}, "W"), ("1,000 mAh", {"1000", "1"}, "mAh"),
    ("1000mAh", {"1000"}, "mAh"), ("12,345.50", {"12345.5"}, None),
    ("1.234,5 kg", {"1234.5"}, "kg"), ("2.50", {"2.5"}, None), (".5 lbs", {"0.5"}, "lb"),
    ("20%", {"20"}, "%"), ("20 percent", {"20"}, "%"), ("$45", {"45"}, "USD"),
    ("45 €", {"45"}, "EUR"), ("1\u00a0000 ml", {"1000"}, "ml"), ("2 fl oz", {"2"}, "fl oz"),
    ("-20 °C", {"20"}, "°C"), ("64GB", {"64"}, "GB"), ("3 years", {"3"}, "year"),
])
def test_numbers_and_units_are_normalised(text: str, values: set[str], unit: str | None
                                           ) -> None:
    found = list(quantities(text))
    assert len(found) == 1, found
    assert {Decimal(v) for v in values} == set(found[0].values)
    assert found[0].unit == unit


def test_addresses_and_codes_are_not_read_as_quantities() -> None:
    text = "See https://shop.example.com/2017/12/item-500.jpg or call 555-010-4477. WH-1000XM4"
    assert [q.text for q in quantities(text)] == []
    assert list(codes(text)) == ["1000XM4"]
    assert list(codes("It has 64GB, the 3rd model, in 4K")) == ["4K"]


def test_written_numbers_can_mean_both_conventions() -> None:
    assert number_values("1.000") == {Decimal(1000), Decimal(1)}
    assert number_values("1,5") == {Decimal("1.5")}
    assert number_values("1.000.000") == {Decimal(1_000_000)}


def test_number_words_in_the_source_ground_digits() -> None:
    product = {"name": "Socks", "description": "A pair of wool socks, sold by the dozen, "
                                               "in three colours."}
    draft = {"short_description": "<p>2 socks per pair, 12 pairs per box, 3 colours.</p>"}
    assert check_draft(draft, product).flags == []
    assert re.search("4", check_draft({"short_description": "<p>Comes in 4 colours, wool "
                                                            "socks.</p>"}, product)
                     .flags[0].detail)
