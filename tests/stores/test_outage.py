"""Redis outages against a real redis-server this test stops, freezes and restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from sessionward import RedisStore
from tests.apps import COOKIE, build_app
from tests.conftest import client_for
from tests.redis_server import RedisServer

pytestmark = pytest.mark.anyio

TIMEOUT = 0.5  # seconds: socket and connect timeouts of the store under test


@pytest.fixture
def own_redis(private_redis: RedisServer) -> RedisServer:
    """A server only this test uses, persisting to disk so a restart keeps the sessions."""
    private_redis.stop()
    private_redis.start("--appendonly", "yes", "--appendfsync", "always")
    return private_redis


def store_for(server: RedisServer) -> RedisStore:
    return RedisStore.from_url(
        server.url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT, retries=1
    )


async def test_traffic_gets_503_while_redis_is_down_and_recovers_after_restart(
    own_redis: RedisServer,
) -> None:
    store = store_for(own_redis)
    async with client_for(build_app(store)) as client:
        await client.post("/session", json={"kept": "across the outage"})
        statuses: list[int] = []
        for _ in range(5):
            statuses.append((await client.get("/session")).status_code)
        own_redis.stop()
        slowest = 0.0
        for path in ("/session", "/session", "/untouched"):
            started = time.monotonic()
            response = await client.get(path)
            slowest = max(slowest, time.monotonic() - started)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            assert "set-cookie" not in response.headers
        write = await client.post("/session", json={"lost": True})
        assert write.status_code == 503
        own_redis.start("--appendonly", "yes")
        after = await client.get("/session")
    await store.aclose()
    assert statuses == [200] * 5
    assert slowest < 3 * TIMEOUT + 1
    assert after.status_code == 200
    assert after.json() == {"kept": "across the outage"}


async def test_a_frozen_redis_gives_503_within_the_timeout(own_redis: RedisServer) -> None:
    store = store_for(own_redis)
    assert own_redis.process is not None
    async with client_for(build_app(store)) as client:
        await client.post("/session", json={"a": 1})
        os.kill(own_redis.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            frozen = await client.get("/session")
            elapsed = time.monotonic() - started
        finally:
            os.kill(own_redis.process.pid, signal.SIGCONT)
        assert frozen.status_code == 503
        assert elapsed < 4 * TIMEOUT + 1
        recovered = await client.get("/session")
    await store.aclose()
    assert recovered.json() == {"a": 1}


async def test_anonymous_mode_serves_reads_and_refuses_writes(own_redis: RedisServer) -> None:
    store = store_for(own_redis)
    app = build_app(store, on_store_error="anonymous")
    async with client_for(app) as client:
        await client.post("/session", json={"user": "ada"})
        token = client.cookies[COOKIE]
        own_redis.stop()
        read = await client.get("/session")
        write = await client.post("/session", json={"x": 1})
        own_redis.start("--appendonly", "yes")
        after = await client.get("/session")
    await store.aclose()
    assert read.status_code == 200
    assert read.json() == {}
    assert "set-cookie" not in read.headers
    assert write.status_code == 503
    assert "set-cookie" not in write.headers
    assert after.json() == {"user": "ada"}
    assert client.cookies[COOKIE] == token


async def test_traffic_during_a_restart_never_gets_a_500(own_redis: RedisServer) -> None:
    """Concurrent clients keep sending while the server goes away and comes back."""
    store = store_for(own_redis)
    app = build_app(store)
    seen: list[int] = []
    stop = asyncio.Event()

    async def visitor() -> None:
        async with client_for(app) as client:
            await client.post("/session", json={"n": 0})
            number = 0
            while not stop.is_set():
                number += 1
                response = await client.post("/session", json={"n": number})
                seen.append(response.status_code)
                await asyncio.sleep(0.01)

    visitors = [asyncio.create_task(visitor()) for _ in range(5)]
    await asyncio.sleep(0.3)
    own_redis.stop()
    await asyncio.sleep(0.5)
    own_redis.start("--appendonly", "yes")
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*visitors)
    await store.aclose()
    assert set(seen) <= {200, 503}
    assert 503 in seen
    assert seen[-5:] == [200] * 5
