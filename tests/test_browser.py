"""The "Your devices" page in a real headless Chromium: two devices, one signs the other out."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.redis_server import require_redis

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LAPTOP_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
PHONE_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
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

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - dev extra not installed
    sync_playwright = None  # type: ignore[assignment]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if sync_playwright is None or CHROMIUM is None:
        reason = "headless Chromium tests need the playwright package and Debian's chromium"
        if require_redis():  # the same switch: under CI nothing may quietly skip
            pytest.fail(reason + " (required under CI)")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def sign_in(page: Page, base_url: str, name: str) -> None:
    page.goto(base_url + "/login")
    page.fill("input[name=name]", name)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/devices")


def test_sign_out_another_device_from_the_devices_page(
    chromium: Browser, served_example: str
) -> None:
    laptop = chromium.new_context(user_agent=LAPTOP_AGENT)
    phone = chromium.new_context(user_agent=PHONE_AGENT)
    on_laptop, on_phone = laptop.new_page(), phone.new_page()
    sign_in(on_laptop, served_example, "ada")
    sign_in(on_phone, served_example, "ada")

    on_laptop.reload()
    devices = on_laptop.locator("#devices li")
    assert devices.count() == 2
    this_device = on_laptop.locator("#devices li.this")
    assert "Chrome 131 on macOS" in this_device.inner_text()
    assert "This device" in this_device.inner_text()
    other = on_laptop.locator("#devices li:not(.this)")
    assert "Safari on iPhone" in other.inner_text()
    screenshot = os.environ.get("SESSIONWARD_SCREENSHOT")
    if screenshot:
        on_laptop.screenshot(path=screenshot, full_page=True)

    with on_laptop.expect_navigation():
        other.get_by_role("button", name="Sign out").click()
    assert on_laptop.locator("#devices li").count() == 1

    on_phone.goto(served_example + "/devices")
    assert on_phone.url == served_example + "/login"  # the phone is signed out
    laptop.close()
    phone.close()
