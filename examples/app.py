"""A runnable sessionward app: a visit counter, a JSON API over the session, a demo sign-in
(any name, no password) and a "Your devices" page where you can sign other devices out.

    SESSIONWARD_SECRET_KEYS=$(python -c "import secrets; print(secrets.token_urlsafe(32))") \\
        python examples/app.py

Configuration comes from the environment so the file deploys unchanged:

    SESSIONWARD_SECRET_KEYS   comma-separated; the first signs, all verify (required)
    REDIS_URL                 use RedisStore at this URL; MemoryStore when unset
    SESSIONWARD_IDLE_TTL      seconds of inactivity before a session ends (default 14 days)
    SESSIONWARD_ABSOLUTE_TTL  seconds from creation before a session ends (default 30 days)
    SESSIONWARD_COOKIE_NAME   the cookie's name (default: __Host-session when Secure)
    SESSIONWARD_COOKIE_SECURE "false" to send the cookie over plain http too (default "true";
                              browsers accept Secure cookies from http://localhost anyway)
    SESSIONWARD_TRUSTED_PROXIES  comma-separated CIDRs whose X-Forwarded-For is believed
    HOST, PORT                where `python examples/app.py` listens (127.0.0.1:8000)
"""

from __future__ import annotations

import html
import os
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from sessionward import (
    ConfigurationError,
    CookieTransport,
    MemoryStore,
    RedisStore,
    SessionInfo,
    SessionMiddleware,
    Store,
    device_routes,
    get_session,
    login,
    logout,
    user_sessions,
)


async def home(request: Request) -> Response:
    visits = request.session.get("visits", 0) + 1
    request.session["visits"] = visits
    return HTMLResponse(
        "<!doctype html><title>sessionward demo</title>"
        f"<h1>You have visited this page {visits} time{'s' if visits != 1 else ''}.</h1>"
        f"<p>Session keys: {html.escape(', '.join(sorted(request.session)))}</p>"
    )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto}}
li{{margin:.5rem 0}} .this{{font-weight:bold}}</style></head>
<body>{body}</body></html>"""


def page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=html.escape(title), body=body))


async def sign_in_form(request: Request) -> Response:
    return page(
        "Sign in",
        '<h1>Sign in</h1><form method="post" action="/login">'
        '<label>Name <input name="name" required autofocus></label> '
        '<button type="submit">Sign in</button></form>'
        "<p>A demo: any name signs you in, no password.</p>",
    )


async def sign_in(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    name = form.get("name", [""])[0].strip()[:64]
    if not name:
        return RedirectResponse("/login", status_code=303)
    await login(request, name)
    return RedirectResponse("/devices", status_code=303)


async def sign_out(request: Request) -> Response:
    await logout(request)
    return RedirectResponse("/login", status_code=303)


async def devices(request: Request) -> Response:
    me = get_session(request)
    if me is None or me.user_id is None:
        return RedirectResponse("/login", status_code=303)
    sessions = await user_sessions(request).list_sessions(me.user_id, current=me.public_id)
    items = "".join(_device_item(info) for info in sessions)
    return page(
        "Your devices",
        f"<h1>Your devices</h1><p>Signed in as <b>{html.escape(me.user_id)}</b>.</p>"
        f'<ul id="devices">{items}</ul>'
        '<button id="sign-out-others" onclick="revoke(\'/account/sessions\')">'
        "Sign out all other devices</button>"
        '<form method="post" action="/logout"><button type="submit">Sign out</button></form>'
        "<script>async function revoke(url){"
        "await fetch(url,{method:'DELETE'});location.reload()}</script>",
    )


def _device_item(info: SessionInfo) -> str:
    label = html.escape(info.device.label if info.device else "Unknown device")
    seen = info.last_seen_at.strftime("%Y-%m-%d %H:%M UTC")
    details = f"{label} · {html.escape(info.ip or 'unknown IP')} · last active {seen}"
    if info.current:
        return f'<li class="this" data-id="{info.public_id}">{details} — This device</li>'
    button = f"<button onclick=\"revoke('/account/sessions/{info.public_id}')\">Sign out</button>"
    return f'<li data-id="{info.public_id}">{details} {button}</li>'


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
        "cookie": CookieTransport(
            name=environ.get("SESSIONWARD_COOKIE_NAME") or None,
            secure=environ.get("SESSIONWARD_COOKIE_SECURE", "true").lower() not in _FALSE,
        ),
        "trusted_proxies": [
            cidr.strip()
            for cidr in environ.get("SESSIONWARD_TRUSTED_PROXIES", "").split(",")
            if cidr.strip()
        ],
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


_FALSE = ("false", "0", "no", "off")


def _store(environ: Mapping[str, str]) -> Store:
    url = environ.get("REDIS_URL")
    return RedisStore.from_url(url) if url else MemoryStore()


def create_app(environ: Mapping[str, str] = os.environ) -> SessionMiddleware:
    """Wrap the routes in the middleware directly, so bad settings fail at import, not later."""
    routes = Starlette(
        routes=[
            Route("/", home),
            Route("/login", sign_in_form, methods=["GET"]),
            Route("/login", sign_in, methods=["POST"]),
            Route("/logout", sign_out, methods=["POST"]),
            Route("/devices", devices),
            Mount("/account", routes=device_routes()),
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
