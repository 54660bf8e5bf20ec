"""The "Where you're signed in" page in a real headless Chromium: two devices (two browser
contexts with their own user-agents and cookies), one signs the other out."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import redis

from tests.apps import CHROME, IPHONE
from tests.chromium import launched

WINDOWS_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
# What Chrome 131 on Windows 11 says of itself in its client hints (DevTools' UserAgentMetadata).
WINDOWS_11_METADATA = {
    "brands": [
        {"brand": "Google Chrome", "version": "131"},
        {"brand": "Chromium", "version": "131"},
        {"brand": "Not_A Brand", "version": "24"},
    ],
    "fullVersionList": [
        {"brand": "Google Chrome", "version": "131.0.6778.86"},
        {"brand": "Chromium", "version": "131.0.6778.86"},
        {"brand": "Not_A Brand", "version": "24.0.0.0"},
    ],
    "platform": "Windows",
    "platformVersion": "15.0.0",
    "architecture": "x86",
    "model": "",
    "mobile": False,
    "formFactors": ["Desktop"],
}

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    yield from launched()


PASSWORD = "correct horse battery staple"


def sign_in(page: Page, base_url: str, name: str, *, remember: bool = True) -> None:
    page.goto(base_url + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.set_checked("input[name=remember]", remember)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/devices")


def age_every_sign_in(redis_url: str, seconds: int) -> None:
    """Move each stored session's last sign-in back in time, as if it were that old."""
    then_ms = str(int((time.time() - seconds) * 1000))
    with redis.Redis.from_url(redis_url) as stored:
        for key in stored.scan_iter(match="sessionward:s:*"):
            if stored.type(key) == b"hash" and stored.hexists(key, "m:auth"):
                stored.hset(key, "m:auth", then_ms)


def test_sign_out_another_device_from_the_devices_page(
    chromium: Browser, served_example: str
) -> None:
    laptop = chromium.new_context(user_agent=CHROME)
    phone = chromium.new_context(user_agent=IPHONE)
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


def test_signing_all_other_devices_out_asks_for_the_password_first(
    chromium: Browser, served_example: str, redis_url: str
) -> None:
    laptop = chromium.new_context(user_agent=CHROME)
    phone = chromium.new_context(user_agent=IPHONE)
    on_laptop, on_phone = laptop.new_page(), phone.new_page()
    sign_in(on_laptop, served_example, "ada")
    sign_in(on_phone, served_example, "ada")

    on_laptop.reload()
    this_device = on_laptop.locator("#devices li.this")
    other = on_laptop.locator("#devices li:not(.this)")
    # Icons are drawn, not taken from a font: a Chromium with no emoji font (this one) would
    # show empty boxes for emoji.
    assert this_device.locator(".glyph").get_attribute("aria-label") == "desktop"
    assert other.locator(".glyph").get_attribute("aria-label") == "mobile"
    for device in (this_device, other):
        box = device.locator(".glyph svg").bounding_box()
        assert box is not None
        assert box["width"] >= 24
        assert box["height"] >= 24
        assert device.locator(".glyph svg rect").count() == 1
    for device in (this_device, other):
        assert "Active now" in device.inner_text()
        assert device.locator("time").get_attribute("datetime") is not None
        assert device.locator(".badge.new").inner_text() == "New"
    assert "This device" in this_device.inner_text()
    assert "This device" not in other.inner_text()
    notice = on_laptop.locator("#new-sign-ins")
    assert "New sign-in to your account" in notice.inner_text()
    assert "Safari on iPhone" in notice.inner_text()

    age_every_sign_in(redis_url, 600)  # the sign-in no longer opens the gate
    on_laptop.click("#sign-out-others")
    on_laptop.wait_for_url(served_example + "/confirm?then=others")
    on_laptop.fill("input[name=password]", PASSWORD)
    on_laptop.click("button[type=submit]")
    on_laptop.wait_for_url(served_example + "/devices")
    assert "Password confirmed" in on_laptop.locator(".flash").inner_text()
    assert on_laptop.locator("#devices li").count() == 2  # nothing ended yet

    with on_laptop.expect_navigation():
        on_laptop.click("#sign-out-others")
    assert on_laptop.locator("#devices li").count() == 1
    assert on_laptop.locator("#sign-out-others").count() == 0

    on_phone.reload()
    assert on_phone.url == served_example + "/login"  # the phone is signed out
    laptop.close()
    phone.close()


@pytest.mark.parametrize("remember", [True, False])
def test_keep_me_signed_in_decides_whether_the_cookie_outlives_the_browser(
    chromium: Browser, served_example: str, remember: bool
) -> None:
    context = chromium.new_context(user_agent=CHROME)
    sign_in(context.new_page(), served_example, "ada", remember=remember)
    (cookie,) = [cookie for cookie in context.cookies() if cookie["name"] == "__Host-session"]
    if remember:
        assert cookie["expires"] > time.time() + 29 * 24 * 3600
    else:
        assert cookie["expires"] == -1  # a session cookie: gone when the browser closes
    context.close()


def test_the_sign_in_carries_the_client_hints_the_login_page_asked_for(
    chromium: Browser, served_example: str
) -> None:
    """Chromium on Linux says "Linux" and no version: DevTools makes it a Chrome on Windows 11,
    whose hints the device list must read ("Windows 11", from platform version 15.0.0)."""
    context = chromium.new_context()
    page = context.new_page()
    devtools = context.new_cdp_session(page)
    devtools.send(
        "Emulation.setUserAgentOverride",
        {"userAgent": WINDOWS_AGENT, "userAgentMetadata": WINDOWS_11_METADATA},
    )
    posts: list[Request] = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST" else None)
    login_page = page.goto(served_example + "/login")
    assert login_page is not None
    assert "Sec-CH-UA-Platform-Version" in login_page.headers["accept-ch"]
    sign_in(page, served_example, "ada")

    (sign_in_post,) = [post for post in posts if post.url == served_example + "/login"]
    sent = sign_in_post.all_headers()
    assert sent["sec-ch-ua-platform-version"] == '"15.0.0"'
    assert sent["sec-ch-ua-form-factors"] == '"Desktop"'
    this_device = page.locator("#devices li.this")
    assert "Chrome 131 on Windows 11" in this_device.inner_text()
    assert "Windows 15.0.0 · Desktop" in this_device.locator(".hints").inner_text()
    listed = context.request.get(served_example + "/account/sessions").json()
    device = listed["sessions"][0]["device"]
    assert (device["platform_version"], device["form_factor"]) == ("15.0.0", "Desktop")
    assert (device["os"], device["os_version"]) == ("Windows", "11")
    context.close()
