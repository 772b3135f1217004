"""Debian's Chromium driven by Playwright, the one way the browser tests open a page.

On a machine with no Chromium at all the browser tests are skipped with one reason that
says how to get one, so a fresh clone's ``uv run pytest`` passes and its summary shows the
skip. ``ENRICH_REQUIRE_BROWSER=1`` (set by ``.ci/run``) turns that skip into a failure: the
review page is the product's safety check and CI must see it working in a real browser. A
Chromium that is there but does not start always fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright

NO_BROWSER = ("no Chromium found for the browser tests: install one with `apt-get install "
              "chromium` (or `playwright install chromium` where downloads are allowed); "
              "ENRICH_REQUIRE_BROWSER=1 makes this a failure")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path(pw: Playwright) -> str | None:
    """Debian's chromium on PATH first, else the build ``playwright install`` downloads."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    bundled = pw.chromium.executable_path
    return bundled if bundled and os.path.exists(bundled) else None


def launch(pw: Playwright) -> Browser:
    """Chromium, or a skip (a failure under ENRICH_REQUIRE_BROWSER=1) when there is none."""
    path = chromium_path(pw)
    if path is None:
        if os.environ.get("ENRICH_REQUIRE_BROWSER") == "1":
            pytest.fail(NO_BROWSER, pytrace=False)
        pytest.skip(NO_BROWSER)
    return pw.chromium.launch(executable_path=path, headless=True, args=ARGS)


@contextmanager
def watched_page(browser: Browser, *, answer: Callable[[str], bool] | None = None,
                 **context: Any) -> Iterator[tuple[Page, list[str], list[str]]]:
    """A page in a fresh context, with the dialogs it opened and the errors it raised.

    Dialogs are dismissed (Cancel) unless ``answer(message)`` says to accept them.
    """
    opened_context = browser.new_context(viewport={"width": 1280, "height": 900}, **context)
    page = opened_context.new_page()
    page.set_default_timeout(10_000)
    dialogs: list[str] = []
    errors: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        if answer is not None and answer(dialog.message):
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield page, dialogs, errors
    finally:
        opened_context.close()
