"""Recent sign-in (step-up): `reauthenticate`, `recently_authenticated` and the device routes'
`recent_auth` gate, over HTTP on every store, with time moved by `clock=`."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from sessionward import (
    BearerSigner,
    BearerTransport,
    Events,
    JWTKey,
    MemoryStore,
    SessionEvent,
    SessionMiddleware,
    Store,
    UserSessions,
    device_routes,
    get_session,
    login,
    reauthenticate,
    recently_authenticated,
)
from sessionward.record import AUTHENTICATED
from tests.apps import COOKIE, SECRET
from tests.conftest import Clock, client_for

pytestmark = pytest.mark.anyio

RECENT = 300  # seconds a sign-in counts as recent for the device routes
SAME_ORIGIN = {"origin": "https://testserver"}
BEARER_KEY = "bearer-key-" + "x" * 32


async def sign_in(request: Request) -> Response:
    if request.query_params.get("via") == "bearer":
        token = await login(request, request.path_params["user"], transport="bearer")
        return JSONResponse({"token": token})
    await login(request, request.path_params["user"])
    return JSONResponse(dict(request.session))


async def confirm_password(request: Request) -> Response:
    """Where an app would check the password again before calling `reauthenticate`."""
    try:
        token = await reauthenticate(request)
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"token": token})


async def whoami(request: Request) -> Response:
    info = get_session(request)
    if info is None:
        return JSONResponse(None)
    at = info.authenticated_at
    return JSONResponse(
        {
            "id": info.public_id,
            "user_id": info.user_id,
            "authenticated_at": at.timestamp() if at is not None else None,
            "expires_at": info.expires_at.timestamp(),
            "recent": recently_authenticated(request, within=RECENT),
            "data": dict(request.session),
        }
    )


async def write(request: Request) -> Response:
    request.session.update(await request.json())
    return JSONResponse(dict(request.session))


def app_for(store: Store, clock: Clock, events: Events | None = None, **options: Any) -> Starlette:
    signer = BearerSigner(JWTKey("k1", "HS256", BEARER_KEY))
    return Starlette(
        routes=[
            Route("/login/{user}", sign_in, methods=["POST"]),
            Route("/reauthenticate", confirm_password, methods=["POST"]),
            Route("/me", whoami),
            Route("/session", write, methods=["POST"]),
            Mount("/account", routes=device_routes(recent_auth=RECENT)),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_keys=[SECRET],
                store=store,
                clock=clock,
                bearer=BearerTransport(signer),
                events=events,
                **options,
            )
        ],
    )


async def me(client: httpx.AsyncClient, **headers: str) -> Any:
    return (await client.get("/me", headers=headers)).json()


async def test_a_sign_in_is_recent_until_the_window_passes(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock)) as client:
        await client.post("/login/ada")
        fresh = await me(client)
        clock.advance(RECENT)
        at_the_edge = await me(client)
        clock.advance(1)
        later = await me(client)
    assert fresh["authenticated_at"] == pytest.approx(clock.now - RECENT - 1)
    assert (fresh["recent"], at_the_edge["recent"], later["recent"]) == (True, True, False)


async def test_an_old_sign_in_cannot_end_other_sessions(store: Store, clock: Clock) -> None:
    app = app_for(store, clock)
    async with client_for(app) as laptop, client_for(app) as phone:
        await phone.post("/login/ada")
        await laptop.post("/login/ada")
        clock.advance(RECENT + 1)
        phone_id = (await me(phone))["id"]
        everyone = await laptop.delete("/account/sessions", headers=SAME_ORIGIN)
        one = await laptop.delete(f"/account/sessions/{phone_id}", headers=SAME_ORIGIN)
        listing = await laptop.get("/account/sessions")
        phone_after = await me(phone)
    for refused in (everyone, one):
        assert refused.status_code == 403
        assert refused.json() == {
            "error": "reauthentication_required",
            "detail": "confirm who you are again (password or second factor) and retry",
        }
        assert refused.headers["cache-control"] == "private, no-store"
    assert listing.status_code == 200  # listing stays open
    assert len(listing.json()["sessions"]) == 2
    assert phone_after["user_id"] == "ada"  # nobody was signed out


async def test_reauthenticating_opens_the_gate_and_kills_the_old_cookie(
    store: Store, clock: Clock
) -> None:
    app = app_for(store, clock)
    async with client_for(app) as laptop, client_for(app) as phone:
        await phone.post("/login/ada")
        await laptop.post("/login/ada")
        await laptop.post("/session", json={"cart": [1, 2]})
        before = await me(laptop)
        clock.advance(RECENT + 60)
        old_cookie = laptop.cookies[COOKIE]
        answer = await laptop.post("/reauthenticate")
        after = await me(laptop)
        revoked = await laptop.delete("/account/sessions", headers=SAME_ORIGIN)
        replay = await me(laptop, cookie=f"{COOKIE}={old_cookie}")
        phone_after = await me(phone)
    assert answer.json() == {"token": None}  # a cookie session gets its new id in the cookie
    assert after["id"] != before["id"]
    assert after["authenticated_at"] == pytest.approx(clock.now)
    assert after["recent"] is True
    assert after["data"] == {"cart": [1, 2]}
    assert after["expires_at"] == before["expires_at"]  # the absolute deadline stays
    assert revoked.json() == {"revoked": 1}
    assert replay is None  # the pre-reauthentication cookie is anonymous
    assert phone_after is None


async def test_reauthenticating_is_not_a_sign_in(store: Store, clock: Clock) -> None:
    seen: list[SessionEvent] = []
    events = Events()

    @events.listen
    async def record(event: SessionEvent) -> None:
        seen.append(event)

    async with client_for(app_for(store, clock, events)) as client:
        await client.post("/login/ada")
        seen.clear()
        await client.post("/reauthenticate")
        new_id = (await me(client))["id"]
    assert [(event.type, event.public_id, event.user_id) for event in seen] == [
        ("session.reauthenticated", new_id, "ada")
    ]


async def test_ending_ones_own_session_needs_no_recent_sign_in(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock)) as client:
        await client.post("/login/ada")
        clock.advance(RECENT + 1)
        mine = (await me(client))["id"]
        response = await client.delete(f"/account/sessions/{mine}", headers=SAME_ORIGIN)
        after = await me(client)
    assert response.status_code == 204
    assert after is None


async def test_reauthenticate_needs_a_signed_in_session(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock)) as client:
        nobody = await client.post("/reauthenticate")
        await client.post("/session", json={"cart": [1]})
        anonymous = await client.post("/reauthenticate")
        recent = (await me(client))["recent"]
    assert nobody.status_code == anonymous.status_code == 400
    assert "login()" in anonymous.json()["error"]
    assert recent is False


async def test_a_session_from_before_step_up_counts_its_creation(
    store: Store, clock: Clock
) -> None:
    """A record written by 0.1 has no `m:auth`: it reads as signed in when it was created."""
    async with client_for(app_for(store, clock)) as client:
        await client.post("/login/ada")
        created = clock.now
        clock.advance(100)
        await _strip_field(store, (await me(client))["id"], AUTHENTICATED, int(clock() * 1000))
        old = await me(client)
    assert old["user_id"] == "ada"
    assert old["authenticated_at"] == pytest.approx(created)
    assert old["recent"] is True


async def test_a_bearer_session_reauthenticates_into_a_new_token(
    store: Store, clock: Clock
) -> None:
    app = app_for(store, clock)
    async with client_for(app) as api, client_for(app) as laptop:
        await laptop.post("/login/ada")
        old = (await api.post("/login/ada?via=bearer")).json()["token"]
        old_auth = {"authorization": f"Bearer {old}"}
        clock.advance(RECENT + 1)
        refused = await api.delete("/account/sessions", headers=old_auth)
        new = (await api.post("/reauthenticate", headers=old_auth)).json()["token"]
        new_auth = {"authorization": f"Bearer {new}"}
        replay = await api.get("/me", headers=old_auth)
        allowed = await api.delete("/account/sessions", headers=new_auth)
        laptop_after = await me(laptop)
    assert refused.status_code == 403
    assert refused.json()["error"] == "reauthentication_required"
    assert new
    assert new != old
    assert replay.status_code == 401  # the old token names the old id
    assert 'error_description="session_ended"' in replay.headers["www-authenticate"]
    assert allowed.json() == {"revoked": 1}
    assert laptop_after is None


@pytest.mark.parametrize("within", [-1, "60", None, True, float("nan")])
async def test_recently_authenticated_refuses_a_bad_window(within: Any) -> None:
    async def check(request: Request) -> Response:
        with pytest.raises(ValueError, match="within"):
            recently_authenticated(request, within=within)
        return Response()

    app = Starlette(
        routes=[Route("/", check)],
        middleware=[Middleware(SessionMiddleware, secret_keys=[SECRET], store=MemoryStore())],
    )
    async with client_for(app) as client:
        assert (await client.get("/")).status_code == 200


@pytest.mark.parametrize("recent_auth", [0, -5, "300", True])
def test_device_routes_refuse_a_bad_recent_auth(recent_auth: Any) -> None:
    with pytest.raises(ValueError, match="recent_auth"):
        device_routes(recent_auth=recent_auth)


async def _strip_field(store: Store, key: str, field: str, now_ms: int) -> None:
    assert await store.save(key, {}, [field], now_ms, 3600_000, create=False)
    (meta,) = await store.read_records([key])
    assert meta is not None
    assert field not in meta


def test_authenticated_at_is_a_datetime() -> None:
    from sessionward.record import SessionRecord
    from sessionward.users import SessionInfo

    record = SessionRecord(1_000, 9_000, 2_000, user_id="ada", authenticated_at_ms=1_500)
    info = SessionInfo.from_record("k", record)
    assert info.authenticated_at == datetime.fromtimestamp(1.5, tz=timezone.utc)
    assert info.to_dict()["authenticated_at"] == "1970-01-01T00:00:01.500000+00:00"
    anonymous = SessionInfo.from_record("k", SessionRecord(1_000, 9_000, 2_000))
    assert anonymous.authenticated_at is None


async def test_a_sign_out_during_reauthentication_is_not_undone(store: Store, clock: Clock) -> None:
    """Signed out everywhere while the password was being checked: the reauthentication must
    not bring back a signed-in session (nor a "recent" one)."""
    app = app_for(store, clock)
    loaded, gate = asyncio.Event(), asyncio.Event()

    async def slow_confirm(request: Request) -> Response:
        get_session(request)
        loaded.set()
        await gate.wait()  # the password check, slow by design
        await reauthenticate(request)
        return JSONResponse(None)

    app.router.routes.append(Route("/slow", slow_confirm, methods=["POST"]))
    async with client_for(app) as client:
        await client.post("/login/ada")
        confirming = asyncio.ensure_future(client.post("/slow"))
        await loaded.wait()
        assert await UserSessions(store).revoke_all("ada") == 1
        gate.set()
        await confirming
        after = await me(client)
    assert after is None
    assert await UserSessions(store).list_sessions("ada") == []


async def test_two_reauthentications_at_once_leave_one_session(store: Store, clock: Clock) -> None:
    app = app_for(store, clock)
    arrived, gate = asyncio.Semaphore(0), asyncio.Event()

    async def slow_confirm(request: Request) -> Response:
        get_session(request)
        arrived.release()
        await gate.wait()
        await reauthenticate(request)
        return JSONResponse(None)

    app.router.routes.append(Route("/slow", slow_confirm, methods=["POST"]))
    async with client_for(app) as client:
        await client.post("/login/ada")
        cookie = {"cookie": f"{COOKIE}={client.cookies[COOKIE]}"}
        both = [asyncio.ensure_future(client.post("/slow", headers=cookie)) for _ in range(2)]
        await arrived.acquire()
        await arrived.acquire()
        gate.set()
        await asyncio.gather(*both)
    assert len(await UserSessions(store).list_sessions("ada")) == 1
