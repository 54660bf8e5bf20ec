"""Requests that don't count as activity: `SessionMiddleware(count_as_activity=...)`, on every
store, with time moved by `clock=`."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from sessionward import (
    ConfigurationError,
    MemoryStore,
    RedisStore,
    SessionMiddleware,
    Store,
    UserSessions,
    login,
)
from tests.apps import SECRET, RecordingStore
from tests.conftest import Clock, client_for

pytestmark = pytest.mark.anyio

IDLE = 600  # seconds


def not_polling(scope: Scope) -> bool:
    return bool(scope["path"] != "/api/poll")


async def sign_in(request: Request) -> Response:
    await login(request, "ada")
    request.session["cart"] = [1]
    return JSONResponse(None)


async def poll(request: Request) -> Response:
    """What a page asks every 30 s: it reads the session, and may write to it."""
    if "note" in request.query_params:
        request.session["note"] = request.query_params["note"]
    return JSONResponse(dict(request.session))


async def page(request: Request) -> Response:
    return JSONResponse(dict(request.session))


def app_for(store: Store, clock: Clock, **options: Any) -> Starlette:
    return Starlette(
        routes=[
            Route("/login", sign_in, methods=["POST"]),
            Route("/api/poll", poll),
            Route("/page", page),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_keys=[SECRET],
                store=store,
                clock=clock,
                idle_ttl=IDLE,
                count_as_activity=not_polling,
                **options,
            )
        ],
    )


async def test_polling_does_not_keep_a_session_alive(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock)) as client:
        await client.post("/login")
        polled = []
        for _ in range(IDLE // 30 - 1):
            clock.advance(30)
            polled.append((await client.get("/api/poll")).json())
        clock.advance(31)  # idle for longer than IDLE since the sign-in
        after = (await client.get("/api/poll")).json()
    assert all(answer == {"cart": [1]} for answer in polled)  # it sees the data throughout
    assert after == {}  # and the session ended on time


async def test_other_requests_still_count(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock)) as client:
        await client.post("/login")
        clock.advance(IDLE - 10)
        await client.get("/page")
        clock.advance(IDLE - 10)
        alive = (await client.get("/api/poll")).json()
    assert alive == {"cart": [1]}


async def test_a_poll_does_not_move_last_seen(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock)) as client:
        await client.post("/login")
        signed_in_at = clock.now
        clock.advance(100)
        await client.get("/api/poll")
        (info,) = await UserSessions(store, idle_ttl=IDLE).list_sessions("ada")
    assert info.last_seen_at.timestamp() == pytest.approx(signed_in_at)


async def test_a_change_in_a_poll_is_saved_without_moving_the_deadline(
    store: Store, clock: Clock
) -> None:
    async with client_for(app_for(store, clock)) as client:
        await client.post("/login")
        clock.advance(IDLE - 60)
        written = await client.get("/api/poll?note=hi")
        seen = (await client.get("/api/poll")).json()
        clock.advance(61)
        after = (await client.get("/api/poll")).json()
    assert written.json() == {"cart": [1], "note": "hi"}
    assert seen == {"cart": [1], "note": "hi"}  # the change was saved
    assert after == {}  # and the deadline did not move


async def test_a_poll_costs_one_store_call_and_never_touches(clock: Clock) -> None:
    store = RecordingStore(MemoryStore())
    async with client_for(app_for(store, clock)) as client:
        await client.post("/login")
        store.calls.clear()
        await client.get("/api/poll")
        await client.get("/api/poll?note=x")
        await client.get("/page")
    assert store.calls == ["load untouched", "load untouched", "save untouched", "load"]


async def test_on_redis_a_poll_leaves_the_key_expiry_alone(
    redis_client: redis_asyncio.Redis, clock: Clock
) -> None:
    store = RedisStore(redis_client)
    async with client_for(app_for(store, clock)) as client:
        await client.post("/login")
        (key,) = await redis_client.keys("sessionward:s:*")
        before = await redis_client.pttl(key)
        clock.advance(120)
        await client.get("/api/poll?note=x")  # a write, too: its expiry stays as it stood
        after_poll = await redis_client.pttl(key)
        await client.get("/page")
        after_page = await redis_client.pttl(key)
    # The key now expires by the clock the app moved, 120 s closer to its deadline.
    assert after_poll <= (IDLE - 120) * 1000 < before
    assert after_page > after_poll


async def test_count_as_activity_must_be_callable() -> None:
    with pytest.raises(ConfigurationError, match="count_as_activity must be a function"):
        SessionMiddleware(Starlette(), secret_keys=[SECRET], count_as_activity="/api/poll")  # type: ignore[arg-type]
