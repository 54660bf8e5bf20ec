"""A runnable sessionward app: a visit counter page and a JSON API over the session.

    SESSIONWARD_SECRET_KEYS=$(python -c "import secrets; print(secrets.token_urlsafe(32))") \\
        python examples/app.py

Configuration comes from the environment so the file deploys unchanged:

    SESSIONWARD_SECRET_KEYS   comma-separated; the first signs, all verify (required)
    REDIS_URL                 use RedisStore at this URL; MemoryStore when unset
    SESSIONWARD_IDLE_TTL      seconds of inactivity before a session ends (default 14 days)
    SESSIONWARD_ABSOLUTE_TTL  seconds from creation before a session ends (default 30 days)
    SESSIONWARD_COOKIE_NAME   the cookie's name (default "session")
    HOST, PORT                where `python examples/app.py` listens (127.0.0.1:8000)
"""

from __future__ import annotations

import html
import os
import sys
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sessionward import (
    ConfigurationError,
    CookieTransport,
    MemoryStore,
    RedisStore,
    SessionMiddleware,
    Store,
)


async def home(request: Request) -> Response:
    visits = request.session.get("visits", 0) + 1
    request.session["visits"] = visits
    return HTMLResponse(
        "<!doctype html><title>sessionward demo</title>"
        f"<h1>You have visited this page {visits} time{'s' if visits != 1 else ''}.</h1>"
        f"<p>Session keys: {html.escape(', '.join(sorted(request.session)))}</p>"
    )


async def read_session(request: Request) -> Response:
    return JSONResponse(dict(request.session))


async def merge_session(request: Request) -> Response:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return JSONResponse({"error": "send a JSON object"}, status_code=400)
    request.session.update(body)
    return JSONResponse(dict(request.session))


async def clear_session(request: Request) -> Response:
    request.session.clear()
    return Response(status_code=204)


def session_options(environ: Mapping[str, str]) -> dict[str, Any]:
    """Read the middleware's settings from the environment, failing loudly on bad values."""
    keys = [key.strip() for key in environ.get("SESSIONWARD_SECRET_KEYS", "").split(",")]
    options: dict[str, Any] = {
        "secret_keys": [key for key in keys if key],
        "store": _store(environ),
        "cookie": CookieTransport(name=environ.get("SESSIONWARD_COOKIE_NAME", "session")),
    }
    for variable, option in (
        ("SESSIONWARD_IDLE_TTL", "idle_ttl"),
        ("SESSIONWARD_ABSOLUTE_TTL", "absolute_ttl"),
    ):
        if variable in environ:
            try:
                options[option] = int(environ[variable])
            except ValueError:
                raise ConfigurationError(f"{variable} must be whole seconds") from None
    return options


def _store(environ: Mapping[str, str]) -> Store:
    url = environ.get("REDIS_URL")
    return RedisStore.from_url(url) if url else MemoryStore()


def create_app(environ: Mapping[str, str] = os.environ) -> SessionMiddleware:
    """Wrap the routes in the middleware directly, so bad settings fail at import, not later."""
    routes = Starlette(
        routes=[
            Route("/", home),
            Route("/session", read_session, methods=["GET"]),
            Route("/session", merge_session, methods=["POST"]),
            Route("/session", clear_session, methods=["DELETE"]),
        ]
    )
    return SessionMiddleware(routes, **session_options(environ))


try:
    app = create_app()
except ConfigurationError as error:
    sys.exit(f"examples/app.py: {error} (set SESSIONWARD_SECRET_KEYS; see this file's docstring)")


if __name__ == "__main__":
    import uvicorn

    host = os.environ.get("HOST", "127.0.0.1")
    uvicorn.run(app, host=host, port=int(os.environ.get("PORT", "8000")))
