"""Cross-origin protection: Go 1.25's CrossOriginProtection rules, through the whole ASGI stack.

Browsers tell where a request came from in `Sec-Fetch-Site` and `Origin`; httpx sends
neither unless told, so each test spells out the headers a browser would send.
"""

from __future__ import annotations

import asyncio
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
    ConfigurationError,
    JWTKey,
    MemoryStore,
    SessionMiddleware,
    Store,
    device_routes,
    get_session,
    login,
)
from sessionward.csrf import ExemptPaths, route_path
from sessionward.origins import browser_origin
from tests.apps import COOKIE, SECRET, RecordingStore
from tests.conftest import client_for
from tests.test_hostile_input import call, scope_for, status_of

pytestmark = pytest.mark.anyio

UNSAFE = ["POST", "PUT", "PATCH", "DELETE"]
SAFE = ["GET", "HEAD", "OPTIONS"]
FROM_ANOTHER_SITE = {
    "cross-site": {"sec-fetch-site": "cross-site", "origin": "https://evil.example"},
    "same-site": {"sec-fetch-site": "same-site", "origin": "https://evil.testserver"},
    "foreign Origin": {"origin": "https://evil.example"},
    "null Origin": {"origin": "null"},
    "look-alike prefix": {"origin": "https://evil-testserver"},
    "look-alike suffix": {"origin": "https://testserver.evil.net"},
    "another port": {"origin": "https://testserver:8443"},
}
SAME_ORIGIN = {"sec-fetch-site": "same-origin", "origin": "https://testserver"}
BEARER = BearerTransport(BearerSigner(JWTKey("k1", "HS256", "h" * 32)))


async def act(request: Request) -> Response:
    """Whatever a form post would do: it ran, and it wrote to the session."""
    request.app.state.ran.append(request.method)
    request.session["acted"] = request.method
    return JSONResponse({"acted": request.method})


async def sign_in(request: Request) -> Response:
    request.app.state.ran.append("login")
    await login(request, request.path_params["user"])
    return JSONResponse({"signed_in": request.path_params["user"]})


async def api_sign_in(request: Request) -> Response:
    return JSONResponse({"token": await login(request, "ada", transport="bearer")})


async def whoami(request: Request) -> Response:
    info = get_session(request)
    return JSONResponse(
        {"user": info.user_id if info else None, "acted": request.session.get("acted")}
    )


def csrf_app(store: Store | None = None, **options: Any) -> Starlette:
    every_method = [*SAFE, *UNSAFE]
    app = Starlette(
        routes=[
            Route("/action", act, methods=every_method),
            Route("/sso/callback", act, methods=["POST"]),
            Route("/hooks/{name:path}", act, methods=["POST"]),
            Route("/login/{user}", sign_in, methods=["POST"]),
            Route("/api/login", api_sign_in, methods=["POST"]),
            Route("/me", whoami),
            Mount("/account", routes=device_routes()),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_keys=[SECRET],
                store=store if store is not None else MemoryStore(),
                **options,
            )
        ],
    )
    app.state.ran = []
    return app


def ran(app: Starlette) -> list[str]:
    return list(app.state.ran)


# -- refused ----------------------------------------------------------------------------------


@pytest.mark.parametrize("signed_in", [False, True])
@pytest.mark.parametrize("method", UNSAFE)
@pytest.mark.parametrize("source", FROM_ANOTHER_SITE)
async def test_unsafe_requests_from_another_site_are_refused(
    method: str, source: str, signed_in: bool
) -> None:
    app = csrf_app()
    async with client_for(app) as browser:
        if signed_in:
            await browser.post("/login/ada")
        response = await browser.request(method, "/action", headers=FROM_ANOTHER_SITE[source])
        assert response.status_code == 403
        assert "set-cookie" not in response.headers
        assert ran(app) == (["login"] if signed_in else [])
        me = (await browser.get("/me")).json()
    assert me == {"user": "ada" if signed_in else None, "acted": None}


async def test_a_refused_request_costs_no_store_call_and_changes_nothing(store: Store) -> None:
    recording = RecordingStore(store)
    app = csrf_app(recording)
    async with client_for(app) as browser:
        await browser.post("/login/ada")
        recording.calls.clear()
        response = await browser.post("/action", headers=FROM_ANOTHER_SITE["cross-site"])
        assert (response.status_code, recording.calls) == (403, [])
        assert (await browser.get("/me")).json() == {"user": "ada", "acted": None}


async def test_login_csrf_is_refused_before_any_session_exists(store: Store) -> None:
    """A cross-site form must not sign the visitor into the attacker's account."""
    recording = RecordingStore(store)
    app = csrf_app(recording)
    async with client_for(app) as browser:
        response = await browser.post("/login/mallory", headers=FROM_ANOTHER_SITE["cross-site"])
        assert response.status_code == 403
        assert COOKIE not in browser.cookies
    assert (ran(app), recording.calls) == ([], [])


@pytest.mark.parametrize("origin", ["https://evil-example.com", "https://example.com.evil.net"])
async def test_look_alike_hosts_are_other_sites(origin: str) -> None:
    app = csrf_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://example.com") as browser:
        refused = await browser.post("/action", headers={"origin": origin})
        allowed = await browser.post("/action", headers={"origin": "https://example.com"})
    assert (refused.status_code, allowed.status_code) == (403, 200)


async def test_the_refusal_says_why_and_how_to_allow() -> None:
    async with client_for(csrf_app()) as browser:
        by_fetch_site = await browser.post("/action", headers=FROM_ANOTHER_SITE["cross-site"])
        by_origin = await browser.post("/action", headers=FROM_ANOTHER_SITE["foreign Origin"])
    for response in (by_fetch_site, by_origin):
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/json"
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["error"] == "cross_origin_request"
        assert response.content.startswith(b'{"error":"cross_origin_request","detail":"')
        assert body["detail"].endswith(
            ". To accept requests from pages of another site of yours, pass "
            "SessionMiddleware(trusted_origins=['https://app.example.com']); for a path other "
            "sites post to (an SSO or payment callback), pass "
            "SessionMiddleware(csrf_exempt=['/that/path'])."
        )
    assert "Sec-Fetch-Site" in by_fetch_site.json()["detail"]
    assert "Origin" in by_origin.json()["detail"]


# -- allowed ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://testserver"},
        {"origin": "https://TestServer"},  # host names are case-insensitive
        {"sec-fetch-site": "same-origin"},
        {"sec-fetch-site": "none"},  # typed in the address bar, or a bookmark
        {"sec-fetch-site": "same-origin", "origin": "https://evil.example"},  # it decides
        {},  # curl, a server-side client: no browser, no ambient cookie to borrow
        {"referer": "https://evil.example/"},  # Referer is not read, as in Go
    ],
)
@pytest.mark.parametrize("method", UNSAFE)
async def test_same_origin_and_non_browser_requests_pass(
    method: str, headers: dict[str, str]
) -> None:
    app = csrf_app()
    async with client_for(app) as browser:
        response = await browser.request(method, "/action", headers=headers)
    assert response.json() == {"acted": method}
    assert ran(app) == [method]


@pytest.mark.parametrize("method", SAFE)
@pytest.mark.parametrize("source", FROM_ANOTHER_SITE)
async def test_safe_methods_are_never_refused(method: str, source: str) -> None:
    app = csrf_app()
    async with client_for(app) as browser:
        response = await browser.request(method, "/action", headers=FROM_ANOTHER_SITE[source])
    assert response.status_code == 200
    assert ran(app) == [method]


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site", "origin": "https://app.example.com"},
        {"sec-fetch-site": "same-site", "origin": "https://app.example.com"},
        {"origin": "https://app.example.com"},
        {"origin": "https://APP.example.com"},
    ],
)
async def test_a_trusted_origin_passes_even_from_another_site(
    store: Store, headers: dict[str, str]
) -> None:
    app = csrf_app(store, trusted_origins=["https://app.example.com:443/"])
    async with client_for(app) as browser:
        await browser.post("/login/ada")
        response = await browser.post("/action", headers=headers)
        assert response.status_code == 200
        assert (await browser.get("/me")).json() == {"user": "ada", "acted": "POST"}


@pytest.mark.parametrize("other", ["http://app.example.com", "https://app.example.com:8443"])
async def test_a_trusted_origin_is_matched_whole_scheme_and_port_included(other: str) -> None:
    app = csrf_app(trusted_origins=["https://app.example.com"])
    async with client_for(app) as browser:
        response = await browser.post("/action", headers={"origin": other})
    assert response.status_code == 403


async def test_a_bearer_request_from_another_site_passes(store: Store) -> None:
    """A bearer token is sent by the page's own script, never by the browser on its own."""
    app = csrf_app(store, bearer=BEARER)
    async with client_for(app) as api:
        token = (await api.post("/api/login")).json()["token"]
        headers = {**FROM_ANOTHER_SITE["cross-site"], "authorization": f"Bearer {token}"}
        response = await api.post("/action", headers=headers)
    assert response.json() == {"acted": "POST"}


@pytest.mark.parametrize("path", ["/sso/callback", "/hooks/stripe", "/hooks/a/b"])
async def test_an_exempt_path_takes_cross_site_posts(path: str) -> None:
    app = csrf_app(csrf_exempt=["/sso/callback", "/hooks/*"])
    async with client_for(app) as browser:
        exempt = await browser.post(path, headers=FROM_ANOTHER_SITE["cross-site"])
        other = await browser.post("/action", headers=FROM_ANOTHER_SITE["cross-site"])
    assert (exempt.status_code, other.status_code) == (200, 403)


@pytest.mark.parametrize("path", ["/sso/callback/", "/sso/callback/x", "/sso", "/hooks"])
async def test_exempt_paths_match_exactly_or_below_a_slash_star(path: str) -> None:
    app = csrf_app(csrf_exempt=["/sso/callback", "/hooks/*"])
    async with client_for(app) as browser:
        response = await browser.post(path, headers=FROM_ANOTHER_SITE["cross-site"])
    assert response.status_code == 403


async def test_exempt_paths_are_the_apps_own_under_a_root_path() -> None:
    app = csrf_app(csrf_exempt=["/sso/callback"])
    transport = httpx.ASGITransport(app=app, root_path="/shop")
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as browser:
        exempt = await browser.post("/shop/sso/callback", headers={"origin": "https://idp.example"})
        other = await browser.post("/shop/action", headers={"origin": "https://idp.example"})
    assert (exempt.status_code, other.status_code) == (200, 403)


async def test_csrf_false_turns_the_check_off() -> None:
    app = csrf_app(csrf=False)
    async with client_for(app) as browser:
        response = await browser.post("/action", headers=FROM_ANOTHER_SITE["cross-site"])
    assert response.json() == {"acted": "POST"}


# -- device routes ----------------------------------------------------------------------------


def devices_app(**options: Any) -> Starlette:
    app = Starlette(
        routes=[
            Route("/login/{user}", sign_in, methods=["POST"]),
            Mount("/account", routes=device_routes(trusted_origins=["https://devices.example"])),
        ],
        middleware=[
            Middleware(SessionMiddleware, secret_keys=[SECRET], store=MemoryStore(), **options)
        ],
    )
    app.state.ran = []
    return app


@pytest.mark.parametrize(
    ("origin", "csrf", "status"),
    [
        ("https://app.example.com", True, 200),  # the middleware's
        ("https://app.example.com", False, 200),  # the middleware's, merged into the routes'
        ("https://devices.example", False, 200),  # the routes' own
        ("https://devices.example", True, 403),  # the middleware's check runs first
        ("https://evil.example", False, 403),  # refused by the routes' own check
    ],
)
async def test_device_routes_merge_their_trusted_origins_with_the_middlewares(
    origin: str, csrf: bool, status: int
) -> None:
    app = devices_app(trusted_origins=["https://app.example.com"], csrf=csrf)
    async with client_for(app) as browser:
        await browser.post("/login/ada")
        headers = {"sec-fetch-site": "cross-site", "origin": origin}
        response = await browser.delete("/account/sessions", headers=headers)
    assert response.status_code == status


async def test_device_routes_keep_their_check_on_an_exempt_path() -> None:
    app = devices_app(csrf_exempt=["/account/*"])
    async with client_for(app) as browser:
        await browser.post("/login/ada")
        response = await browser.delete("/account/sessions", headers={"origin": "null"})
    assert response.status_code == 403
    assert response.json()["error"] == "cross_origin_request"


# -- hostile headers --------------------------------------------------------------------------

HOST = (b"host", b"testserver")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([(b"sec-fetch-site", b"same-origin"), (b"sec-fetch-site", b"cross-site")], 200),
        ([(b"sec-fetch-site", b"cross-site"), (b"sec-fetch-site", b"same-origin")], 403),
        ([(b"origin", b"https://testserver"), (b"origin", b"https://evil.example")], 200),
        ([(b"origin", b"https://evil.example"), (b"origin", b"https://testserver")], 403),
        ([(b"sec-fetch-site", b"")], 200),  # empty is absent, as in Go
        ([(b"sec-fetch-site", b"Same-Origin")], 403),  # browsers send lowercase only
        ([(b"sec-fetch-site", b"\xff\xfe\x00")], 403),
        ([(b"origin", b"\xff\xfe\x00")], 403),
        ([(b"origin", "https://t\u00ebstserver".encode())], 403),
        ([(b"origin", b"https://" + b"a" * 100_000)], 403),
        ([(b"origin", b"https://" + b"@" * 10_000 + b"testserver")], 200),  # Go's url.Parse
        ([(b"origin", b"https://testserver/" + b"/" * 10_000)], 200),
        ([(b"origin", b"://testserver")], 200),
        ([(b"origin", b"null")], 403),
        ([(b"origin", b"https://testserver?x")], 200),  # Go's url.Parse(origin).Host
        ([(b"origin", b"https://testserver#x")], 200),
        ([(b"origin", b"https://evil.example/?://testserver")], 403),
        ([(b"sec-fetch-site", b"x" * 100_000)], 403),
    ],
)
def test_odd_headers_get_a_verdict_never_a_500(
    headers: list[tuple[bytes, bytes]], status: int
) -> None:
    app = csrf_app()
    messages = asyncio.run(call(app, scope_for("POST", "/action", [HOST, *headers])))
    assert status_of(messages) == status


def test_without_a_host_an_origin_matches_nothing() -> None:
    app = csrf_app()
    for origin in (b"null", b"https://", b"https://testserver"):
        messages = asyncio.run(call(app, scope_for("POST", "/action", [(b"origin", origin)])))
        assert status_of(messages) == 403


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exempt", "message"),
    [
        ("/sso/callback", "a list of paths"),
        (["sso/callback"], "starting with '/'"),
        ([""], "starting with '/'"),
        ([None], "starting with '/'"),
        (["/*"], "csrf=False"),
        (["/hooks/*/x"], "plain path"),
        (["/hooks*"], "plain path"),
        (["/cb?x=1"], "plain path"),
        (["/cb#top"], "plain path"),
        (["/a b"], "plain path"),
        (["/a\nb"], "plain path"),
    ],
)
def test_bad_exempt_paths_are_refused_at_start_up(exempt: Any, message: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None: ...

    with pytest.raises(ConfigurationError, match=message):
        SessionMiddleware(app, secret_keys=[SECRET], csrf_exempt=exempt)


def test_csrf_must_be_a_bool_and_trusted_origins_a_list() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None: ...

    with pytest.raises(ConfigurationError, match="True or False"):
        SessionMiddleware(app, secret_keys=[SECRET], csrf="off")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="a list of origins"):
        SessionMiddleware(app, secret_keys=[SECRET], trusted_origins="https://a.example")


@pytest.mark.parametrize(
    ("configured", "stored"),
    [
        ("https://App.Example.com", "https://app.example.com"),
        ("http://[::1]", "http://[::1]"),
        ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
        ("https://app.example.com:443/", "https://app.example.com"),
        ("http://localhost:8000/", "http://localhost:8000"),
        ("http://[::1]:80", "http://[::1]"),
        ("https://app.example.com:", "https://app.example.com"),
    ],
)
def test_trusted_origins_are_kept_as_browsers_spell_them(configured: str, stored: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None: ...

    middleware = SessionMiddleware(app, secret_keys=[SECRET], trusted_origins=[configured])
    assert middleware.config.trusted_origins == {stored}


async def test_signing_out_one_other_device_is_refused_cross_site_even_with_csrf_off() -> None:
    app = devices_app(csrf=False)
    async with client_for(app) as laptop, client_for(app) as phone:
        await laptop.post("/login/ada")
        await phone.post("/login/ada")
        phone_id = (await phone.get("/account/sessions")).json()["sessions"][0]["id"]
        forged = await laptop.delete(
            f"/account/sessions/{phone_id}", headers=FROM_ANOTHER_SITE["cross-site"]
        )
        still_listed = (await phone.get("/account/sessions")).json()["sessions"]
    assert forged.status_code == 403
    assert forged.json()["error"] == "cross_origin_request"
    assert [entry["id"] for entry in still_listed if entry["current"]] == [phone_id]


# -- the pieces -------------------------------------------------------------------------------


def test_only_strings_are_exempt_paths() -> None:
    exempt = ExemptPaths(["/sso/callback", "/hooks/*"])
    assert "/sso/callback" in exempt
    assert None not in exempt
    assert b"/sso/callback" not in exempt


@pytest.mark.parametrize(
    ("scope", "path"),
    [
        ({"path": "/action"}, "/action"),  # no root_path at all
        ({"path": "/shop/action", "root_path": "/shop"}, "/action"),
        ({"path": "/shop", "root_path": "/shop"}, "/"),
        ({"path": "/shopping", "root_path": "/shop"}, "/shopping"),  # not under it
        ({"path": "/sh", "root_path": "/shop"}, "/sh"),
        ({"path": "/action", "root_path": "/shop"}, "/action"),
    ],
)
def test_route_path_drops_the_root_path_only_where_it_is_one(
    scope: dict[str, str], path: str
) -> None:
    assert route_path(scope) == path


@pytest.mark.parametrize(
    ("exempt", "fix"),
    [
        (["sso/callback"], "such as '/sso/callback' or '/webhooks/*'"),
        (["/*"], "pass SessionMiddleware(csrf=False) instead"),
        (["/hooks*"], "wildcard but a final '/*' for everything under a path)"),
    ],
)
def test_a_bad_exempt_path_error_names_the_fix(exempt: list[str], fix: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        ExemptPaths(exempt)
    assert fix in str(raised.value)


@pytest.mark.parametrize(
    "origin",
    [
        "https://\u212a.example",  # the Kelvin sign: lowercases to an ASCII "k"
        "https://app.example.com#top",
        "ftp://app.example.com",
    ],
)
def test_a_trusted_origin_browsers_never_send_is_refused_naming_the_fix(origin: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        browser_origin(origin)
    message = str(raised.value)
    assert "must be scheme://host[:port]" in message
    assert "such as 'https://app.example.com' (an international name in its xn-- form)" in message
