"""Side-by-side benchmarks: sessionward against Starlette's and starsessions' middlewares.

    python benchmarks/run.py              # full run (about 2 min on 2 cores)
    python benchmarks/run.py --quick      # smoke run (a few seconds)
    python benchmarks/run.py --profile    # profile sessionward + MemoryStore (read, write)

Every ASGI app is called in-process: a prebuilt scope, a trivial `receive`, a `send` that reads
the status and `Set-Cookie` headers. No sockets, no httpx, so the numbers are the middleware's
own cost plus Starlette's routing (the floor). Like a browser, each request carries the cookies
the previous responses set (latest value per name; an expired cookie is dropped).

Each variant x scenario is a "cell" with its own app, store and established session (the first
request writes a key). Rounds are interleaved (every cell runs once per round, in a shuffled
order), so slow drift of the machine affects all cells alike. A cell's figure is the median of
its round means; p90 is over every single request of every round.

Redis round trips are counted client-side (one `send_packed_command` is one round trip, as in
tests/stores/test_redis.py) and commands both client-side (top-level: one `pack_command` each)
and server-side (`INFO commandstats` deltas, which also count the commands a Lua script runs).
The Redis server is our own, on a free loopback port, stopped by pid at exit.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import gc
import hashlib
import hmac
import importlib.metadata
import itertools
import json
import os
import platform
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable, Coroutine, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as redis_asyncio
from itsdangerous import Signer
from redis.asyncio.connection import Connection
from redis.typing import EncodableT
from redis.utils import HIREDIS_AVAILABLE
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starsessions import InMemoryStore as StarsessionsMemoryStore
from starsessions import SessionAutoloadMiddleware
from starsessions import SessionMiddleware as StarsessionsMiddleware
from starsessions.stores.redis import RedisStore as StarsessionsRedisStore

from sessionward import MemoryStore, RedisStore, SessionMiddleware

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.redis_server import start_server  # noqa: E402

SECRET = "benchmark-secret-key-0123456789abcdefghijklmnop"
DAY = 24 * 3600
HOST = b"localhost"
USER_AGENT = (  # every request carries one, as browsers' do
    b"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    b"(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
BASE_HEADERS = [(b"host", HOST), (b"user-agent", USER_AGENT)]
SCENARIOS = ("read", "write", "untouched")
SIZES = ("1 key", "100 keys", "64 KB value")
BIG_LIMIT = 1024 * 1024  # max_session_bytes for the size cells (64 KB of JSON needs > 64 KiB)
_COUNTER = itertools.count()


# -- the app: one tiny Starlette handler per scenario -------------------------------------------


def _payload(size: str) -> dict[str, Any]:
    """What the first request stores. Every size also has "k", the key read and written."""
    data: dict[str, Any] = {"k": "value"}
    if size == "100 keys":  # small dicts: mutable values, as carts and flash lists are
        data.update({f"item{i}": {"id": i, "label": f"item number {i}"} for i in range(99)})
    elif size == "64 KB value":
        data["blob"] = "x" * 65536
    return data


def _setup_route(size: str) -> Route:
    payload = _payload(size)

    async def setup(request: Request) -> Response:
        request.session.update(payload)
        return PlainTextResponse("ok")

    return Route(f"/setup/{size.replace(' ', '-')}", setup)


async def read(request: Request) -> Response:
    value = request.session.get("k")
    return PlainTextResponse("ok", status_code=200 if value is not None else 404)


async def write(request: Request) -> Response:
    request.session["k"] = next(_COUNTER)
    return PlainTextResponse("ok")


async def untouched(request: Request) -> Response:
    return PlainTextResponse("ok")


async def peek(request: Request) -> Response:
    return PlainTextResponse(repr(request.session.get("k")))


ROUTES = [
    Route("/read", read),
    Route("/write", write),
    Route("/untouched", untouched),
    Route("/peek", peek),
    *(_setup_route(size) for size in SIZES),
]


# -- an in-process "browser" --------------------------------------------------------------------


def _template(path: str, session: dict[str, Any] | None) -> Scope:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 50000),
        "server": ("localhost", 8000),
    }
    if session is not None:  # the floor: no middleware, the handler gets a plain dict
        scope["session"] = session
    return scope


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class Browser:
    """Calls an ASGI app directly and keeps the cookies it sets, as a browser would."""

    def __init__(self, app: ASGIApp, floor_session: dict[str, Any] | None = None) -> None:
        self.app = app
        self.floor_session = floor_session
        self.cookies: dict[str, str] = {}
        self.headers: list[tuple[bytes, bytes]] = list(BASE_HEADERS)
        self.status = 0
        self.body = b""
        self.templates: dict[str, Scope] = {}

    def template(self, path: str) -> Scope:
        if path not in self.templates:
            self.templates[path] = _template(path, self.floor_session)
        return self.templates[path]

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            for name, value in message.get("headers", ()):
                if name == b"set-cookie" or name.lower() == b"set-cookie":
                    self._set_cookie(value.decode("latin-1"))
        elif message["type"] == "http.response.body":
            self.body = message.get("body", b"")

    def _set_cookie(self, header: str) -> None:
        pair, _, attributes = header.partition(";")
        name, _, value = pair.strip().partition("=")
        expired = value in ("", "''", '""')
        for attribute in attributes.split(";"):
            key, _, argument = attribute.strip().partition("=")
            key = key.lower()
            if (key == "max-age" and argument.strip() == "0") or (
                key == "expires" and "1970" in argument
            ):
                expired = True
        if expired:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value
        header_value = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.headers = list(BASE_HEADERS)
        if header_value:
            self.headers.append((b"cookie", header_value.encode("latin-1")))

    async def request(self, scope_template: Scope) -> None:
        scope = dict(scope_template)
        scope["headers"] = list(self.headers)
        await self.app(scope, _receive, self.send)
        if self.status != 200:
            raise RuntimeError(f"{scope['path']} answered {self.status}")

    async def get(self, path: str) -> None:
        await self.request(self.template(path))


# -- Redis: our own server, counted connections ---------------------------------------------------


@dataclass
class Counts:
    round_trips: int = 0
    commands: int = 0

    def reset(self) -> None:
        self.round_trips = self.commands = 0


COUNTS = Counts()


class CountingConnection(Connection):
    """A real connection that counts what it sends: one packed send is one round trip."""

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        COUNTS.round_trips += 1
        await super().send_packed_command(command, check_health)

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        COUNTS.commands += 1  # pipelines pack each of their commands through here too
        return super().pack_command(*args)


def counting_client(url: str) -> redis_asyncio.Redis:
    pool = redis_asyncio.ConnectionPool.from_url(url, connection_class=CountingConnection)
    return redis_asyncio.Redis(connection_pool=pool)


def command_stats(client: redis.Redis) -> dict[str, int]:
    stats: dict[str, Any] = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


# -- variants and cells ---------------------------------------------------------------------------


@dataclass
class Variant:
    key: str
    label: str
    middleware: Callable[[int], list[Middleware]]  # max_session_bytes -> the middleware stack
    redis: bool = False
    floor: bool = False
    calibration: ASGIApp | None = None  # a bare ASGI app used instead of the Starlette one


def ping_app(client: redis_asyncio.Redis) -> ASGIApp:
    """Calibration: a bare ASGI app that makes one redis-py round trip (PING) per request."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await client.ping()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def build_variants(url: str | None) -> tuple[list[Variant], list[redis_asyncio.Redis]]:
    clients: list[redis_asyncio.Redis] = []

    def sessionward(store_factory: Callable[[], Any]) -> Callable[[int], list[Middleware]]:
        def stack(max_bytes: int) -> list[Middleware]:
            return [
                Middleware(
                    SessionMiddleware,
                    secret_keys=[SECRET],
                    store=store_factory(),
                    max_session_bytes=max_bytes,
                )
            ]

        return stack

    def starsessions(store_factory: Callable[[], Any]) -> Callable[[int], list[Middleware]]:
        def stack(max_bytes: int) -> list[Middleware]:
            # starsessions needs the session loaded before use: the autoload middleware
            # (inside SessionMiddleware) loads it on every request. lifetime + rolling is its
            # closest match to an idle TTL; without lifetime its Redis TTL is gc_ttl.
            return [
                Middleware(
                    StarsessionsMiddleware,
                    store=store_factory(),
                    lifetime=14 * DAY,
                    rolling=True,
                    cookie_https_only=False,
                ),
                Middleware(SessionAutoloadMiddleware),
            ]

        return stack

    variants = [
        Variant("floor", "no session middleware (floor)", lambda _: [], floor=True),
        Variant(
            "starlette",
            "Starlette SessionMiddleware (cookie)",
            lambda _: [Middleware(StarletteSessionMiddleware, secret_key=SECRET)],
        ),
        Variant("ss-mem", "starsessions + InMemoryStore", starsessions(StarsessionsMemoryStore)),
        Variant("sw-mem", "sessionward + MemoryStore", sessionward(MemoryStore)),
    ]
    if url is not None:
        ss_client, sw_client, ping_client = (counting_client(url) for _ in range(3))
        # RedisStore.from_url's default 2 s socket timeout: redis-py wraps each send and
        # read in asyncio.wait_for / a timeout context when a timeout is set.
        sw_from_url = RedisStore.from_url(url, connection_class=CountingConnection)
        clients += [ss_client, sw_client, ping_client, sw_from_url.client]  # type: ignore[list-item]

        def ss_redis() -> StarsessionsRedisStore:
            return StarsessionsRedisStore(connection=ss_client, prefix="starsessions:")

        variants[3:3] = [
            Variant("ss-redis", "starsessions + RedisStore", starsessions(ss_redis), redis=True)
        ]
        variants += [
            Variant(
                "ping",
                "bare ASGI app awaiting one redis-py PING (calibration)",
                lambda _: [],
                redis=True,
                calibration=ping_app(ping_client),
            ),
            Variant(
                "sw-redis",
                "sessionward + RedisStore",
                sessionward(lambda: RedisStore(sw_client)),
                redis=True,
            ),
            Variant(
                "sw-redis-url",
                "sessionward + RedisStore.from_url (2 s timeouts)",
                sessionward(lambda: RedisStore(sw_from_url.client)),
                redis=True,
            ),
        ]
    return variants, clients


@dataclass
class Cell:
    variant: Variant
    scenario: str
    size: str = "1 key"
    browser: Browser | None = None
    round_means: list[float] = field(default_factory=list)  # µs per request, one per round
    samples: list[int] = field(default_factory=list)  # ns per request, every request
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.variant.key}/{self.scenario}/{self.size}"

    async def prepare(self, warmup: int) -> None:
        if self.variant.calibration is not None:
            self.browser = Browser(self.variant.calibration)
            for _ in range(warmup):
                await self.browser.get(f"/{self.scenario}")
            return
        max_bytes = BIG_LIMIT if self.size != "1 key" else 64 * 1024
        app = Starlette(routes=ROUTES, middleware=self.variant.middleware(max_bytes))
        browser = Browser(app, {} if self.variant.floor else None)
        await browser.get(f"/setup/{self.size.replace(' ', '-')}")
        if not self.variant.floor and not browser.cookies:
            raise RuntimeError(f"{self.name}: the first request set no cookie")
        path = f"/{self.scenario}"
        for _ in range(warmup):
            await browser.get(path)
        await browser.get("/peek")  # the session survived the warm-up, cookies and all
        if browser.body in (b"None", b""):
            raise RuntimeError(f"{self.name}: the session was lost ({browser.body!r})")
        if self.scenario == "write":
            await browser.get(path)
            expected = repr(next(_COUNTER) - 1).encode()
            await browser.get("/peek")
            if browser.body != expected:
                raise RuntimeError(f"{self.name}: wrote {expected!r}, read {browser.body!r}")
        self.browser = browser

    async def run_round(self, requests: int) -> None:
        browser = self.browser
        assert browser is not None
        template = browser.template(f"/{self.scenario}")
        request = browser.request
        samples = self.samples
        perf = time.perf_counter_ns
        start = last = perf()
        for _ in range(requests):
            await request(template)
            now = perf()
            samples.append(now - last)
            last = now
        self.round_means.append((last - start) / requests / 1000)

    @property
    def median(self) -> float:
        return statistics.median(self.round_means)

    @property
    def p90(self) -> float:
        return statistics.quantiles(self.samples, n=10)[-1] / 1000

    async def count(self, requests: int, stats_client: redis.Redis) -> None:
        browser = self.browser
        assert browser is not None
        template = browser.template(f"/{self.scenario}")
        before = command_stats(stats_client)
        COUNTS.reset()
        for _ in range(requests):
            await browser.request(template)
        round_trips, commands = COUNTS.round_trips, COUNTS.commands
        after = command_stats(stats_client)
        delta = {
            name: (calls - before.get(name, 0)) / requests
            for name, calls in after.items()
            if name != "info" and calls != before.get(name, 0)
        }
        self.counts = {
            "round_trips": round_trips / requests,
            "commands": commands / requests,
            "server": sum(delta.values()),
            "by_name": dict(sorted(delta.items(), key=lambda item: -item[1])),
        }


# -- machine ------------------------------------------------------------------------------------


def _provenance() -> str:
    """Where sessionward was imported from, and which commit that tree is at (if any)."""
    import sessionward

    directory = os.path.dirname(os.path.abspath(sessionward.__file__))
    git = shutil.which("git")
    if git is None:
        return directory
    try:
        head = subprocess.run(
            [git, "-C", directory, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            [git, "-C", directory, "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return directory
    return f"{directory} (git {head}{', with uncommitted changes' if dirty else ''})"


def _load_average() -> str:
    try:
        return " / ".join(f"{load:.2f}" for load in os.getloadavg())
    except OSError:
        return "unknown"


def machine(redis_version: str | None) -> list[str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.partition(":")[2].strip()
                    break
    except OSError:
        pass
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    versions = []
    for package in ("sessionward", "starlette", "starsessions", "redis", "itsdangerous"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    if HIREDIS_AVAILABLE:
        versions.append(f"hiredis {importlib.metadata.version('hiredis')} (C RESP parser)")
    else:
        versions.append("no hiredis (redis-py's pure-Python RESP parser)")
    if redis_version:
        versions.append(f"redis-server {redis_version} (loopback TCP)")
    return [
        f"- CPU: {cpu}, {cores} logical cores ({usable} usable)",
        f"- sessionward imported from {_provenance()}",
        f"- load average (1/5/15 min) at start: {_load_average()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}, asyncio default event loop",
        f"- {', '.join(versions)}",
    ]


# -- the run --------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "—" if value is None else f"{value:.{digits}f}{suffix}"


async def benchmark(args: argparse.Namespace) -> None:
    server = None if args.no_redis else start_server()
    clients: list[redis_asyncio.Redis] = []
    stats_client: redis.Redis | None = None
    try:
        redis_version = None
        if server is not None:
            stats_client = redis.Redis.from_url(server.url)
            redis_version = str(stats_client.info("server")["redis_version"])
        machine_lines = machine(redis_version)
        variants, clients = build_variants(server.url if server else None)
        cells = [Cell(v, s) for v in variants if not v.calibration for s in SCENARIOS]
        cells += [Cell(v, "ping", "—") for v in variants if v.calibration]
        sizes = [v for v in variants if v.key in ("sw-mem", "sw-redis")]
        cells += [Cell(v, s, size) for v in sizes for s in ("read", "write") for size in SIZES[1:]]

        started = time.perf_counter()
        warmup = max(20, args.requests // 10)
        for cell in cells:
            await cell.prepare(warmup)
        for round_number in range(args.rounds):
            order = cells[:]
            random.Random(round_number).shuffle(order)
            for cell in order:
                gc.collect()
                await cell.run_round(args.requests)
        if stats_client is not None:
            for cell in cells:
                if cell.variant.redis:
                    await cell.count(args.count_requests, stats_client)
        elapsed = time.perf_counter() - started
        report(args, cells, variants, machine_lines, elapsed)
    finally:
        for client in clients:
            await client.aclose()
        if stats_client is not None:
            stats_client.close()
        if server is not None:
            server.remove()


def report(
    args: argparse.Namespace,
    cells: list[Cell],
    variants: list[Variant],
    machine_lines: list[str],
    elapsed: float,
) -> None:
    by_name = {(c.variant.key, c.scenario, c.size): c for c in cells}
    out = print
    out("# sessionward benchmarks\n")
    out(*machine_lines, sep="\n")
    out(
        f"- {args.rounds} rounds x {args.requests} requests per cell, interleaved; "
        f"µs/req = median of round means; p90 over all {args.rounds * args.requests} requests; "
        f"{len(cells)} cells in {elapsed:.0f} s\n"
    )
    for cell in cells:
        if cell.variant.calibration is not None:
            out(
                f"Calibration, {cell.variant.label}: {cell.median:.1f} µs/req "
                f"(p90 {cell.p90:.1f}); a redis-py round trip on this machine costs about that "
                "much, whoever makes it.\n"
            )
    out("## Per-request cost, session already established\n")
    out(
        "| scenario | variant | µs/req | p90 µs | +µs vs floor | x floor | x Starlette "
        "| Redis RT/req | Redis cmds/req (top-level / server) |"
    )
    out("|---|---|--:|--:|--:|--:|--:|--:|--:|")
    for scenario in SCENARIOS:
        floor = by_name[("floor", scenario, "1 key")].median
        starlette = by_name[("starlette", scenario, "1 key")].median
        for variant in variants:
            if variant.calibration is not None:
                continue
            cell = by_name[(variant.key, scenario, "1 key")]
            rt = cmds = "—"
            if cell.counts:
                rt = _fmt(cell.counts["round_trips"], 2)
                cmds = f"{cell.counts['commands']:.2f} / {cell.counts['server']:.2f}"
            out(
                f"| {scenario} | {variant.label} | {cell.median:.1f} | {cell.p90:.1f} "
                f"| {cell.median - floor:+.1f} | {cell.median / floor:.2f} "
                f"| {cell.median / starlette:.2f} | {rt} | {cmds} |"
            )
    counted = [c for c in cells if c.counts]
    if counted:
        out(f"\n## Redis traffic per request (steady state, {args.count_requests} requests)\n")
        out(
            "Round trips: `send_packed_command` calls. Top-level: commands the client sent "
            "(`pack_command` calls). Server: `INFO commandstats` delta, which also counts every "
            "command a Lua script ran (so for sessionward, server - top-level = in-script).\n"
        )
        out(
            "| variant | scenario | session | round trips | top-level cmds | server cmds "
            "| server-side breakdown |"
        )
        out("|---|---|---|--:|--:|--:|---|")
        for cell in counted:
            breakdown = ", ".join(
                f"{name} {calls:g}" for name, calls in cell.counts["by_name"].items()
            )
            out(
                f"| {cell.variant.label} | {cell.scenario} | {cell.size} "
                f"| {cell.counts['round_trips']:.2f} | {cell.counts['commands']:.2f} "
                f"| {cell.counts['server']:.2f} | {breakdown} |"
            )
    size_variants = [v for v in variants if v.key in ("sw-mem", "sw-redis")]
    out("\n## sessionward: cost by session size\n")
    out(
        '`100 keys` = "k" + 99 small dicts; `64 KB value` = "k" + one 65 536-character '
        'string. The handler reads or writes "k" only.\n'
    )
    out("| store | session | read µs | write µs | read x 1 key | write x 1 key |")
    out("|---|---|--:|--:|--:|--:|")
    for variant in size_variants:
        base_read = by_name[(variant.key, "read", "1 key")].median
        base_write = by_name[(variant.key, "write", "1 key")].median
        for size in SIZES:
            r = by_name[(variant.key, "read", size)].median
            w = by_name[(variant.key, "write", size)].median
            out(
                f"| {variant.label} | {size} | {r:.1f} | {w:.1f} "
                f"| {r / base_read:.2f} | {w / base_write:.2f} |"
            )


# -- profile --------------------------------------------------------------------------------------


def _short(filename: str, function: str) -> str:
    if filename == "~":
        return function
    for marker in ("site-packages/", "/src/", "/lib/python"):
        if marker in filename:
            filename = filename.rpartition(marker)[2]
            break
    return f"{filename.removeprefix('3.11/').removeprefix('3.12/')}:{function}"


def _profile_tables(profile: cProfile.Profile, requests: int) -> list[str]:
    """Per-request own and cumulative time: all functions, then ours and itsdangerous only."""
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    rows = [
        (_short(filename, function), calls / requests, own, cumulative)
        for (filename, _, function), (_, calls, own, cumulative, _) in raw.items()
    ]
    per_request = 1e6 / requests
    lines = []
    for title, chosen in (
        ("Top own time, whole stack", sorted(rows, key=lambda r: -r[2])[:18]),
        (
            "sessionward and itsdangerous, by cumulative time",
            sorted(
                (r for r in rows if r[0].startswith(("sessionward/", "itsdangerous/"))),
                key=lambda r: -r[3],
            )[:22],
        ),
    ):
        lines += [f"\n{title}:\n", "| function | calls/req | own µs/req | cum µs/req |"]
        lines.append("|---|--:|--:|--:|")
        lines += [
            f"| `{name}` | {calls:.2f} | {own * per_request:.2f} | {cum * per_request:.2f} |"
            for name, calls, own, cum in chosen
        ]
    return lines


@contextmanager
def _profiler(kind: str, title: str, requests: int) -> Iterator[None]:
    gc.collect()
    if kind == "pyinstrument":
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0001, async_mode="disabled")
        profiler.start()
        try:
            yield
        finally:
            profiler.stop()
            print(f"\n### {title} (pyinstrument)\n\n```")
            print(profiler.output_text(unicode=False, color=False, show_all=False))
            print("```")
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        print(f"\n### {title} (cProfile; its per-call overhead inflates small functions)")
        print(*_profile_tables(profile, requests), sep="\n")


def _step(label: str, fn: Callable[[], object], number: int) -> str:
    seconds = min(timeit.repeat(fn, number=number, repeat=5))
    return f"| {label} | {seconds / number * 1e6:.2f} |"


def _complete(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (MemoryStore's), without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the coroutine suspended")


async def _hot_path_step_functions() -> list[tuple[str, Callable[[], object]]]:
    """Each step sessionward takes for an established session, plus two cheaper alternatives.

    These use sessionward internals (not its public API), imported here so that a refactor
    there skips this table instead of breaking the benchmark.
    """
    from sessionward import CookieSigner, CookieTransport, SessionRecord
    from sessionward.record import split_fields
    from sessionward.session import Session, dumps
    from sessionward.tokens import session_hash

    # A real session, made by the middleware through a MemoryStore we keep a handle on.
    store = MemoryStore()
    app = Starlette(
        routes=ROUTES, middleware=[Middleware(SessionMiddleware, secret_keys=[SECRET], store=store)]
    )
    browser = Browser(app)
    await browser.get("/setup/1-key")
    token = browser.cookies["session"]
    signer = CookieSigner([SECRET])
    transport = CookieTransport()
    session_id = signer.verify(token).session_id
    scope: Scope = {"headers": [*BASE_HEADERS, (b"cookie", f"session={token}".encode())]}
    key = session_hash(session_id)
    far = 14 * DAY * 1000

    def load() -> Any:
        return _complete(store.load(key, int(time.time() * 1000), far))

    loaded = load()
    if not loaded:
        raise RuntimeError("the session the middleware stored could not be loaded")
    data, meta = split_fields(loaded)
    data100 = dict(data)
    data100.update(
        (f"item{i}", json.dumps({"id": i, "label": f"item number {i}"}, separators=(",", ":")))
        for i in range(99)
    )

    def read_changes(stored: dict[str, str]) -> Callable[[], object]:
        def step() -> object:
            session = Session(stored)
            session.get("k")
            return session.changes()

        return step

    def write_changes() -> object:
        session = Session(data)
        session["k"] = 12345
        return session.changes()

    def vary() -> None:
        message: Message = {"type": "http.response.start", "status": 200, "headers": []}
        MutableHeaders(scope=message).add_vary_header("Cookie")

    def client_ip_step() -> object:
        from sessionward.addresses import client_ip

        return client_ip(browser.template("/read"), None)

    # Alternatives, to size the suggestions: a precomputed HMAC key compared as base64 text
    # (which also rejects non-canonical spellings), and one shared JSONEncoder.
    derived = Signer(SECRET, salt="sessionward.cookie", digest_method=hashlib.sha256).derive_key()
    expected_signature = token.rpartition(".")[2]

    def precomputed_hmac() -> bool:
        value, _, signature = token.rpartition(".")
        mac = hmac.new(derived, value.encode("ascii"), "sha256").digest()
        text = base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")
        return hmac.compare_digest(text, signature)

    if not precomputed_hmac() or expected_signature == "":
        raise RuntimeError("the precomputed-key check does not match itsdangerous' signature")
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    value = {"id": 1, "label": "item number 1"}

    return [
        ("CookieTransport.read (find the cookie)", lambda: transport.read(scope)),
        (
            "CookieSigner.verify (canonical check + itsdangerous unsign)",
            lambda: signer.verify(token),
        ),
        ("-> alternative: precomputed HMAC key, compare base64 text", precomputed_hmac),
        ("session_hash (SHA-256)", lambda: session_hash(session_id)),
        ("MemoryStore.load (expiry sweep, touch, copy)", load),
        ("split_fields", lambda: split_fields(loaded)),
        ("SessionRecord.from_fields", lambda: SessionRecord.from_fields(meta)),
        ("Session(data), 1 key", lambda: Session(data)),
        ("read: Session + get + changes(), 1 key", read_changes(data)),
        ("write: Session + set + changes(), 1 key", write_changes),
        ("Session(data), 100 keys (json.loads each)", lambda: Session(data100)),
        ("read: Session + get + changes(), 100 keys", read_changes(data100)),
        ("session.dumps of a small dict (json.dumps with options)", lambda: dumps("x", value)),
        ("-> alternative: one shared JSONEncoder.encode", lambda: encoder.encode(value)),
        ("client_ip (no trusted proxies: ipaddress parse of the peer)", client_ip_step),
        ("MutableHeaders.add_vary_header", vary),
        ("CookieSigner.issue", lambda: signer.issue(session_id)),
    ]


async def hot_path_steps(number: int) -> list[str]:
    try:
        steps = await _hot_path_step_functions()
    except Exception as exc:  # internals moved on: the profiles above still stand
        return [f"(skipped: sessionward internals changed: {exc!r})"]
    lines = ["| step | µs/call |", "|---|--:|"]
    for label, step in steps:
        try:
            lines.append(_step(label, step, number))
        except Exception as exc:
            lines.append(f"| {label} | failed: {exc!r} |")
    return lines


async def profile(args: argparse.Namespace) -> None:
    requests = 300 if args.quick else 3000
    print("# Profile: sessionward + MemoryStore\n")
    print(f"- sessionward imported from {_provenance()}")

    def stack(max_bytes: int) -> list[Middleware]:
        return [
            Middleware(
                SessionMiddleware,
                secret_keys=[SECRET],
                store=MemoryStore(),
                max_session_bytes=max_bytes,
            )
        ]

    variant = Variant("sw-mem", "sessionward + MemoryStore", stack)
    for size, scenario in itertools.product(("1 key", "100 keys"), ("read", "write")):
        cell = Cell(variant, scenario, size)
        await cell.prepare(100)
        n = requests if size == "1 key" else requests // 10
        with _profiler(args.profiler, f"{scenario}, {size}: {n} requests", n):
            await cell.run_round(n)
    print("\n### Hot-path steps in isolation (timeit, best of 5)\n")
    print(*await hot_path_steps(2000 if args.quick else 20000), sep="\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (smoke test)")
    parser.add_argument("--rounds", type=int, help="rounds per cell (default 7; quick 3)")
    parser.add_argument("--requests", type=int, help="requests per round (default 1000; quick 150)")
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis variants")
    parser.add_argument("--profile", action="store_true", help="profile sessionward + MemoryStore")
    parser.add_argument("--profiler", choices=("cprofile", "pyinstrument"), default="cprofile")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else 7)
    args.requests = args.requests or (150 if args.quick else 1000)
    args.count_requests = 50 if args.quick else 500
    if args.rounds < 1 or args.requests < 2:
        parser.error("--rounds must be >= 1 and --requests >= 2")
    asyncio.run(profile(args) if args.profile else benchmark(args))


if __name__ == "__main__":
    main()
