"""Fixtures: real Redis servers, the store each test runs against, apps and clients."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis
import redis.asyncio as redis_asyncio
from hypothesis import settings
from redis.asyncio.cluster import RedisCluster

from sessionward import MemoryStore, RedisStore, Store
from sessionward.testing import Clock as Clock  # the tests use the clock apps get
from tests.apps import SECRET
from tests.redis_server import (
    LocalCluster,
    RedisServer,
    free_port,
    require_redis,
    start_cluster,
    start_server,
)

ROOT = Path(__file__).resolve().parent.parent

# Property tests check what is accepted, not how fast: on a busy two-core CI machine the
# default 200 ms deadline per example fails them at random.
settings.register_profile("sessionward", deadline=None)
settings.load_profile("sessionward")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | None]:
    """A redis-server started for this test session, or None when REDIS_URL names one."""
    if os.environ.get("REDIS_URL"):
        yield None
        return
    try:
        server = start_server()
    except (FileNotFoundError, RuntimeError) as exc:
        reason = f"no Redis for the Redis tests: {exc}; install redis-server or set REDIS_URL"
        if require_redis():
            pytest.fail(reason + " (required under CI)")
        pytest.skip(reason)
    yield server
    server.remove()  # and its temp directory


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server only this test uses, so it may stop or freeze it; removed afterwards."""
    try:
        server = start_server()
    except (FileNotFoundError, RuntimeError) as exc:
        if require_redis():
            pytest.fail(f"this test needs redis-server: {exc}")
        pytest.skip(f"this test needs redis-server: {exc}")
    yield server
    if server.process is not None and server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)  # in case the test froze it
    server.remove()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer | None) -> str:
    """Where the Redis tests connect. Its database is flushed before every test."""
    return redis_server.url if redis_server is not None else os.environ["REDIS_URL"]


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis_asyncio.Redis]:
    client = redis_asyncio.Redis.from_url(url=redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster | None]:
    """A three-primary Redis Cluster for this test session; None when REDIS_CLUSTER_URL names one.

    Started once (about two seconds: `redis-cli --cluster create` and the wait for every node
    to report `cluster_state:ok`), then shared by every test that asks for it.
    """
    if os.environ.get("REDIS_CLUSTER_URL"):
        yield None
        return
    try:
        cluster = start_cluster()
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as exc:
        reason = (
            f"no Redis Cluster for the cluster tests: {exc}; "
            "install redis-server and redis-cli or set REDIS_CLUSTER_URL"
        )
        if require_redis():
            pytest.fail(reason + " (required under CI)")
        pytest.skip(reason)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster: LocalCluster | None) -> str:
    """A cluster node the cluster tests start from. Every primary is flushed before each test."""
    if redis_cluster is not None:
        return redis_cluster.url
    return os.environ["REDIS_CLUSTER_URL"]


@pytest.fixture
async def redis_cluster_client(redis_cluster_url: str) -> AsyncIterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster_url)
    await client.flushall(target_nodes=RedisCluster.PRIMARIES)
    yield client
    await client.aclose()


@pytest.fixture(params=["memory", "redis", "cluster"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """Each behavioural test runs once per store: in memory, on a real standalone server, and
    on a real three-primary cluster (where a session and its user's index sit on different
    nodes, so anything that is not single-slot-safe fails here)."""
    if request.param == "memory":
        yield MemoryStore()
        return
    client: redis_asyncio.Redis | RedisCluster
    if request.param == "cluster":
        client = RedisCluster.from_url(request.getfixturevalue("redis_cluster_url"))
        await client.flushall(target_nodes=RedisCluster.PRIMARIES)
    else:
        client = redis_asyncio.Redis.from_url(request.getfixturevalue("redis_url"))
        await client.flushdb()
    yield RedisStore(client)
    await client.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def client_for(app: object) -> httpx.AsyncClient:
    """An httpx client that drives the ASGI app in-process and keeps cookies like a browser."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


@contextlib.contextmanager
def serve_example(
    script: str, environment: dict[str, str], ready_path: str = "/session"
) -> Iterator[str]:
    """An example app under uvicorn on a free loopback port; its base URL once it answers."""
    port = free_port()
    environment = {**os.environ, **environment, "PORT": str(port), "HOST": "127.0.0.1"}
    server = subprocess.Popen(
        [sys.executable, script],
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
                httpx.get(base_url + ready_path, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.05)
        yield base_url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def served_example(redis_url: str) -> Iterator[str]:
    """examples/app.py under uvicorn on a loopback port, with its sessions in a flushed Redis."""
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    environment = {"SESSIONWARD_SECRET_KEYS": SECRET, "REDIS_URL": redis_url}
    with serve_example("examples/app.py", environment) as base_url:
        yield base_url
