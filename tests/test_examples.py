"""examples/app.py runs as written: in-process, from its environment, and under uvicorn."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import redis

from tests.apps import SECRET
from tests.conftest import client_for

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


@pytest.mark.anyio
async def test_sign_in_and_the_devices_page(example: ModuleType) -> None:
    app = example.create_app({"SESSIONWARD_SECRET_KEYS": SECRET})
    async with client_for(app) as laptop, client_for(app) as phone:
        assert (await laptop.get("/devices")).headers["location"] == "/login"
        assert "<form" in (await laptop.get("/login")).text
        for client in (laptop, phone):
            signed_in = await client.post("/login", data={"name": "ada <b>"})
            assert signed_in.headers["location"] == "/devices"
        page = (await laptop.get("/devices")).text
        assert "ada &lt;b&gt;" in page
        assert page.count("<li") == 2
        assert page.count("This device") == 1
        assert page.count(">Sign out</button>") == 2  # one other device, and sign out
        assert (await laptop.post("/logout")).headers["location"] == "/login"
        assert (await laptop.get("/devices")).headers["location"] == "/login"
