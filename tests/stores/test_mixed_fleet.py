"""A rolling deploy: 0.2's scripts and today's on the same records, in either order.

Today's `RedisStore` keeps a record's lifetimes in a binary header (`m:h`) and, for one release,
also as the plain fields 0.2 reads. These tests run 0.2's own load and save scripts
(`scripts_0_2`, verbatim) against records written by today's store, and the other way round,
on a real Redis: a session stays live, keeps its own lifetimes and its data, and its size is
counted right, whichever version served it last.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis_asyncio

from sessionward import RedisStore, SessionRecord
from tests.stores import scripts_0_2

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000_000
IDLE = 60_000  # the configured idle TTL
KEY = "f" * 64


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    client = redis_asyncio.Redis.from_url(redis_url)
    await client.flushdb()
    yield RedisStore(client)
    await client.aclose()


async def load_0_2(store: RedisStore, now: int) -> dict[str, str] | None:
    """What a 0.2 process's `RedisStore.load` does: its script, then its JSON reply."""
    reply = await store.client.eval(scripts_0_2.LOAD_AND_TOUCH, 1, store.key(KEY), now, IDLE)
    return None if reply is None else dict(json.loads(reply.decode("utf-8", "replace")))


async def save_0_2(store: RedisStore, write: dict[str, str], now: int, *, create: bool) -> int:
    args: list[str | int] = [now, IDLE, 1 if create else 0, 0, len(write)]
    for pair in write.items():
        args += pair
    return int(await store.client.eval(scripts_0_2.SAVE_IF_LIVE, 1, store.key(KEY), *args))


def record(idle_ttl_ms: int = IDLE) -> dict[str, str]:
    made = SessionRecord(NOW, NOW + 10 * IDLE, NOW, user_id="ada", idle_ttl_ms=idle_ttl_ms)
    return made.to_fields()


async def test_0_2_reads_and_touches_a_record_written_today(store: RedisStore) -> None:
    assert await store.save(KEY, {**record(), "d:cart": "[1]"}, (), NOW, IDLE, create=True)
    old = await load_0_2(store, NOW + IDLE // 2)
    assert old is not None
    assert old["d:cart"] == "[1]"
    assert old["m:user"] == "ada"
    assert old["m:seen"] == str(NOW + IDLE // 2)
    # Today's store sees 0.2's touch: a later m:seen wins over the header's.
    fields = await store.load(KEY, NOW + IDLE + IDLE // 4, IDLE)
    assert fields is not None
    assert fields["m:seen"] == str(NOW + IDLE + IDLE // 4)


async def test_a_session_kept_alive_by_0_2_alone_is_still_live_here(store: RedisStore) -> None:
    """After a rollback and a roll forward: only 0.2 touched the session for two idle TTLs."""
    assert await store.save(KEY, record(), (), NOW, IDLE, create=True)
    for step in range(1, 5):
        assert await load_0_2(store, NOW + step * IDLE // 2) is not None
    assert await store.load(KEY, NOW + 5 * IDLE // 2, IDLE) is not None


async def test_0_2_keeps_a_short_own_idle_ttl_written_today(store: RedisStore) -> None:
    assert await store.save(KEY, record(idle_ttl_ms=1_000), (), NOW, IDLE, create=True)
    assert await load_0_2(store, NOW + 999) is not None
    assert await load_0_2(store, NOW + 999 + 1_000) is None  # idle for its own 1 s: ended


async def test_sizes_stay_right_across_versions(store: RedisStore) -> None:
    assert await store.save(KEY, {**record(), "d:a": "12"}, (), NOW, IDLE, create=True)
    assert await save_0_2(store, {"d:b": "345"}, NOW + 1, create=False) == 1
    assert await store.save(KEY, {"d:c": "6789"}, (), NOW + 2, IDLE, create=False)
    (fields,) = await store.read_records([KEY])
    assert fields is not None
    assert fields["m:size"] == str((1 + 2) + (1 + 3) + (1 + 4))
    assert await store.client.hexists(store.key(KEY), "m:size") == 0  # dropped: in the header
    assert await save_0_2(store, {"d:d": "0"}, NOW + 3, create=False) == 1
    (fields,) = await store.read_records([KEY])
    assert fields is not None
    assert fields["m:size"] == str((1 + 2) + (1 + 3) + (1 + 4) + (1 + 1))
    # The limit counts what both versions wrote.
    with pytest.raises(Exception, match="max_session_bytes=12"):
        await store.save(KEY, {"d:e": "1"}, (), NOW + 4, IDLE, create=False, max_bytes=12)


async def test_a_record_written_by_0_2_loads_here_and_gains_a_header_on_save(
    store: RedisStore,
) -> None:
    assert await save_0_2(store, {**record(), "d:a": "1"}, NOW, create=True) == 1
    assert await store.client.hexists(store.key(KEY), "m:h") == 0
    fields = await store.load(KEY, NOW + 10, IDLE)
    assert fields is not None
    assert (fields["d:a"], fields["m:seen"], fields["m:user"]) == ("1", str(NOW + 10), "ada")
    assert await store.client.hexists(store.key(KEY), "m:h") == 0  # a load does not upgrade
    assert await store.save(KEY, {"d:b": "2"}, (), NOW + 20, IDLE, create=False)
    assert await store.client.hexists(store.key(KEY), "m:h") == 1
    old = await load_0_2(store, NOW + 30)
    assert old is not None
    assert (old["d:a"], old["d:b"]) == ("1", "2")
    fields = await store.load(KEY, NOW + 40, IDLE)
    assert fields is not None
    assert fields["m:seen"] == str(NOW + 40)
    (listed,) = await store.read_records([KEY])
    assert listed is not None
    assert listed["m:size"] == str(2 + 2)


async def test_a_session_ended_by_either_version_stays_ended(store: RedisStore) -> None:
    assert await store.save(KEY, record(), (), NOW, IDLE, create=True)
    assert await load_0_2(store, NOW + 10 * IDLE) is None  # past its absolute deadline
    assert await store.load(KEY, NOW + 1, IDLE) is None
    assert await save_0_2(store, {"d:a": "1"}, NOW + 1, create=False) == 0
