"""`sessionward.testing`: a test signs a client in without the app's sign-in form, on every
store, with the record a real `login()` makes, and moves the sessions' clock."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from sessionward import (
    BearerSigner,
    BearerTransport,
    JWTKey,
    MemoryStore,
    SessionMiddleware,
    Store,
    UserSessions,
    get_session,
)
from sessionward.testing import Clock, login_client, login_test_client, session_middleware
from tests.apps import IPHONE, SECRET

pytestmark = pytest.mark.anyio

BEARER = BearerTransport(BearerSigner(JWTKey("k1", "HS256", "bearer-" + "k" * 32)))


async def me(request: Request) -> Response:
    info = get_session(request)
    if info is None or info.user_id is None:
        return JSONResponse({"error": "not signed in"}, status_code=401)
    label = info.device.label if info.device else None
    return JSONResponse({"user": info.user_id, "transport": info.transport, "device": label})


def app_for(store: Store, clock: Clock, **options: Any) -> Starlette:
    app = Starlette(routes=[Route("/me", me)])
    app.add_middleware(
        SessionMiddleware, store=store, secret_keys=[SECRET], clock=clock, bearer=BEARER, **options
    )
    return app


def client_for(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


async def test_a_client_is_signed_in_with_the_record_a_real_login_makes(store: Store) -> None:
    clock = Clock()
    app = app_for(store, clock, idle_ttl=600)
    async with client_for(app) as client:
        assert (await client.get("/me")).status_code == 401
        client.headers["user-agent"] = IPHONE
        assert await login_client(client, app, "ada") is None
        signed_in = (await client.get("/me")).json()
        (listed,) = await UserSessions(store, idle_ttl=600).list_sessions("ada")
        clock.advance(601)  # idle past the app's idle TTL
        ended = await client.get("/me")
    assert signed_in == {"user": "ada", "transport": "cookie", "device": "Safari on iPhone"}
    assert listed.new_device
    assert listed.first_sign_in
    assert ended.status_code == 401


async def test_a_bearer_client_gets_its_header_and_its_pair(store: Store) -> None:
    app = app_for(store, Clock())
    async with client_for(app) as client:
        pair = await login_client(client, app, "bob", transport="bearer")
        signed_in = (await client.get("/me")).json()
    assert pair is not None
    assert pair.device_token is not None
    assert signed_in["transport"] == "bearer"
    assert signed_in["user"] == "bob"


def test_a_test_client_is_signed_in_too() -> None:
    app = app_for(MemoryStore(), Clock())  # TestClient runs the app on a loop of its own
    with TestClient(app, base_url="https://testserver") as client:
        login_test_client(client, "ada")
        signed_in = client.get("/me").json()
    assert signed_in["user"] == "ada"


async def test_an_app_without_the_middleware_says_so(store: Store) -> None:
    with pytest.raises(LookupError, match="no SessionMiddleware"):
        session_middleware(Starlette())
    app = app_for(store, Clock())
    assert session_middleware(app) is session_middleware(app)  # the stack requests use
    async with client_for(app) as client:
        with pytest.raises(ValueError, match="transport"):
            await login_client(client, app, "ada", transport="carrier-pigeon")  # type: ignore[arg-type]
