"""RedisStore against a real redis-server: TTLs, layout, round trips, outages, corrupt records."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from redis._parsers import _AsyncRESP3Parser
from redis.asyncio.connection import Connection
from redis.utils import HIREDIS_AVAILABLE

from sessionward import CookieSigner, RedisStore, SessionRecord, UserSessions
from sessionward.tokens import new_session_id
from tests.apps import BUDGET, COOKIE, SECRET, build_app, round_trips_by_request
from tests.conftest import Clock, client_for
from tests.redis_server import free_port, start_server

pytestmark = pytest.mark.anyio

DAY = 24 * 3600


class CountingConnection(Connection):
    """A real connection that counts what it sends: one packed send is one round trip."""

    round_trips = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.round_trips += 1
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def redis_store(redis_client: redis_asyncio.Redis) -> RedisStore:
    return RedisStore(redis_client)


@pytest.fixture
async def counted_store(
    redis_url: str, redis_client: redis_asyncio.Redis
) -> AsyncIterator[RedisStore]:
    pool = redis_asyncio.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    client = redis_asyncio.Redis(connection_pool=pool)
    store = RedisStore(client)
    yield store
    await store.aclose()  # its held connections too, or they would count in the next test


async def session_keys(client: redis_asyncio.Redis) -> list[bytes]:
    return [key async for key in client.scan_iter(match="sessionward:*")]


async def test_each_request_sets_the_ttl_back_to_the_idle_ttl(
    redis_store: RedisStore, redis_client: redis_asyncio.Redis, clock: Clock
) -> None:
    app = build_app(redis_store, idle_ttl=3600, absolute_ttl=10 * 3600, clock=clock)
    async with client_for(app) as client:
        await client.post("/session", json={"a": 1})
        (key,) = await session_keys(redis_client)
        for _ in range(3):
            await redis_client.pexpire(key, 1000)  # as if time had passed
            clock.advance(1800)
            await client.get("/session")
            assert 3600_000 - 2000 < await redis_client.pttl(key) <= 3600_000


async def test_the_ttl_never_reaches_past_the_absolute_deadline(
    redis_store: RedisStore, redis_client: redis_asyncio.Redis, clock: Clock
) -> None:
    app = build_app(redis_store, idle_ttl=3600, absolute_ttl=5000, clock=clock)
    async with client_for(app) as client:
        await client.post("/session", json={"a": 1})
        (key,) = await session_keys(redis_client)
        clock.advance(3000)
        await client.get("/session")
        assert 1_998_000 < await redis_client.pttl(key) <= 2_000_000
        clock.advance(1999)
        await client.post("/session", json={"b": 2})
        assert 0 < await redis_client.pttl(key) <= 1000
        clock.advance(2)
        assert (await client.get("/session")).json() == {}
    assert await session_keys(redis_client) == []


async def test_redis_expires_an_idle_session_by_itself(
    redis_store: RedisStore, redis_client: redis_asyncio.Redis
) -> None:
    async with client_for(build_app(redis_store, idle_ttl=1)) as client:
        await client.post("/session", json={"a": 1})
        assert len(await session_keys(redis_client)) == 1
        await asyncio.sleep(1.2)
        assert await session_keys(redis_client) == []
        assert (await client.get("/session")).json() == {}


async def test_redis_holds_no_raw_session_id(
    redis_store: RedisStore, redis_client: redis_asyncio.Redis
) -> None:
    async with client_for(build_app(redis_store)) as client:
        await client.post("/session", json={"a": 1, "nested": {"b": [1, 2]}})
        await client.post("/session", json={"c": "three"})
        session_id = client.cookies[COOKIE].partition(".")[0]
    keys = await session_keys(redis_client)
    assert len(keys) == 1
    fields = await redis_client.hgetall(keys[0])
    everything = b" ".join(
        part for item in fields.items() for part in item if isinstance(part, bytes)
    )
    everything += b" ".join(keys)
    assert session_id.encode() not in everything
    assert session_id[:16].encode() not in everything


async def test_the_layout_is_one_hash_per_session_with_a_field_per_key(
    redis_store: RedisStore, redis_client: redis_asyncio.Redis
) -> None:
    async with client_for(build_app(redis_store)) as client:
        await client.post("/session", json={"cart": [1, 2], "name": "ada"})
    (key,) = await session_keys(redis_client)
    assert key.startswith(b"sessionward:s:{")
    assert key.endswith(b"}")
    fields = await redis_client.hgetall(key)
    assert fields[b"d:cart"] == b"[1,2]"
    assert fields[b"d:name"] == b'"ada"'
    assert {b"m:created", b"m:expires", b"m:seen", b"m:idle"} <= set(fields)


async def test_an_anonymous_reader_creates_no_key(
    redis_store: RedisStore, redis_client: redis_asyncio.Redis
) -> None:
    async with client_for(build_app(redis_store)) as client:
        for path in ("/session", "/untouched", "/session"):
            assert (await client.get(path)).status_code == 200
    assert await redis_client.dbsize() == 0


async def test_round_trips_per_request(counted_store: RedisStore) -> None:
    async with client_for(build_app(counted_store)) as client:
        spent = await round_trips_by_request(client, lambda: CountingConnection.round_trips)
    assert spent == BUDGET


async def test_a_stopped_redis_gives_503_with_retry_after() -> None:
    closed_port = free_port()  # nothing listens here
    store = RedisStore.from_url(f"redis://127.0.0.1:{closed_port}/0", socket_connect_timeout=0.5)
    token = CookieSigner([SECRET]).issue(new_session_id())
    async with client_for(build_app(store)) as client:
        started = time.monotonic()
        response = await client.get("/session", headers={"cookie": f"{COOKIE}={token}"})
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "Traceback" not in response.text
    assert elapsed < 3
    await store.aclose()


async def test_a_store_failure_at_save_time_gives_503(
    redis_url: str, redis_client: redis_asyncio.Redis
) -> None:
    closed = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0")
    async with client_for(build_app(closed)) as client:
        response = await client.post("/session", json={"a": 1})  # no cookie: fails at save
    assert response.status_code == 503
    assert "set-cookie" not in response.headers
    await closed.aclose()


@pytest.mark.parametrize(
    "fields",
    [
        {b"d:a": b"{not json", b"d:b": b"1"},
        {b"d:a": b"1", b"m:seen": b"soon"},
        {b"d:a": b"1", b"m:hits": b"many"},
        {b"d:a": b"\xff\xfe", b"d:\xff": b"2"},
        {b"m:created": b"", b"m:expires": b"-1"},
    ],
)
async def test_corrupt_records_never_give_a_500(
    redis_store: RedisStore, redis_client: redis_asyncio.Redis, fields: dict[bytes, bytes]
) -> None:
    async with client_for(build_app(redis_store)) as client:
        await client.post("/session", json={"a": 0, "b": 0})
        (key,) = await session_keys(redis_client)
        await redis_client.hset(key, mapping=fields)  # type: ignore[arg-type]
        read = await client.get("/session")
        written = await client.post("/session", json={"c": 3})
    assert read.status_code == 200
    assert written.status_code == 200
    assert read.json().get("b") in (0, 1, None)


@pytest.mark.parametrize("count", [1, 10, 100])
async def test_listing_a_users_devices_costs_three_round_trips(
    counted_store: RedisStore, count: int
) -> None:
    now_ms = int(time.time() * 1000)
    for number in range(count):
        key = f"{number:064x}"
        record = SessionRecord(now_ms, now_ms + 3_600_000, now_ms - number, user_id="ada")
        await counted_store.save(key, record.to_fields(), (), now_ms, 3_600_000, create=True)
        await counted_store.index_add("ada", key, now_ms, 3_600_000)
    users = UserSessions(counted_store, idle_ttl=3600, absolute_ttl=7200)
    await counted_store.client.ping()  # the pool's connection made: its handshake is not ours
    before = CountingConnection.round_trips
    listed = await users.list_sessions("ada")
    assert CountingConnection.round_trips - before == 3
    assert len(listed) == count
    assert [info.public_id for info in listed] == [f"{n:064x}" for n in range(count)]


async def test_the_user_index_expires_no_sooner_than_its_sessions(
    redis_store: RedisStore, redis_client: redis_asyncio.Redis
) -> None:
    app = build_app(redis_store, idle_ttl=600, absolute_ttl=7200)
    async with client_for(app) as client:
        await client.post("/login/ada")
    index_ttl = await redis_client.pttl("sessionward:u:{ada}")
    (session_key,) = [key async for key in redis_client.scan_iter(match="sessionward:s:*")]
    assert index_ttl >= await redis_client.pttl(session_key)
    assert 7_190_000 < index_ttl <= 7_200_000


@pytest.fixture
async def private_store() -> AsyncIterator[RedisStore]:
    """A store on a redis-server of its own: these tests reconfigure the server."""
    server = start_server()
    store = RedisStore.from_url(server.url)
    yield store
    await store.aclose()
    server.remove()


async def test_a_full_redis_still_serves_reads_and_refuses_writes_with_503(
    private_store: RedisStore,
) -> None:
    async with client_for(build_app(private_store)) as client:
        await client.post("/session", json={"a": 1})
        await private_store.client.config_set("maxmemory", 1)  # everything is over the limit
        await private_store.client.config_set("maxmemory-policy", "noeviction")
        read = await client.get("/session")
        write = await client.post("/session", json={"b": 2})
        newcomer = await client.post("/session", json={"c": 3}, headers={"cookie": ""})
    assert read.status_code == 200
    assert read.json() == {"a": 1}
    assert write.status_code == 503
    assert newcomer.status_code == 503


async def test_an_index_that_is_never_listed_does_not_grow_forever(
    redis_store: RedisStore, redis_client: redis_asyncio.Redis
) -> None:
    lifetime_ms = 3_600_000
    for number in range(30):  # sessions that ended long ago, never removed from the index
        await redis_store.index_add("ada", f"dead-{number}", number, lifetime_ms)
    await redis_store.index_add("ada", "live", 10 * lifetime_ms, lifetime_ms)
    assert await redis_client.zrange("sessionward:u:{ada}", 0, -1) == [b"live"]


async def test_a_redis_refusing_writes_for_want_of_replicas_still_serves_reads(
    private_store: RedisStore,
) -> None:
    async with client_for(build_app(private_store)) as client:
        await client.post("/session", json={"a": 1})
        await private_store.client.config_set("min-replicas-to-write", 1)
        read = await client.get("/session")
        write = await client.post("/session", json={"b": 2})
    assert read.status_code == 200
    assert read.json() == {"a": 1}
    assert write.status_code == 503


async def test_scripts_flushed_from_the_server_are_loaded_again(
    redis_store: RedisStore, redis_client: redis_asyncio.Redis
) -> None:
    """A restarted server, or SCRIPT FLUSH, answers NOSCRIPT: that is a reload, not a 500."""
    async with client_for(build_app(redis_store)) as client:
        await client.post("/session", json={"a": 1})
        await redis_client.script_flush()
        assert (await client.get("/session")).json() == {"a": 1}
        await redis_client.script_flush()
        assert (await client.post("/session", json={"b": 2})).json() == {"a": 1, "b": 2}
        assert (await client.get("/session")).json() == {"a": 1, "b": 2}


@pytest.fixture(params=["default", "pure"])
async def either_parser(
    request: pytest.FixtureRequest, redis_url: str
) -> AsyncIterator[RedisStore]:
    """A store on a client with redis-py's default parser (hiredis, where installed) and one
    on its pure-Python parser, which gets the fields as one JSON string instead of an
    HGETALL."""
    options: dict[str, Any] = {"connection_class": CountingConnection}
    if request.param == "pure":
        options["parser_class"] = _AsyncRESP3Parser
    pool = redis_asyncio.ConnectionPool.from_url(redis_url, **options)
    client = redis_asyncio.Redis(connection_pool=pool)
    store = RedisStore(client)
    # Without hiredis installed, redis-py's default parser is the pure-Python one too.
    assert store._fields_as_json is (request.param == "pure" or not HIREDIS_AVAILABLE)
    yield store
    await client.aclose()


async def test_both_parsers_read_the_same_sessions_in_one_round_trip(
    either_parser: RedisStore, redis_client: redis_asyncio.Redis
) -> None:
    store = either_parser
    app = build_app(store)
    values = {"ascii": 1, "unicode": "päivää ☃ 𝄞", "nested": {"list": [1, 2, {"x": None}]}}
    async with client_for(app) as client:
        await client.post("/session", json=values)
        await client.get("/session")  # connections made (their handshakes are sends too)
        CountingConnection.round_trips = 0
        read = (await client.get("/session")).json()
        assert CountingConnection.round_trips == 1
        untouched = (await client.get("/untouched")).status_code
        await redis_client.script_flush()  # NOSCRIPT: loaded again, whichever script it is
        again = (await client.get("/session")).json()
        await client.delete("/session")
        gone = (await client.get("/session")).json()
    assert read == again == values
    assert untouched == 200
    assert gone == {}


async def test_both_parsers_survive_bytes_that_are_not_utf8(
    either_parser: RedisStore, redis_client: redis_asyncio.Redis
) -> None:
    store = either_parser
    now = int(time.time() * 1000)
    record = SessionRecord(now, now + 10**8, now, idle_ttl_ms=10**8)
    assert await store.save("k", {**record.to_fields(), "d:a": "1"}, (), now, 10**8, create=True)
    await redis_client.hset(store.key("k"), "d:b", b"\xff\xfe not utf-8")
    fields = await store.load("k", now, 10**8)
    assert fields is not None
    assert fields["d:a"] == "1"
    assert "not utf-8" in fields["d:b"]
