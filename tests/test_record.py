"""The one liveness rule, and every copy of it pinned to the Python original.

`record.remaining_ms` decides when a session has ended. The Redis scripts repeat it in Lua and
`MemoryStore` applies it through `touch_ttl_ms`; each case below runs through all of them, on
load and on save, so a copy that drifts fails here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis_asyncio

from sessionward import MemoryStore, RedisStore, SessionError, SessionRecord
from sessionward.devices import Device
from sessionward.record import (
    AUTHENTICATED,
    BROWSER,
    EXPIRES,
    IDLE,
    KIND,
    LABEL,
    NEW_DEVICE,
    REMEMBER,
    SEEN,
    data_size,
    device_from_fields,
    device_to_fields,
    readable,
    remaining_ms,
    stored_int,
    touch_ttl_ms,
    untouched_ms,
)
from sessionward.stores.memory import _Entry

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000_000
DEFAULT_IDLE = 60_000  # the configured idle TTL
FAR = NOW + 10**9
KEY = "a" * 64


def fields(seen: object = NOW - 1, expires: object = FAR, idle: object = None) -> dict[str, str]:
    record = {"m:created": str(NOW - 5_000), "m:user": "ada", "d:cart": "[1]"}
    for name, value in (("m:seen", seen), ("m:expires", expires), (IDLE, idle)):
        if value is not None:
            record[name] = str(value)
    return record


# (name, stored fields, the time left the rule must give at NOW, or None for "ended")
CASES = [
    ("fresh, default idle", fields(), DEFAULT_IDLE),
    ("one ms before the default idle deadline", fields(seen=NOW - DEFAULT_IDLE + 1), DEFAULT_IDLE),
    ("at the default idle deadline", fields(seen=NOW - DEFAULT_IDLE), None),
    ("its own longer idle TTL is capped", fields(seen=NOW - DEFAULT_IDLE, idle=300_000), None),
    ("its own longer idle TTL, alive", fields(idle=300_000), DEFAULT_IDLE),
    ("its own shorter idle TTL wins", fields(seen=NOW - 500, idle=500), None),
    ("its own idle TTL, alive", fields(seen=NOW - 499, idle=500), 500),
    ("idle TTL of zero", fields(seen=NOW, idle=0), None),
    ("at the absolute deadline", fields(expires=NOW), None),
    ("one ms before the absolute deadline", fields(expires=NOW + 1), 1),
    ("absolute deadline nearer than idle", fields(expires=NOW + 300), 300),
    ("past the absolute deadline", fields(expires=NOW - 1), None),
    ("no m:seen", fields(seen=None), None),
    ("no m:expires", fields(expires=None), None),
    ("m:seen not a number", fields(seen="soon"), None),
    ("m:seen with a sign", fields(seen=f"+{NOW}"), None),
    ("m:seen with spaces", fields(seen=f" {NOW}"), None),
    ("m:seen in hex", fields(seen="0x1a2b"), None),
    ("m:expires with an exponent", fields(expires="1e15"), None),
    ("m:expires with underscores", fields(expires="1_999_999_999_999"), None),
    ("m:expires negative", fields(expires="-1"), None),
    ("m:expires sixteen digits", fields(expires="9" * 16), None),
    ("m:expires fifteen digits", fields(expires="9" * 15), DEFAULT_IDLE),
    ("m:idle unreadable falls back to the default", fields(idle="never"), DEFAULT_IDLE),
    ("m:idle empty falls back to the default", fields(idle=""), DEFAULT_IDLE),
]
IDS = [name for name, _, _ in CASES]


@pytest.mark.parametrize(("name", "stored", "expected"), CASES, ids=IDS)
def test_the_rule(name: str, stored: dict[str, str], expected: int | None) -> None:
    assert touch_ttl_ms(stored, NOW, DEFAULT_IDLE) == expected


def test_the_rule_on_numbers() -> None:
    assert remaining_ms(NOW, NOW - 10, NOW + 100, 50) == 50
    assert remaining_ms(NOW, NOW - 50, NOW + 100, 50) is None
    assert remaining_ms(NOW, NOW - 10, NOW, 50) is None


def test_a_record_keeps_its_own_idle_ttl_and_uses_the_same_rule() -> None:
    record = SessionRecord(NOW, FAR, NOW - 10, idle_ttl_ms=100)
    back = SessionRecord.from_fields(record.to_fields(), DEFAULT_IDLE)
    assert back == record
    assert back is not None
    assert back.remaining_ms(NOW) == 100
    assert back.remaining_ms(NOW + 90) is None


def test_a_record_without_its_own_idle_ttl_takes_the_configured_one() -> None:
    old = fields()  # as 0.1 wrote it: no m:idle
    record = SessionRecord.from_fields({k: v for k, v in old.items() if k.startswith("m:")}, 42)
    assert record is not None
    assert record.idle_ttl_ms == 42


@pytest.mark.parametrize(
    "text", ["", None, "x", "+1", " 1", "1 ", "1.0", "1e3", "0x1", "1_0", "-1", "١٢", "9" * 16]
)
def test_stored_numbers_are_plain_digits(text: str | None) -> None:
    assert stored_int(text) is None


# -- the copies ----------------------------------------------------------------------------


@pytest.fixture
async def redis_store(redis_url: str) -> AsyncIterator[RedisStore]:
    client = redis_asyncio.Redis.from_url(redis_url, decode_responses=True)
    await client.flushdb()
    yield RedisStore(client)
    await client.aclose()


async def plant_in_redis(store: RedisStore, stored: dict[str, str]) -> None:
    await store.client.hset(store.key(KEY), mapping=dict(stored))  # type: ignore[arg-type]
    await store.client.pexpire(store.key(KEY), 10**9)


def plant_in_memory(store: MemoryStore, stored: dict[str, str]) -> None:
    store._entries[KEY] = entry = _Entry(dict(stored), FAR)
    entry.read_numbers()


@pytest.mark.parametrize(("name", "stored", "expected"), CASES, ids=IDS)
async def test_redis_load_script_follows_the_rule(
    redis_store: RedisStore, name: str, stored: dict[str, str], expected: int | None
) -> None:
    await plant_in_redis(redis_store, stored)
    loaded = await redis_store.load(KEY, NOW, DEFAULT_IDLE)
    ttl = await redis_store.client.pttl(redis_store.key(KEY))
    if expected is None:
        assert loaded is None
        assert ttl == -2  # an ended session is deleted, not left for its TTL
    else:
        assert loaded is not None
        assert loaded["m:seen"] == str(NOW)
        assert expected - 50 < ttl <= expected


@pytest.mark.parametrize(("name", "stored", "expected"), CASES, ids=IDS)
async def test_memory_load_follows_the_rule(
    name: str, stored: dict[str, str], expected: int | None
) -> None:
    store = MemoryStore()
    plant_in_memory(store, stored)
    loaded = await store.load(KEY, NOW, DEFAULT_IDLE)
    if expected is None:
        assert loaded is None
        assert len(store) == 0
    else:
        assert loaded is not None
        assert loaded["m:seen"] == str(NOW)
        assert store._entries[KEY].deadline_ms == NOW + expected


@pytest.mark.parametrize(("name", "stored", "expected"), CASES, ids=IDS)
async def test_redis_save_script_follows_the_rule(
    redis_store: RedisStore, name: str, stored: dict[str, str], expected: int | None
) -> None:
    await plant_in_redis(redis_store, stored)
    saved = await redis_store.save(KEY, {"d:new": "1"}, (), NOW, DEFAULT_IDLE, create=False)
    written = await redis_store.client.hget(redis_store.key(KEY), "d:new")
    assert saved is (expected is not None)
    if expected is None:
        assert written is None  # refused whole: nothing written
    else:
        assert written == "1"
        # The expiry stays where the last touch put it (here: where it was planted): a save
        # that moves no lifetime leaves the record's deadline as it stands.
        ttl = await redis_store.client.pttl(redis_store.key(KEY))
        assert 10**9 - 5_000 < ttl <= 10**9


@pytest.mark.parametrize(("name", "stored", "expected"), CASES, ids=IDS)
async def test_memory_save_follows_the_rule(
    name: str, stored: dict[str, str], expected: int | None
) -> None:
    store = MemoryStore()
    plant_in_memory(store, stored)
    saved = await store.save(KEY, {"d:new": "1"}, (), NOW, DEFAULT_IDLE, create=False)
    assert saved is (expected is not None)
    entry = store._entries.get(KEY)
    if expected is None:
        assert entry is None or "d:new" not in entry.fields
    else:
        assert entry is not None
        assert entry.fields["d:new"] == "1"
        assert entry.deadline_ms == NOW + expected


@pytest.mark.parametrize(("name", "stored", "expected"), CASES, ids=IDS)
async def test_creating_follows_the_rule(
    redis_store: RedisStore, name: str, stored: dict[str, str], expected: int | None
) -> None:
    """A new session that would already have ended is not stored, in either store."""
    memory = MemoryStore()
    for store in (memory, redis_store):
        created = await store.save(KEY, stored, (), NOW, DEFAULT_IDLE, create=True)
        assert created is (expected is not None), type(store).__name__
    assert len(memory) == (0 if expected is None else 1)
    exists = await redis_store.client.exists(redis_store.key(KEY))
    if expected is None or expected > 1000:  # a key given 1 ms of real time may be gone now
        assert exists == (expected is not None)


async def test_an_update_of_a_missing_session_writes_nothing(redis_store: RedisStore) -> None:
    assert not await redis_store.save(KEY, {"d:a": "1"}, (), NOW, DEFAULT_IDLE, create=False)
    assert await redis_store.client.exists(redis_store.key(KEY)) == 0


@pytest.mark.parametrize(
    ("write", "delete", "saved"),
    [
        ({"m:expires": str(NOW)}, (), False),  # a change that ends the session
        ({"m:idle": "1", "d:a": "1"}, (), False),
        ({"m:expires": str(NOW + 500)}, (), True),
        ({}, ["m:seen"], False),
        ({}, ["m:idle"], True),  # back to the configured idle TTL
    ],
)
async def test_a_save_that_changes_the_lifetimes_follows_the_rule(
    redis_store: RedisStore, write: dict[str, str], delete: list[str], saved: bool
) -> None:
    memory = MemoryStore()
    plant_in_memory(memory, fields(seen=NOW - 10, idle=300_000))
    await plant_in_redis(redis_store, fields(seen=NOW - 10, idle=300_000))
    for store in (memory, redis_store):
        assert await store.save(KEY, write, delete, NOW, DEFAULT_IDLE, create=False) is saved
    assert len(memory) == int(saved)
    assert await redis_store.client.exists(redis_store.key(KEY)) == int(saved)
    if saved:
        after = {**fields(seen=NOW - 10, idle=300_000), **write}
        for name in delete:
            del after[name]
        expected = touch_ttl_ms(after, NOW, DEFAULT_IDLE)
        assert expected is not None
        assert memory._entries[KEY].deadline_ms == NOW + expected
        assert expected - 50 < await redis_store.client.pttl(redis_store.key(KEY)) <= expected


async def test_a_save_of_thousands_of_fields_goes_through(redis_store: RedisStore) -> None:
    await plant_in_redis(redis_store, fields())
    many = {f"d:{number}": "1" for number in range(5000)}
    assert await redis_store.save(KEY, many, (), NOW, DEFAULT_IDLE, create=False)
    assert await redis_store.client.hlen(redis_store.key(KEY)) >= 5000
    gone = list(many)[:4000]
    assert await redis_store.save(KEY, {}, gone, NOW, DEFAULT_IDLE, create=False)
    assert await redis_store.client.hexists(redis_store.key(KEY), "d:4500")
    assert not await redis_store.client.hexists(redis_store.key(KEY), "d:10")


async def test_deletes_given_as_a_one_shot_iterable_all_happen(redis_store: RedisStore) -> None:
    memory = MemoryStore()
    plant_in_memory(memory, fields())
    await plant_in_redis(redis_store, fields())
    for store in (memory, redis_store):
        names = (name for name in ["d:cart", "m:expires"])  # off the Collection contract
        assert not await store.save(KEY, {}, names, NOW, DEFAULT_IDLE, create=False)  # type: ignore[arg-type]
    assert len(memory) == 0  # without m:expires the session has ended
    assert await redis_store.client.exists(redis_store.key(KEY)) == 0


async def test_the_data_size_is_kept_and_a_save_past_the_limit_writes_nothing(
    redis_store: RedisStore,
) -> None:
    memory = MemoryStore()
    stored = fields()  # one data field, d:cart = "[1]", and no m:size: as 0.1 wrote it
    plant_in_memory(memory, stored)
    await plant_in_redis(redis_store, stored)
    for store in (memory, redis_store):
        assert await store.save(KEY, {"d:é": '"ü"'}, (), NOW, DEFAULT_IDLE, create=False)
        (meta,) = await store.read_records([KEY])
        assert meta is not None
        assert meta["m:size"] == str(4 + 3 + 2 + 4)  # "cart" + "[1]", "é" + '"ü"' in UTF-8
        assert await store.save(KEY, {}, ["d:cart"], NOW, DEFAULT_IDLE, create=False)
        (meta,) = await store.read_records([KEY])
        assert meta is not None
        assert meta["m:size"] == "6"
        with pytest.raises(SessionError, match="8 bytes of data, over max_session_bytes=6"):
            await store.save(KEY, {"d:x": "1"}, (), NOW, DEFAULT_IDLE, create=False, max_bytes=6)
        (meta,) = await store.read_records([KEY])
        assert meta is not None
        assert meta["m:size"] == "6"  # refused whole: nothing written
        assert await store.save(
            KEY, {"d:é": "1"}, (), NOW, DEFAULT_IDLE, create=False, max_bytes=6
        )  # replacing a value frees its old bytes first
    assert "d:x" not in memory._entries[KEY].fields
    assert not await redis_store.client.hexists(redis_store.key(KEY), "d:x")


async def test_a_new_session_over_the_limit_is_not_created(redis_store: RedisStore) -> None:
    memory = MemoryStore()
    for store in (memory, redis_store):
        with pytest.raises(SessionError):
            await store.save(
                KEY,
                {**fields(), "d:big": "9" * 20},
                (),
                NOW,
                DEFAULT_IDLE,
                create=True,
                max_bytes=10,
            )
    assert len(memory) == 0
    assert await redis_store.client.exists(redis_store.key(KEY)) == 0


def test_a_request_that_is_not_activity_leaves_the_deadlines_as_they_stand() -> None:
    # seen at 1000 with a 5000 ms idle TTL, absolute deadline 20 000: idle deadline 6000
    assert untouched_ms(4000, 1000, 20_000, 5000) == 2000
    assert untouched_ms(4000, 1000, 5500, 5000) == 1500  # the absolute deadline comes first
    assert untouched_ms(6000, 1000, 20_000, 5000) is None
    assert untouched_ms(5500, 1000, 5500, 5000) is None
    stored = {SEEN: "1000", EXPIRES: "20000", IDLE: "5000"}
    assert touch_ttl_ms(stored, 4000, 60_000, touch=False) == 2000
    assert touch_ttl_ms(stored, 4000, 60_000) == 5000  # activity: a whole idle TTL from now


@pytest.mark.parametrize("missing", ["m:created", "m:expires", "m:seen"])
def test_a_record_missing_any_required_time_is_unreadable(missing: str) -> None:
    stored = {"m:created": "1", "m:expires": "3", "m:seen": "2"}
    assert readable(stored)
    del stored[missing]
    assert not readable(stored)
    assert SessionRecord.from_fields(stored, DEFAULT_IDLE) is None


def test_every_field_of_a_record_round_trips() -> None:
    device = Device("Safari", "17", "iOS", "17.4", "iPhone", "Apple", "iPhone", "mobile", "iPhone")
    record = SessionRecord(
        1,
        3,
        2,
        user_id="ada",
        ip="203.0.113.7",
        first_ip="198.51.100.1",
        device_fields=device_to_fields(device),
        agent_hash="abc",
        transport="bearer",
        idle_ttl_ms=500,
        authenticated_at_ms=2,
        remember=False,
        location="Lisbon",
        new_device=True,
    )
    fields = record.to_fields()
    assert fields[REMEMBER] == "0"
    assert fields[NEW_DEVICE] == "1"
    assert SessionRecord.from_fields(fields, DEFAULT_IDLE) == record
    assert record.device == device
    defaults = SessionRecord(1, 3, 2)
    assert REMEMBER not in defaults.to_fields()
    assert NEW_DEVICE not in defaults.to_fields()
    assert AUTHENTICATED not in defaults.to_fields()
    read = SessionRecord.from_fields(defaults.to_fields(), DEFAULT_IDLE)
    assert read is not None
    assert (read.transport, read.remember, read.new_device) == ("cookie", True, False)


def test_a_device_with_unknown_parts_round_trips_and_garbage_reads_as_none() -> None:
    device = Device(None, None, "Linux", None, None, None, None, "desktop", "Linux")
    assert device_from_fields(device_to_fields(device)) == device
    fields = device_to_fields(device)
    assert device_from_fields({**fields, KIND: "toaster"}) is None
    assert device_from_fields({**fields, LABEL: ""}) is None
    broken = device_from_fields({**fields, BROWSER: "a\x1fb\x1fc"})
    assert broken is not None
    assert (broken.browser, broken.browser_version) == (None, None)


def test_data_size_counts_utf8_bytes_when_either_side_is_not_ascii() -> None:
    assert data_size("d:k", "\u00e9") == 1 + 2
    assert data_size("d:\u00e9", "1") == 2 + 1
    assert data_size("d:k", "12") == 3
