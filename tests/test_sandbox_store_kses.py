"""The store's rewriting of product copy (unslash + kses), unit by unit and over HTTP.

The recorded pair comes from fixtures/woocommerce-contract/copy_normalisation.json; the
other expectations follow WordPress 7.0's kses.php (each case says which rule it shows).
"""

from __future__ import annotations

import json

import pytest

from enrich.config import SAFE_HTML_TAGS
from enrich.guards.html import sanitize_html
from enrich.sandbox.store_kses import (
    php_stripslashes,
    safecss_filter_attr,
    store_product_copy,
    store_variation_copy,
    stored_copy,
    wp_kses,
    wp_kses_bad_protocol,
    wp_kses_normalize_entities,
)
from enrich.sandbox.store_wpautop import view_description
from tests.paths import CONTRACT_DIR
from tests.store_helpers import contract_store


@pytest.mark.parametrize("sent, stored", [
    ("a\\nb", "anb"),
    ("C:\\\\Temp\\\\file", "C:\\Temp\\file"),
    ("trailing \\", "trailing "),
    ("\\\\\\", "\\"),
    ("it\\'s \\\"q\\\"", "it's \"q\""),
    ("nul \\0 here", "nul \0 here"),
    ("no backslash", "no backslash"),
])
def test_stripslashes_is_php_stripslashes(sent: str, stored: str) -> None:
    assert php_stripslashes(sent) == stored


def test_the_recorded_exchange() -> None:
    cases = json.loads((CONTRACT_DIR / "copy_normalisation.json").read_text())["cases"]
    sent, stored = cases[1]["request"]["json_body"], cases[2]["body"]
    for key in ("description", "short_description"):
        assert store_product_copy(sent[key]) == stored[key], key


@pytest.mark.parametrize("given, kept", [
    # disallowed tags go, their text stays, whatever the case or nesting
    ("<SCRIPT>alert(1)</SCRIPT>", "alert(1)"),
    ("<div><p><script><b>x</b></script></p></div>", "<div><p><b>x</b></p></div>"),
    ("<iframe src=\"https://x\"></iframe><form action=\"/x\"><input name=q></form>t", "t"),
    ("<style>p{color:red}</style>", "p{color:red}"),
    # disallowed attributes go, allowed ones are re-quoted with syntax characters escaped
    ("<p onclick=\"x()\" class=\"a\">t</p>", "<p class=\"a\">t</p>"),
    ("<p title='say \"hi\"'>t</p>", "<p title=\"say &quot;hi&quot;\">t</p>"),
    ("<p title=\"it's\">t</p>", "<p title=\"it&apos;s\">t</p>"),
    ("<P CLASS=x>t</P>", "<P class=\"x\">t</P>"),
    ("<img src=x onerror=alert(1)>", "<img src=\"x\">"),
    ("<br/>", "<br />"),
    ("<a href=\"x\" data-id=\"7\" data-Bad!=\"1\">t</a>", "<a href=\"x\" data-id=\"7\">t</a>"),
    ("<p class=\"x\" class=\"y\">t</p>", "<p class=\"x\">t</p>"),
    ("<p title=\"unclosed>t</p>", "<p>t</p>"),
    # bad protocols are stripped from URL attributes only
    ("<a href=\"JaVaScRiPt:alert(1)\">t</a>", "<a href=\"alert(1)\">t</a>"),
    ("<a href=\"javascript&#58;alert(1)\">t</a>", "<a href=\"alert(1)\">t</a>"),
    ("<a href=\"java script:x\">t</a>", "<a href=\"x\">t</a>"),
    ("<a href=\"mailto:a@b.c\">t</a> <a href=\"tel:+1\">u</a>",
     "<a href=\"mailto:a@b.c\">t</a> <a href=\"tel:+1\">u</a>"),
    ("<a href=\"/p?a=1&amp;b=2\">t</a>", "<a href=\"/p?a=1&amp;b=2\">t</a>"),
    ("<p title=\"javascript:x\">t</p>", "<p title=\"javascript:x\">t</p>"),
    # entities: a bare & is escaped, valid references kept (decimal ones padded to 3 digits)
    ("a & b", "a &amp; b"),
    ("&amp; &nbsp; &eacute; &#x26; &#8364;", "&amp; &nbsp; &eacute; &#x26; &#8364;"),
    ("&#38; &#0038;", "&#038; &#038;"),
    ("&bogus; &#0; &#xD800;", "&amp;bogus; &amp;#0; &amp;#xD800;"),
    # a stray > and an unclosed < are text
    ("5 > 3", "5 &gt; 3"),
    ("only 5 < 6", "only 5 &lt; 6"),
    # comments and plain text are kept
    ("<!-- note --> plain \"quoted\" 'text'", "<!-- note --> plain \"quoted\" 'text'"),
    # style values keep only declarations WordPress considers safe
    ("<span style=\"color: red; behavior: url(x)\">t</span>",
     "<span style=\"color: red\">t</span>"),
    ("<span style=\"expression(alert(1))\">t</span>", "<span>t</span>"),
])
def test_kses_post(given: str, kept: str) -> None:
    assert wp_kses(given) == kept


def test_kses_is_stable_on_its_own_output() -> None:
    """What the store holds comes back the same when written again (no backslashes)."""
    for text in ("<p>a & b <script>x</script> <a href=\"javascript:y\">z</a></p>",
                 "<p title='q\"'>5 < 6 > 4 &#38;</p>", "<SCRIPT>1</SCRIPT>&nbsp;&bogus;"):
        once = store_product_copy(text)
        assert store_product_copy(once) == once, text


def test_bad_protocol_helpers() -> None:
    assert wp_kses_bad_protocol("feed:javascript:x") == "feed:x"
    assert wp_kses_bad_protocol("https://example.com/a:b") == "https://example.com/a:b"
    assert wp_kses_normalize_entities("AT&T &#X41;") == "AT&amp;T &#x41;"
    assert safecss_filter_attr("color:red;width:calc(100% - 2px);x:1") == \
        "color:red;width:calc(100% - 2px)"


def test_windows_1252_references_become_unicode_on_products_only() -> None:
    assert store_product_copy("&#150; &#128;") == "&#8211; &#8364;"
    assert store_variation_copy("&#150;") == "&#150;"


def test_variation_description_is_kses_then_unslash() -> None:
    assert store_variation_copy("a\\nb <script>c</script>") == "anb c"
    assert stored_copy("a\\nb", variation=True) == stored_copy("a\\nb") == "anb"


_MESSY_DRAFTS = [
    "<p>Solid oak & steel, 5 > 3 legs; \"sturdy\" and it's <b>bold</b></p>"
    "<script>alert(1)</script><ul><li>Dims: 40×60 cm</li><li>Care: wipe</li></ul>",
    "<h2>Features</h2><p onclick=\"x()\">Clean &nbsp;lines &amp; soft &#8211; edges</p>"
    "<table><tr><td>a</td></tr></table><a href=\"https://shop.example/care\">care</a>"
    "<a href=\"javascript:x\">bad</a>",
    "<p>Line one<br>Line two</p><blockquote>Quote</blockquote><hr><dl><dt>t</dt><dd>d</dd>"
    "</dl><span>s</span><sup>2</sup><sub>x</sub><h6>h</h6><em>e</em><u>u</u><i>i</i>",
    "<p>Price < 20 € — 50% off & free shipping</p><!-- hidden --><ol><li>1</li></ol>",
    "<p>A literal C:\\Temp\\file and \\n from the supplier</p>",
]


@pytest.mark.parametrize("raw", _MESSY_DRAFTS)
def test_a_guarded_draft_survives_the_store_except_backslashes(raw: str) -> None:
    """HTML as the guards' nh3 sanitiser emits it needs nothing from kses: only the
    unslashing changes it (a draft holding a backslash is changed by the store)."""
    draft, _ = sanitize_html(raw, SAFE_HTML_TAGS, {"shop.example/care"})
    assert store_product_copy(draft) == php_stripslashes(draft)
    if "\\" not in draft:
        assert store_product_copy(draft) == draft


def test_the_sandbox_store_rewrites_copy_on_every_write_path() -> None:
    """PUT, POST, products/batch create+update, variation PUT and variations/batch all keep
    what WordPress would; meta values are stored as sent."""
    sent = "<p>x\\ny & <script>s</script><a href=\"javascript:j\">l</a></p>"
    product_copy = "<p>xny &amp; s<a href=\"j\">l</a></p>"
    # variations are served through wpautop, as recorded in variations.json
    variation_copy = view_description("<p>xny &amp; s<a href=\"j\">l</a></p>")
    meta = [{"key": "_yoast_wpseo_metadesc", "value": "a\\nb & <script>"}]
    with contract_store() as shop:
        client = shop.client()
        api = "/wp-json/wc/v3/products"
        put = client.put(f"{api}/40", json={"description": sent, "short_description": sent,
                                             "meta_data": meta}).json()
        created = client.post(api, json={"name": "K", "description": sent}).json()
        batch = client.post(f"{api}/batch", json={
            "create": [{"name": "K2", "short_description": sent}],
            "update": [{"id": 41, "description": sent}]}).json()
        variation = client.put(f"{api}/11/variations/26", json={"description": sent}).json()
        vbatch = client.post(f"{api}/11/variations/batch", json={
            "update": [{"id": 27, "description": sent}]}).json()
        read = client.get(f"{api}/40", params={"context": "edit"}).json()
        view = client.get(f"{api}/40").json()
    assert put["description"] == put["short_description"] == product_copy
    assert [(m["key"], m["value"]) for m in put["meta_data"]] == \
        [(m["key"], m["value"]) for m in meta]
    assert created["description"] == product_copy
    assert batch["create"][0]["short_description"] == product_copy
    assert batch["update"][0]["description"] == product_copy
    assert variation["description"] == vbatch["update"][0]["description"] == variation_copy
    assert read["description"] == product_copy
    # view context runs wpautop over the stored (already normalised) text, once
    assert view["description"] == view_description(product_copy)


def test_an_admin_edit_in_wp_admin_is_stored_as_typed() -> None:
    """wp-admin saves an administrator's copy unfiltered: a literal backslash or a bare &
    typed there is what the next sync reads (and what a REST write would have changed)."""
    with contract_store() as shop:
        typed = "Supplier text with a literal \\n & <b>bold</b>"
        edited = shop.store.edit(40, description=typed)
        read = shop.client().get("/wp-json/wc/v3/products/40",
                                 params={"context": "edit"}).json()
    assert edited["description"] == read["description"] == typed
