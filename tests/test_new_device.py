"""New-device detection over HTTP on every store: the device cookie, `new_device` on the
event and on `SessionInfo`, forgetting a device, bearer clients' `device_id`, new places."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward import (
    BearerSigner,
    BearerTransport,
    Events,
    JWTKey,
    SessionEvent,
    SessionMiddleware,
    Store,
    UserSessions,
    get_session,
    login,
    logout,
    user_sessions,
)
from tests.apps import COOKIE, IPHONE, SECRET
from tests.conftest import client_for

pytestmark = pytest.mark.anyio

DEVICE_COOKIE = "__Host-device"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


async def sign_in(request: Request) -> Response:
    user = request.path_params["user"]
    if request.query_params.get("via") == "bearer":
        device_id = request.query_params.get("device")
        token = await login(request, user, transport="bearer", device_id=device_id)
        return JSONResponse({"token": token, "device_token": token.device_token})
    await login(request, user)
    return JSONResponse(None)


async def sign_out(request: Request) -> Response:
    await logout(request)
    return JSONResponse(None)


async def clear(request: Request) -> Response:
    request.session.clear()
    return JSONResponse(None)


async def whoami(request: Request) -> Response:
    info = get_session(request)
    return JSONResponse(None if info is None else info.to_dict())


async def forget(request: Request) -> Response:
    me = get_session(request)
    assert me is not None
    assert me.user_id is not None
    users = user_sessions(request)
    devices = await users.known_devices(me.user_id)
    return JSONResponse({"forgot": await users.forget_device(me.user_id, devices[0])})


class Alerts:
    def __init__(self) -> None:
        self.events: list[SessionEvent] = []
        self.listener = Events([self.record])

    async def record(self, event: SessionEvent) -> None:
        if event.type == "session.login":
            self.events.append(event)

    def new(self) -> list[bool]:
        flags = [event.new_device for event in self.events]
        self.events.clear()
        return flags


def app_for(store: Store, alerts: Alerts, **options: Any) -> Starlette:
    signer = BearerSigner(JWTKey("k1", "HS256", "bearer-" + "k" * 32))
    return Starlette(
        routes=[
            Route("/login/{user}", sign_in, methods=["POST"]),
            Route("/logout", sign_out, methods=["POST"]),
            Route("/clear", clear, methods=["POST"]),
            Route("/me", whoami),
            Route("/forget", forget, methods=["POST"]),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_keys=[SECRET],
                store=store,
                events=alerts.listener,
                bearer=BearerTransport(signer),
                **options,
            )
        ],
    )


def browser(app: Starlette, agent: str = FIREFOX) -> httpx.AsyncClient:
    client = client_for(app)
    client.headers["user-agent"] = agent
    return client


def device_cookies(response: httpx.Response) -> list[str]:
    return [
        value
        for value in response.headers.get_list("set-cookie")
        if value.startswith(DEVICE_COOKIE + "=")
    ]


async def test_a_browser_is_new_once_and_a_second_browser_is_new(store: Store) -> None:
    alerts = Alerts()
    app = app_for(store, alerts)
    async with browser(app) as laptop, browser(app, IPHONE) as phone:
        await laptop.post("/login/ada")
        first = (await laptop.get("/me")).json()
        await laptop.post("/logout")
        await laptop.post("/login/ada")
        again = (await laptop.get("/me")).json()
        await phone.post("/login/ada")
        second = (await phone.get("/me")).json()
        events = list(alerts.events)
    assert [event.new_device for event in events] == [True, False, True]
    assert (first["new_device"], again["new_device"], second["new_device"]) == (True, False, True)
    assert events[2].device_label == "Safari on iPhone"
    assert len(await UserSessions(store).known_devices("ada")) == 2
    # Only the account's very first sign-in is its first: an alert can skip that one.
    assert [event.first_sign_in for event in events] == [True, False, False]
    assert (first["first_sign_in"], again["first_sign_in"], second["first_sign_in"]) == (
        True,
        False,
        False,
    )


async def test_forgetting_every_device_never_makes_a_sign_in_the_first(store: Store) -> None:
    # A user who purged their devices after a compromise still gets the alert.
    alerts = Alerts()
    app = app_for(store, alerts)
    async with browser(app) as laptop, browser(app, IPHONE) as thief:
        await laptop.post("/login/ada")
        await UserSessions(store).forget_devices("ada")
        await thief.post("/login/ada")
    assert [(event.new_device, event.first_sign_in) for event in alerts.events] == [
        (True, True),
        (True, False),
    ]


async def test_each_account_has_its_own_known_devices(store: Store) -> None:
    alerts = Alerts()
    async with browser(app_for(store, alerts)) as shared:
        await shared.post("/login/ada")
        await shared.post("/login/bob")
        await shared.post("/login/ada")
    assert alerts.new() == [True, True, False]


async def test_a_forgotten_device_is_new_again(store: Store) -> None:
    alerts = Alerts()
    async with browser(app_for(store, alerts)) as laptop:
        await laptop.post("/login/ada")
        forgot = (await laptop.post("/forget")).json()
        await laptop.post("/login/ada")
    assert forgot == {"forgot": True}
    assert alerts.new() == [True, True]


async def test_the_device_cookie(store: Store) -> None:
    async with browser(app_for(store, Alerts())) as laptop:
        signed_in = await laptop.post("/login/ada")
        written = await laptop.get("/me")
        cleared = await laptop.post("/clear")
        await laptop.post("/login/ada")
        signed_out = await laptop.post("/logout")
        device_token = laptop.cookies[DEVICE_COOKIE]
        as_session = await laptop.get(
            "/me", headers={"cookie": f"{COOKIE}={device_token}; {DEVICE_COOKIE}={device_token}"}
        )
    (cookie,) = device_cookies(signed_in)
    attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert attributes == ["path=/", "max-age=34560000", "httponly", "samesite=lax", "secure"]
    # Set at sign-in only: ordinary requests, clear() and logout leave it alone.
    assert device_cookies(written) == device_cookies(cleared) == device_cookies(signed_out) == []
    assert as_session.json() is None  # its own salt: never a session token


@pytest.mark.parametrize(
    "planted",
    [
        "not-a-token",
        "A" * 43 + ".forged",
        "A" * 43 + "." + "B" * 43,
        "x" * 5000,
        '"' + "A" * 43 + '.x"',
    ],
)
async def test_a_forged_device_cookie_is_a_new_device(store: Store, planted: str) -> None:
    alerts = Alerts()
    async with browser(app_for(store, alerts)) as laptop:
        await laptop.post("/login/ada")
        good = laptop.cookies[DEVICE_COOKIE]
        tampered = good[:-1] + ("A" if good[-1] != "A" else "B")
        for value in (planted, tampered):
            laptop.cookies.delete(DEVICE_COOKIE)
            laptop.cookies.set(DEVICE_COOKIE, value, domain="testserver.local")
            response = await laptop.post("/login/ada")
            assert response.status_code == 200
            assert laptop.cookies[DEVICE_COOKIE] != value  # replaced by a fresh one
    assert alerts.new() == [True, True, True]


async def test_a_bearer_device_id_is_recognised_and_stored_only_as_an_hmac(store: Store) -> None:
    alerts = Alerts()
    app = app_for(store, alerts)
    install_id = "install-0f3c1d"
    async with browser(app, "ExampleApp/3.1 okhttp/4.12") as api:
        await api.post(f"/login/ada?via=bearer&device={install_id}")
        await api.post(f"/login/ada?via=bearer&device={install_id}")
        await api.post("/login/ada?via=bearer&device=install-other")
        devices = await UserSessions(store).known_devices("ada")
    assert alerts.new() == [True, False, True]
    assert all(install_id not in repr(device) for device in devices)
    assert all(len(device.id) == 64 for device in devices)


async def test_a_bearer_client_is_known_by_its_device_token_never_its_user_agent(
    store: Store,
) -> None:
    # Regression: without a device_id, a bearer client was known by its user-agent alone,
    # which every user of one build of a mobile app shares: an attacker with a phished
    # password who sent it signed in as a known device, and no alert went out.
    alerts = Alerts()
    app = app_for(store, alerts)
    async with browser(app, "ExampleApp/3.1") as phone, browser(app, "ExampleApp/3.1") as thief:
        first = (await phone.post("/login/ada?via=bearer")).json()
        phone.headers["device-token"] = first["device_token"]
        again = (await phone.post("/login/ada?via=bearer")).json()
        await thief.post("/login/ada?via=bearer")  # the same user-agent, no device token
        thief.headers["device-token"] = first["device_token"] + "x"  # a forged one
        await thief.post("/login/ada?via=bearer")
    assert alerts.new() == [True, False, True, True]
    assert again["device_token"] == first["device_token"]  # the same device, the same token
    assert first["token"].count(".") == 2  # and the JWT is still the plain string it was


async def test_a_device_cookie_does_not_pass_for_a_device_token(store: Store) -> None:
    alerts = Alerts()
    app = app_for(store, alerts)
    async with browser(app) as laptop:
        await laptop.post("/login/ada")
        cookie = laptop.cookies[DEVICE_COOKIE]
        laptop.headers["device-token"] = cookie
        laptop.cookies.clear()
        await laptop.post("/login/ada?via=bearer")
    assert alerts.new() == [True, True]  # each token kind has its own salt


async def test_an_apps_own_device_id_needs_no_device_token(store: Store) -> None:
    alerts = Alerts()
    async with browser(app_for(store, alerts), "ExampleApp/3.1") as phone:
        answer = (await phone.post("/login/ada?via=bearer&device=install-1")).json()
    assert answer["device_token"] is None


@pytest.mark.parametrize(
    "value", ["", "garbage", "a" * 5000, "x.y.z", "\u00e9t\u00e9.sig", "Zm9v" * 11 + ".sig"]
)
async def test_a_garbage_device_token_is_a_new_device_not_an_error(
    store: Store, value: str
) -> None:
    alerts = Alerts()
    async with browser(app_for(store, alerts), "ExampleApp/3.1") as phone:
        phone.headers["device-token"] = value
        response = await phone.post("/login/ada?via=bearer")
    assert response.status_code == 200
    assert alerts.new() == [True]


async def test_a_cookie_sign_in_refuses_a_device_id(store: Store) -> None:
    async def bad(request: Request) -> Response:
        with pytest.raises(ValueError, match="device_id is for bearer clients"):
            await login(request, "ada", device_id="x")  # type: ignore[call-overload]
        return JSONResponse(None)

    app = Starlette(
        routes=[Route("/", bad, methods=["POST"])],
        middleware=[Middleware(SessionMiddleware, secret_keys=[SECRET], store=store)],
    )
    async with client_for(app) as client:
        assert (await client.post("/")).status_code == 200


@pytest.mark.parametrize("device_id", ["", "x" * 513])
async def test_a_bearer_device_id_must_be_sane(store: Store, device_id: str) -> None:
    async with browser(app_for(store, Alerts())) as api:
        with pytest.raises(ValueError, match="device_id"):
            await api.post(f"/login/ada?via=bearer&device={device_id}")


async def test_a_new_place_is_told_once(store: Store) -> None:
    alerts = Alerts()

    def locate(ip: str | None, headers: Headers) -> str | None:
        return headers.get("x-test-place")

    app = app_for(store, alerts, locate=locate, trusted_proxies=["127.0.0.1"])
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        for place in ("Lisbon", "Lisbon", "Oslo"):
            await client.post("/login/ada", headers={"x-test-place": place})
    assert [(event.location, event.new_location) for event in alerts.events] == [
        ("Lisbon", True),
        ("Lisbon", False),
        ("Oslo", True),
    ]


async def test_only_the_sign_in_event_says_new_device(store: Store) -> None:
    seen: list[SessionEvent] = []

    async def record(event: SessionEvent) -> None:
        seen.append(event)

    app = app_for(store, Alerts())
    app.user_middleware[0].kwargs["events"] = Events([record])
    async with browser(app) as laptop:
        await laptop.post("/login/ada")
        await laptop.post("/logout")
    assert [(event.type, event.new_device) for event in seen] == [
        ("session.login", True),
        ("session.logout", False),
    ]


def test_a_session_cookie_may_not_take_the_device_cookies_name() -> None:
    from sessionward import ConfigurationError, CookieTransport, SessionConfig

    with pytest.raises(ConfigurationError, match="device cookie"):
        SessionConfig(secret_keys=[SECRET], cookie=CookieTransport(name="device", secure=False))
