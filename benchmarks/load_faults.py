"""The faults `benchmarks/load.py --fault` injects into its redis-server in the middle of a run.

- `restart`: the server is stopped (SIGTERM), stays down 2 s, and starts again on the same
  port and directory. It keeps an append-only file synced on every write from the start of
  the run, so whatever it acknowledged before the stop is there after it: a write the app
  acknowledged and that is missing afterwards was lost by the app, not by Redis.
- `pause`: the server is stopped with SIGSTOP for 2 s, then continued: connections stay open
  and answer nothing, the way a stalled or partitioned server looks.
- `failover`: the app runs on a Redis Cluster of three primaries, each with a replica, and one
  primary is killed (SIGKILL). Redis is "back" once its replica has taken over (after the
  cluster's node timeout, 1 s here). Replication is asynchronous, so a write acknowledged in
  the last moment before the kill may not have reached the replica: the report counts them.

The summary gives when Redis went away and came back, how the requests in between were
answered, and how long after its return the last error came (the target: within 2 s).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from tests.redis_server import LocalCluster, RedisServer

FAULTS = ("restart", "pause", "failover")
NODE_TIMEOUT_MS = 1000  # the failover cluster's: how long a primary is unreachable before a
# replica takes over
OUTAGE = 2.0  # seconds Redis is away
PERSISTENT = ("--appendonly", "yes", "--appendfsync", "always")


@dataclass
class Fault:
    kind: str
    server: RedisServer | None
    clock: Callable[[], float]
    cluster: LocalCluster | None = None
    down_at: float | None = None
    back_at: float | None = None

    def summary(self, error_times: list[float], slowest: float) -> str:
        if self.down_at is None or self.back_at is None:
            return f"fault {self.kind}: not injected (the run was shorter than its start)"
        during = [t for t in error_times if self.down_at <= t <= self.back_at + OUTAGE]
        after = [t for t in error_times if t > self.back_at + OUTAGE]
        last = max((t for t in error_times if t >= self.down_at), default=self.back_at)
        recovered = max(0.0, last - self.back_at)
        return (
            f"fault {self.kind}: Redis away {self.back_at - self.down_at:.1f} s; "
            f"{len(during)} errors from its loss to 2 s after its return, "
            f"{len(after)} later; last error {recovered:.2f} s after its return; "
            f"slowest answer {slowest:.2f} s"
        )


def make_persistent(server: RedisServer) -> None:
    """From now on, every write the server acknowledges is on disk before the reply."""
    with redis.Redis.from_url(server.url) as client:
        client.config_set("appendonly", "yes")
        client.config_set("appendfsync", "always")


async def run_fault(fault: Fault, seconds: float) -> None:
    """Take Redis away a third of the way into the run, for `OUTAGE` seconds."""
    if fault.kind == "failover":
        await fail_over(fault, seconds)
        return
    server = fault.server
    if server is None or server.process is None:
        raise SystemExit("--fault needs the redis-server this script starts (unset REDIS_URL)")
    await asyncio.to_thread(make_persistent, server)
    await asyncio.sleep(seconds / 3)
    fault.down_at = fault.clock()
    if fault.kind == "pause":
        os.kill(server.process.pid, signal.SIGSTOP)
        await asyncio.sleep(OUTAGE)
        os.kill(server.process.pid, signal.SIGCONT)
    else:
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(max(0.0, OUTAGE - (fault.clock() - fault.down_at)))
        await asyncio.to_thread(server.start, *PERSISTENT)
    fault.back_at = fault.clock()


async def fail_over(fault: Fault, seconds: float) -> None:
    """Kill a primary a third of the way into the run; back when its replica is primary."""
    if fault.cluster is None:
        raise SystemExit("--fault failover needs the cluster this script starts")
    await asyncio.sleep(seconds / 3)
    primary, replica = await asyncio.to_thread(_a_primary_and_its_replica, fault.cluster)
    assert primary.process is not None
    fault.down_at = fault.clock()
    primary.process.kill()
    await asyncio.to_thread(primary.process.wait)
    await asyncio.to_thread(_wait_until_primary, replica)
    fault.back_at = fault.clock()


def _a_primary_and_its_replica(cluster: LocalCluster) -> tuple[RedisServer, RedisServer]:
    """A primary whose replica is attached (it may still be syncing just after start-up)."""
    by_port = {node.port: node for node in cluster.nodes}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for node in cluster.nodes:
            with redis.Redis(host="127.0.0.1", port=node.port) as client:
                role = client.role()
            if role[0] == b"master" and role[2]:
                return node, by_port[int(role[2][0][1])]
        time.sleep(0.1)
    raise RuntimeError("no primary with an attached replica in the cluster")


def _wait_until_primary(node: RedisServer) -> None:
    with redis.Redis(host="127.0.0.1", port=node.port) as client:
        while client.role()[0] != b"master":
            time.sleep(0.02)
