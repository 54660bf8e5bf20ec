"""RedisStore on a real three-primary Redis Cluster: what only a cluster can show.

Every behavioural test already runs on the cluster through the `store` fixture's "cluster"
param. These tests prove the cluster is really used (sessions spread over every primary),
that a user's index and sessions on different nodes still list and revoke, how many round
trips each step costs when a pipeline fans out to several nodes, and that resharding,
uncovered slots, dead nodes and lost scripts give working requests or 503s, never 500s.
The operations page's cluster and Sentinel set-ups run here too, against real servers.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.backoff import ExponentialBackoff

from sessionward import CookieSigner, RedisStore, SessionRecord, UserSessions
from sessionward.stores.redis_scripts import INDEX_ADD, LOAD_AND_TOUCH, SAVE_IF_LIVE
from sessionward.tokens import new_session_id
from tests.apps import BUDGET, COOKIE, SECRET, build_app, round_trips_by_request
from tests.conftest import ROOT, client_for
from tests.redis_server import (
    LocalCluster,
    free_port,
    require_redis,
    start_cluster,
    start_sentinel,
    start_server,
)

pytestmark = pytest.mark.anyio

HOUR_MS = 3_600_000
SCRIPTS = (LOAD_AND_TOUCH, SAVE_IF_LIVE, INDEX_ADD)


class Sends:
    """Counts packed sends per node: one send is one round trip to that node."""

    def __init__(self) -> None:
        self.by_node: Counter[int] = Counter()

    @property
    def total(self) -> int:
        return sum(self.by_node.values())

    def since(self, before: Counter[int]) -> Counter[int]:
        return self.by_node - before


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> Sends:
    """Count every send of every redis.asyncio connection, keyed by the node's port.

    A cluster client builds its connections itself (`RedisCluster.from_url` drops a
    `connection_class`), so the count hooks the class they all are.
    """
    counter = Sends()
    original = Connection.send_packed_command

    async def counting(self: Connection, command: Any, check_health: bool = True) -> None:
        counter.by_node[int(self.port)] += 1
        await original(self, command, check_health)

    monkeypatch.setattr(Connection, "send_packed_command", counting)
    return counter


@pytest.fixture
async def cluster_store(redis_cluster_client: RedisCluster) -> RedisStore:
    return RedisStore(redis_cluster_client)


def node_of(client: RedisCluster, key: str) -> ClusterNode:
    node = client.get_node_from_key(key)
    assert node is not None
    return node


def port_of(client: RedisCluster, key: str) -> int:
    """The port of the primary that holds `key`: how these tests name nodes."""
    return int(node_of(client, key).port)


def primary_ports(client: RedisCluster) -> list[int]:
    return sorted(int(node.port) for node in client.get_primaries())


def keys_on(client: RedisCluster, store: RedisStore, port: int, count: int) -> list[str]:
    """`count` session keys (hex, like real ones) whose hashes live on the node at `port`."""
    found: list[str] = []
    number = 0
    while len(found) < count:
        key = f"{number:064x}"
        if port_of(client, store.key(key)) == port:
            found.append(key)
        number += 1
    return found


async def save_session(store: RedisStore, key: str, user_id: str, now_ms: int) -> None:
    record = SessionRecord(now_ms, now_ms + HOUR_MS, now_ms, user_id=user_id)
    assert await store.save(key, record.to_fields(), (), now_ms, HOUR_MS, create=True)
    await store.index_add(user_id, key, now_ms, HOUR_MS)


async def test_sessions_spread_over_every_primary(
    cluster_store: RedisStore, redis_cluster_client: RedisCluster
) -> None:
    async with client_for(build_app(cluster_store)) as client:
        for number in range(30):
            client.cookies.clear()
            await client.post("/session", json={"n": number})
    primaries = redis_cluster_client.get_primaries()
    assert len(primaries) == 3
    sizes = {node.name: await redis_cluster_client.dbsize(target_nodes=node) for node in primaries}
    assert sum(sizes.values()) == 30
    assert all(size > 0 for size in sizes.values()), sizes  # P(some node empty) ~ 3 * (2/3)^30
    slots = set()
    for node in primaries:
        async for key in redis_cluster_client.scan_iter(match="sessionward:s:*", target_nodes=node):
            slots.add(redis_cluster_client.keyslot(key))
    assert len(slots) > 25  # 30 random hashes over 16384 slots: a collision or two at most


async def test_an_index_and_its_sessions_on_other_nodes_list_and_revoke(
    cluster_store: RedisStore, redis_cluster_client: RedisCluster
) -> None:
    cluster = redis_cluster_client
    index_port = port_of(cluster, cluster_store.index_key("ada"))
    ports = primary_ports(cluster)
    keys = [key for port in ports for key in keys_on(cluster, cluster_store, port, 2)]
    now_ms = int(time.time() * 1000)
    for age, key in enumerate(keys):
        await save_session(cluster_store, key, "ada", now_ms - age)
    assert {port_of(cluster, cluster_store.key(key)) for key in keys} == set(ports)
    assert sum(port_of(cluster, cluster_store.key(k)) != index_port for k in keys) == 4

    users = UserSessions(cluster_store, idle_ttl=3600, absolute_ttl=7200)
    listed = await users.list_sessions("ada")
    assert [info.public_id for info in listed] == keys  # most recent first

    elsewhere = next(k for k in keys if port_of(cluster, cluster_store.key(k)) != index_port)
    assert await users.revoke("ada", elsewhere)
    assert not await cluster.exists(cluster_store.key(elsewhere))
    assert elsewhere not in await cluster_store.index_read("ada")

    keep = keys[-1]
    assert await users.revoke_all("ada", keep=keep) == len(keys) - 2
    assert list(await cluster_store.index_read("ada")) == [keep]
    assert [info.public_id for info in await users.list_sessions("ada")] == [keep]
    for key in keys[:-1]:
        assert not await cluster.exists(cluster_store.key(key))


async def test_a_stale_index_entry_on_another_node_is_dropped_when_listed(
    cluster_store: RedisStore, redis_cluster_client: RedisCluster
) -> None:
    """A crash after deleting a session but before updating the index: no live orphan.

    Indexed two minutes ago: a fresh entry without its session is a sign-in in progress.
    """
    now_ms = int(time.time() * 1000) - 120_000
    index_port = port_of(redis_cluster_client, cluster_store.index_key("bob"))
    other = next(port for port in primary_ports(redis_cluster_client) if port != index_port)
    gone, kept = keys_on(redis_cluster_client, cluster_store, other, 2)
    for key in (gone, kept):
        await save_session(cluster_store, key, "bob", now_ms)
    await cluster_store.delete(gone)  # ... and the index update never happens
    users = UserSessions(cluster_store, idle_ttl=3600, absolute_ttl=7200)
    assert [info.public_id for info in await users.list_sessions("bob")] == [kept]
    assert list(await cluster_store.index_read("bob")) == [kept]


@pytest.fixture
async def counted_cluster_store(
    redis_cluster_url: str, redis_cluster_client: RedisCluster, sends: Sends
) -> AsyncIterator[RedisStore]:
    client = RedisCluster.from_url(redis_cluster_url)
    await client.initialize()
    yield RedisStore(client)
    await client.aclose()


async def test_round_trips_per_request_are_the_same_as_on_one_server(
    counted_cluster_store: RedisStore, sends: Sends
) -> None:
    async with client_for(build_app(counted_cluster_store)) as client:
        spent = await round_trips_by_request(client, lambda: sends.total)
    assert spent == BUDGET


@pytest.mark.parametrize("count", [1, 10, 100])
async def test_listing_costs_one_round_trip_per_node_holding_sessions_plus_two(
    counted_cluster_store: RedisStore, sends: Sends, count: int
) -> None:
    """Index read (1) + records (one pipelined batch per node, sent concurrently) + index
    update (1): at most 2 + 3 sends on three primaries, and three sequential waits, however
    many sessions the user has."""
    store = counted_cluster_store
    assert isinstance(store.client, RedisCluster)
    now_ms = int(time.time() * 1000)
    keys = [f"{number:064x}" for number in range(count)]
    for number, key in enumerate(keys):
        await save_session(store, key, "ada", now_ms - number)
    users = UserSessions(store, idle_ttl=3600, absolute_ttl=7200)
    await users.list_sessions("ada")  # warm: a connection to every node involved
    session_nodes = {port_of(store.client, store.key(key)) for key in keys}
    index_node = port_of(store.client, store.index_key("ada"))

    before = Counter(sends.by_node)
    listed = await users.list_sessions("ada")
    spent = sends.since(before)

    assert [info.public_id for info in listed] == keys
    assert sum(spent.values()) == 2 + len(session_nodes) <= 5
    assert spent[index_node] == 2 + (index_node in session_nodes)
    assert all(spent[port] == 1 for port in session_nodes - {index_node})
    if count >= 10:
        assert len(session_nodes) == 3


async def test_revoking_many_sessions_costs_one_delete_batch_per_node(
    counted_cluster_store: RedisStore, sends: Sends
) -> None:
    store = counted_cluster_store
    assert isinstance(store.client, RedisCluster)
    keys = [f"{number:064x}" for number in range(20)]
    now_ms = int(time.time() * 1000)
    for key in keys:
        await save_session(store, key, "ada", now_ms)
    nodes = {port_of(store.client, store.key(key)) for key in keys}
    before = sends.total
    await store.delete(*keys)
    assert sends.total - before == len(nodes) == 3
    assert await store.read_records(keys) == [None] * len(keys)


async def test_requests_survive_primaries_that_lost_their_scripts(
    cluster_store: RedisStore, redis_cluster_client: RedisCluster
) -> None:
    """A replica promoted by a failover has no cached scripts: NOSCRIPT is retried, not a 500."""
    scripts = [hashlib.sha1(script.encode()).hexdigest() for script in SCRIPTS]

    async def forget_scripts() -> None:
        await redis_cluster_client.script_flush()  # on every primary
        for node in redis_cluster_client.get_primaries():
            assert await admin(node, "SCRIPT", "EXISTS", *scripts) == [0] * len(scripts)

    async with client_for(build_app(cluster_store)) as client:
        await client.post("/login/ada")
        await client.post("/session", json={"a": 1})
        await forget_scripts()
        assert (await client.get("/session")).json() == {"a": 1}
        await forget_scripts()
        assert (await client.post("/session", json={"b": 2})).status_code == 200
        await forget_scripts()
        assert len((await client.get("/account/sessions")).json()) == 1
        await forget_scripts()
        assert (await client.post("/login/ada")).status_code == 200
        assert (await client.get("/session")).json() == {"a": 1, "b": 2}


# A cluster of its own for the test that breaks it: resharding, an uncovered slot, a dead node.


@pytest.fixture
def own_cluster() -> Iterator[LocalCluster]:
    try:
        cluster = start_cluster()
    except (FileNotFoundError, RuntimeError) as exc:
        if require_redis():
            pytest.fail(f"cluster tests need redis-server and redis-cli: {exc}")
        pytest.skip(f"cluster tests need redis-server and redis-cli: {exc}")
    yield cluster
    cluster.stop()


def quick_store(url: str) -> RedisStore:
    """A store configured as the operations page recommends: short timeouts and one retry."""
    client = RedisCluster.from_url(
        url,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1),
    )
    return RedisStore(client)


async def admin(node: ClusterNode, *command: str | int) -> Any:
    async with redis_asyncio.Redis(host=node.host, port=int(node.port)) as connection:
        return await connection.execute_command(*command)  # type: ignore[no-untyped-call]


async def start_moving(slot: int, source: ClusterNode, target: ClusterNode) -> str:
    """Reshard as `redis-cli --cluster reshard` does: mark the slot, then move its keys.

    Until `finish_moving`, the source still owns the slot and answers ASK for moved keys.
    """
    source_id = (await admin(source, "CLUSTER", "MYID")).decode()
    target_id: str = (await admin(target, "CLUSTER", "MYID")).decode()
    await admin(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
    await admin(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
    for key in await admin(source, "CLUSTER", "GETKEYSINSLOT", slot, 100):
        await admin(source, "MIGRATE", target.host, target.port, key, 0, 5000)
    return target_id


async def finish_moving(cluster: RedisCluster, slot: int, target_id: str) -> None:
    """Hand the slot to the target on every primary: from now on the source answers MOVED."""
    for node in cluster.get_primaries():
        await admin(node, "CLUSTER", "SETSLOT", slot, "NODE", target_id)


async def test_resharding_uncovered_slots_and_dead_nodes(own_cluster: LocalCluster) -> None:
    """Sessions follow ASK and MOVED through a reshard; a slot nobody serves and a dead node
    give prompt 503s (CLUSTERDOWN, then connection refused), never a 500 or a hang."""
    store = quick_store(own_cluster.url)
    cluster = store.client
    assert isinstance(cluster, RedisCluster)
    async with client_for(build_app(store)) as client:
        await client.post("/login/ada")
        await client.post("/session", json={"cart": [1]})
        (key,) = [key async for key in cluster.scan_iter(match="sessionward:s:*")]
        slot = cluster.keyslot(key)
        source = node_of(cluster, key.decode())
        target = next(node for node in cluster.get_primaries() if node.name != source.name)

        target_id = await start_moving(slot, source, target)
        assert await admin(source, "CLUSTER", "COUNTKEYSINSLOT", slot) == 0
        assert await admin(target, "CLUSTER", "COUNTKEYSINSLOT", slot) == 1
        assert (await client.get("/session")).json() == {"cart": [1]}  # via ASK
        assert (await client.post("/session", json={"cart": [1, 2]})).status_code == 200
        await finish_moving(cluster, slot, target_id)  # the client's slot map is stale
        assert (await client.get("/session")).json() == {"cart": [1, 2]}  # via MOVED
        assert (await client.post("/session", json={"cart": [1, 2, 3]})).status_code == 200
        assert len((await client.get("/account/sessions")).json()) == 1
        assert await admin(target, "HGET", key, "d:cart") == b"[1,2,3]"
        assert await admin(source, "CLUSTER", "COUNTKEYSINSLOT", slot) == 0

        await admin(target, "CLUSTER", "DELSLOTS", slot)  # nobody serves the slot
        started = time.monotonic()
        response = await client.get("/session")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert time.monotonic() - started < 3

        await admin(target, "CLUSTER", "ADDSLOTS", slot)
        await asyncio.sleep(0.1)
        assert (await client.get("/session")).json() == {"cart": [1, 2, 3]}

        (server,) = [node for node in own_cluster.nodes if node.port == int(target.port)]
        server.stop()
        started = time.monotonic()
        for method, path in (("GET", "/session"), ("GET", "/untouched"), ("POST", "/logout")):
            response = await client.request(method, path)
            assert response.status_code == 503
            assert "Traceback" not in response.text
        assert time.monotonic() - started < 3
    await store.aclose()


async def test_a_cluster_with_no_reachable_node_gives_503() -> None:
    """redis-py raises RedisClusterException (not a RedisError) when no startup node answers."""
    store = quick_store(f"redis://127.0.0.1:{free_port()}/0")
    token = CookieSigner([SECRET]).issue(new_session_id())
    async with client_for(build_app(store)) as client:
        started = time.monotonic()
        read = await client.get("/session", headers={"cookie": f"{COOKIE}={token}"})
        written = await client.post("/session", json={"a": 1}, headers={"cookie": ""})
    assert read.status_code == written.status_code == 503
    assert time.monotonic() - started < 3
    await store.aclose()


def docs_example(marker: str) -> str:
    """The block of the operations page's Redis Cluster and Sentinel sections containing
    `marker`. tests/test_docs.py runs it with no servers (only building the clients); this
    runs it with the placeholder addresses pointed at real ones."""
    page = (ROOT / "docs" / "operations.md").read_text()
    section = page.split("### Redis Cluster", 1)[1].split("\n## ", 1)[0]
    blocks: list[str] = re.findall(r"```py(?:thon)?\n(.*?)```", section, re.DOTALL)
    (block,) = [block for block in blocks if marker in block]
    return block


def run_with(block: str, placeholder: str, real: str) -> dict[str, Any]:
    assert placeholder in block, f"the docs' example no longer contains {placeholder}"
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(block.replace(placeholder, real), "docs/operations.md", "exec"), namespace)
    return namespace


async def keeps_a_session(store: RedisStore) -> None:
    async with client_for(build_app(store)) as client:
        await client.post("/login/ada")
        await client.post("/session", json={"a": 1})
        assert (await client.get("/session")).json() == {"a": 1}
        assert len((await client.get("/account/sessions")).json()) == 1


async def test_the_docs_cluster_example_works(
    redis_cluster_url: str, redis_cluster_client: RedisCluster
) -> None:
    block = docs_example("RedisCluster.from_url")
    store = run_with(block, '"redis://10.0.0.5:7000/0"', repr(redis_cluster_url))["store"]
    assert isinstance(store.client, RedisCluster)
    await keeps_a_session(store)
    await store.aclose()


async def test_the_docs_sentinel_example_works() -> None:
    try:
        primary = start_server()
        sentinel = start_sentinel(primary.port)
    except (FileNotFoundError, RuntimeError) as exc:
        if require_redis():
            pytest.fail(f"the Sentinel test needs redis-server: {exc}")
        pytest.skip(f"the Sentinel test needs redis-server: {exc}")
    try:
        block = docs_example("Sentinel(")
        placeholder = '[("10.0.0.7", 26379), ("10.0.0.8", 26379), ("10.0.0.9", 26379)]'
        namespace = run_with(block, placeholder, f'[("127.0.0.1", {sentinel.port})]')
        store = namespace["store"]
        await keeps_a_session(store)
        assert isinstance(store.client.connection_pool, SentinelConnectionPool)
        async with redis_asyncio.Redis(port=primary.port) as direct:
            assert len([key async for key in direct.scan_iter(match="sessionward:s:*")]) == 1
        await store.aclose()
        for client in namespace["sentinel"].sentinels:
            await client.aclose()
    finally:
        sentinel.remove()
        primary.remove()
