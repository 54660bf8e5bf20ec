"""Remember me, and lifetimes per session: `login(remember=, idle_ttl=, absolute_ttl=)`, over
HTTP on every store."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from sessionward import (
    SessionMiddleware,
    Store,
    device_routes,
    get_session,
    login,
    reauthenticate,
)
from tests.apps import COOKIE, SECRET
from tests.conftest import Clock, client_for

pytestmark = pytest.mark.anyio

IDLE, ABSOLUTE = 3600, 24 * 3600  # the middleware's lifetimes in these tests


async def sign_in(request: Request) -> Response:
    options: dict[str, Any] = {}
    query = request.query_params
    if "remember" in query:
        options["remember"] = query["remember"] == "1"
    for name in ("idle_ttl", "absolute_ttl"):
        if name in query:
            options[name] = int(query[name])
    try:
        await login(request, request.path_params["user"], **options)
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(None)


async def confirm_password(request: Request) -> Response:
    await reauthenticate(request)
    return JSONResponse(None)


async def whoami(request: Request) -> Response:
    info = get_session(request)
    return JSONResponse(None if info is None else info.to_dict())


async def write(request: Request) -> Response:
    request.session.update(await request.json())
    return JSONResponse(None)


def app_for(store: Store, clock: Clock) -> Starlette:
    return Starlette(
        routes=[
            Route("/login/{user}", sign_in, methods=["POST"]),
            Route("/reauthenticate", confirm_password, methods=["POST"]),
            Route("/me", whoami),
            Route("/session", write, methods=["POST"]),
            Mount("/account", routes=device_routes()),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_keys=[SECRET],
                store=store,
                clock=clock,
                idle_ttl=IDLE,
                absolute_ttl=ABSOLUTE,
            )
        ],
    )


def session_cookie(response: httpx.Response) -> str:
    (cookie,) = [
        value for value in response.headers.get_list("set-cookie") if value.startswith(COOKIE + "=")
    ]
    return cookie


async def test_not_remembered_is_a_browser_session_cookie(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock)) as client:
        signed_in = await client.post("/login/ada?remember=0")
        written = await client.post("/session", json={"cart": [1]})
        clock.advance(400)
        reauthenticated = await client.post("/reauthenticate")
        info = (await client.get("/me")).json()
    for response in (signed_in, reauthenticated):
        cookie = session_cookie(response).lower()
        assert "max-age" not in cookie
        assert "expires" not in cookie
    assert "set-cookie" not in written.headers  # unchanged id: nothing to re-send
    assert info["current"] is True  # still a server-side session with its lifetimes


async def test_remembered_by_default_as_before(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock)) as client:
        default = await client.post("/login/ada")
        ticked = await client.post("/login/ada?remember=1")
    for response in (default, ticked):
        assert f"Max-Age={ABSOLUTE};" in session_cookie(response)


async def test_a_shorter_idle_ttl_ends_only_that_session(store: Store, clock: Clock) -> None:
    app = app_for(store, clock)
    async with client_for(app) as kiosk, client_for(app) as laptop:
        await kiosk.post("/login/ada?idle_ttl=300")
        await laptop.post("/login/ada")
        kiosk_info = (await kiosk.get("/me")).json()
        clock.advance(200)
        assert (await kiosk.get("/me")).json() is not None  # activity moves its own deadline
        clock.advance(299)
        assert (await kiosk.get("/me")).json() is not None
        clock.advance(300)
        kiosk_after = (await kiosk.get("/me")).json()
        laptop_after = (await laptop.get("/me")).json()
        listed = (await laptop.get("/account/sessions")).json()["sessions"]
    assert kiosk_info["expires_at"]
    assert kiosk_after is None
    assert laptop_after is not None
    assert [entry["id"] for entry in listed] == [laptop_after["id"]]


async def test_a_shorter_absolute_ttl_shows_in_the_device_list(store: Store, clock: Clock) -> None:
    app = app_for(store, clock)
    async with client_for(app) as short, client_for(app) as normal:
        signed_in = await short.post("/login/ada?absolute_ttl=600")
        await normal.post("/login/ada")
        listed = (await normal.get("/account/sessions")).json()["sessions"]
        clock.advance(601)
        short_after = (await short.get("/me")).json()
        normal_after = (await normal.get("/me")).json()
    expiries = sorted(entry["expires_at"] for entry in listed)
    assert "Max-Age=600;" in session_cookie(signed_in)
    assert expiries[0] < expiries[1]
    assert short_after is None
    assert normal_after is not None


async def test_lifetimes_longer_than_the_middlewares_are_capped(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock)) as client:
        signed_in = await client.post(
            f"/login/ada?idle_ttl={IDLE * 10}&absolute_ttl={ABSOLUTE * 10}"
        )
        clock.advance(IDLE + 1)
        after_idle = (await client.get("/me")).json()
    assert f"Max-Age={ABSOLUTE};" in session_cookie(signed_in)
    assert after_idle is None


async def test_reauthenticating_keeps_the_sessions_own_lifetimes(
    store: Store, clock: Clock
) -> None:
    async with client_for(app_for(store, clock)) as client:
        await client.post("/login/ada?idle_ttl=300&absolute_ttl=900")
        before = (await client.get("/me")).json()
        clock.advance(100)
        await client.post("/reauthenticate")
        after = (await client.get("/me")).json()
        clock.advance(301)
        idle_after = (await client.get("/me")).json()
    assert after["id"] != before["id"]
    assert after["expires_at"] == before["expires_at"]
    assert idle_after is None


async def test_remember_must_be_a_bool(store: Store, clock: Clock) -> None:
    async def form_value(request: Request) -> Response:
        with pytest.raises(ValueError, match="remember"):
            await login(request, "ada", remember="false")  # type: ignore[call-overload]
        return JSONResponse(None)

    app = app_for(store, clock)
    app.router.routes.append(Route("/form", form_value, methods=["POST"]))
    async with client_for(app) as client:
        assert (await client.post("/form")).status_code == 200
        assert (await client.get("/me")).json() is None


@pytest.mark.parametrize("query", ["idle_ttl=0", "absolute_ttl=-1"])
async def test_a_lifetime_must_be_positive(store: Store, clock: Clock, query: str) -> None:
    async with client_for(app_for(store, clock)) as client:
        response = await client.post(f"/login/ada?{query}")
        after = (await client.get("/me")).json()
    assert response.status_code == 400
    assert "positive int of seconds" in response.json()["error"]
    assert after is None  # nothing was signed in
