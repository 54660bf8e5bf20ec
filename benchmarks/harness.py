"""The measuring side of benchmarks/run.py: cases, Redis clients, cells, rounds, statistics.

A cell is one case x scenario x session size (x redis-py parser for Redis cases), with its own
app, store, Redis client and established session. A run warms every cell up, checks that its
session survives and its writes land, then times rounds: every cell once per round, in a
shuffled order, with a `gc.collect()` before each, so slow drift of the machine hits all cells
alike. A cell's figure is the median of its round means; p90 is over every single request.
`--repeat N` does N such runs, each with fresh apps, stores, clients and sessions. Redis
traffic is counted afterwards, on separate cells whose connections count (never while timing).
"""

from __future__ import annotations

import gc
import itertools
import random
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as redis_asyncio
from browser import COUNTER, SCENARIOS, Browser, template
from redis._parsers import BaseParser, _AsyncHiredisParser, _AsyncRESP2Parser
from redis.asyncio.connection import Connection
from redis.typing import EncodableT
from starlette.types import ASGIApp

PARSERS: dict[str, type[BaseParser]] = {"hiredis": _AsyncHiredisParser, "pure": _AsyncRESP2Parser}
_PREFIXES = itertools.count()


# -- Redis: clients per cell, counted connections -------------------------------------------------


@dataclass
class Counts:
    round_trips: int = 0
    commands: int = 0


COUNTS = Counts()


class CountingConnection(Connection):
    """Used only while counting, never while timing: one packed send is one round trip."""

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        COUNTS.round_trips += 1
        await super().send_packed_command(command, check_health)

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        COUNTS.commands += 1  # pipelines pack each of their commands through here too
        return super().pack_command(*args)


def command_stats(client: redis.Redis) -> dict[str, int]:
    stats: dict[str, Any] = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


@dataclass
class Env:
    """What a case function gets: the cell's session size, a key prefix, Redis clients."""

    size: str = "1 key"
    url: str | None = None
    parser: str = ""
    connection_class: type[Connection] = Connection
    prefix: str = field(default_factory=lambda: f"bench{next(_PREFIXES)}:")
    clients: list[redis_asyncio.Redis] = field(default_factory=list)

    @property
    def max_bytes(self) -> int:
        return 64 * 1024 if self.size == "1 key" else 1024 * 1024

    def redis(self) -> redis_asyncio.Redis:
        """A new client on its own pool, with the cell's parser; redis-py's other defaults."""
        if self.url is None:
            raise RuntimeError("a case that calls env.redis() must be registered redis=True")
        pool = redis_asyncio.ConnectionPool.from_url(
            self.url, connection_class=self.connection_class, parser_class=PARSERS[self.parser]
        )
        client = redis_asyncio.Redis(connection_pool=pool)
        self.clients.append(client)
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose(close_connection_pool=True)


# -- cases, targets, cells ------------------------------------------------------------------------

CaseFn = Callable[[Env], ASGIApp]


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    build: CaseFn
    family: str  # "floor", "raw" (a raw-Redis floor), or whose middleware it is
    redis: bool = False
    scenarios: tuple[str, ...] = SCENARIOS
    sizes: tuple[str, ...] = ("1 key",)
    cookie: bool = True  # the first request must set a cookie


CASES: dict[str, Case] = {}


def case(
    key: str,
    label: str,
    *,
    family: str,
    redis: bool = False,
    scenarios: tuple[str, ...] = SCENARIOS,
    sizes: tuple[str, ...] = ("1 key",),
    cookie: bool = True,
) -> Callable[[CaseFn], CaseFn]:
    """Register a case: a function that builds the app for one cell."""

    def register(build: CaseFn) -> CaseFn:
        CASES[key] = Case(key, label, build, family, redis, scenarios, sizes, cookie)
        return build

    return register


@dataclass(frozen=True)
class Target:
    """numerator / denominator should be at most `limit`; each is (case key, scenario)."""

    label: str
    numerator: tuple[str, str]
    denominator: tuple[str, str]
    limit: float


@dataclass(frozen=True)
class Key:
    case: str
    scenario: str
    size: str = "1 key"
    parser: str = ""  # "" for a case without Redis


@dataclass
class Stats:
    runs: list[list[float]] = field(default_factory=list)  # µs/req: round means, per run
    samples: list[int] = field(default_factory=list)  # ns per request, every run
    traffic: dict[str, Any] = field(default_factory=dict)  # per request, from the count pass

    def median(self, run: int | None = None) -> float:
        means = self.runs[run] if run is not None else [m for r in self.runs for m in r]
        return statistics.median(means)

    @property
    def p90(self) -> float:
        return statistics.quantiles(self.samples, n=10)[-1] / 1000


class Cell:
    def __init__(self, key: Key, env: Env) -> None:
        self.key = key
        self.env = env
        self.case = CASES[key.case]
        self.browser = Browser(self.case.build(env))
        self.template = template(f"/{key.scenario}")

    async def prepare(self, warmup: int) -> None:
        """Establish the session, warm up, and check the session survives and writes land."""
        browser, name = self.browser, "/".join(vars(self.key).values())
        await browser.get(f"/setup/{self.key.size.replace(' ', '-')}")
        if self.case.cookie and not browser.cookies:
            raise RuntimeError(f"{name}: the first request set no cookie")
        for _ in range(warmup):
            await browser.request(self.template)
        if await browser.get("/peek") in (b"None", b""):
            raise RuntimeError(f"{name}: the session was lost ({browser.body!r})")
        if self.key.scenario == "write":
            await browser.request(self.template)
            expected = repr(next(COUNTER) - 1).encode()
            if await browser.get("/peek") != expected:
                raise RuntimeError(f"{name}: wrote {expected!r}, read {browser.body!r}")

    async def run_round(self, requests: int, stats: Stats) -> None:
        request, template, samples = self.browser.request, self.template, stats.samples
        perf = time.perf_counter_ns
        start = last = perf()
        for _ in range(requests):
            await request(template)
            now = perf()
            samples.append(now - last)
            last = now
        stats.runs[-1].append((last - start) / requests / 1000)

    async def count(self, requests: int, server: redis.Redis) -> dict[str, Any]:
        before = command_stats(server)
        COUNTS.round_trips = COUNTS.commands = 0
        for _ in range(requests):
            await self.browser.request(self.template)
        sent = Counts(COUNTS.round_trips, COUNTS.commands)
        after = command_stats(server)
        delta = {
            name: (calls - before.get(name, 0)) / requests
            for name, calls in after.items()
            if name != "info" and calls != before.get(name, 0)
        }
        return {
            "round_trips": sent.round_trips / requests,
            "commands": sent.commands / requests,
            "server": sum(delta.values()),
            "by_name": dict(sorted(delta.items(), key=lambda item: -item[1])),
        }


# -- a measurement --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    rounds: int
    requests: int
    repeat: int = 1
    parsers: tuple[str, ...] = ()  # () runs no Redis case
    count_requests: int = 0

    @property
    def warmup(self) -> int:
        return max(20, self.requests // 10)


def plan_keys(plan: Plan) -> list[Key]:
    """Every cell: cases x scenarios (x parsers), plus read/write at the secondary sizes."""
    keys = []
    for case in CASES.values():
        if case.redis and not plan.parsers:
            continue
        parsers = plan.parsers if case.redis else ("",)
        keys += [Key(case.key, s, "1 key", p) for p in parsers for s in case.scenarios]
        keys += [Key(case.key, s, z, parsers[0]) for z in case.sizes[1:] for s in ("read", "write")]
    return keys


def make_cell(key: Key, url: str | None, connection_class: type[Connection] = Connection) -> Cell:
    env = Env(key.size, url if CASES[key.case].redis else None, key.parser, connection_class)
    return Cell(key, env)


async def one_run(plan: Plan, url: str | None, stats: dict[Key, Stats], run: int) -> None:
    """Fresh cells, warmed up and checked, then `plan.rounds` interleaved, shuffled rounds."""
    cells = [make_cell(key, url) for key in stats]
    try:
        for cell in cells:
            await cell.prepare(plan.warmup)
            stats[cell.key].runs.append([])
        for number in range(plan.rounds):
            order = cells[:]
            random.Random(run * 1000 + number).shuffle(order)
            for cell in order:
                gc.collect()
                await cell.run_round(plan.requests, stats[cell.key])
    finally:
        for cell in cells:
            await cell.env.close()


async def count_traffic(plan: Plan, url: str, stats: dict[Key, Stats], server: redis.Redis) -> None:
    """Redis traffic per request, under the first parser, on counting connections."""
    for key, cell_stats in stats.items():
        if not CASES[key.case].redis or key.parser != plan.parsers[0]:
            continue
        cell = make_cell(key, url, CountingConnection)
        try:
            await cell.prepare(20)
            cell_stats.traffic = await cell.count(plan.count_requests, server)
        finally:
            await cell.env.close()


async def measure(plan: Plan, url: str | None, server: redis.Redis | None) -> dict[Key, Stats]:
    stats = {key: Stats() for key in plan_keys(plan)}
    for run in range(plan.repeat):
        await one_run(plan, url, stats, run)
    if url is not None and server is not None and plan.count_requests:
        await count_traffic(plan, url, stats, server)
    return stats
