"""examples/app.py runs as written: in-process, from its environment, and under uvicorn."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import redis

from tests.apps import SECRET
from tests.conftest import client_for
from tests.redis_server import free_port

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


@pytest.fixture
def served_example(redis_url: str) -> Iterator[str]:
    """examples/app.py under uvicorn on a loopback port, with its sessions in Redis."""
    port = free_port()
    environment = {**os.environ, "SESSIONWARD_SECRET_KEYS": SECRET, "REDIS_URL": redis_url}
    environment.update(PORT=str(port), HOST="127.0.0.1")
    server = subprocess.Popen(
        [sys.executable, "examples/app.py"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base_url + "/session", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.05)
        yield base_url
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_end_to_end_under_uvicorn_with_redis(served_example: str, redis_url: str) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    with httpx.Client(base_url=served_example, timeout=5) as browser:
        assert "1 time." in browser.get("/").text
        assert "2 times." in browser.get("/").text
        cookie = browser.cookies["session"]
    stored = redis.Redis.from_url(redis_url)
    keys = stored.keys("sessionward:s:*")
    assert len(keys) == 1
    assert cookie.partition(".")[0].encode() not in keys[0]
    assert 0 < stored.pttl(keys[0]) <= 14 * 24 * 3600 * 1000
