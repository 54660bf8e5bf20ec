"""Where a client signed in from: `SessionMiddleware(locate=...)` and `header_locator`."""

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

from sessionward import SessionMiddleware, Store, get_session, login
from sessionward.exceptions import ConfigurationError
from sessionward.locations import MAX_PLACE_CHARS, Locate, header_locator, place
from tests.apps import SECRET

pytestmark = pytest.mark.anyio

PROXY = "127.0.0.1"


async def sign_in(request: Request) -> Response:
    await login(request, "ada")
    return JSONResponse(None)


async def whoami(request: Request) -> Response:
    info = get_session(request)
    return JSONResponse(None if info is None else info.to_dict())


def app_for(store: Store, locate: Locate, **options: Any) -> Starlette:
    return Starlette(
        routes=[Route("/login", sign_in, methods=["POST"]), Route("/me", whoami)],
        middleware=[
            Middleware(
                SessionMiddleware, secret_keys=[SECRET], store=store, locate=locate, **options
            )
        ],
    )


def client_from(app: Starlette, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


class CountingLocator:
    def __init__(self) -> None:
        self.calls: list[str | None] = []

    def __call__(self, ip: str | None, headers: Headers) -> str | None:
        self.calls.append(ip)
        return {"203.0.113.7": "Lisbon, PT", "198.51.100.9": "Oslo, NO"}.get(ip or "")


async def test_located_at_sign_in_and_when_the_ip_changes_only(store: Store) -> None:
    locator = CountingLocator()
    app = app_for(store, locator, trusted_proxies=[PROXY])
    async with client_from(app, PROXY) as client:
        lisbon = {"x-forwarded-for": "203.0.113.7"}
        await client.get("/me", headers=lisbon)  # no session: nothing to locate
        await client.post("/login", headers=lisbon)
        first = (await client.get("/me", headers=lisbon)).json()
        await client.get("/me", headers=lisbon)
        calls_before_moving = list(locator.calls)
        moved = await client.get("/me", headers={"x-forwarded-for": "198.51.100.9"})
        after = (await client.get("/me", headers={"x-forwarded-for": "198.51.100.9"})).json()
    assert calls_before_moving == ["203.0.113.7"]
    assert locator.calls == ["203.0.113.7", "198.51.100.9"]
    assert moved.status_code == 200
    assert first["location"] == "Lisbon, PT"
    assert after["location"] == "Oslo, NO"


async def test_a_country_header_is_believed_only_from_a_trusted_proxy(store: Store) -> None:
    app = app_for(store, header_locator("cf-ipcountry"), trusted_proxies=["10.9.9.9"])
    async with client_from(app, "10.9.9.9") as via_proxy, client_from(app, PROXY) as direct:
        await via_proxy.post("/login", headers={"cf-ipcountry": "PT"})
        await direct.post("/login", headers={"cf-ipcountry": "PT"})
        proxied = (await via_proxy.get("/me")).json()
        spoofed = (await direct.get("/me")).json()
    assert proxied["location"] == "PT"
    assert spoofed["location"] is None


@pytest.mark.parametrize(
    ("style", "sent"),
    [
        # The proxy replaces the client's copy: one header, the proxy's.
        ("replacing", [("cf-ipcountry", "PT")]),
        # The proxy appends its own copy: the client's forged one comes first.
        ("appending", [("cf-ipcountry", "NO"), ("cf-ipcountry", "PT")]),
    ],
)
async def test_the_copy_the_nearest_proxy_added_is_the_place(
    store: Store, style: str, sent: list[tuple[str, str]]
) -> None:
    # Regression: the first copy was read, so behind an appending proxy the attacker chose
    # the place (and could make a sign-in from abroad look like one from home).
    app = app_for(store, header_locator("cf-ipcountry"), trusted_proxies=[PROXY])
    async with client_from(app, PROXY) as client:
        await client.post("/login", headers=httpx.Headers(sent))
        me = (await client.get("/me")).json()
    assert me["location"] == "PT", style


async def test_a_failing_locator_never_fails_the_sign_in(store: Store) -> None:
    def broken(ip: str | None, headers: Headers) -> str | None:
        raise RuntimeError("geo database missing")

    async with client_from(app_for(store, broken), PROXY) as client:
        signed_in = await client.post("/login")
        me = (await client.get("/me")).json()
    assert signed_in.status_code == 200
    assert me["location"] is None


@pytest.mark.parametrize(
    ("found", "stored"),
    [
        ("Lisbon, PT", "Lisbon, PT"),
        ("  São Paulo  ", "São Paulo"),
        ("<script>x</script>", "scriptx/script"),
        ("Oslo\r\nSet-Cookie: x", "OsloSet-Cookie: x"),
        ("\u202eevil", "evil"),
        ("x" * 10_000, "x" * MAX_PLACE_CHARS),
        ("", None),
        ("\x00\x01", None),
        (42, None),
        (None, None),
    ],
)
def test_a_place_is_made_safe_to_store_and_show(found: Any, stored: str | None) -> None:
    assert place(lambda ip, headers: found, "192.0.2.1", Headers()) == stored


@pytest.mark.parametrize("value", ["XX", "xx", "", "   "])
def test_an_unknown_country_is_no_place(value: str) -> None:
    locate = header_locator("CF-IPCountry")
    assert locate("192.0.2.1", Headers({"cf-ipcountry": value})) is None
    assert locate("192.0.2.1", Headers({"cf-ipcountry": "NO"})) == "NO"


@pytest.mark.parametrize("name", ["", "cf ipcountry", "x:y", "país", "a\r\nb"])
def test_header_locator_needs_a_header_name(name: str) -> None:
    with pytest.raises(ValueError, match="header name"):
        header_locator(name)


def test_locate_must_be_callable() -> None:
    with pytest.raises(ConfigurationError, match="locate must be a function"):
        SessionMiddleware(Starlette(), secret_keys=[SECRET], locate="cf-ipcountry")  # type: ignore[arg-type]


async def test_an_anonymous_session_is_never_located(store: Store) -> None:
    """A visitor's cart is no sign-in: a lookup per IP change of every bot and scanner that
    writes to its session would cost the app's geo database for nothing."""

    async def write(request: Request) -> Response:
        request.session["cart"] = [1]
        return JSONResponse(None)

    locator = CountingLocator()
    app = app_for(store, locator, trusted_proxies=[PROXY])
    app.router.routes.append(Route("/cart", write, methods=["POST"]))
    async with client_from(app, PROXY) as client:
        await client.post("/cart", headers={"x-forwarded-for": "203.0.113.7"})
        await client.get("/me", headers={"x-forwarded-for": "198.51.100.9"})
    assert locator.calls == []
