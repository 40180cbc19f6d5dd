"""Fixtures of the browser tests: Debian's Chromium (installed when missing, never
skipped) driven headless by Playwright, and tests/ on sys.path for the helpers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from tests._servers import ensure_chromium  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium for one test (Playwright's own browsers are never
    downloaded: it drives /usr/bin/chromium).

    Per test, not per session: Playwright's sync API keeps its event loop marked
    as running in the main thread while it is open, and every asyncio test run
    after it in the same session would then fail ("cannot be called from a
    running event loop").
    """
    executable = ensure_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # a dev dependency: fail loudly, never skip
        pytest.fail(f"playwright is not installed (pip install -e '.[dev]'): {exc}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser page (own context: no cookies or cache shared between tests)."""
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    try:
        yield tab
    finally:
        context.close()
