"""Debian's Chromium driven by Playwright, the one way the browser tests open a page.

If Chromium cannot be launched the tests fail (no skip): the review page is the product's
safety check and must be seen working in a real browser.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def launch(pw: Playwright) -> Browser:
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)


@contextmanager
def watched_page(browser: Browser, **context: Any
                 ) -> Iterator[tuple[Page, list[str], list[str]]]:
    """A page in a fresh context, with the dialogs it opened and the errors it raised."""
    opened_context = browser.new_context(viewport={"width": 1280, "height": 900}, **context)
    page = opened_context.new_page()
    page.set_default_timeout(10_000)
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield page, dialogs, errors
    finally:
        opened_context.close()
