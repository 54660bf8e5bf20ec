"""MemoryStore's own promise: expired sessions do not pile up."""

from __future__ import annotations

import pytest

from sessionward import MemoryStore
from sessionward.record import SessionRecord

pytestmark = pytest.mark.anyio

IDLE_MS = 60_000


async def create(store: MemoryStore, key: str, now_ms: int, absolute_ms: int = 3_600_000) -> None:
    fields = SessionRecord(now_ms, now_ms + absolute_ms, now_ms, idle_ttl_ms=IDLE_MS).to_fields()
    assert await store.save(key, fields, (), now_ms, IDLE_MS, create=True)


async def test_expired_sessions_are_dropped_without_being_asked_for() -> None:
    store = MemoryStore()
    for number in range(1000):
        await create(store, f"old-{number}", now_ms=0)
    await create(store, "fresh", now_ms=IDLE_MS - 1)
    assert len(store) == 1001
    assert await store.load("fresh", IDLE_MS + 1, IDLE_MS) is not None
    assert len(store) == 1


async def test_a_session_past_its_absolute_deadline_is_never_returned() -> None:
    store = MemoryStore()
    await create(store, "short", now_ms=0, absolute_ms=10_000)
    await create(store, "long", now_ms=5_000)
    assert await store.load("short", 10_000, IDLE_MS) is None
    assert await store.load("long", 10_000, IDLE_MS) is not None


async def test_create_refuses_an_existing_key_and_save_a_missing_one() -> None:
    store = MemoryStore()
    await create(store, "k", now_ms=0)
    assert not await store.save("k", {}, (), 1, IDLE_MS, create=True)
    assert not await store.save("gone", {"d:a": "1"}, (), 1, IDLE_MS, create=False)
    assert await store.load("gone", 1, IDLE_MS) is None


async def test_load_touches_seen() -> None:
    store = MemoryStore()
    await create(store, "k", now_ms=0)
    fields = await store.load("k", 5_000, IDLE_MS)
    assert fields is not None
    assert fields["m:seen"] == "5000"


async def test_the_index_drops_members_a_whole_lifetime_old_and_never_shortens() -> None:
    store = MemoryStore()
    await store.index_add("ada", "old", 0, 1000)
    await store.index_add("ada", "long", 500, 10_000)
    await store.index_add("ada", "new", 1000, 1000)  # "old" is a lifetime old now
    assert list(await store.index_read("ada")) == ["long", "new"]
    await store.load("unrelated", 9000, IDLE_MS)  # move the store's clock on
    assert list(await store.index_read("ada")) == ["long", "new"]  # the 10 s deadline held
