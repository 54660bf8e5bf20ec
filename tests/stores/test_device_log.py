"""The known-device log on every store: sightings, novelty, caps, rotation, expiry, forgetting.

Each test runs on the memory store, a standalone Redis and a three-primary cluster; where a
Redis key is there to look at, its layout and TTL are checked too.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import cast

import pytest
import redis.asyncio as redis_asyncio
from redis.asyncio.cluster import RedisCluster

from sessionward import MemoryStore, RedisStore, Store
from sessionward.stores import DeviceEntry

pytestmark = pytest.mark.anyio

DAY_MS = 24 * 3_600_000
TTL_MS = 400 * DAY_MS
CAP = 50
T0 = 1_800_000_000_000


@pytest.fixture(params=["redis", "cluster"])
async def redis_store(request: pytest.FixtureRequest) -> AsyncIterator[RedisStore]:
    """A flushed standalone server, then a flushed cluster: where the key can be looked at."""
    client: redis_asyncio.Redis | RedisCluster
    if request.param == "cluster":
        client = RedisCluster.from_url(request.getfixturevalue("redis_cluster_url"))
        await client.flushall(target_nodes=RedisCluster.PRIMARIES)
    else:
        client = redis_asyncio.Redis.from_url(request.getfixturevalue("redis_url"))
        await client.flushdb()
    yield RedisStore(client)
    await client.aclose()


def h(name: str) -> str:
    """A stand-in for a device hash: 64 hex digits."""
    return hashlib.sha256(name.encode()).hexdigest()


async def seen(
    store: Store,
    device: str | list[str],
    now_ms: int = T0,
    *,
    user: str = "ada",
    label: str = "Chrome 131 on macOS",
    location: str | None = None,
    ttl_ms: int = TTL_MS,
    cap: int = CAP,
) -> tuple[bool, bool]:
    hashes = [h(device)] if isinstance(device, str) else [h(d) for d in device]
    new_device, new_location, _ = await store.device_seen(
        user, hashes, label, location, now_ms, ttl_ms, cap
    )
    return new_device, new_location


async def raw(store: RedisStore, user: str = "ada") -> dict[bytes, bytes]:
    """The log's hash as stored (these clients answer bytes)."""
    fields = await store.client.hgetall(store.device_log_key(user))
    return cast(dict[bytes, bytes], fields)


async def entries(store: Store, user: str = "ada") -> dict[str, DeviceEntry]:
    return {entry.hash: entry for entry in await store.devices_read(user)}


async def test_a_first_sighting_is_new_and_a_second_is_not(store: Store) -> None:
    assert await seen(store, "laptop") == (True, False)
    assert await seen(store, "laptop", T0 + 1000, label="Chrome 132 on macOS") == (False, False)
    (entry,) = await store.devices_read("ada")
    assert entry == DeviceEntry(h("laptop"), T0, T0 + 1000, "Chrome 132 on macOS", None)


async def test_devices_are_per_user(store: Store) -> None:
    await seen(store, "laptop", user="ada")
    assert await seen(store, "laptop", user="bob") == (True, False)
    assert await store.devices_read("carol") == []


async def test_a_location_is_new_once_per_user(store: Store) -> None:
    assert await seen(store, "laptop", location="Berlin, DE") == (True, True)
    assert await seen(store, "phone", location="Berlin, DE") == (True, False)
    assert await seen(store, "phone", location="Paris, FR") == (False, True)
    assert await seen(store, "phone", location=None) == (False, False)
    assert await seen(store, "laptop", location="Paris, FR", user="bob") == (True, True)
    assert (await entries(store))[h("phone")].location is None  # the latest sighting's


async def test_labels_and_locations_with_any_text_round_trip(store: Store) -> None:
    label, place = 'Firefox | "Nightly" [1,2] on Linux', "São Paulo | BR, {x}"
    await seen(store, "laptop", label=label, location=place)
    (entry,) = await store.devices_read("ada")
    assert (entry.label, entry.location) == (label, place)
    assert await seen(store, "phone", location=place) == (True, False)


async def test_past_the_cap_the_least_recently_seen_device_goes_and_is_new_again(
    store: Store,
) -> None:
    for number in range(60):
        await seen(store, f"device-{number}", T0 + number)
    await seen(store, "device-0", T0 + 100)  # only device-0..9 went: this one is new again
    held = await entries(store)
    assert len(held) == CAP
    assert h("device-0") in held
    assert h("device-10") not in held
    assert {h(f"device-{n}") for n in range(11, 60)} <= set(held)
    # a recent sighting protects an old device
    assert await seen(store, "device-11", T0 + 200) == (False, False)
    assert await seen(store, "device-new", T0 + 300) == (True, False)
    held = await entries(store)
    assert h("device-11") in held
    assert h("device-12") not in held


async def test_locations_are_capped_too_least_recent_out(store: Store) -> None:
    for number in range(60):
        await seen(store, "laptop", T0 + number, location=f"place-{number}")
    assert await seen(store, "laptop", T0 + 100, location="place-59") == (False, False)
    assert await seen(store, "laptop", T0 + 101, location="place-9") == (False, True)
    assert await seen(store, "laptop", T0 + 102, location="place-10") == (False, True)
    assert await seen(store, "laptop", T0 + 103, location="place-12") == (False, False)
    if isinstance(store, RedisStore):
        fields = await raw(store)
        assert sum(name.startswith(b"l:") for name in fields) == CAP


async def test_a_device_hashed_under_an_old_key_is_known_and_moves_to_the_new_hash(
    store: Store,
) -> None:
    await seen(store, ["old-key"], T0, location="Berlin")
    assert await seen(store, ["new-key", "old-key"], T0 + 1000, location="Berlin") == (
        False,
        False,
    )
    held = await entries(store)
    assert list(held) == [h("new-key")]
    assert (held[h("new-key")].first_seen_ms, held[h("new-key")].last_seen_ms) == (T0, T0 + 1000)
    assert await seen(store, ["new-key"], T0 + 2000) == (False, False)


async def test_entries_under_several_keys_merge_keeping_the_first_sighting(store: Store) -> None:
    await seen(store, ["b"], T0 + 500)
    await seen(store, ["c"], T0)
    assert await seen(store, ["a", "b", "c"], T0 + 1000) == (False, False)
    assert [(e.hash, e.first_seen_ms) for e in await store.devices_read("ada")] == [(h("a"), T0)]


async def test_forgetting_one_device_makes_it_new_again(store: Store) -> None:
    await seen(store, "laptop", location="Berlin")
    await seen(store, "phone")
    assert await store.devices_forget("ada", [h("laptop"), h("unknown")]) == 1
    assert await store.devices_forget("ada", [h("laptop")]) == 0
    assert await store.devices_forget("ada", []) == 0
    assert await store.devices_forget("bob", [h("phone")]) == 0  # not his
    assert list(await entries(store)) == [h("phone")]
    assert await seen(store, "laptop", location="Berlin") == (True, False)  # place kept


async def test_forgetting_everything_drops_devices_and_locations(store: Store) -> None:
    await seen(store, "laptop", location="Berlin")
    await seen(store, "phone", location="Paris")
    assert await store.devices_forget("ada", None) == 2
    assert await store.devices_read("ada") == []
    assert await store.devices_forget("ada", None) == 0
    assert await seen(store, "laptop", location="Berlin") == (True, True)
    if isinstance(store, RedisStore):  # only the account's sign-in marker stays
        await store.devices_forget("ada", None)
        assert await raw(store) == {b"a:first": str(T0).encode()}


async def test_only_an_accounts_very_first_sign_in_is_its_first(store: Store) -> None:
    def first(answer: tuple[bool, bool, bool]) -> bool:
        return answer[2]

    args = ("Chrome", None, T0, TTL_MS, CAP)
    assert first(await store.device_seen("ada", [h("laptop")], *args))
    assert not first(await store.device_seen("ada", [h("phone")], *args))  # new, not first
    await store.devices_forget("ada", None)  # purged after a compromise
    assert not first(await store.device_seen("ada", [h("thief")], *args))
    assert first(await store.device_seen("bob", [h("laptop")], *args))


async def test_an_account_that_signed_in_before_markers_is_not_new(redis_store: RedisStore) -> None:
    store = redis_store  # a log as 0.2 wrote it: devices, no marker
    await store.client.hset(
        store.device_log_key("ada"), f"d:{h('laptop')}", f'{T0}|{T0}|["a", null]'
    )
    answer = await store.device_seen("ada", [h("phone")], "Chrome", None, T0, TTL_MS, CAP)
    assert answer == (True, False, False)


async def test_the_redis_key_expires_its_ttl_after_the_last_sighting(
    redis_store: RedisStore,
) -> None:
    key = redis_store.device_log_key("ada")
    await seen(redis_store, "laptop", T0, ttl_ms=10_000)
    assert 9_000 < await redis_store.client.pttl(key) <= 10_000
    await redis_store.client.pexpire(key, 5)  # as if time had passed
    await seen(redis_store, "phone", T0 + 9_000)  # refreshed at each sign-in
    assert TTL_MS - 60_000 < await redis_store.client.pttl(key) <= TTL_MS
    await redis_store.devices_read("ada")
    await redis_store.devices_forget("ada", [h("laptop")])
    assert TTL_MS - 60_000 < await redis_store.client.pttl(key) <= TTL_MS  # reads never touch


async def test_the_memory_log_expires_its_ttl_after_the_last_sighting() -> None:
    store = MemoryStore()
    await seen(store, "laptop", T0, ttl_ms=10_000)
    await seen(store, "phone", T0 + 8_000, ttl_ms=10_000)
    assert await seen(store, "tablet", T0 + 17_999, ttl_ms=10_000) == (True, False)
    assert len(await store.devices_read("ada")) == 3
    await seen(store, "other", T0 + 28_000, user="bob")  # time passes
    assert await store.devices_read("ada") == []
    assert await seen(store, "laptop", T0 + 28_001) == (True, False)


@pytest.mark.parametrize("user", ["a{b}c", "}{", "{ada}", "ünïcode 用户", "x" * 512])
async def test_any_user_id_works_on_every_store(store: Store, user: str) -> None:
    assert await seen(store, "laptop", user=user, location="Berlin") == (True, True)
    assert await seen(store, "laptop", T0 + 1, user=user, location="Berlin") == (False, False)
    assert [e.hash for e in await store.devices_read(user)] == [h("laptop")]
    assert await store.devices_read("ada") == []
    assert await store.devices_forget(user, None) == 1
    if isinstance(store, RedisStore):
        assert store.device_log_key(user) == f"sessionward:k:{{{user}}}"


async def test_the_log_shares_the_users_index_slot(redis_store: RedisStore) -> None:
    for user in ("ada", "a{b}c", "ünïcode"):
        key = redis_store.device_log_key(user)
        assert key.replace(":k:", ":u:", 1) == redis_store.index_key(user)


CORRUPT = {
    "d:" + "1" * 64: "garbage",
    "d:" + "2" * 64: f"{T0}|{T0}|not json",
    "d:" + "3" * 64: f"{T0}|{T0}|[1, 2]",
    "d:" + "4" * 64: f'{T0}|{T0}|["label"]',
    "d:" + "5" * 64: f'x|{T0}|["label", null]',
    "d:" + "6" * 64: f'{"9" * 40}|{T0}|["label", null]',
    "d:" + "7" * 64: f'{T0}|{T0}|["label", 7]',
    "d:" + "8" * 64: b"\xff\xfe|\x00",
    "l:Berlin": "not a time",
    "junk": "x",
}


async def test_corrupt_entries_are_skipped_never_raised(redis_store: RedisStore) -> None:
    store = redis_store
    key = store.device_log_key("ada")
    await seen(store, "laptop", T0)
    await store.client.hset(key, mapping=CORRUPT)  # type: ignore[arg-type]
    assert list(await entries(store)) == [h("laptop")]
    # a corrupt entry under a device's own hash counts as absent, and is mended
    corrupt_hash = "1" * 64
    answer = await store.device_seen("ada", [corrupt_hash], "Safari", None, T0, TTL_MS, CAP)
    assert answer[:2] == (True, False)
    assert await seen(store, "laptop", T0 + 1, location="Berlin") == (False, False)
    assert set(await entries(store)) == {h("laptop"), corrupt_hash}


async def test_corrupt_entries_go_first_past_the_cap(redis_store: RedisStore) -> None:
    store = redis_store
    key = store.device_log_key("ada")
    await store.client.hset(key, mapping=CORRUPT)  # type: ignore[arg-type]
    for number in range(3):
        await seen(store, f"device-{number}", T0 + 10 + number, cap=3, location=f"place-{number}")
    held = await raw(store)
    devices = {name for name in held if name.startswith(b"d:")}
    assert devices == {f"d:{h(f'device-{n}')}".encode() for n in range(3)}
    assert {name for name in held if name.startswith(b"l:")} == {
        f"l:place-{n}".encode() for n in range(3)
    }
    assert b"junk" in held  # not ours to judge: neither a device nor a place


async def test_the_redis_layout_is_one_compact_hash(redis_store: RedisStore) -> None:
    store = redis_store
    await seen(store, "laptop", T0, label="Chrome", location="Berlin")
    await seen(store, "laptop", T0 + 5, label="Chrome", location="Berlin")
    assert await raw(store) == {
        f"d:{h('laptop')}".encode(): f'{T0}|{T0 + 5}|["Chrome", "Berlin"]'.encode(),
        b"l:Berlin": str(T0 + 5).encode(),
        b"a:first": str(T0).encode(),  # the account's first sign-in
    }
