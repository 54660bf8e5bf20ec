"""The faults `benchmarks/load.py --fault` injects into its redis-server in the middle of a run.

- `restart`: the server is stopped (SIGTERM), stays down 2 s, and starts again on the same
  port and directory. It keeps an append-only file synced on every write from the start of
  the run, so whatever it acknowledged before the stop is there after it: a write the app
  acknowledged and that is missing afterwards was lost by the app, not by Redis.
- `pause`: the server is stopped with SIGSTOP for 2 s, then continued: connections stay open
  and answer nothing, the way a stalled or partitioned server looks.

The summary gives when Redis went away and came back, how the requests in between were
answered, and how long after its return the last error came (the target: within 2 s).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

import redis

from tests.redis_server import RedisServer

FAULTS = ("restart", "pause")
OUTAGE = 2.0  # seconds Redis is away
PERSISTENT = ("--appendonly", "yes", "--appendfsync", "always")


@dataclass
class Fault:
    kind: str
    server: RedisServer | None
    clock: Callable[[], float]
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
