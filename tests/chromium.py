"""Headless Chromium for the page tests: Debian's `chromium` driven by Playwright, kept off
the network, with the two devices the tests sign in from."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.redis_server import require_redis

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# This machine has no network beyond loopback: keep Chromium from reaching out.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launched() -> Iterator[Browser]:
    """A browser for a module-scoped fixture (`yield from launched()`); skipped without
    Playwright or Chromium, and a failure then under CI, where nothing may quietly skip."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - dev extra not installed
        sync_playwright = None  # type: ignore[assignment]
    if sync_playwright is None or CHROMIUM is None:
        reason = "headless Chromium tests need the playwright package and Debian's chromium"
        if require_redis():  # the same switch as the Redis tests'
            pytest.fail(reason + " (required under CI)")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
