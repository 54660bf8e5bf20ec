"""What every store promises the middleware, run once per store (memory, Redis, cluster)."""

from __future__ import annotations

import pytest

from sessionward import RedisStore, Store
from sessionward.record import SEEN, SessionRecord

pytestmark = pytest.mark.anyio

IDLE_MS = 60_000
NOW_MS = 1_800_000_000_000


async def create(store: Store, key: str, now_ms: int = NOW_MS) -> None:
    record = SessionRecord(now_ms, now_ms + 3_600_000, now_ms, idle_ttl_ms=IDLE_MS)
    assert await store.save(key, record.to_fields(), (), now_ms, IDLE_MS, create=True)


async def assert_absent(store: Store, key: str) -> None:
    """Gone from the store, and, on Redis, not even a partial hash left behind."""
    assert await store.load(key, NOW_MS, IDLE_MS) is None
    if isinstance(store, RedisStore):
        assert await store.client.exists(store.key(key)) == 0


async def test_create_refuses_an_existing_key(store: Store) -> None:
    await create(store, "k")
    assert not await store.save("k", {"d:a": "1"}, (), NOW_MS + 1, IDLE_MS, create=True)
    fields = await store.load("k", NOW_MS + 1, IDLE_MS)
    assert fields is not None
    assert "d:a" not in fields


@pytest.mark.parametrize(
    ("write", "touch"),
    [
        pytest.param({"d:a": "1"}, True, id="data"),
        pytest.param({"d:a": "1", SEEN: str(NOW_MS)}, True, id="lifetimes"),
        pytest.param({"d:a": "1"}, False, id="not-activity"),
    ],
)
async def test_an_update_of_a_missing_session_is_refused_and_stores_nothing(
    store: Store, write: dict[str, str], touch: bool
) -> None:
    saved = await store.save("gone", write, ("d:b",), NOW_MS, IDLE_MS, create=False, touch=touch)
    assert saved is False
    await assert_absent(store, "gone")


async def test_an_update_of_an_ended_session_is_refused_and_writes_nothing(store: Store) -> None:
    await create(store, "k")
    later = NOW_MS + IDLE_MS  # idle for exactly its idle TTL: ended
    assert not await store.save("k", {"d:a": "1"}, (), later, IDLE_MS, create=False)
    assert await store.load("k", later, IDLE_MS) is None
    if isinstance(store, RedisStore):  # Redis drops the key at its own TTL, the write never lands
        assert await store.client.hget(store.key("k"), "d:a") is None
