"""The compared cases, and the targets the report checks.

A case is one function `(env: Env) -> ASGIApp`, registered with `@case(...)`. Every app serves
the same routes (browser.ROUTES: /read, /write, /untouched, /peek and /setup/<size>), whose
handlers use `request.session`; a case only decides what provides it. A Redis case
(`redis=True`) gets its clients from `env.redis()`, which gives each cell its own pool with the
cell's redis-py parser and otherwise redis-py's defaults, the same for every case; `env.prefix`
keeps each cell's keys apart. Tables and chart list cases in the order registered here:
the floor, the cookie and in-memory cases, then the raw-Redis floors and the Redis cases.

The floors are bare ASGI functions (not Starlette middleware) around the same Starlette app:
- "floor" puts one plain dict in the scope: no cookie, no store;
- the raw-Redis floors do, with redis-py directly and json for the blob, only the round trips a
  session must make, on one fixed key (no cookie, no signing): `GETEX key EX ttl` to read and
  refresh the idle TTL; `GET key`, then, after the handler ran, `SET key blob EX ttl` to write.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from browser import SECRET, SIZES, TTL, session_app
from harness import Env, Target, case
from previous import PACKAGE
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from starsessions import InMemoryStore as StarsessionsMemoryStore
from starsessions import SessionAutoloadMiddleware, SessionStore
from starsessions import SessionMiddleware as StarsessionsMiddleware
from starsessions.stores.redis import RedisStore as StarsessionsRedisStore

from sessionward import MemoryStore, RedisStore, SessionMiddleware, Store


@case("floor", "no session middleware (floor)", family="floor", cookie=False)
def floor(env: Env) -> ASGIApp:
    app, session = session_app(), dict[str, Any]()

    async def plain_dict(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"] = session
        await app(scope, receive, send)

    return plain_dict


@case("starlette", "Starlette SessionMiddleware (cookie)", family="starlette")
def starlette_cookie(env: Env) -> ASGIApp:
    return session_app(Middleware(StarletteSessionMiddleware, secret_key=SECRET, max_age=TTL))


def _starsessions(store: SessionStore) -> ASGIApp:
    # starsessions loads the session only on demand: the autoload middleware (inside) loads it
    # on every request. lifetime + rolling is its closest match to an idle TTL; rolling makes
    # it write the session back (and re-send the cookie) on every request, even a read.
    return session_app(
        Middleware(
            StarsessionsMiddleware,
            store=store,
            lifetime=TTL,
            rolling=True,
            cookie_https_only=False,
        ),
        Middleware(SessionAutoloadMiddleware),
    )


@case("ss-mem", "starsessions + InMemoryStore", family="starsessions")
def starsessions_memory(env: Env) -> ASGIApp:
    return _starsessions(StarsessionsMemoryStore())


def _sessionward(env: Env, store: Store) -> ASGIApp:
    return session_app(
        Middleware(
            SessionMiddleware,
            secret_keys=[SECRET],
            store=store,
            max_session_bytes=env.max_bytes,
        )
    )


@case("sw-mem", "sessionward + MemoryStore", family="sessionward", sizes=SIZES)
def sessionward_memory(env: Env) -> ASGIApp:
    return _sessionward(env, MemoryStore())


def _raw_floor(env: Env, *, write: bool) -> ASGIApp:
    client, key, app = env.redis(), f"{env.prefix}raw", session_app()

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        blob = await (client.get(key) if write else client.getex(key, ex=TTL))
        session = {} if blob is None else json.loads(blob)
        scope["session"] = session
        await app(scope, receive, send)
        if write or (blob is None and session):  # the read floor stores only the first session
            await client.set(key, json.dumps(session), ex=TTL)

    return raw


@case(
    "raw-read",
    "raw redis-py GETEX (read floor)",
    family="raw",
    redis=True,
    scenarios=("read",),
    cookie=False,
)
def raw_read(env: Env) -> ASGIApp:
    return _raw_floor(env, write=False)


@case(
    "raw-write",
    "raw redis-py GET + SET (write floor)",
    family="raw",
    redis=True,
    scenarios=("write",),
    cookie=False,
)
def raw_write(env: Env) -> ASGIApp:
    return _raw_floor(env, write=True)


@case("ss-redis", "starsessions + RedisStore", family="starsessions", redis=True)
def starsessions_redis(env: Env) -> ASGIApp:
    return _starsessions(StarsessionsRedisStore(connection=env.redis(), prefix=env.prefix))


@case("sw-redis", "sessionward + RedisStore", family="sessionward", redis=True, sizes=SIZES)
def sessionward_redis(env: Env) -> ASGIApp:
    return _sessionward(env, RedisStore(env.redis(), prefix=env.prefix))


# The time targets of 0.3 (issue 18); the instruction counts (`instructions.py`) have their own.
TARGETS = [
    Target(
        "sessionward read / raw GETEX read floor", ("sw-redis", "read"), ("raw-read", "read"), 1.25
    ),
    Target(
        "sessionward write / raw GET+SET write floor",
        ("sw-redis", "write"),
        ("raw-write", "write"),
        1.35,
    ),
    Target(
        "sessionward write / starsessions + Redis write",
        ("sw-redis", "write"),
        ("ss-redis", "write"),
        1.1,
    ),
    Target(
        "sessionward MemoryStore write / Starlette cookie write",
        ("sw-mem", "write"),
        ("starlette", "write"),
        1.05,
    ),
    Target(
        "sessionward MemoryStore write / starsessions memory write",
        ("sw-mem", "write"),
        ("ss-mem", "write"),
        1.2,
    ),
]


def previous_cases(commit: str) -> None:
    """Register an older sessionward (see previous.py) beside the current one, last in tables."""
    previous = importlib.import_module(PACKAGE)
    label = f"sessionward {commit} (previous)"

    def stack(env: Env, store: Any) -> ASGIApp:
        middleware = Middleware(
            previous.SessionMiddleware,
            secret_keys=[SECRET],
            store=store,
            max_session_bytes=env.max_bytes,
        )
        return session_app(middleware)

    @case("sw-mem-prev", f"{label} + MemoryStore", family="previous")
    def previous_memory(env: Env) -> ASGIApp:
        return stack(env, previous.MemoryStore())

    @case("sw-redis-prev", f"{label} + RedisStore", family="previous", redis=True)
    def previous_redis(env: Env) -> ASGIApp:
        return stack(env, previous.RedisStore(env.redis(), prefix=env.prefix))
