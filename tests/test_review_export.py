"""The review page export: escaping, self-containment, filters, the sample, the shop HTML."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner
from review_helpers import SCRIPT_NAME, sample_rows, seed_sample_catalog

from enrich.cli.main import cli
from enrich.ledger import Ledger
from enrich.review.export import _env, export_review
from enrich.review.queries import EXPORTS_META_PREFIX, current_text, review_items
from enrich.review.sample import stratified_sample, stratum


def _page_data(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="review-data">(.*?)</script>',
                      html, re.S)
    assert match, "the page embeds its data as JSON"
    return json.loads(match.group(1))


def test_page_is_self_contained_and_product_text_is_escaped(ledger: Ledger,
                                                            tmp_path: Path) -> None:
    seed_sample_catalog(ledger, script_name=True)
    out = tmp_path / "review.html"
    result = export_review(ledger, out)
    html = out.read_text(encoding="utf-8")
    assert result.count == len(sample_rows())
    # The product named <script>alert(1)</script> never appears as markup.
    assert SCRIPT_NAME not in html
    assert "<img src=x" not in html
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in html
    # Exactly two scripts: the data (JSON, not executed) and the page's own, with the nonce.
    scripts = re.findall(r"<script[^>]*>", html)
    assert len(scripts) == 2
    nonce = re.search(r"'nonce-([^']+)'", html).group(1)
    assert scripts[1] == f'<script nonce="{nonce}">'
    assert scripts[0] == '<script type="application/json" id="review-data">'
    # Nothing is fetched: no external stylesheet, script, image, font or frame.
    markup = re.sub(r"(<script[^>]*>).*?</script>", r"\1</script>", html, flags=re.S)
    assert not re.search(r"<(link|img|iframe|object|embed)\b", markup)
    assert not re.search(r"\b(src|href)\s*=", markup)
    assert "@import" not in markup and "url(" not in markup
    code = html.rsplit("<script nonce=", 1)[1]
    assert "http://" not in code and "https://" not in code and "innerHTML" not in code
    assert "default-src 'none'" in html
    data = _page_data(html)
    names = [item["name"] for item in data["items"]]
    assert SCRIPT_NAME in names
    assert data["config"]["mode"] == "file" and data["config"]["token"] is None
    assert data["config"]["export_id"] == result.export_id
    assert ledger.get_meta(EXPORTS_META_PREFIX + result.export_id) is not None


def test_page_carries_what_a_reviewer_needs(ledger: Ledger, tmp_path: Path) -> None:
    ids = seed_sample_catalog(ledger)
    data = _page_data(export_review(ledger, None).html)
    item = next(i for i in data["items"] if i["job_id"] == ids[1])
    draft = ledger.draft_for(ids[1])
    assert item["draft_id"] == draft["id"]
    assert item["draft_created_at"] == draft["created_at"]
    assert item["template"] == "product_copy.j2" and item["template_hash"] == "3f9a1c2b7d"
    assert (item["provider"], item["model"]) == ("offline", "offline-v1")
    meta = next(f for f in item["fields"] if f["name"] == "meta_description")
    assert (meta["min"], meta["max"]) == (120, 160)
    assert meta["draft"] == draft["fields"]["meta_description"]
    title = next(f for f in item["fields"] if f["name"] == "seo_title")
    assert title["max"] == 60
    short = next(f for f in item["fields"] if f["name"] == "short_description")
    product = ledger.get_product(ledger.get_job(ids[1]).source_id)
    assert short["current"] == product["snapshot"]["short_description"]
    # The text travels once; the diff and the preview are made in the page for the draft
    # in view. HTML fields say so, and carry nh3's cleaning where it changed the text.
    assert "diff" not in short and short["html"] is True and title["html"] is False
    assert "draft_html" not in short  # the guards cleaned the draft already
    assert data["config"]["html_tags"] == ["p", "br", "ul", "ol", "li", "strong", "em", "h2",
                                           "h3", "h4"]
    # The store's current description is the field's current text, not repeated below.
    assert "short_description" not in dict(item["source"])
    assert item["flags"] and all(f["explanation"] for f in item["flags"])
    assert item["flags"][0]["guard"] == "grounding"
    source = dict(item["source"])
    assert source["name"] == product["name"]
    assert "description" in source  # not a field of this draft: kept
    assert "Color" in source["attributes"]
    assert "why it needs copy" in source


def test_current_text_reads_flat_seo_and_plugin_meta() -> None:
    assert current_text({"seo": {"seo_title": "From sync"}}, "seo_title") == "From sync"
    snap = {"meta_data": [{"key": "_yoast_wpseo_metadesc", "value": "Yoast text"}]}
    assert current_text(snap, "meta_description") == "Yoast text"
    assert current_text({"images": [{"id": 1, "alt": "A hoodie"}]}, "image_alt") == "A hoodie"
    assert current_text({"description": "<p>x</p>"}, "description") == "<p>x</p>"
    assert current_text(None, "description") == ""


def test_filters_status_and_flagged_only(ledger: Ledger) -> None:
    ids = seed_sample_catalog(ledger)
    flagged = {i.job_id for i in review_items(ledger) if i.flags}
    assert flagged and len(flagged) < len(ids)
    only = export_review(ledger, None, flagged_only=True)
    assert {i["job_id"] for i in _page_data(only.html)["items"]} == flagged
    ledger.review(ids[0], "approved")
    approved = export_review(ledger, None, statuses=("approved",))
    assert [i["job_id"] for i in _page_data(approved.html)["items"]] == [ids[0]]
    drafted = export_review(ledger, None)
    assert ids[0] not in {i["job_id"] for i in _page_data(drafted.html)["items"]}


def test_stratified_sample_covers_every_category_and_flag(ledger: Ledger) -> None:
    seed_sample_catalog(ledger)
    items = review_items(ledger)
    strata = {stratum(i) for i in items}
    assert len(strata) >= 5
    picked = stratified_sample(items, len(strata) + 2, seed=7)
    assert len(picked) == len(strata) + 2
    assert {stratum(i) for i in picked} == strata
    assert [i.job_id for i in picked] == sorted(i.job_id for i in picked)
    again = stratified_sample(review_items(ledger), len(strata) + 2, seed=7)
    assert [i.job_id for i in again] == [i.job_id for i in picked]
    small = stratified_sample(items, 3, seed=1)
    assert len(small) == 3 and len({stratum(i) for i in small}) == 3
    assert len(stratified_sample(items, 1000)) == len(items)
    with pytest.raises(ValueError):
        stratified_sample(items, 0)


def test_cli_export_sample_and_json(ledger: Ledger, db_path: Path, tmp_path: Path) -> None:
    seed_sample_catalog(ledger)
    out = tmp_path / "spot.html"
    runner = CliRunner()
    res = runner.invoke(cli, ["--db", str(db_path), "review", "export", "--out", str(out),
                              "--sample", "5", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["drafts"] == 5 and summary["matching"] == len(sample_rows())
    assert len(_page_data(out.read_text(encoding="utf-8"))["items"]) == 5
    res = runner.invoke(cli, ["--db", str(db_path), "review", "export", "--out",
                              str(tmp_path / "all.html")])
    assert res.exit_code == 0, res.output
    assert "enrich review import decisions.json" in res.output
    res = runner.invoke(cli, ["--db", str(db_path), "review", "export", "--sample", "0"])
    assert res.exit_code == 2 and "--sample" in res.output


def test_template_ships_inside_the_package_and_autoescapes() -> None:
    template = resources.files("enrich.review") / "templates" / "review.html.j2"
    assert template.is_file()
    env = _env()
    assert env.autoescape("review.html.j2") is True  # type: ignore[operator]
    assert "&lt;b&gt;" in env.from_string("{{ x }}").render(x="<b>")
    text = template.read_text(encoding="utf-8")
    assert "{{ data|tojson }}" in text and "innerHTML" not in text


def test_shop_html_keeps_the_guards_allow_list_and_drops_the_rest(ledger: Ledger) -> None:
    """The shop view is fed nh3's output with the guards' tags: no attribute, link or
    script survives, and a field left untouched by cleaning carries no second copy."""
    from enrich.config import GuardsConfig
    from enrich.review.export import item_data
    from enrich.review.limits import field_limits

    ids = seed_sample_catalog(ledger, script_name=True)
    item = next(i for i in review_items(ledger) if i.job_id == ids[0])
    item.fields["description"] = ('<p onclick="x()">Warm <a href="https://evil.example">'
                                  'hoodie</a></p><script>alert(3)</script><img src=x>')
    data = item_data(item, field_limits(), list(GuardsConfig().html_tags))
    desc = next(f for f in data["fields"] if f["name"] == "description")
    assert desc["draft_html"] == "<p>Warm hoodie</p>"
    short = next(f for f in data["fields"] if f["name"] == "short_description")
    assert short["current_html"] == " &amp; more "  # the store's <img onerror> is gone
    title = next(f for f in data["fields"] if f["name"] == "seo_title")
    assert "draft_html" not in title and "current_html" not in title  # plain text fields


def test_every_guard_is_explained_in_words_on_the_page() -> None:
    from enrich.guards.draft import GUARDS
    from enrich.review.limits import GUARD_EXPLANATIONS

    assert set(GUARDS) <= set(GUARD_EXPLANATIONS), set(GUARDS) - set(GUARD_EXPLANATIONS)
