"""The app `benchmarks/load.py` runs under uvicorn: one Starlette app, four session layers.

    LOAD_CASE=sessionward REDIS_URL=redis://127.0.0.1:6379/0 \\
        python -m uvicorn load_app:create_app --factory --app-dir benchmarks

`LOAD_CASE` picks what provides `request.session`; the routes are the same for all four, so
a difference in requests/s is the session layer's:

- `none`: a plain dict per request (no cookie, no store): the ceiling;
- `starlette`: Starlette's own `SessionMiddleware` (the data in a signed cookie);
- `starsessions`: starsessions on Redis (what a team picks for server-side sessions today);
- `sessionward`: sessionward on Redis.

Sign-in is a route of its own without a password check (the demo app's scrypt would be most
of its cost): `login()` where the layer has one, else the user's id written to the session.
The device list (`/account/sessions`) exists only where the layer has one (sessionward).
Cookies are not `Secure`: the load runs over plain http on loopback.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

CASES = ("none", "starlette", "starsessions", "sessionward")
SECRET = "load-test-secret-key-0123456789abcdef"
IDLE_TTL = int(os.environ.get("LOAD_IDLE_TTL", 30 * 60))  # seconds; the soak shortens it
CLUSTER = os.environ.get("LOAD_REDIS_CLUSTER") == "1"  # REDIS_URL names a cluster node


async def read(request: Request) -> Response:
    return JSONResponse({"counter": request.session.get("counter")})


async def write(request: Request) -> Response:
    request.session["counter"] = (await request.json())["counter"]
    return JSONResponse({"ok": True})


async def sign_in(request: Request) -> Response:
    user = (await request.json())["user"]
    if LOGIN is not None:
        await LOGIN(request, user)
    else:
        request.session.clear()
        request.session["user"] = user
    return JSONResponse({"user": user})


async def sign_out(request: Request) -> Response:
    if LOGOUT is not None:
        await LOGOUT(request)
    else:
        request.session.clear()
    return JSONResponse({"user": None})


LOGIN: Any = None
LOGOUT: Any = None


def routes(extra: list[BaseRoute]) -> list[BaseRoute]:
    return [
        Route("/session", read, methods=["GET"]),
        Route("/session", write, methods=["POST"]),
        Route("/login", sign_in, methods=["POST"]),
        Route("/logout", sign_out, methods=["POST"]),
        *extra,
    ]


def _plain_dict(app: ASGIApp) -> ASGIApp:
    async def with_a_dict(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"] = {}
        await app(scope, receive, send)

    return with_a_dict


def _cluster_store(redis_url: str) -> Any:
    """A `RedisStore` on a Redis Cluster, built as the operations guide builds it."""
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff

    from sessionward import RedisStore

    client = RedisCluster.from_url(
        redis_url,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1),
    )
    return RedisStore(client)


def create_app() -> ASGIApp:
    """The app for `LOAD_CASE`, on `REDIS_URL` where the case keeps sessions in Redis."""
    global LOGIN, LOGOUT
    case, redis_url = os.environ.get("LOAD_CASE", "sessionward"), os.environ.get("REDIS_URL")
    if case == "none":
        return _plain_dict(Starlette(routes=routes([])))
    if case == "starlette":
        from starlette.middleware.sessions import SessionMiddleware as StarletteSessions

        layer = Middleware(StarletteSessions, secret_key=SECRET, max_age=IDLE_TTL)
        return Starlette(routes=routes([]), middleware=[layer])
    if redis_url is None:
        raise SystemExit(f"LOAD_CASE={case} needs REDIS_URL")
    if case == "starsessions":
        from starsessions import SessionAutoloadMiddleware
        from starsessions import SessionMiddleware as Starsessions
        from starsessions.stores.redis import RedisStore as StarsessionsRedis

        layers = [
            Middleware(
                Starsessions,
                store=StarsessionsRedis(url=redis_url),
                lifetime=IDLE_TTL,
                rolling=True,  # its idle TTL: the session is written back on every request
                cookie_https_only=False,
            ),
            Middleware(SessionAutoloadMiddleware),
        ]
        return Starlette(routes=routes([]), middleware=layers)
    if case == "sessionward":
        from sessionward import (
            CookieTransport,
            RedisStore,
            SessionMiddleware,
            device_routes,
            login,
            logout,
        )

        LOGIN, LOGOUT = login, logout
        app = Starlette(routes=routes([Mount("/account", routes=device_routes())]))
        return SessionMiddleware(
            app,
            secret_keys=[SECRET],
            store=_cluster_store(redis_url) if CLUSTER else RedisStore.from_url(redis_url),
            cookie=CookieTransport(secure=False),
            idle_ttl=IDLE_TTL,
            csrf=False,  # the load clients send no Origin; the check is measured elsewhere
        )
    raise SystemExit(f"LOAD_CASE must be one of {', '.join(CASES)}, not {case!r}")
