"""examples/app.py runs as written: in-process, from its environment, and under uvicorn."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import redis

from sessionward import ConfigurationError
from tests.apps import SECRET
from tests.conftest import Clock, client_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("SESSIONWARD_SECRET_KEYS", SECRET)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return importlib.import_module("examples.app")


@pytest.mark.anyio
async def test_the_page_counts_visits_and_the_api_edits_the_session(example: ModuleType) -> None:
    app = example.create_app({"SESSIONWARD_SECRET_KEYS": SECRET})
    async with client_for(app) as client:
        assert "1 time." in (await client.get("/")).text
        assert "2 times." in (await client.get("/")).text
        merged = await client.post("/session", json={"theme": "dark"})
        assert merged.json() == {"visits": 2, "theme": "dark"}
        assert (await client.post("/session", json=[1, 2])).status_code == 400
        assert (await client.post("/session", content=b"{oops")).status_code == 400
        assert (await client.delete("/session")).status_code == 204
        assert (await client.get("/session")).json() == {}


def test_settings_come_from_the_environment(example: ModuleType, redis_url: str) -> None:
    options = example.session_options(
        {
            "SESSIONWARD_SECRET_KEYS": f"{SECRET}, {SECRET[::-1]}",
            "REDIS_URL": redis_url,
            "SESSIONWARD_IDLE_TTL": "600",
            "SESSIONWARD_ABSOLUTE_TTL": "3600",
            "SESSIONWARD_COOKIE_NAME": "sid",
        }
    )
    assert options["secret_keys"] == [SECRET, SECRET[::-1]]
    assert type(options["store"]).__name__ == "RedisStore"
    assert (options["idle_ttl"], options["absolute_ttl"]) == (600, 3600)
    assert options["cookie"].name == "sid"


def test_a_missing_secret_key_stops_the_app_with_a_clear_message() -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
    finished = subprocess.run(
        [sys.executable, "examples/app.py"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 1
    assert "SESSIONWARD_SECRET_KEYS" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_end_to_end_under_uvicorn_with_redis(served_example: str, redis_url: str) -> None:
    with httpx.Client(base_url=served_example, timeout=5) as browser:
        first = browser.get("/")
        set_cookie = first.headers["set-cookie"]
        cookie = set_cookie.split(";")[0]  # Secure: httpx keeps it to https, a browser would not
        second = browser.get("/", headers={"cookie": cookie})
    assert "1 time." in first.text
    assert "2 times." in second.text
    assert "; secure" in set_cookie
    assert "; httponly" in set_cookie
    assert "; Max-Age=2592000;" in set_cookie  # 30 days to the second, not 2591999
    stored = redis.Redis.from_url(redis_url)
    keys = stored.keys("sessionward:s:*")
    assert len(keys) == 1
    assert cookie.partition("=")[2].partition(".")[0].encode() not in keys[0]
    assert 0 < stored.pttl(keys[0]) <= 14 * 24 * 3600 * 1000


LAPTOP = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"}
PHONE = {
    "user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
}
BROWSER_POST = {"origin": "https://testserver"}  # what a browser sends with a same-origin form


async def sign_in(
    client: httpx.AsyncClient, name: str, password: str = "correct horse", remember: bool = True
) -> httpx.Response:
    form = {"name": name, "password": password, **({"remember": "on"} if remember else {})}
    return await client.post("/login", data=form, headers=BROWSER_POST)


@pytest.mark.anyio
async def test_sign_in_and_the_devices_page(example: ModuleType) -> None:
    app = example.create_app({"SESSIONWARD_SECRET_KEYS": SECRET})
    async with client_for(app) as laptop, client_for(app) as phone:
        assert (await laptop.get("/devices")).headers["location"] == "/login"
        assert "<form" in (await laptop.get("/login")).text
        for client in (laptop, phone):
            signed_in = await sign_in(client, "ada <b>")
            assert signed_in.headers["location"] == "/devices"
        page = (await laptop.get("/devices")).text
        assert "ada &lt;b&gt;" in page
        assert page.count("<li class=this") + page.count("<li data-id") == 2
        assert page.count("This device") == 1
        assert page.count(">Sign out</button>") == 2  # one other device, and sign out
        assert "Sign out all other devices" in page
        assert (await laptop.post("/logout", headers=BROWSER_POST)).headers["location"] == "/login"
        assert (await laptop.get("/devices")).headers["location"] == "/login"


@pytest.mark.anyio
async def test_a_wrong_password_is_refused(example: ModuleType) -> None:
    app = example.create_app({"SESSIONWARD_SECRET_KEYS": SECRET})
    async with client_for(app) as owner, client_for(app) as stranger:
        assert (await sign_in(owner, "ada", "correct horse")).status_code == 303  # registers
        refused = await sign_in(stranger, "ada", "battery staple")
        assert refused.status_code == 401
        assert "Wrong name or password." in refused.text
        assert (await stranger.get("/devices")).headers["location"] == "/login"
        assert (await sign_in(stranger, "ada", "")).status_code == 401
        assert (await sign_in(stranger, "ada", "correct horse")).status_code == 303


@pytest.mark.anyio
@pytest.mark.parametrize("remember", [True, False])
async def test_keep_me_signed_in_decides_whether_the_cookie_outlives_the_browser(
    example: ModuleType, remember: bool
) -> None:
    app = example.create_app({"SESSIONWARD_SECRET_KEYS": SECRET})
    async with client_for(app) as browser:
        assert 'name="remember" checked' in (await browser.get("/login")).text
        cookies = (await sign_in(browser, "ada", remember=remember)).headers.get_list("set-cookie")
    (cookie,) = [cookie for cookie in cookies if cookie.startswith("__Host-session=")]
    assert ("Max-Age=" in cookie) is remember
    assert "expires=" not in cookie.lower() or remember


@pytest.mark.anyio
async def test_signing_other_devices_out_asks_for_the_password_again(
    example: ModuleType, clock: Clock
) -> None:
    app = example.create_app({"SESSIONWARD_SECRET_KEYS": SECRET}, clock=clock)
    async with client_for(app) as laptop, client_for(app) as phone:
        await sign_in(laptop, "ada")
        await sign_in(phone, "ada")
        clock.advance(example.RECENT_AUTH + 1)  # the sign-in no longer counts as recent

        refused = await laptop.delete("/account/sessions", headers=BROWSER_POST)
        assert refused.status_code == 403
        assert refused.json()["error"] == "reauthentication_required"
        assert "location.assign('/confirm?then=' + then)" in (await laptop.get("/devices")).text
        assert "enter your password again" in (await laptop.get("/confirm?then=others")).text
        wrong = await laptop.post("/confirm", data={"password": "nope"}, headers=BROWSER_POST)
        assert (wrong.status_code, "Wrong password." in wrong.text) == (401, True)
        assert (await laptop.delete("/account/sessions", headers=BROWSER_POST)).status_code == 403

        confirmed = await laptop.post(
            "/confirm", data={"password": "correct horse"}, headers=BROWSER_POST
        )
        assert confirmed.headers["location"] == "/devices"
        assert "Password confirmed" in (await laptop.get("/devices")).text
        ended = await laptop.delete("/account/sessions", headers=BROWSER_POST)
        assert ended.json() == {"revoked": 1}
        assert (await phone.get("/devices")).headers["location"] == "/login"
        assert (await phone.get("/confirm")).headers["location"] == "/login"


@pytest.mark.anyio
async def test_the_devices_page_shows_kind_place_and_when_each_device_was_active(
    example: ModuleType, clock: Clock
) -> None:
    environment = {
        "SESSIONWARD_SECRET_KEYS": SECRET,
        "SESSIONWARD_LOCATION_HEADER": "cf-ipcountry",
        "SESSIONWARD_TRUSTED_PROXIES": "127.0.0.1/32",  # httpx's ASGI client's address
    }
    app = example.create_app(environment, clock=clock)
    async with client_for(app) as laptop, client_for(app) as phone:
        laptop.headers.update({**LAPTOP, "cf-ipcountry": "FR"})
        phone.headers.update({**PHONE, "x-forwarded-for": "203.0.113.9", "cf-ipcountry": "JP"})
        await sign_in(phone, "ada")
        clock.advance(3 * 3600 + 60)
        await sign_in(laptop, "ada")
        page = (await laptop.get("/devices")).text
    this, other = page.split('<ul id="devices">')[1].split("<li")[1:3]  # latest first
    for shown in ('aria-label="desktop"', "<svg", "Firefox 133 on Linux", "This device"):
        assert shown in this
    assert "FR · 127.0.0.1" in this
    assert ">Active now<" in this
    for shown in ('aria-label="mobile"', "<svg", "Safari on iPhone", "JP · 203.0.113.9"):
        assert shown in other
    assert ">3 hours ago</time>" in other
    assert "This device" not in other
    then = datetime.fromtimestamp(clock.now - 3 * 3600 - 60, tz=timezone.utc)
    assert f'datetime="{then:%Y-%m-%dT%H:%M:%SZ}" title="{then:%Y-%m-%d %H:%M:%S} UTC"' in other


@pytest.mark.anyio
async def test_the_notice_lists_a_sign_in_from_a_new_device(example: ModuleType) -> None:
    app = example.create_app({"SESSIONWARD_SECRET_KEYS": SECRET})
    async with client_for(app) as laptop, client_for(app) as phone:
        laptop.headers.update(LAPTOP)
        phone.headers.update(PHONE)
        await sign_in(laptop, "ada")
        first = (await laptop.get("/devices")).text
        assert "Safari on iPhone" not in first
        assert 'id="new-sign-ins"' not in first  # the account's first sign-in: no alert
        await sign_in(phone, "ada")
        page = (await laptop.get("/devices")).text
        await sign_in(phone, "ada")  # the same phone again: nothing new
        again = (await laptop.get("/devices")).text
    notice = page.split('<section id="new-sign-ins"')[1].split("</section>")[0]
    assert "New sign-in to your account" in notice
    assert "Safari on iPhone</b> · 127.0.0.1 · <time" in notice
    assert again.count("Safari on iPhone</b> · 127.0.0.1") == page.count(
        "Safari on iPhone</b> · 127.0.0.1"
    )
    assert 'class="badge new">New</span>' in page


def test_the_location_header_is_configured_only_when_named(example: ModuleType) -> None:
    assert "locate" not in example.session_options({"SESSIONWARD_SECRET_KEYS": SECRET})
    named = example.session_options(
        {"SESSIONWARD_SECRET_KEYS": SECRET, "SESSIONWARD_LOCATION_HEADER": "cf-ipcountry"}
    )
    assert named["locate"].__qualname__ == "header_locator('cf-ipcountry')"
    with pytest.raises(ConfigurationError, match="SESSIONWARD_LOCATION_HEADER"):
        example.session_options(
            {"SESSIONWARD_SECRET_KEYS": SECRET, "SESSIONWARD_LOCATION_HEADER": "bad: name"}
        )
