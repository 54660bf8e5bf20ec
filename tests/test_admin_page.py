"""The example's admin page (examples/admin_page.py) in a real headless Chromium: an admin sees
the latest sign-ins across users and signs one user out everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.apps import CHROME, IPHONE
from tests.chromium import launched

PASSWORD = "correct horse battery staple"

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    yield from launched()


def sign_in(page: Page, base_url: str, name: str) -> None:
    page.goto(base_url + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/devices")


def test_an_admin_signs_a_user_out_everywhere(chromium: Browser, served_example: str) -> None:
    contexts = [chromium.new_context(user_agent=agent) for agent in (CHROME, IPHONE)]
    contexts += [chromium.new_context(user_agent=CHROME) for _ in range(2)]
    ada_laptop, ada_phone, bob, admin = (context.new_page() for context in contexts)
    sign_in(ada_laptop, served_example, "ada")
    sign_in(ada_phone, served_example, "ada")
    sign_in(bob, served_example, "bob")
    sign_in(admin, served_example, "admin")  # the demo's admin role: SESSIONWARD_ADMINS

    bob.goto(served_example + "/admin/")
    assert "Admins only" in bob.content()

    admin.goto(served_example + "/admin/")
    rows = admin.locator("#sign-ins tbody tr")
    assert [row.get_attribute("data-user") for row in rows.all()] == ["admin", "bob", "ada", "ada"]
    ada = " ".join(admin.locator("tr[data-user=ada]").all_inner_texts())
    assert "Safari on iPhone" in ada
    assert "Chrome 131 on macOS" in ada

    with admin.expect_navigation():
        admin.get_by_role("button", name="Sign ada out everywhere").first.click()
    assert admin.get_by_role("status").inner_text() == "Signed ada out of 2 sessions."
    assert admin.locator("tr[data-user=ada]").count() == 0
    assert admin.locator("tr[data-user=bob]").count() == 1

    for page in (ada_laptop, ada_phone):
        page.goto(served_example + "/devices")
        assert page.url == served_example + "/login"  # signed out
    bob.goto(served_example + "/devices")
    assert bob.url == served_example + "/devices"  # still signed in

    with admin.expect_navigation():
        admin.get_by_role("button", name="Sign admin out everywhere").click()
    assert admin.get_by_role("status").inner_text() == (
        "Signed admin out of 0 sessions except this one."
    )
    for context in contexts:
        context.close()
