"""A real browser for page tests: Debian's Chromium driven by Playwright, checked by axe-core."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# CI installs Chromium and sets this, so the browser tests can never silently skip there.
REQUIRE_BROWSER = os.environ.get("STRAVA_MASSAGE_REQUIRE_BROWSER") == "1"
SCREENSHOTS = Path(
    os.environ.get("SCREENSHOT_DIR", Path(__file__).parent.parent / "build" / "screenshots")
)
# No network beyond loopback, no first-run pages, no background updates: a quiet, fast browser.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Impacts that fail a page; "moderate" and "minor" findings are printed, not fatal.
BLOCKING = {"serious", "critical"}


def _unavailable() -> str | None:
    """Why no browser test can run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        return f"playwright is not installed: {e}"
    return None


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the whole run; each test gets its own context."""
    reason = _unavailable()
    if reason:
        if REQUIRE_BROWSER:
            pytest.fail(f"browser tests are required here: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page, laptop-sized, English."""
    context = chromium.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under build/screenshots (or $SCREENSHOT_DIR)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def accessibility_problems(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    found = []
    for v in results.response["violations"]:
        targets = [", ".join(n["target"]) for n in v["nodes"]][:3]
        line = f"{v['impact']}: {v['id']} ({v['help']}) at {targets}"
        if v["impact"] in BLOCKING:
            found.append(line)
        else:
            print(f"axe {page.url}: {line}")
    return found


def fits_width(page: Any) -> bool:
    """Whether the page needs no sideways scrolling at its viewport's width."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))
