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
from enrich.ledger.codec import dumps
from enrich.review.serve import ReviewServer
from tests.browser_helpers import launch, watched_page

NEW_TITLE = "Hoodie with Logo, warm pullover for cold days and long walks in the park"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        opened = launch(pw)
        yield opened
        opened.close()


class Answers:
    """What the page's confirm() dialogs get: Cancel until a test says OK."""

    def __init__(self) -> None:
        self.accept = False

    def __call__(self, message: str) -> bool:
        return self.accept


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    answers = Answers()
    with watched_page(browser, answer=answers, accept_downloads=True) as (opened, dialogs,
                                                                          errors):
        opened.dialogs = dialogs  # type: ignore[attr-defined]
        opened.answers = answers  # type: ignore[attr-defined]
        yield opened
    assert not errors, f"the page raised: {errors}"


def _row(job_id: int) -> str:
    return f"#row-{job_id}"


def _detail(job_id: int) -> str:
    return f"#job-{job_id}"


def _open(page: Page, job_id: int) -> None:
    """Select a draft by clicking its row (Playwright scrolls the list to it)."""
    page.locator(_row(job_id)).click()
    page.wait_for_selector(_detail(job_id))


def _export(db_path: Path, out: Path) -> None:
    res = CliRunner().invoke(cli, ["--db", str(db_path), "review", "export", "--out", str(out)])
    assert res.exit_code == 0, res.output


def test_file_page_approve_edit_reject_save_and_import(ledger: Ledger, db_path: Path,
                                                        tmp_path: Path, page: Page) -> None:
    ids = seed_sample_catalog(ledger)
    flagged = {i for i in ids if ledger.draft_for(i)["flags"]}
    out = tmp_path / "review.html"
    _export(db_path, out)
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready='1']")
    # One compact row per draft (all of them fit in view here), one draft in the detail pane.
    assert page.locator(".row").count() == len(ids)
    assert page.locator("article.draft").count() == 1
    first, second, third = ids[0], ids[2], ids[3]
    assert first not in flagged and ids[1] in flagged
    # Approve with the keyboard: the first draft is current; "a" approves and moves on.
    page.keyboard.press("a")
    assert page.locator(_row(first)).get_attribute("class").split().count("is-approved") == 1
    # The next is flagged: "a" asks first, and Cancel leaves it undecided.
    page.wait_for_selector(_detail(ids[1]))
    page.keyboard.press("a")
    assert len(page.dialogs) == 1 and "flagged (grounding)" in page.dialogs[0]
    assert "is-approved" not in (page.locator(_row(ids[1])).get_attribute("class") or "")
    _open(page, second)
    # Edit with "e", change the SEO title, approve the edit.
    page.keyboard.press("e")
    area = page.locator(f'{_detail(second)} textarea[aria-label="Edit SEO title"]')
    assert area.is_visible()
    area.fill(NEW_TITLE)
    low, high = GuardsConfig().limits("seo_title")
    assert f"SEO title: {len(NEW_TITLE)} / {low}–{high} characters" in page.locator(
        f"{_detail(second)} .sizes").inner_text()
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    # Reject the third with "r", which puts the cursor in the note.
    _open(page, third)
    page.keyboard.press("r")
    page.keyboard.type("Too generic: say what the beanie is made of")
    page.keyboard.press("Escape")
    counts = page.locator("#counts").inner_text()
    assert re.search(r"2\s+approved", counts) and re.search(r"1\s+rejected", counts)
    assert re.search(r"1\s+edited", counts)
    # Filters: "Rejected" shows one row.
    page.select_option("#f-status", "rejected")
    assert page.locator(".row").count() == 1
    page.select_option("#f-status", "")
    # The flagged one, approved after saying OK, carries the acknowledgement.
    page.answers.accept = True  # type: ignore[attr-defined]
    _open(page, ids[1])
    page.locator(f"{_detail(ids[1])} button.approve").click()
    assert len(page.dialogs) == 2
    with page.expect_download() as info:
        page.click("#save")
    download = info.value
    assert download.suggested_filename == "decisions.json"
    saved = tmp_path / "decisions.json"
    download.save_as(saved)
    doc = json.loads(saved.read_text(encoding="utf-8"))
    assert doc["format"] == "enrich-review-decisions" and doc["ledger"] == str(db_path)
    assert {d["job_id"]: d["decision"] for d in doc["decisions"]} == {
        first: "approved", second: "approved", third: "rejected", ids[1]: "approved"}
    assert {d["job_id"] for d in doc["decisions"] if d.get("flagged_ack")} == {ids[1]}
    # Decisions survive a reload of the page (kept in the browser until saved elsewhere).
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function(r"/3\s+approved/.test(document.querySelector('#counts').innerText)")

    res = CliRunner().invoke(cli, ["--db", str(db_path), "review", "import", str(saved)])
    assert res.exit_code == 0, res.output
    assert "4 applied (3 approved, 1 rejected, 1 edited), 0 refused" in res.output
    assert ledger.get_job(first).status == "approved"
    assert ledger.get_job(second).status == "approved"
    assert ledger.get_job(third).status == "rejected"
    edited = ledger.draft_for(second)
    assert edited["edited_fields"]["seo_title"] == NEW_TITLE
    assert edited["fields"]["seo_title"] != NEW_TITLE
    assert [f["guard"] for f in edited["flags"] if f["field"] == "seo_title"] == ["length"]
    assert ledger.draft_for(third)["reviewer_note"] == "Too generic: say what the beanie is made of"
    assert ledger.draft_for(first)["edited_fields"] is None
    assert all(f.get("acknowledged_at") for f in ledger.draft_for(ids[1])["flags"])
    untouched = [i for i in ids if i not in (first, second, third, ids[1])]
    assert {ledger.get_job(i).status for i in untouched} == {"drafted"}


def test_bulk_approve_with_a_flagged_draft_asks_once_and_records_the_ack(
        ledger: Ledger, db_path: Path, page: Page) -> None:
    """The served page: a category filter, its counts in drafts, one bulk approval."""
    ids = seed_sample_catalog(ledger, script_name=True)
    drafts = {i: ledger.draft_for(i) for i in ids}
    with ReviewServer(db_path, port=0) as server:
        page.goto(server.url)
        page.wait_for_selector("body[data-ready='1']")
        # Counts are drafts: the script product has three html flags and counts once.
        with_html = sum(1 for d in drafts.values() if any(f["guard"] == "html"
                                                         for f in d["flags"]))
        options = page.locator("#f-flag option").all_inner_texts()
        flagged_total = sum(1 for d in drafts.values() if d["flags"])
        assert f"Flagged only ({flagged_total})" in options
        assert f"Flag: html ({with_html} draft{'' if with_html == 1 else 's'})" in options
        page.select_option("#f-cat", "Clothing")
        shown = [int(r.get_attribute("data-job")) for r in page.locator(".row").all()]
        cat_option = page.locator("#f-cat option[value='Clothing']").inner_text()
        assert cat_option == f"Clothing ({len(shown)} drafts)"
        shown_flagged = [i for i in shown if drafts[i]["flags"]]
        assert shown_flagged and len(shown_flagged) < len(shown)
        clean = page.locator("#bulk-approve-clean").inner_text()
        assert clean == f"Approve the {len(shown) - len(shown_flagged)} unflagged drafts shown"
        everything = page.locator("#bulk-approve-all")
        assert everything.inner_text() == (f"Approve all {len(shown)} drafts shown, "
                                           f"{len(shown_flagged)} flagged…")
        page.answers.accept = True  # type: ignore[attr-defined]
        everything.click()
        page.wait_for_selector("#bulk-msg:has-text('saved to the ledger')")
        assert len(page.dialogs) == 1  # type: ignore[attr-defined]
        assert f"{len(shown_flagged)} drafts of the {len(shown)} drafts" in page.dialogs[0]
        assert {ledger.get_job(i).status for i in shown} == {"approved"}
        for i in shown_flagged:
            assert all(f.get("acknowledged_at") for f in ledger.draft_for(i)["flags"]), i
        others = [i for i in ids if i not in shown]
        assert {ledger.get_job(i).status for i in others} == {"drafted"}
        assert page.locator("#bulk-approve-clean").is_disabled()


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
    first, second, third = ids[2], ids[3], ids[5]
    assert not any(ledger.draft_for(i)["flags"] for i in (first, second, third))
    _open(page, first)
    page.click(f"{_detail(first)} button.approve")
    _saved(page, first)
    assert ledger.get_job(first).status == "approved"
    _open(page, second)
    page.click(f"{_detail(second)} button.edit")
    page.fill(f'{_detail(second)} textarea[aria-label="Edit SEO title"]', NEW_TITLE)
    page.click(f"{_detail(second)} button.approve")
    _saved(page, second)
    # The re-checked flags come back to the page.
    flags = page.locator(f"{_detail(second)} .flags").inner_text()
    assert (f"length · SEO title: The SEO title is {len(NEW_TITLE)} characters long; "
            "the limit is 60.") in flags
    assert "undefined" not in flags
    _open(page, third)
    page.fill(f"{_detail(third)} textarea.note", "Wrong category in the title")
    page.click(f"{_detail(third)} button.reject")
    _saved(page, third)
    assert ledger.get_job(second).status == "approved"
    edited = ledger.draft_for(second)
    assert edited["edited_fields"]["seo_title"] == NEW_TITLE
    assert [f["guard"] for f in edited["flags"] if f["field"] == "seo_title"] == ["length"]
    assert ledger.get_job(third).status == "rejected"
    assert ledger.draft_for(third)["reviewer_note"] == "Wrong category in the title"
    # A reload shows the decisions from the ledger; undo withdraws one.
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function(r"/2\s+approved/.test(document.querySelector('#counts').innerText)")
    _open(page, first)
    page.click(f"{_detail(first)} button.undo")
    page.wait_for_function(
        f"!document.querySelector('#row-{first}').classList.contains('is-approved')")
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
    assert page.locator(_row(ids[0])).locator(".name").inner_text() == SCRIPT_NAME
    detail = page.locator(_detail(ids[0]))
    assert detail.locator("h2").inner_text() == SCRIPT_NAME
    # The guards took the script out of the draft and say so.
    assert "html · Short description: Removed from the short description: the <script> tag" \
        in detail.locator(".flags").inner_text()
    # The shop view: the draft rendered (a real <p>, the name as a heading's text) inside
    # sandbox="" frames; nothing from the product ran or became an element.
    frames = detail.locator("iframe.shop")
    assert frames.count() == 2
    assert [frames.nth(i).get_attribute("sandbox") for i in range(2)] == ["", ""]
    draft = page.frame_locator(f"{_detail(ids[0])} iframe.shop >> nth=1")
    assert draft.locator("h1").inner_text() == SCRIPT_NAME
    assert draft.locator("p").count() >= 1
    assert draft.locator("script, img, [onerror]").count() == 0
    store = page.frame_locator(f"{_detail(ids[0])} iframe.shop >> nth=0")
    assert "& more" in store.locator("body").inner_text()  # the <img onerror> is gone
    # HTML source shows the markup as text; Changes compares visible text only.
    page.click(f"{_detail(ids[0])} button.view-source")
    assert "<img src=x onerror=alert(2)>" in detail.locator(".text.current").first.inner_text()
    page.click(f"{_detail(ids[0])} button.view-changes")
    assert "<" not in detail.locator(".view-body").inner_text().replace("<script>", "")
    assert SCRIPT_NAME in (detail.locator("details.source table").text_content() or "")
    # Only the page's own two <script> elements exist, and no <img> in the page.
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 2
    page.fill("#search", "alert(1)")
    page.wait_for_timeout(50)
    assert page.locator(".row").count() == 1
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    page.wait_for_timeout(200)
    assert page.dialogs == []  # type: ignore[attr-defined]


def test_changes_are_a_diff_only_when_the_draft_edits_the_text(ledger: Ledger, db_path: Path,
                                                               tmp_path: Path,
                                                               page: Page) -> None:
    """An edit of the store's text is a word diff of what a shopper reads; a rewrite is
    shown old beside new, never a diff interleaving new markup with old words."""
    ids = seed_sample_catalog(ledger, limit=3)
    edit, rewrite = ids[0], ids[2]
    for job_id, text in (
            (edit, None),
            (rewrite, "<p>Pellentesque habitant morbi tristique senectus.</p>")):
        snap = ledger.get_product(ledger.get_job(job_id).source_id)["snapshot"]
        draft = ledger.draft_for(job_id)
        fields = dict(draft["fields"])
        fields["description"] = text or snap["description"].replace(
            "Pellentesque", "<strong>Pellentesque</strong> really", 1)
        # As if the writer had produced this description (the worker's own write path
        # would need a provider run; only the text matters here).
        ledger.conn.execute("UPDATE drafts SET fields = ? WHERE job_id = ?",
                            (dumps(fields), job_id))
    out = tmp_path / "review.html"
    _export(db_path, out)
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready='1']")
    page.keyboard.press("v")  # shop view -> changes
    _open(page, edit)
    field = page.locator(f"{_detail(edit)} .field:has(h3:text-is('Description'))")
    assert "edited:" in field.locator(".how").inner_text()
    assert field.locator("ins").first.inner_text().strip() == "really"
    assert "<strong>" not in field.inner_text()
    _open(page, rewrite)
    field = page.locator(f"{_detail(rewrite)} .field:has(h3:text-is('Description'))")
    assert "rewritten" in field.locator(".how").inner_text()
    assert field.locator("ins, del").count() == 0
    cols = field.locator(".cols.rewritten .text")
    assert cols.nth(1).inner_text() == "Pellentesque habitant morbi tristique senectus."
