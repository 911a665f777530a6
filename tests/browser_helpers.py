"""What every real-browser test module shares: Debian Chromium under Playwright, headless, and an
app page that must not fetch anything from outside the app (a Space or a classroom may have no
network). Screenshots go to test-output/ (or $HWML_TEST_OUTPUT) for a person to look at."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
OUT = Path(os.environ.get("HWML_TEST_OUTPUT") or Path(__file__).resolve().parent.parent / "test-output")
TIMEOUT_MS = 90_000
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@contextlib.contextmanager
def chromium():
    """A headless Debian Chromium, closed again afterwards."""
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def app_page(browser, app_server, screenshot: str | None = None):
    """A fresh browser session on the app, loaded; its last state saved as `screenshot` (a file
    name in OUT). Fails the test when the page fetched from anywhere but the app."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    outside = []
    page.on(
        "request", lambda r: None if r.url.startswith((app_server.url, "data:", "blob:")) else outside.append(r.url)
    )
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app_server.url)
    page.wait_for_selector("#phoneme-train-start")
    try:
        yield page
        if screenshot:
            page.screenshot(path=str(OUT / screenshot), full_page=True)
    finally:
        context.close()
    assert not outside, f"the page fetched from outside the app: {outside[:5]}"
