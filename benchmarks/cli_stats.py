"""How long `sessionward stats` takes over a keyspace of 100,000 sessions (or `--sessions N`).

    python benchmarks/cli_stats.py [--sessions 100000] [--count 1000] [--cluster]

Starts a redis-server (or a three-primary Cluster) on loopback, writes the sessions straight
into it in `RedisStore`'s layout (pipelined HSET and PEXPIRE, `tests/keyspace.py`), then runs
the real console command, `python -m sessionward.cli stats --json`, in a subprocess and times
it end to end: the walk (SCAN ... COUNT, then a pipelined HMGET a step), the MEMORY USAGE
sample, and the interpreter's start. The counts it prints are checked against what was
written.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio as redis_asyncio
from redis.asyncio.cluster import RedisCluster

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.keyspace import expected, write_sessions  # noqa: E402
from tests.redis_server import start_cluster, start_server  # noqa: E402

SECRET = "benchmark-secret-key-0123456789abcdefghij"


async def fill(url: str, sessions: int, cluster: bool) -> float:
    """Write the sessions; return the seconds it took."""
    client: Any = RedisCluster.from_url(url) if cluster else redis_asyncio.Redis.from_url(url)
    started = time.perf_counter()
    await write_sessions(client, sessions, int(time.time() * 1000))
    took = time.perf_counter() - started
    await client.aclose()
    return took


def run_stats(url: str, count: int, cluster: bool) -> tuple[float, dict[str, Any]]:
    command = [sys.executable, "-m", "sessionward.cli", "stats", "--json", "--redis-url", url]
    command += ["--count", str(count), *(["--cluster"] if cluster else [])]
    environment = {**os.environ, "SESSIONWARD_SECRET_KEYS": SECRET}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=True)
    took = time.perf_counter() - started
    report: dict[str, Any] = json.loads(done.stdout)
    return took, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--count", type=int, default=1000, help="SCAN COUNT")
    parser.add_argument("--cluster", action="store_true")
    options = parser.parse_args()
    cluster = start_cluster() if options.cluster else None
    server = None if options.cluster else start_server()
    try:
        url = cluster.url if cluster is not None else server.url if server is not None else ""
        wrote = asyncio.run(fill(url, options.sessions, options.cluster))
        took, report = run_stats(url, options.count, options.cluster)
    finally:
        if cluster is not None:
            cluster.stop()
        if server is not None:
            server.remove()
    counted = {name: report[name] for name in ("live", "signed_in", "transports", "kinds")}
    assert counted == expected(options.sessions), counted
    where = "a 3-primary Cluster" if options.cluster else "one redis-server"
    print(f"{options.sessions:,} sessions on {where}, SCAN COUNT {options.count}")
    print(f"  written in           {wrote:6.2f} s (pipelined HSET + PEXPIRE)")
    print(f"  sessionward stats    {took:6.2f} s end to end ({report['pages']} SCAN steps)")
    print(f"    of which the walk  {report['seconds']:6.2f} s")
    memory = report["memory"]
    print(
        f"  bytes per session    {memory['mean_bytes']} mean, {memory['p95_bytes']} p95 "
        f"(MEMORY USAGE of {memory['sampled']})"
    )


if __name__ == "__main__":
    main()
