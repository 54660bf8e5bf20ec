"""`sessionward.fastapi`: the dependencies answer by what the middleware loaded, with FastAPI's
`{"detail": ...}` bodies, and OpenAPI documents the cookie and the bearer token as alternatives."""

from __future__ import annotations

import importlib
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Request

import sessionward.fastapi
from sessionward import (
    BearerSigner,
    BearerTransport,
    CookieTransport,
    JWTKey,
    SessionInfo,
    SessionMiddleware,
    Store,
    login,
    reauthenticate,
)
from sessionward.fastapi import (
    CurrentSession,
    CurrentUserId,
    OptionalSession,
    RecentAuth,
    SessionAuth,
    device_router,
    token_router,
)
from tests.apps import SECRET
from tests.conftest import Clock, client_for

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
BEARER = BearerTransport(BearerSigner(JWTKey("k1", "HS256", SECRET)))
COOKIE_ONLY_CHALLENGE = 'Cookie cookie-name="__Host-session"'
# An app's own schemes, declared at module level as users would (FastAPI resolves annotations
# written as strings in the module's globals).
SID_AUTH = SessionAuth(cookie_name="sid", bearer=False)
SidSession = Annotated[SessionInfo, SID_AUTH.current_session]


def build_app(store: Store, clock: Clock | None = None, **options: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        SessionMiddleware,
        store=store,
        secret_keys=[SECRET],
        clock=clock or time.time,
        **options,
    )

    @app.post("/login/{user}")
    async def sign_in(user: str, request: Request) -> dict[str, str]:
        await login(request, user)
        return {"user": user}

    @app.post("/token/{user}")
    async def token(user: str, request: Request) -> dict[str, str]:
        return {"access_token": await login(request, user, transport="bearer")}

    @app.post("/reauthenticate")
    async def confirm(request: Request) -> dict[str, bool]:
        await reauthenticate(request)
        return {"confirmed": True}

    @app.post("/cart")
    async def cart(request: Request) -> dict[str, bool]:
        request.session["cart"] = [1]  # an anonymous session in the store
        return {"stored": True}

    @app.get("/me")
    async def me(session: CurrentSession) -> dict[str, str | None]:
        return {"user": session.user_id, "transport": session.transport}

    @app.get("/maybe")
    async def maybe(session: OptionalSession) -> dict[str, str | None]:
        return {"user": session.user_id if session else None}

    @app.get("/id")
    async def user_id(user: CurrentUserId) -> dict[str, str]:
        return {"user": user}

    @app.post("/email", dependencies=[RecentAuth(60)])
    async def email() -> dict[str, bool]:
        return {"changed": True}

    @app.post("/password")
    async def password(me: Annotated[SessionInfo, RecentAuth(60)]) -> dict[str, str | None]:
        return {"changed_for": me.user_id}

    @app.get("/public")
    async def public() -> dict[str, bool]:
        return {"open": True}

    app.include_router(device_router(), prefix="/account")
    return app


def refused_for_not_signed_in(response: Any, challenge: str = COOKIE_ONLY_CHALLENGE) -> bool:
    return bool(
        response.status_code == 401
        and response.json() == {"detail": "not_signed_in"}
        and response.headers["www-authenticate"] == challenge
    )


async def test_current_session_is_the_signed_in_session(store: Store) -> None:
    app = build_app(store)
    async with client_for(app) as client:
        visitor = await client.get("/me")
        await client.post("/cart")
        anonymous = await client.get("/me")  # a stored session nobody signed in to
        await client.post("/login/ada")
        signed_in = await client.get("/me")
    assert refused_for_not_signed_in(visitor)
    assert refused_for_not_signed_in(anonymous)
    assert signed_in.json() == {"user": "ada", "transport": "cookie"}


async def test_optional_session_is_none_for_a_visitor(store: Store) -> None:
    app = build_app(store)
    async with client_for(app) as client:
        visitor = await client.get("/maybe")
        await client.post("/cart")
        anonymous = await client.get("/maybe")
        await client.post("/login/ada")
        signed_in = await client.get("/maybe")
    assert visitor.json() == anonymous.json() == {"user": None}
    assert signed_in.json() == {"user": "ada"}


async def test_current_user_id_is_the_signed_in_users_id(store: Store) -> None:
    app = build_app(store)
    async with client_for(app) as client:
        visitor = await client.get("/id")
        await client.post("/login/ada")
        signed_in = await client.get("/id")
    assert refused_for_not_signed_in(visitor)
    assert signed_in.json() == {"user": "ada"}


async def test_recent_auth_asks_for_a_recent_sign_in(store: Store, clock: Clock) -> None:
    app = build_app(store, clock)
    async with client_for(app) as client:
        visitor = [await client.post("/email"), await client.post("/password")]
        await client.post("/login/ada")
        fresh = [await client.post("/email"), await client.post("/password")]
        clock.advance(61)
        stale = [await client.post("/email"), await client.post("/password")]
        await client.post("/reauthenticate")
        again = [await client.post("/email"), await client.post("/password")]
    assert all(refused_for_not_signed_in(response) for response in visitor)
    assert [response.json() for response in fresh] == [{"changed": True}, {"changed_for": "ada"}]
    for response in stale:
        assert response.status_code == 403
        assert response.json() == {"detail": "reauthentication_required"}
        assert response.headers["cache-control"] == "private, no-store"
    assert [response.json() for response in again] == [response.json() for response in fresh]


@pytest.mark.parametrize("path", ["/me", "/maybe", "/id", "/password"])
async def test_a_response_built_by_a_dependency_varies_on_the_credential(
    store: Store, path: str
) -> None:
    # Regression: the dependencies read the session without marking it read, so a cacheable
    # `/me` went out with no `Vary` and a shared cache could hand it to the next user.
    app = build_app(store, bearer=BEARER)
    method = "POST" if path == "/password" else "GET"
    async with client_for(app) as browser:
        await browser.post("/login/ada")
        by_cookie = await browser.request(method, path)
        token = (await browser.post("/token/ada")).json()["access_token"]
    async with client_for(app) as api:
        api.headers["authorization"] = f"Bearer {token}"
        by_token = await api.request(method, path)
    assert by_cookie.status_code == by_token.status_code == 200
    assert by_cookie.headers["vary"] == "Cookie"
    assert by_token.headers["vary"] == "Authorization"


@pytest.mark.parametrize("seconds", [0, -5, math.nan, True, "300", None])
async def test_recent_auth_checks_its_seconds_when_built(seconds: Any) -> None:
    message = f"RecentAuth(seconds) must be a positive number of seconds, not {seconds!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        RecentAuth(seconds)


async def test_a_bearer_client_is_never_asked_for_a_cookie(store: Store) -> None:
    app = build_app(store, bearer=BEARER)
    async with client_for(app) as browser:
        token = (await browser.post("/token/ada")).json()["access_token"]
    async with client_for(app) as api:
        api.headers["authorization"] = f"Bearer {token}"
        me = await api.get("/me")
        user = await api.get("/id")
        devices = await api.get("/account/sessions")
    assert not api.cookies
    assert me.json() == {"user": "ada", "transport": "bearer"}
    assert user.json() == {"user": "ada"}
    assert devices.status_code == 200


async def test_a_browser_is_never_asked_for_a_bearer_token(store: Store) -> None:
    app = build_app(store, bearer=BEARER)
    async with client_for(app) as browser:
        visitor = await browser.get("/me")
        await browser.post("/login/ada")
        me = await browser.get("/me")
        devices = await browser.get("/account/sessions")
    # The app takes both, so its challenge offers both.
    assert refused_for_not_signed_in(visitor, f"Bearer, {COOKIE_ONLY_CHALLENGE}")
    assert me.json() == {"user": "ada", "transport": "cookie"}
    assert devices.status_code == 200


async def test_openapi_offers_the_cookie_or_the_bearer_token(store: Store) -> None:
    schema = build_app(store, bearer=BEARER).openapi()
    assert schema["components"]["securitySchemes"] == {
        "cookieAuth": {
            "type": "apiKey",
            "in": "cookie",
            "name": "__Host-session",
            "description": schema["components"]["securitySchemes"]["cookieAuth"]["description"],
        },
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": schema["components"]["securitySchemes"]["bearerAuth"]["description"],
        },
    }
    # A list of requirements: any one of them will do.
    either: list[dict[str, list[str]]] = [{"cookieAuth": []}, {"bearerAuth": []}]
    paths = schema["paths"]
    for path, method in [
        ("/me", "get"),
        ("/maybe", "get"),
        ("/id", "get"),
        ("/email", "post"),
        ("/password", "post"),
        ("/account/sessions", "get"),
        ("/account/sessions", "delete"),
        ("/account/sessions/{public_id}", "delete"),
    ]:
        assert paths[path][method]["security"] == either, path
        assert "parameters" not in paths[path][method] or path.endswith("{public_id}")
    assert "security" not in paths["/public"]["get"]


async def test_a_scheme_built_in_the_app_documents_and_checks_the_same(store: Store) -> None:
    # Built here, not at import: what `SessionAuth()` sets up is exercised by this test too,
    # not only by the module's default instance, which exists before any test runs.
    auth = SessionAuth()
    app = FastAPI()
    app.add_middleware(SessionMiddleware, store=store, secret_keys=[SECRET], bearer=BEARER)

    @app.post("/login/{user}")
    async def sign_in(user: str, request: Request) -> dict[str, str]:
        await login(request, user)
        return {"user": user}

    @app.get("/me")
    async def me(session: SessionInfo = auth.current_session) -> dict[str, str | None]:
        return {"user": session.user_id}

    @app.get("/maybe")
    async def maybe(session: SessionInfo | None = auth.optional_session) -> dict[str, bool]:
        return {"signed_in": session is not None}

    @app.get("/id")
    async def user_id(user: str = auth.current_user_id) -> dict[str, str]:
        return {"user": user}

    @app.get("/guarded", dependencies=auth.security)
    async def guarded() -> dict[str, bool]:
        return {"open": True}

    schemes = app.openapi()["components"]["securitySchemes"]
    assert schemes["cookieAuth"]["name"] == "__Host-session"
    assert schemes["cookieAuth"]["in"] == "cookie"
    assert schemes["cookieAuth"]["description"] == (
        "The session cookie a browser gets at sign-in. Swagger UI's Authorize cannot set a "
        "cookie (the browser sends the one sign-in set): use bearerAuth there."
    )
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The access token `login(..., transport='bearer')` returns.",
    }
    either: list[dict[str, list[str]]] = [{"cookieAuth": []}, {"bearerAuth": []}]
    assert app.openapi()["paths"]["/guarded"]["get"]["security"] == either
    async with client_for(app) as browser:
        visitor = [await browser.get(path) for path in ("/me", "/maybe", "/id", "/guarded")]
        await browser.post("/login/ada")
        signed_in = [await browser.get(path) for path in ("/me", "/maybe", "/id")]
    # Neither scheme answers for itself (auto_error=False): the session decides.
    assert refused_for_not_signed_in(visitor[0], f"Bearer, {COOKIE_ONLY_CHALLENGE}")
    assert visitor[1].json() == {"signed_in": False}
    assert refused_for_not_signed_in(visitor[2], f"Bearer, {COOKIE_ONLY_CHALLENGE}")
    assert visitor[3].json() == {"open": True}
    assert [response.json() for response in signed_in] == [
        {"user": "ada"},
        {"signed_in": True},
        {"user": "ada"},
    ]


async def test_the_routers_are_tagged_in_openapi(store: Store) -> None:
    app = build_app(store, bearer=BEARER)
    app.include_router(token_router())
    paths = app.openapi()["paths"]
    assert paths["/account/sessions"]["get"]["tags"] == ["sessions"]
    assert paths["/account/sessions/{public_id}"]["delete"]["tags"] == ["sessions"]
    assert paths["/token/refresh"]["post"]["tags"] == ["tokens"]


async def test_the_device_router_trusts_the_origins_it_is_given(store: Store) -> None:
    # With the middleware's own check off, the router's list is the only one that applies.
    app = FastAPI()
    app.add_middleware(SessionMiddleware, store=store, secret_keys=[SECRET], csrf=False)

    @app.post("/login/{user}")
    async def sign_in(user: str, request: Request) -> dict[str, str]:
        await login(request, user)
        return {"user": user}

    app.include_router(device_router(trusted_origins=["https://app.example"]), prefix="/account")
    async with client_for(app) as browser:
        await browser.post("/login/ada")
        refused = await browser.delete(
            "/account/sessions", headers={"origin": "https://evil.example"}
        )
        allowed = await browser.delete(
            "/account/sessions", headers={"origin": "https://app.example"}
        )
    assert refused.status_code == 403
    assert allowed.status_code == 200


def sid_app(store: Store) -> FastAPI:
    """An app whose session cookie is `sid`, with `POST /login` signing "ada" in."""
    app = FastAPI()
    app.add_middleware(
        SessionMiddleware, store=store, secret_keys=[SECRET], cookie=CookieTransport(name="sid")
    )

    @app.post("/login")
    async def sign_in(request: Request) -> dict[str, bool]:
        await login(request, "ada")
        return {"signed_in": True}

    return app


async def test_an_app_with_its_own_cookie_name_documents_it(store: Store) -> None:
    app = sid_app(store)

    @app.get("/me")
    async def me(session: SidSession) -> dict[str, str | None]:
        return {"user": session.user_id}

    app.include_router(device_router(auth=SID_AUTH))
    schemes = app.openapi()["components"]["securitySchemes"]
    async with client_for(app) as client:
        visitor = await client.get("/me")
        await client.post("/login")
        signed_in = await client.get("/me")
    assert list(schemes) == ["cookieAuth"]
    assert schemes["cookieAuth"]["name"] == "sid"
    assert app.openapi()["paths"]["/sessions"]["get"]["security"] == [{"cookieAuth": []}]
    assert refused_for_not_signed_in(visitor, 'Cookie cookie-name="sid"')
    assert signed_in.json() == {"user": "ada"}


async def test_the_device_router_answers_401_with_a_challenge(store: Store) -> None:
    async with client_for(build_app(store)) as client:
        response = await client.get("/account/sessions")
    assert response.json() == {"error": "not signed in"}  # device_routes()'s body, as before
    assert response.headers["www-authenticate"] == COOKIE_ONLY_CHALLENGE


def test_the_old_import_path_works_and_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "sessionward.fastapi_router", raising=False)
    with pytest.warns(DeprecationWarning, match="import device_router from sessionward.fastapi"):
        old = importlib.import_module("sessionward.fastapi_router")
    assert old.device_router is device_router
    assert old.SessionList is sessionward.fastapi.SessionList


def test_the_warning_points_at_the_import() -> None:
    result = _python(
        "import warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import sessionward.fastapi_router\n"
        "print([(w.category.__name__, w.filename, w.lineno) for w in caught])"
    )
    assert result.stdout.strip() == "[('DeprecationWarning', '<string>', 4)]"


def test_without_fastapi_the_import_says_what_to_install() -> None:
    result = _python("import sys; sys.modules['fastapi'] = None; import sessionward.fastapi")
    assert result.returncode == 1
    assert 'pip install "sessionward[fastapi]"' in result.stderr


def _python(script: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=False
    )


async def test_a_cookie_only_scheme_built_in_the_app(store: Store) -> None:
    # Built here, not at import (like SID_AUTH): mutmut switches a change on after import.
    auth = SessionAuth(cookie_name="sid", bearer=False)
    app = sid_app(store)

    @app.get("/maybe")
    async def maybe(session: SessionInfo | None = auth.optional_session) -> dict[str, bool]:
        return {"signed_in": session is not None}

    @app.post("/cart")
    async def cart(request: Request) -> dict[str, bool]:
        request.session["cart"] = [1]
        return {"kept": True}

    schemes = app.openapi()["components"]["securitySchemes"]
    async with client_for(app) as client:
        await client.post("/cart")  # a visitor's session, with no user in it
        visitor = await client.get("/maybe")
        await client.post("/login")
        signed_in = await client.get("/maybe")
    assert auth.bearer_scheme is None
    assert list(schemes) == ["cookieAuth"]
    assert app.openapi()["paths"]["/maybe"]["get"]["security"] == [{"cookieAuth": []}]
    assert visitor.json() == {"signed_in": False}
    assert signed_in.json() == {"signed_in": True}
