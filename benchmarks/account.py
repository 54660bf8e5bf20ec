"""What the account-security features cost a request: cross-origin checks, the recent sign-in
check, and a sign-in's known-device log.

    python benchmarks/account.py [--rounds 7] [--requests 2000]

Every request is an in-process ASGI call (a prebuilt scope, as in benchmarks/browser.py), so
a figure is the session layer's cost plus Starlette's routing. Paired cells differ in one
setting only and are timed in interleaved, shuffled rounds; each figure is the median of the
round means. Redis cells run against a redis-server started here on loopback, and their
round trips are counted on separate, counting connections (never while timing).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as redis_asyncio
from redis.asyncio.connection import Connection
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sessionward import (  # noqa: E402
    BearerSigner,
    BearerTransport,
    JWTKey,
    MemoryStore,
    RedisStore,
    SessionMiddleware,
    Store,
    login,
    login_bearer,
    recently_authenticated,
    token_routes,
)
from tests.redis_server import start_server  # noqa: E402

SECRET = "benchmark-secret-key-0123456789abcdefghijklmnop"
JWT_KEY = JWTKey("k1", "HS256", "benchmark-jwt-key-0123456789abcdefghijklmnop")
USER_AGENT = (
    b"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    b"(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
# What Chrome sends with a same-origin fetch() POST, besides the cookie.
BROWSER_HEADERS = [
    (b"host", b"localhost"),
    (b"user-agent", USER_AGENT),
    (b"origin", b"https://localhost"),
    (b"sec-fetch-site", b"same-origin"),
    (b"sec-fetch-mode", b"cors"),
    (b"sec-fetch-dest", b"empty"),
    (b"accept", b"*/*"),
    (b"accept-language", b"en-GB,en;q=0.9"),
    (b"content-type", b"application/json"),
]


class CountingConnection(Connection):
    round_trips = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.round_trips += 1
        await super().send_packed_command(command, check_health)


async def _write(request: Request) -> Response:
    request.session["k"] = time.perf_counter_ns()
    return PlainTextResponse("ok")


async def _read(request: Request) -> Response:
    return PlainTextResponse(str(request.session.get("k")))


async def _guarded(request: Request) -> Response:
    allowed = recently_authenticated(request, within=300)
    return PlainTextResponse("ok" if allowed else "no", status_code=200 if allowed else 403)


async def _sign_in(request: Request) -> Response:
    await login(request, "ada")
    return PlainTextResponse("ok")


async def _pair_sign_in(request: Request) -> Response:
    pair = await login_bearer(request, "ada")
    return PlainTextResponse(pair.refresh_token)


def build(store: Store, **options: Any) -> ASGIApp:
    routes = [
        Route("/write", _write, methods=["POST"]),
        Route("/read", _read),
        Route("/guarded", _guarded),
        Route("/login", _sign_in, methods=["POST"]),
        Route("/api/login", _pair_sign_in, methods=["POST"]),
        *token_routes(),
    ]
    options.setdefault("bearer", BearerTransport(BearerSigner(JWT_KEY)))
    middleware = [Middleware(SessionMiddleware, secret_keys=[SECRET], store=store, **options)]
    return Starlette(routes=routes, middleware=middleware)


class Browser:
    """Calls an app in-process, carrying the cookies its responses set."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cookies: dict[bytes, bytes] = {}
        self.body = b""

    async def request(self, method: str, path: str, body: bytes = b"") -> int:
        headers = list(BROWSER_HEADERS)
        if body:
            headers = [h for h in headers if h[0] != b"content-type"]
            headers.append((b"content-type", b"application/x-www-form-urlencoded"))
        if self.cookies:
            cookie = b"; ".join(name + b"=" + value for name, value in self.cookies.items())
            headers.append((b"cookie", cookie))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "https",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("localhost", 443),
        }
        status = 0
        self.body = b""

        async def receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.body":
                self.body += message.get("body", b"")
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"set-cookie":
                        cookie_name, _, rest = value.partition(b"=")
                        self.cookies[cookie_name] = rest.partition(b";")[0]

        await self.app(scope, receive, send)
        return status


Cell = Callable[[], Awaitable[int]]


async def time_cells(cells: dict[str, Cell], rounds: int, requests: int) -> dict[str, float]:
    """Median over rounds of each cell's mean µs a request, cells shuffled in each round."""
    for name, cell in cells.items():  # warm up, and check each cell answers as it should
        for _ in range(50):
            status = await cell()
        if status != 200:
            raise RuntimeError(f"{name}: answered {status}")
    means: dict[str, list[float]] = {name: [] for name in cells}
    for _ in range(rounds):
        order = list(cells.items())
        random.shuffle(order)
        for name, cell in order:
            gc.collect()
            started = time.perf_counter()
            for _ in range(requests):
                await cell()
            means[name].append((time.perf_counter() - started) / requests * 1e6)
    return {name: statistics.median(values) for name, values in means.items()}


async def signed_in_browser(app: ASGIApp) -> Browser:
    browser = Browser(app)
    assert await browser.request("POST", "/login") == 200
    return browser


async def per_request(rounds: int, requests: int) -> dict[str, float]:
    """In memory: the cross-origin check on a POST and a GET, and the recent sign-in check."""
    checked = await signed_in_browser(build(MemoryStore()))
    unchecked = await signed_in_browser(build(MemoryStore(), csrf=False))
    cells: dict[str, Cell] = {
        "POST, csrf on": lambda: checked.request("POST", "/write"),
        "POST, csrf off": lambda: unchecked.request("POST", "/write"),
        "GET, csrf on": lambda: checked.request("GET", "/read"),
        "GET, csrf off": lambda: unchecked.request("GET", "/read"),
        "GET, recently_authenticated()": lambda: checked.request("GET", "/guarded"),
    }
    return await time_cells(cells, rounds, requests)


async def sign_ins(url: str, rounds: int, requests: int) -> dict[str, float]:
    """A sign-in's µs in memory and on Redis, and the device log's own script on Redis."""
    client = redis_asyncio.Redis.from_url(url)
    await client.flushdb()
    memory = Browser(build(MemoryStore()))
    on_redis = Browser(build(RedisStore(client)))
    store = RedisStore(client)
    hashes = ["a" * 64]

    async def device_seen() -> int:
        await store.device_seen("ada", hashes, "Chrome 131 on macOS", None, 1, 10**10, 50)
        return 200

    api = Browser(build(RedisStore(client)))
    assert await api.request("POST", "/api/login") == 200
    refresh_token = api.body

    async def refresh() -> int:
        nonlocal refresh_token
        status = await api.request("POST", "/token/refresh", _refresh_body(refresh_token))
        refresh_token = json.loads(api.body)["refresh_token"].encode()
        return status

    cells: dict[str, Cell] = {
        "sign-in, MemoryStore": lambda: memory.request("POST", "/login"),
        "sign-in, RedisStore": lambda: on_redis.request("POST", "/login"),
        "known-device log alone, RedisStore": device_seen,
        "token refresh (rotation), RedisStore": refresh,
    }
    try:
        return await time_cells(cells, rounds, max(1, requests // 10))
    finally:
        await client.aclose()


def _refresh_body(token: bytes) -> bytes:
    return b"grant_type=refresh_token&refresh_token=" + token


async def round_trips(url: str) -> dict[str, int]:
    """Redis round trips of each kind of request, counted on the connection."""
    pool = redis_asyncio.ConnectionPool.from_url(url, connection_class=CountingConnection)
    client = redis_asyncio.Redis(connection_pool=pool)
    browser = Browser(build(RedisStore(client)))
    counted: dict[str, int] = {}
    for name, method, path in (
        ("sign-in", "POST", "/login"),
        ("sign-in again, same browser", "POST", "/login"),
        ("POST that writes", "POST", "/write"),
        ("GET that reads", "GET", "/read"),
        ("GET with recently_authenticated()", "GET", "/guarded"),
    ):
        before = CountingConnection.round_trips
        await browser.request(method, path)
        counted[name] = CountingConnection.round_trips - before
    api = Browser(build(RedisStore(client)))
    before = CountingConnection.round_trips
    await api.request("POST", "/api/login")
    counted["token-pair sign-in"] = CountingConnection.round_trips - before
    before = CountingConnection.round_trips
    await api.request("POST", "/token/refresh", _refresh_body(api.body))
    counted["token refresh"] = CountingConnection.round_trips - before
    await client.aclose()
    return counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=2000)
    options = parser.parse_args()
    server = start_server()
    try:
        timed = asyncio.run(per_request(options.rounds, options.requests))
        signing = asyncio.run(sign_ins(server.url, options.rounds, options.requests))
        trips = asyncio.run(round_trips(server.url))
    finally:
        server.remove()
    print("| request (in process, MemoryStore) | µs |")
    print("| --- | --: |")
    for name, micros in timed.items():
        print(f"| {name} | {micros:.1f} |")
    post_cost = timed["POST, csrf on"] - timed["POST, csrf off"]
    get_cost = timed["GET, csrf on"] - timed["GET, csrf off"]
    guard_cost = timed["GET, recently_authenticated()"] - timed["GET, csrf on"]
    print(f"\ncross-origin check: POST {post_cost:+.1f} µs, GET {get_cost:+.1f} µs")
    print(f"recently_authenticated() in a handler: {guard_cost:+.1f} µs (route differs too)")
    print("\n| sign-in | µs |")
    print("| --- | --: |")
    for name, micros in signing.items():
        print(f"| {name} | {micros:.0f} |")
    print("\n| request (RedisStore) | Redis round trips |")
    print("| --- | --: |")
    for name, count in trips.items():
        print(f"| {name} | {count} |")


if __name__ == "__main__":
    main()
