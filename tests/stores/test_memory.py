"""MemoryStore's own promise: expired sessions do not pile up."""

from __future__ import annotations

import pytest

from sessionward import ConfigurationError, MemoryStore
from sessionward.record import SessionRecord
from sessionward.stores.base import SIGN_IN_GRACE_MS

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


async def make(store: MemoryStore, key: str, now_ms: int, user: str | None = None) -> bool:
    record = SessionRecord(now_ms, now_ms + 3_600_000, now_ms, user_id=user, idle_ttl_ms=IDLE_MS)
    return await store.save(key, record.to_fields(), (), now_ms, IDLE_MS, create=True)


async def test_a_full_store_forgets_anonymous_sessions_before_signed_in_ones() -> None:
    store = MemoryStore(max_sessions=4)
    await make(store, "ada", 0, user="ada")
    await make(store, "bob", 1, user="bob")
    for number in range(10):  # a flood of visitors who write to their session
        await make(store, f"visitor-{number}", 10 + number)
    assert len(store) == 4
    assert await store.load("ada", 100, IDLE_MS) is not None
    assert await store.load("bob", 100, IDLE_MS) is not None
    assert await store.load("visitor-9", 100, IDLE_MS) is not None
    assert await store.load("visitor-0", 100, IDLE_MS) is None


async def test_a_store_full_of_signed_in_sessions_forgets_the_least_recently_used() -> None:
    store = MemoryStore(max_sessions=2)
    await make(store, "ada", 0, user="ada")
    await make(store, "bob", 1, user="bob")
    assert await store.load("ada", 2, IDLE_MS) is not None  # ada used last: bob is older
    await make(store, "cy", 3, user="cy")
    assert await store.load("bob", 4, IDLE_MS) is None
    assert await store.load("ada", 4, IDLE_MS) is not None


async def test_expired_user_indexes_are_swept_without_being_read() -> None:
    store = MemoryStore()
    for number in range(3000):
        await store.index_add(f"user-{number}", "k", 0, 1000)
    await store.index_add("late", "k", 10_000, 1000)
    for number in range(2000):  # more sign-ins, long after the first indexes expired
        await store.index_add(f"later-{number}", "k", 10_000 + number, 1000)
    assert len(store._indexes) <= 2001


@pytest.mark.parametrize("max_sessions", [0, -1, 1.5, True])
def test_max_sessions_must_be_a_positive_int(max_sessions: object) -> None:
    with pytest.raises(ConfigurationError):
        MemoryStore(max_sessions=max_sessions)  # type: ignore[arg-type]


async def test_a_save_that_is_not_activity_keeps_the_idle_deadline() -> None:
    store = MemoryStore()
    await create(store, "k", now_ms=0)
    assert await store.save("k", {"d:a": "1"}, (), 30_000, IDLE_MS, create=False, touch=False)
    await store.load("unrelated", IDLE_MS, IDLE_MS)  # idle since 0: dropped unasked
    assert len(store) == 0


async def test_a_saved_session_moves_to_the_back_of_the_expiry_order() -> None:
    store = MemoryStore()
    await create(store, "first", now_ms=0)
    await create(store, "second", now_ms=10_000)
    assert await store.save("first", {"m:seen": "20000"}, (), 20_000, IDLE_MS, create=False)
    await store.load("unrelated", 10_000 + IDLE_MS, IDLE_MS)  # "second" idle, "first" not
    assert len(store) == 1
    assert await store.load("first", 10_000 + IDLE_MS, IDLE_MS) is not None


async def test_a_session_is_gone_at_its_deadline_to_every_call() -> None:
    store = MemoryStore()
    await create(store, "k", now_ms=0)
    await create(store, "later", now_ms=IDLE_MS - 1)
    await store.load("later", IDLE_MS, IDLE_MS)  # the store's clock at k's deadline
    assert await store.read_records(["k"]) == [None]
    assert await store.delete("k") == 0


async def test_one_account_cannot_sign_everyone_else_out() -> None:
    # Regression: past `max_sessions`, the least recently used signed-in session went, so
    # fifty sign-ins as one account evicted every other user's session.
    store = MemoryStore(max_sessions=50)
    for number in range(10):
        await make(store, f"user-{number}", number, user=f"user-{number}")
    for number in range(50):
        await make(store, f"mallory-{number}", 100 + number, user="mallory")
    assert len(store) == 50
    for number in range(10):
        assert await store.load(f"user-{number}", 200, IDLE_MS) is not None
    survivors = [n for n in range(50) if await store.load(f"mallory-{n}", 200, IDLE_MS)]
    assert survivors == list(range(10, 50))  # her own least recently used went first


async def test_the_account_holding_the_most_gives_one_up_first() -> None:
    store = MemoryStore(max_sessions=5)
    await make(store, "ada-1", 0, user="ada")
    await make(store, "bob-1", 1, user="bob")
    await make(store, "bob-2", 2, user="bob")
    await make(store, "bob-3", 3, user="bob")
    await make(store, "ada-2", 4, user="ada")
    assert await store.load("bob-1", 5, IDLE_MS) is not None  # bob-2 is now his oldest
    await make(store, "cy-1", 6, user="cy")
    assert await store.load("bob-2", 7, IDLE_MS) is None
    for kept in ("ada-1", "ada-2", "bob-1", "bob-3", "cy-1"):
        assert await store.load(kept, 7, IDLE_MS) is not None, kept


async def test_a_session_that_gains_a_user_counts_as_theirs() -> None:
    store = MemoryStore(max_sessions=3)
    await make(store, "ada", 0, user="ada")
    await make(store, "visitor", 1)
    assert await store.save("visitor", {"m:user": "bob"}, (), 2, IDLE_MS, create=False)
    await make(store, "bob-2", 3, user="bob")
    await make(store, "cy", 4, user="cy")  # bob holds the most: his oldest goes
    assert await store.load("visitor", 5, IDLE_MS) is None
    assert await store.load("ada", 5, IDLE_MS) is not None
    assert await store.load("bob-2", 5, IDLE_MS) is not None


async def test_known_device_logs_are_bounded_by_max_sessions() -> None:
    store = MemoryStore(max_sessions=5)
    for number in range(20):
        await store.device_seen(f"user-{number}", ["h"], "Firefox", None, number, 10**9, 50)
    assert await store.devices_read("user-0") == []
    assert len(await store.devices_read("user-19")) == 1
    assert len(store._device_logs) == 5


async def test_user_indexes_are_bounded_but_never_drop_a_live_sessions() -> None:
    store = MemoryStore(max_sessions=5)
    await store.index_add("ada", "ada-key", 0, 10**9)
    await make(store, "ada-key", 0, user="ada")
    for number in range(20):  # users whose sessions never came, long ago
        await store.index_add(f"gone-{number}", f"k{number}", number, 10**9)
    late = 10 * SIGN_IN_GRACE_MS
    await store.index_add("signing-in", "new-key", late, 10**9)  # stored in a moment
    for number in range(20):
        await store.index_add(f"later-{number}", f"l{number}", late + number, 10**9)
    assert list(await store.index_read("ada")) == ["ada-key"]
    assert list(await store.index_read("signing-in")) == ["new-key"]
    assert await store.index_read("gone-0") == {}


async def test_one_accounts_index_does_not_grow_with_its_evicted_sessions() -> None:
    store = MemoryStore(max_sessions=10)
    for number in range(1000):
        now_ms = number * SIGN_IN_GRACE_MS  # each sign-in a minute after the last
        await store.index_add("mallory", f"m{number}", now_ms, 10**12)
        await make(store, f"m{number}", now_ms, user="mallory")
    assert len(await store.index_read("mallory")) <= 64
