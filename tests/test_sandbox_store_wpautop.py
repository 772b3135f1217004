"""View-context text: wpautop and wptexturize as the real store applies them.

The (stored, served) pairs come from the recordings in fixtures/woocommerce-contract/
(put_product_fields_and_meta.json, list bodies and the variation PUT).
"""

from __future__ import annotations

import pytest

from enrich.sandbox.store_wpautop import (
    view_description,
    view_short_description,
    wpautop,
    wptexturize,
)


@pytest.mark.parametrize("stored, served", [
    ("<p>Full description for item 3.</p><ul><li>Feature A</li><li>Feature B</li></ul>",
     "<p>Full description for item 3.</p>\n<ul>\n<li>Feature A</li>\n<li>Feature B</li>\n"
     "</ul>\n"),
    ("<p>New long description.</p>\n\nSecond paragraph without tags.",
     "<p>New long description.</p>\n<p>Second paragraph without tags.</p>\n"),
    ("Plain short text", "<p>Plain short text</p>\n"),
    ("<p>Supplier description for item 4. Material and care info.</p>",
     "<p>Supplier description for item 4. Material and care info.</p>\n"),
    ("Variation description via REST", "<p>Variation description via REST</p>\n"),
    ("", ""),
])
def test_recorded_pairs(stored: str, served: str) -> None:
    assert view_description(stored) == served
    assert view_short_description(stored) == served


def test_single_newlines_become_br_and_blocks_are_not_wrapped() -> None:
    assert wpautop("Line one\nline two") == "<p>Line one<br />\nline two</p>\n"
    assert wpautop("<h2>Care</h2>\nWash cold.") == "<h2>Care</h2>\n<p>Wash cold.</p>\n"


@pytest.mark.parametrize("text, expected", [
    ("Don't say \"hi\" - ok...", "Don&#8217;t say &#8220;hi&#8221; &#8211; ok&#8230;"),
    ('A 15" sleeve, 24x36 cm', "A 15&#8243; sleeve, 24&#215;36 cm"),
    ("Rock -- roll --- yes", "Rock &#8212; roll &#8212; yes"),
    ("pre-wash", "pre-wash"),
    ('<a href="x-y">a - b</a>', '<a href="x-y">a &#8211; b</a>'),
])
def test_texturize_touches_text_not_tags(text: str, expected: str) -> None:
    assert wptexturize(text) == expected
