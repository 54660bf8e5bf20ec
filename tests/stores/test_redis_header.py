"""The record header `m:h` of `RedisStore`, and what its scripts hand back, on a real Redis.

The header is 28 bytes that clients and attackers can plant too (a Redis they can write to):
short, long or negative headers end the session rather than crash anything. The load reply
carries the hash's fields as they are, so any byte in a key, a value or a user id survives.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis_asyncio

from sessionward import RedisStore, SessionRecord
from sessionward.stores.redis_header import LAYOUT

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000_000
IDLE = 60_000
KEY = "e" * 64


@pytest.fixture(params=["bytes", "decoded"])
async def store(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[RedisStore]:
    """Both kinds of client an app may pass in: replies as bytes, or decoded to str."""
    decoded = request.param == "decoded"
    client = redis_asyncio.Redis.from_url(redis_url, decode_responses=decoded)
    await client.flushdb()
    yield RedisStore(client)
    await client.aclose()


def record(**fields: str) -> dict[str, str]:
    made = SessionRecord(NOW, NOW + 10 * IDLE, NOW, user_id="ada", idle_ttl_ms=30_000)
    return {**made.to_fields(), **fields}


async def header(store: RedisStore) -> tuple[int, int, int, int]:
    raw = await store.client.execute_command("HGET", store.key(KEY), "m:h", NEVER_DECODE=[])
    assert isinstance(raw, bytes)
    seen, expires, own, size = LAYOUT.unpack(raw)
    return seen, expires, own, size


async def test_a_new_session_gets_a_header_with_its_lifetimes_and_size(store: RedisStore) -> None:
    assert await store.save(KEY, record(**{"d:a": "[1]"}), (), NOW, IDLE, create=True)
    assert await header(store) == (NOW, NOW + 10 * IDLE, 30_000, 1 + 3)
    fields = await store.load(KEY, NOW + 5, IDLE)
    assert fields is not None
    assert "m:h" not in fields
    assert (fields["m:seen"], fields["m:expires"], fields["m:idle"]) == (
        str(NOW + 5),
        str(NOW + 10 * IDLE),
        "30000",
    )
    (listed,) = await store.read_records([KEY])
    assert listed is not None
    assert listed["m:size"] == "4"
    assert (await header(store))[0] == NOW + 5  # the touch moved the header's last activity


async def test_a_save_that_changes_no_size_leaves_the_header_and_the_expiry_alone(
    store: RedisStore,
) -> None:
    assert await store.save(KEY, record(**{"d:a": "1"}), (), NOW, IDLE, create=True)
    assert await store.load(KEY, NOW + 10, IDLE) is not None
    before, ttl = await header(store), await store.client.pttl(store.key(KEY))
    assert await store.save(KEY, {"d:a": "2", "m:ip": "10.0.0.1"}, (), NOW + 20, IDLE, create=False)
    assert await header(store) == before
    assert await store.client.pttl(store.key(KEY)) <= ttl


@pytest.mark.parametrize(
    "planted",
    [
        b"",
        b"\x00" * 27,
        b"\x00" * 29,
        LAYOUT.pack(-1, NOW + IDLE, -1, 0),
        LAYOUT.pack(NOW, -5, -1, 0),
        LAYOUT.pack(NOW, NOW + IDLE, -1, -3),
        b"not a header at all, just text",
    ],
    ids=["empty", "short", "long", "negative seen", "negative deadline", "negative size", "text"],
)
async def test_an_unreadable_header_ends_the_session(store: RedisStore, planted: bytes) -> None:
    assert await store.save(KEY, record(), (), NOW, IDLE, create=True)
    await store.client.hset(store.key(KEY), "m:h", planted)
    assert await store.read_records([KEY]) == [None]
    assert not await store.save(KEY, {"d:a": "1"}, (), NOW + 1, IDLE, create=False)
    assert await store.load(KEY, NOW + 1, IDLE) is None
    assert await store.client.exists(store.key(KEY)) == 0


async def test_a_header_deadline_wins_over_a_planted_plain_field(store: RedisStore) -> None:
    """The plain `m:expires` is a copy for 0.2: the header decides for this version."""
    assert await store.save(KEY, record(), (), NOW, IDLE, create=True)
    await store.client.hset(store.key(KEY), "m:expires", str(NOW + 10**9))
    assert await store.load(KEY, NOW + 10 * IDLE, IDLE) is None


async def test_any_byte_in_keys_values_and_user_ids_survives_a_load(store: RedisStore) -> None:
    odd = "nul\x00, crlf\r\n, $5\r\n, *2, unit\x1f, é, 😀"
    written = record(**{f"d:{odd}": f'"{odd}"', "m:user": odd})
    assert await store.save(KEY, written, (), NOW, IDLE, create=True)
    fields = await store.load(KEY, NOW + 1, IDLE)
    assert fields is not None
    assert fields[f"d:{odd}"] == f'"{odd}"'
    assert fields["m:user"] == odd
    (listed,) = await store.read_records([KEY])
    assert listed is not None
    assert listed["m:user"] == odd


async def test_invalid_utf8_planted_in_the_hash_is_read_never_raised(store: RedisStore) -> None:
    assert await store.save(KEY, record(), (), NOW, IDLE, create=True)
    await store.client.hset(store.key(KEY), b"d:\xff", b"\xfe\x00")
    fields = await store.load(KEY, NOW + 1, IDLE)
    assert fields is not None
    assert fields["d:\ufffd"] == "\ufffd\x00"


def test_the_layout_is_the_one_the_scripts_pack() -> None:
    assert LAYOUT.size == 28
    assert LAYOUT.pack(1, 2, -1, 4) == struct.pack("<qqqi", 1, 2, -1, 4)
