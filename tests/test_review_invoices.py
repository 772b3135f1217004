"""Invoice drafts in the review page: fields beside the PDF's text, flags in words, edits
re-checked with the invoice checks, and an edit + approval through a real browser.

Real parts: fixture PDFs added to a real ledger and extracted by the worker (offline
provider), the served page in Debian's Chromium (skipped with the reason where there is none).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from playwright.sync_api import Browser, sync_playwright

from enrich.cli.main import cli
from enrich.config import InvoicesConfig, Secrets, Settings
from enrich.invoices.checks import CHECKS
from enrich.invoices.intake import add_invoices
from enrich.ledger import Ledger
from enrich.review.decisions import Decision, apply_decision
from enrich.review.export import export_review
from enrich.review.limits import GUARD_EXPLANATIONS
from enrich.review.serve import ReviewServer
from enrich.worker import run_jobs
from tests.browser_helpers import launch, watched_page
from tests.paths import INVOICES

AZURE = INVOICES / "invoice2data" / "AzureInterior.pdf"
MUSTANG = INVOICES / "mustangproject" / "Facture_F20180027.pdf"


@pytest.fixture(scope="module")
def drafted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two invoices read from their text by the offline extractor, and one product-less
    ledger otherwise (the page shows what the ledger has)."""
    path = tmp_path_factory.mktemp("rev") / "drafted.db"
    settings = Settings(invoices=InvoicesConfig(use_embedded_xml=False))
    with Ledger(path) as ledger:
        report = add_invoices(ledger, settings, [AZURE, MUSTANG])
        assert report.queued == 2
        result = asyncio.run(run_jobs(ledger, settings, Secrets({}), kind="invoice",
                                      handle_signals=False))
        assert result.stats.drafted == 2
    return path


@pytest.fixture
def db(drafted: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "enrich.db"
    shutil.copyfile(drafted, copy)
    return copy


def _job(ledger: Ledger, pdf: Path) -> int:
    return next(j.id for j in ledger.list_jobs(kind="invoice") if j.source_id == str(pdf))


def test_every_invoice_check_is_explained_in_words() -> None:
    for name in CHECKS:
        assert GUARD_EXPLANATIONS.get(f"invoice_{name}"), name


def test_the_page_carries_fields_text_tables_and_page_one(db: Path) -> None:
    with Ledger(db) as ledger:
        result = export_review(ledger, None, kind="invoice")
        assert export_review(ledger, None, kind="product").count == 0
        both = export_review(ledger, None)
    assert result.count == 2 and both.count == 2
    data = json.loads(result.html.split('id="review-data">', 1)[1]
                      .split("</script>", 1)[0])
    azure = next(i for i in data["items"] if i["source_id"] == str(AZURE))
    fields = {f["name"]: f for f in azure["fields"]}
    assert fields["invoice_number"]["draft"] == "INV/2023/03/0008"
    assert fields["supplier.name"]["label"] == "Supplier" and fields["total"]["editable"]
    assert "INV/2023/03/0008" in azure["invoice"]["text"]
    assert azure["invoice"]["image"].startswith("data:image/png;base64,")
    assert len(azure["invoice"]["image"]) < 120_000
    assert azure["invoice"]["lines"] and len(azure["invoice"]["lines"][0]) == 6


def test_an_edit_is_rechecked_with_the_invoice_checks_and_stored_whole(db: Path) -> None:
    with Ledger(db) as ledger:
        job = _job(ledger, AZURE)
        draft = ledger.draft_for(job)
        assert draft is not None
        total = draft["fields"]["total"]
        assert not any(f["guard"] == "invoice_total_sum" for f in draft["flags"])

        def decide(edits: dict[str, str]) -> object:
            now = ledger.draft_for(job)
            assert now is not None
            return apply_decision(ledger, Decision(job_id=job, draft_id=now["id"],
                                                   decision="approved", edited_fields=edits,
                                                   flagged_ack=True))

        bad = decide({"issue_date": "31.02.2023"})
        assert not bad.applied and "issue_date" in bad.reason  # type: ignore[attr-defined]
        unknown = decide({"lines": "x"})
        assert not unknown.applied and "'lines'" in unknown.reason  # type: ignore[attr-defined]
        outcome = decide({"total": "999.99", "buyer.vat_id": ""})
        assert outcome.applied, outcome  # type: ignore[attr-defined]
        stored = ledger.draft_for(job)
        assert stored is not None and ledger.get_job(job).status == "approved"
        assert stored["edited_fields"]["total"] == "999.99"
        assert stored["edited_fields"]["buyer"]["vat_id"] is None
        assert stored["edited_fields"]["supplier"] == draft["fields"]["supplier"]
        sums = [f for f in stored["flags"] if f["guard"] == "invoice_total_sum"]
        assert len(sums) == 1 and "999.99" in sums[0]["detail"]
        undone = decide({"total": total})
        assert undone.applied  # type: ignore[attr-defined]
        assert ledger.draft_for(job)["edited_fields"] in ({}, None)  # type: ignore[index]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        opened = launch(pw)
        yield opened
        opened.close()


def test_served_page_shows_an_invoice_and_an_edit_lands_in_the_ledger(
        db: Path, browser: Browser) -> None:
    with Ledger(db) as ledger:
        job = _job(ledger, AZURE)
    with ReviewServer(db, port=0, kind="invoice") as server, \
            watched_page(browser, answer=lambda _: True) as (page, _dialogs, errors):
        page.goto(server.url)
        page.wait_for_selector("body[data-ready='1']")
        page.locator(f"#row-{job}").click()
        detail = f"#job-{job}"
        page.wait_for_selector(detail)
        document = page.frame_locator(f"{detail} iframe.shop >> nth=0")
        assert "INV/2023/03/0008" in document.locator("pre").inner_text()
        assert document.locator("img").count() == 1
        fields = page.frame_locator(f"{detail} iframe.shop >> nth=1")
        table = fields.locator("table").first.inner_text()
        assert "Invoice number\tINV/2023/03/0008" in table and "Supplier" in table
        page.click(f"{detail} button.edit")
        page.fill(f'{detail} textarea[aria-label="Edit Total"]', "1000.00")
        page.click(f"{detail} button.approve")
        page.wait_for_selector(f"{detail} .saved:has-text('Saved to the ledger')")
        flags = page.locator(f"{detail} .flags").inner_text()
        assert "invoice_total_sum" in flags and "Net subtotal plus VAT is not the total" in flags
        assert not errors, errors
    with Ledger(db) as ledger:
        assert ledger.get_job(job).status == "approved"
        stored = ledger.draft_for(job)
        assert stored is not None and stored["edited_fields"]["total"] == "1000.00"
    export = CliRunner().invoke(cli, ["--db", str(db), "invoices", "export", "--format",
                                      "json"])
    assert export.exit_code == 0, export.output
    assert [i["invoice"]["total"] for i in json.loads(export.output)] == ["1000.00"]
