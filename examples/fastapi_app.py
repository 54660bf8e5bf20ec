"""A FastAPI app on sessionward: sign in and out, a route for signed-in users, routes that
want a recent password, reauthentication, and the device list, all documented in /docs.

    SESSIONWARD_SECRET_KEYS=$(python -c "import secrets; print(secrets.token_urlsafe(32))") \\
        python examples/fastapi_app.py          # or: uvicorn examples.fastapi_app:app

Open http://127.0.0.1:8000/docs. "Try it out" on `POST /login` signs the browser in (it
keeps the cookie and sends it with the next calls). With `SESSIONWARD_JWT_KEY` set, `POST
/token` returns an access token for API clients: paste it into "Authorize" (bearerAuth) to
call the same routes as a bearer client; Swagger UI cannot set a cookie there.

A demo: every name signs in with the password `correct horse battery staple`.

    SESSIONWARD_SECRET_KEYS  comma-separated; the first signs, all verify (required)
    SESSIONWARD_JWT_KEY      an HMAC key of 32+ characters: turns on bearer tokens
    REDIS_URL                use RedisStore at this URL; MemoryStore when unset
    HOST, PORT               where `python examples/fastapi_app.py` listens (127.0.0.1:8000)
"""

from __future__ import annotations

import hmac
import os
import sys
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request, Response
from pydantic import BaseModel

from sessionward import (
    BearerSigner,
    BearerTransport,
    ConfigurationError,
    JWTKey,
    MemoryStore,
    RedisStore,
    SessionConfig,
    SessionInfo,
    SessionMiddleware,
    Store,
    TokenPair,
    login,
    logout,
    reauthenticate,
    user_sessions,
)
from sessionward.fastapi import CurrentSession, CurrentUserId, RecentAuth, device_router

RECENT_AUTH = 300  # seconds after a sign-in or password check that sensitive routes open
DEMO_PASSWORD = "correct horse battery staple"  # noqa: S105 - a demo, said in the docstring


class Credentials(BaseModel):
    name: str
    password: str


class Password(BaseModel):
    password: str


class Email(BaseModel):
    email: str


class Me(BaseModel):
    user: str
    device: str
    transport: str
    authenticated_at: datetime | None
    email: str | None = None


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the scheme's name, no secret


class Confirmed(BaseModel):
    confirmed: bool = True
    access_token: str | None = None  # a bearer session's new token: the old one is dead


def check_password(password: str) -> None:
    """The demo's password check: the same for every name. Use your user store's."""
    if not hmac.compare_digest(password.encode(), DEMO_PASSWORD.encode()):
        # 400, as OAuth's token endpoint answers invalid_grant: a 401 would need a challenge.
        raise HTTPException(400, "wrong_name_or_password")


def add_routes(app: FastAPI, *, bearer: bool) -> None:
    @app.post("/login")
    async def sign_in(credentials: Credentials, request: Request) -> dict[str, str]:
        """Sign this browser in: the response sets the session cookie."""
        check_password(credentials.password)
        await login(request, credentials.name)
        return {"user": credentials.name}

    if bearer:

        @app.post("/token")
        async def token(credentials: Credentials, request: Request) -> Token:
            """Sign an API client in: send the token as `Authorization: Bearer <token>`."""
            check_password(credentials.password)
            return Token(access_token=await login(request, credentials.name, transport="bearer"))

    @app.post("/logout", status_code=204)
    async def sign_out(session: CurrentSession, request: Request) -> Response:
        """End this session, browser or API client."""
        await logout(request)
        return Response(status_code=204)

    @app.get("/me")
    async def me(session: CurrentSession, request: Request) -> Me:
        """Who is signed in, from which device; 401 otherwise."""
        return Me(
            user=session.user_id or "",
            device=session.device.label if session.device else "Unknown device",
            transport=session.transport,
            authenticated_at=session.authenticated_at,
            email=request.session.get("email"),
        )

    @app.post("/reauthenticate")
    async def confirm(password: Password, user: CurrentUserId, request: Request) -> Confirmed:
        """Prove it is you again: opens the routes guarded by `RecentAuth` for a while."""
        check_password(password.password)
        renewed = await reauthenticate(request)  # a bearer client's new token(s); None for cookies
        if isinstance(renewed, TokenPair):  # a client signed in with login_bearer()
            renewed = renewed.access_token
        return Confirmed(access_token=renewed)

    @app.put("/email")
    async def change_email(
        email: Email, me: Annotated[SessionInfo, RecentAuth(RECENT_AUTH)], request: Request
    ) -> dict[str, str]:
        """Change the e-mail address: 403 `reauthentication_required` without a recent
        sign-in (then `POST /reauthenticate` and retry)."""
        request.session["email"] = email.email
        return {"email": email.email}

    @app.delete("/account", status_code=204, dependencies=[RecentAuth(RECENT_AUTH)])
    async def close_account(user: CurrentUserId, request: Request) -> Response:
        """Sign out everywhere (a demo of closing the account): needs a recent sign-in."""
        await user_sessions(request).revoke_all(user)
        return Response(status_code=204)

    app.include_router(device_router(recent_auth=RECENT_AUTH), prefix="/account")


def session_options(environ: Mapping[str, str]) -> dict[str, Any]:
    """The middleware's settings from the environment."""
    keys = [key.strip() for key in environ.get("SESSIONWARD_SECRET_KEYS", "").split(",")]
    options: dict[str, Any] = {
        "secret_keys": [key for key in keys if key],
        "store": _store(environ),
    }
    if environ.get("SESSIONWARD_JWT_KEY"):
        key = JWTKey("k1", "HS256", environ["SESSIONWARD_JWT_KEY"])
        options["bearer"] = BearerTransport(BearerSigner(key))
    return options


def _store(environ: Mapping[str, str]) -> Store:
    url = environ.get("REDIS_URL")
    return RedisStore.from_url(url) if url else MemoryStore()


def create_app(
    environ: Mapping[str, str] = os.environ, *, clock: Callable[[], float] = time.time
) -> FastAPI:
    """The app. `clock` is for tests that move time (past the recent sign-in window, say)."""
    options = session_options(environ)
    # add_middleware builds the middleware at the first request: check the settings now, so
    # that a missing or short key stops start-up instead of failing every request.
    SessionConfig(**options)
    app = FastAPI(title="sessionward FastAPI example")
    add_routes(app, bearer="bearer" in options)
    app.add_middleware(SessionMiddleware, clock=clock, **options)
    return app


try:
    app = create_app()
except ConfigurationError as error:
    sys.exit(f"examples/fastapi_app.py: {error} (set SESSIONWARD_SECRET_KEYS; see the docstring)")


if __name__ == "__main__":
    try:
        import uvicorn
    except ImportError:
        sys.exit('this example runs under uvicorn: pip install "sessionward[example]"')

    host = os.environ.get("HOST", "127.0.0.1")
    uvicorn.run(app, host=host, port=int(os.environ.get("PORT", "8000")))
