"""How listing a user's devices grows with their number of sessions (1, 10, 100, 1000).

    python benchmarks/listing.py

Sessions are stored through the store API with a realistic record (desktop Chrome device,
IP), indexed under one user; `UserSessions.list_sessions` is then timed (median of repeats)
on MemoryStore and on RedisStore against a redis-server started here on loopback, with the
Redis round trips of one listing counted on the connection.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio as redis_asyncio
from redis.asyncio.connection import Connection

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sessionward import MemoryStore, RedisStore, SessionRecord, Store, UserSessions  # noqa: E402
from sessionward.devices import parse_user_agent  # noqa: E402
from sessionward.record import device_to_fields  # noqa: E402
from tests.redis_server import start_server  # noqa: E402

COUNTS = (1, 10, 100, 1000)
HOUR_MS = 3_600_000
CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)


class CountingConnection(Connection):
    round_trips = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.round_trips += 1
        await super().send_packed_command(command, check_health)


async def fill(store: Store, count: int, now_ms: int) -> None:
    device = parse_user_agent(CHROME)
    for number in range(count):
        key = f"{number:064x}"
        record = SessionRecord(
            now_ms,
            now_ms + HOUR_MS,
            now_ms - number,
            user_id="ada",
            ip="203.0.113.7",
            device_fields=device_to_fields(device),
        )
        await store.save(key, record.to_fields(), (), now_ms, HOUR_MS, create=True)
        await store.index_add("ada", key, now_ms, HOUR_MS)


async def time_listing(store: Store, count: int) -> tuple[float, int]:
    """Median µs of one listing over repeats, and the round trips one listing took."""
    now_ms = int(time.time() * 1000)
    await fill(store, count, now_ms)
    users = UserSessions(store, idle_ttl=3600, absolute_ttl=3600)
    before = CountingConnection.round_trips
    assert len(await users.list_sessions("ada")) == count
    round_trips = CountingConnection.round_trips - before
    samples = []
    for _ in range(max(5, 2000 // count)):
        started = time.perf_counter()
        await users.list_sessions("ada")
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6, round_trips


async def run(url: str) -> list[tuple[int, float, float, int]]:
    rows = []
    for count in COUNTS:
        memory_us, _ = await time_listing(MemoryStore(), count)
        pool = redis_asyncio.ConnectionPool.from_url(url, connection_class=CountingConnection)
        client = redis_asyncio.Redis(connection_pool=pool)
        await client.flushdb()
        redis_us, round_trips = await time_listing(RedisStore(client), count)
        await client.aclose()
        rows.append((count, memory_us, redis_us, round_trips))
    return rows


def main() -> None:
    server = start_server()
    try:
        rows = asyncio.run(run(server.url))
    finally:
        server.remove()
    print("| sessions | MemoryStore µs | RedisStore µs | Redis round trips |")
    print("| --: | --: | --: | --: |")
    for count, memory_us, redis_us, round_trips in rows:
        print(f"| {count} | {memory_us:.0f} | {redis_us:.0f} | {round_trips} |")


if __name__ == "__main__":
    main()
