"""The review page in a real browser (Debian chromium through Playwright).

Without a Chromium these are skipped with the reason (tests/browser_helpers.py); CI sets
ENRICH_REQUIRE_BROWSER=1 so there they always run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from playwright.sync_api import Browser, Page, sync_playwright
from review_helpers import SCRIPT_NAME, seed_sample_catalog

from enrich.cli.main import cli
from enrich.config import GuardsConfig
from enrich.ledger import Ledger
from tests.browser_helpers import launch, watched_page

NEW_TITLE = "Hoodie with Logo, warm pullover for cold days and long walks in the park"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        opened = launch(pw)
        yield opened
        opened.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with watched_page(browser, accept_downloads=True) as (opened, dialogs, errors):
        opened.dialogs = dialogs  # type: ignore[attr-defined]
        yield opened
    assert not errors, f"the page raised: {errors}"


def _card(page: Page, job_id: int) -> str:
    return f"#job-{job_id}"


def _export(db_path: Path, out: Path) -> None:
    res = CliRunner().invoke(cli, ["--db", str(db_path), "review", "export", "--out", str(out)])
    assert res.exit_code == 0, res.output


def test_file_page_approve_edit_reject_save_and_import(ledger: Ledger, db_path: Path,
                                                        tmp_path: Path, page: Page) -> None:
    ids = seed_sample_catalog(ledger)
    out = tmp_path / "review.html"
    _export(db_path, out)
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("article.card").count() == len(ids)
    first, second, third = ids[0], ids[2], ids[3]
    # Approve with the keyboard: the first card is current; "a" approves and moves on.
    page.keyboard.press("a")
    assert "Approved" in page.locator(f"{_card(page, first)} .badge.approved").inner_text()
    page.locator(_card(page, second)).click(position={"x": 5, "y": 5})
    # Edit with "e", change the SEO title, approve the edit.
    page.keyboard.press("e")
    area = page.locator(f'{_card(page, second)} textarea[aria-label="Edit SEO title"]')
    assert area.is_visible()
    area.fill(NEW_TITLE)
    low, high = GuardsConfig().limits("seo_title")
    assert f"{len(NEW_TITLE)} / {low}–{high} characters" in page.locator(
        f"{_card(page, second)} .field:has(textarea[aria-label='Edit SEO title']) .chars"
    ).inner_text()
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    # Reject the third with "r", which puts the cursor in the note.
    page.locator(_card(page, third)).click(position={"x": 5, "y": 5})
    page.keyboard.press("r")
    page.keyboard.type("Too generic: say what the beanie is made of")
    page.keyboard.press("Escape")
    counts = page.locator("#counts").inner_text()
    assert re.search(r"2\s+approved", counts) and re.search(r"1\s+rejected", counts)
    assert re.search(r"1\s+edited", counts)
    # Filters: "Rejected" shows one card.
    page.select_option("#f-status", "rejected")
    assert page.locator("article.card:visible").count() == 1
    page.select_option("#f-status", "")
    with page.expect_download() as info:
        page.click("#save")
    download = info.value
    assert download.suggested_filename == "decisions.json"
    saved = tmp_path / "decisions.json"
    download.save_as(saved)
    doc = json.loads(saved.read_text(encoding="utf-8"))
    assert doc["format"] == "enrich-review-decisions" and doc["ledger"] == str(db_path)
    assert {d["job_id"]: d["decision"] for d in doc["decisions"]} == {
        first: "approved", second: "approved", third: "rejected"}
    # Decisions survive a reload of the page (kept in the browser until saved elsewhere).
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert re.search(r"2\s+approved", page.locator("#counts").inner_text())

    res = CliRunner().invoke(cli, ["--db", str(db_path), "review", "import", str(saved)])
    assert res.exit_code == 0, res.output
    assert "3 applied (2 approved, 1 rejected, 1 edited), 0 refused" in res.output
    assert ledger.get_job(first).status == "approved"
    assert ledger.get_job(second).status == "approved"
    assert ledger.get_job(third).status == "rejected"
    edited = ledger.draft_for(second)
    assert edited["edited_fields"]["seo_title"] == NEW_TITLE
    assert edited["fields"]["seo_title"] != NEW_TITLE
    assert [f["guard"] for f in edited["flags"] if f["field"] == "seo_title"] == ["length"]
    assert ledger.draft_for(third)["reviewer_note"] == "Too generic: say what the beanie is made of"
    assert ledger.draft_for(first)["edited_fields"] is None
    untouched = [i for i in ids if i not in (first, second, third)]
    assert {ledger.get_job(i).status for i in untouched} == {"drafted"}


@pytest.fixture
def serve_process(ledger: Ledger, db_path: Path,
                  tmp_path: Path) -> Iterator[tuple[str, list[int]]]:
    """`enrich review serve --port 0` as its own process, stopped with Ctrl-C (SIGINT)."""
    ids = seed_sample_catalog(ledger)
    errors = tmp_path / "serve.stderr"
    with errors.open("w") as err, subprocess.Popen(
            [sys.executable, "-c", "from enrich.cli import main; main()", "--db", str(db_path),
             "review", "serve", "--port", "0"],
            stdout=subprocess.PIPE, stderr=err, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}) as proc:
        try:
            deadline = time.monotonic() + 20
            url = None
            assert proc.stdout is not None
            while url is None and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line and proc.poll() is not None:
                    break
                match = re.search(r"review page: (http://127\.0\.0\.1:\d+/\?token=\S+)",
                                  line)
                url = match.group(1) if match else None
            assert url, f"review serve did not start: {errors.read_text()}"
            yield url, ids
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    assert proc.returncode == 0, errors.read_text()


def _saved(page: Page, job_id: int) -> None:
    page.wait_for_selector(f"#job-{job_id} .saved:has-text('Saved to the ledger')")


def test_served_page_writes_each_decision_to_the_ledger(serve_process: tuple[str, list[int]],
                                                        ledger: Ledger, page: Page) -> None:
    url, ids = serve_process
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#save").count() == 0  # no file to save: decisions go to the ledger
    first, second, third = ids[1], ids[4], ids[5]
    page.click(f"#job-{first} button.approve")
    _saved(page, first)
    assert ledger.get_job(first).status == "approved"
    page.click(f"#job-{second} button.edit")
    page.fill(f'#job-{second} textarea[aria-label="Edit SEO title"]', NEW_TITLE)
    page.click(f"#job-{second} button.approve")
    _saved(page, second)
    page.fill(f"#job-{third} textarea.note", "Wrong category in the title")
    page.click(f"#job-{third} button.reject")
    _saved(page, third)
    assert ledger.get_job(second).status == "approved"
    edited = ledger.draft_for(second)
    assert edited["edited_fields"]["seo_title"] == NEW_TITLE
    assert [f["guard"] for f in edited["flags"] if f["field"] == "seo_title"] == ["length"]
    assert ledger.get_job(third).status == "rejected"
    assert ledger.draft_for(third)["reviewer_note"] == "Wrong category in the title"
    # The re-checked flags come back to the page.
    flags = page.locator(f"#job-{second} .flags").inner_text()
    assert (f"length · SEO title: The SEO title is {len(NEW_TITLE)} characters long; "
            "the limit is 60.") in flags
    assert "undefined" not in flags
    # A reload shows the decisions from the ledger; undo withdraws one.
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert re.search(r"2\s+approved", page.locator("#counts").inner_text())
    page.click(f"#job-{first} button.undo")
    page.wait_for_function(
        f"!document.querySelector('#job-{first}').classList.contains('is-approved')")
    deadline = time.monotonic() + 5
    while ledger.get_job(first).status != "drafted" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ledger.get_job(first).status == "drafted"
    assert page.dialogs == []  # type: ignore[attr-defined]


def test_script_named_product_shows_as_text(ledger: Ledger, db_path: Path, tmp_path: Path,
                                            page: Page) -> None:
    ids = seed_sample_catalog(ledger, script_name=True)
    out = tmp_path / "review.html"
    _export(db_path, out)
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready='1']")
    card = page.locator(f"#job-{ids[0]}")
    assert card.locator("h2").inner_text() == SCRIPT_NAME
    assert "<img src=x onerror=alert(2)>" in card.locator(".text.current").first.inner_text()
    # The guards took the script out of the draft and say so; allowed tags show as text.
    assert "html · Short description: Removed from the short description: the <script> tag" \
        in card.locator(".flags").inner_text()
    diff = card.locator(".text.diff").first
    assert diff.locator("del").first.inner_text().startswith("<img src=x onerror=alert(2)>")
    assert diff.locator("ins").first.inner_text().startswith("<p>")
    assert SCRIPT_NAME in (card.locator("details.source table").text_content() or "")
    # Nothing from the product became markup: one element per piece of text, no <img>,
    # and only the page's own two <script> elements exist.
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 2
    page.fill("#search", "alert(1)")
    assert page.locator("article.card:visible").count() == 1
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    page.wait_for_timeout(200)
    assert page.dialogs == []  # type: ignore[attr-defined]
