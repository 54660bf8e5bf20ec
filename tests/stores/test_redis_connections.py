"""The connections `RedisStore` holds for its scripts (`HeldConnections`), on a real Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis_asyncio
from redis.asyncio import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from sessionward import RedisStore, SessionRecord, StoreUnavailable
from sessionward.stores.redis_connections import HeldConnections

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000_000
IDLE = 60_000


class OwnPool(redis_asyncio.ConnectionPool):
    """A pool of the app's own, which may do anything per connection (as Sentinel's does)."""


def record() -> dict[str, str]:
    return SessionRecord(NOW, NOW + 10 * IDLE, NOW, user_id="ada").to_fields()


async def test_plain_clients_get_held_connections_and_others_keep_redis_py(
    redis_url: str, redis_cluster_url: str
) -> None:
    plain = redis_asyncio.Redis.from_url(redis_url)
    blocking = redis_asyncio.Redis(
        connection_pool=redis_asyncio.BlockingConnectionPool.from_url(redis_url)
    )
    sentinel_like = redis_asyncio.Redis(connection_pool=OwnPool.from_url(redis_url))
    cluster = RedisCluster.from_url(redis_cluster_url)
    try:
        assert isinstance(HeldConnections.serve(plain), HeldConnections)
        assert isinstance(HeldConnections.serve(blocking), HeldConnections)
        assert HeldConnections.serve(sentinel_like) is None
        assert HeldConnections.serve(cluster) is None
    finally:
        for client in (plain, blocking, cluster, sentinel_like):
            await client.aclose()


async def test_the_client_socket_timeout_bounds_the_whole_round_trip(redis_url: str) -> None:
    client = redis_asyncio.Redis.from_url(redis_url, socket_timeout=0.7)
    held = HeldConnections.serve(client)
    assert held is not None
    assert held.timeout == 0.7
    await client.aclose()


async def test_many_concurrent_calls_on_a_bounded_pool_wait_their_turn(redis_url: str) -> None:
    pool = redis_asyncio.BlockingConnectionPool.from_url(redis_url, max_connections=2)
    client = redis_asyncio.Redis(connection_pool=pool)
    await client.flushdb()
    store = RedisStore(client)
    keys = [f"{number:064d}" for number in range(40)]
    for key in keys:
        assert await store.save(key, record(), (), NOW, IDLE, create=True)
    loaded = await asyncio.gather(*(store.load(key, NOW + 1, IDLE) for key in keys))
    assert all(fields is not None for fields in loaded)
    await store.aclose()


KEY = "c" * 64


async def dropped_after_a_save(redis_url: str, retries: int) -> RedisStore:
    """A store with one session saved, whose connection the server has since dropped."""
    store = RedisStore(redis_asyncio.Redis.from_url(redis_url, retry=Retry(NoBackoff(), retries)))
    admin = redis_asyncio.Redis.from_url(redis_url)
    await admin.flushdb()
    assert await store.save(KEY, record(), (), NOW, IDLE, create=True)
    await admin.client_kill_filter(_type="normal", skipme=True)
    await admin.aclose()
    return store


async def test_a_connection_the_server_dropped_is_replaced_by_a_retry(redis_url: str) -> None:
    store = await dropped_after_a_save(redis_url, retries=1)
    assert await store.load(KEY, NOW + 1, IDLE) is not None
    await store.aclose()


async def test_without_retries_a_dropped_connection_is_a_clear_outage(redis_url: str) -> None:
    store = await dropped_after_a_save(redis_url, retries=0)
    with pytest.raises(StoreUnavailable, match="Redis is unavailable"):
        await store.load(KEY, NOW + 1, IDLE)
    assert await store.load(KEY, NOW + 2, IDLE) is not None  # a new connection next time
    await store.aclose()


async def test_a_script_flushed_from_the_server_is_loaded_again(redis_url: str) -> None:
    client = redis_asyncio.Redis.from_url(redis_url)
    await client.flushdb()
    store = RedisStore(client)
    key = "a" * 64
    assert await store.save(key, record(), (), NOW, IDLE, create=True)
    await client.script_flush()
    assert await store.load(key, NOW + 1, IDLE) is not None
    await store.aclose()
