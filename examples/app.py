"""A runnable sessionward app: a visit counter, a JSON API over the session, a demo sign-in and
a "Where you're signed in" page: your devices, new sign-in alerts, and signing others out
after re-entering your password.

    SESSIONWARD_SECRET_KEYS=$(python -c "import secrets; print(secrets.token_urlsafe(32))") \\
        python examples/app.py

The first sign-in with a name registers the password given; later ones must match it. The
passwords (hashed) and the alerts live in this process's memory: a demo, not an account store.

Configuration comes from the environment so the file deploys unchanged:

    SESSIONWARD_SECRET_KEYS   comma-separated; the first signs, all verify (required)
    REDIS_URL                 use RedisStore at this URL; MemoryStore when unset
    SESSIONWARD_IDLE_TTL      seconds of inactivity before a session ends (default 14 days)
    SESSIONWARD_ABSOLUTE_TTL  seconds from creation before a session ends (default 30 days)
    SESSIONWARD_COOKIE_NAME   the cookie's name (default: __Host-session when Secure)
    SESSIONWARD_COOKIE_SECURE "false" to send the cookie over plain http too (default "true";
                              browsers accept Secure cookies from http://localhost anyway)
    SESSIONWARD_TRUSTED_PROXIES  comma-separated CIDRs whose X-Forwarded-For is believed
    SESSIONWARD_LOCATION_HEADER  a header a trusted proxy writes the client's place in, such
                              as Cloudflare's "cf-ipcountry"; read only from those proxies
    SESSIONWARD_ADMINS        comma-separated names the demo lets see /admin (default "admin")
    HOST, PORT                where `python examples/app.py` listens (127.0.0.1:8000)
"""

from __future__ import annotations

import hashlib
import hmac
import html
import os
import secrets
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from sessionward import (
    ConfigurationError,
    CookieTransport,
    Device,
    Events,
    MemoryStore,
    RedisStore,
    SessionEvent,
    SessionInfo,
    SessionMiddleware,
    Store,
    device_routes,
    get_session,
    login,
    logout,
    reauthenticate,
    user_sessions,
)
from sessionward.auth import session_config
from sessionward.locations import header_locator

if TYPE_CHECKING or not __package__:  # run as a script (and how mypy reads it)
    if os.path.dirname(os.path.abspath(__file__)) not in sys.path:  # runpy.run_path(...)
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from admin_page import admin_routes
else:  # imported as `examples.app`, as the tests do
    from .admin_page import admin_routes

RECENT_AUTH = 300  # seconds after a sign-in or password check that other devices may be ended
ACTIVE_NOW = timedelta(minutes=2)
NEW_FOR = timedelta(days=7)  # how long a device first signed in from wears the "New" badge
ALERTS_KEPT = 5  # per user
# Each kind's icon as inline SVG, not an emoji: a browser without an emoji font (the default
# on Linux servers) would draw empty boxes.
_ICON_PATHS = {
    "desktop": '<rect x="4" y="5" width="16" height="11" rx="1"/><path d="M2 19h20"/>',
    "mobile": '<rect x="7" y="2" width="10" height="20" rx="2"/><path d="M11 18h2"/>',
    "tablet": '<rect x="4" y="2" width="16" height="20" rx="2"/><path d="M11 18h2"/>',
    "bot": '<rect x="5" y="8" width="14" height="11" rx="2"/>'
    '<path d="M12 4v4M9 13h.01M15 13h.01"/>',
    "other": '<circle cx="12" cy="12" r="9"/><path d="M9.5 9a2.5 2.5 0 1 1 3.5 2.3'
    'c-.6.3-1 .9-1 1.7M12 17h.01"/>',
}
GLYPHS = {
    kind: '<svg viewBox="0 0 24 24" width="28" height="28" fill="none" stroke="currentColor" '
    'stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">'
    f"{paths}</svg>"
    for kind, paths in _ICON_PATHS.items()
}


async def home(request: Request) -> Response:
    visits = request.session.get("visits", 0) + 1
    request.session["visits"] = visits
    return HTMLResponse(
        "<!doctype html><title>sessionward demo</title>"
        f"<h1>You have visited this page {visits} time{'s' if visits != 1 else ''}.</h1>"
        f"<p>Session keys: {html.escape(', '.join(sorted(request.session)))}</p>"
    )


class Passwords:
    """name → (salt, scrypt hash), in memory. The first password given for a name registers it."""

    def __init__(self) -> None:
        self._hashes: dict[str, tuple[bytes, bytes]] = {}

    async def sign_in(self, name: str, password: str) -> bool:
        known = self._hashes.get(name)
        if known is None:
            salt = secrets.token_bytes(16)
            mine = (salt, await _scrypt(password, salt))
            known = self._hashes.setdefault(name, mine)  # a concurrent first sign-in may win
            if known == mine:
                return True
        return await self._matches(password, known)

    async def check(self, name: str, password: str) -> bool:
        """Whether `password` is the one registered for `name`; never registers."""
        known = self._hashes.get(name)
        if known is None:
            await _scrypt(password, bytes(16))  # so that an unknown name takes as long
            return False
        return await self._matches(password, known)

    async def _matches(self, password: str, known: tuple[bytes, bytes]) -> bool:
        salt, expected = known
        return hmac.compare_digest(await _scrypt(password, salt), expected)


async def _scrypt(password: str, salt: bytes) -> bytes:
    # ~16 MB and tens of milliseconds by design: off the event loop.
    return await run_in_threadpool(
        hashlib.scrypt, password.encode("utf-8"), salt=salt, n=2**14, r=8, p=1, dklen=32
    )


class SignInAlerts:
    """The last few sign-ins from a device new to each account: an `Events` listener. The
    account's very first sign-in is from a new device too, but nobody needs telling."""

    def __init__(self) -> None:
        self._by_user: dict[str, deque[SessionEvent]] = {}

    async def __call__(self, event: SessionEvent) -> None:
        if event.type != "session.login" or event.first_sign_in:
            return
        if event.new_device and event.user_id is not None:
            recent = self._by_user.setdefault(event.user_id, deque(maxlen=ALERTS_KEPT))
            recent.appendleft(event)

    def recent(self, user_id: str) -> list[SessionEvent]:
        return list(self._by_user.get(user_id, ()))


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}}
ul{{list-style:none;padding:0}} #devices li{{display:flex;gap:.75rem;align-items:center;
padding:.75rem 0;border-bottom:1px solid #ddd}} .glyph{{display:inline-flex;color:#333}}
.grow{{flex:1}}
.meta{{color:#555;font-size:.9rem}} .badge{{font-size:.75rem;padding:.1rem .4rem;
border-radius:.6rem;background:#e6f0ff;color:#124}} .new{{background:#fff1c2;color:#541}}
.notice,.flash{{border-radius:.5rem;padding:.25rem 1rem;margin:1rem 0}}
.notice{{background:#fff6e0;border:1px solid #e0b040}} .flash{{background:#e8f7e8}}
.error{{color:#a00}}</style></head>
<body>{body}</body></html>"""


def page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=html.escape(title), body=body), status_code)


def sign_in_page(name: str = "", error: str = "") -> HTMLResponse:
    return page(
        "Sign in",
        "<h1>Sign in</h1>"
        + (f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "")
        + '<form method="post" action="/login"><p><label>Name <input name="name" required '
        f'autocomplete="username" value="{html.escape(name)}"></label></p>'
        '<p><label>Password <input name="password" type="password" required '
        'autocomplete="current-password"></label></p>'
        '<p><label><input type="checkbox" name="remember" checked> Keep me signed in</label></p>'
        '<button type="submit">Sign in</button></form>'
        "<p>A demo: the first sign-in with a name sets its password.</p>",
        401 if error else 200,
    )


async def sign_in_form(request: Request) -> Response:
    return sign_in_page()


async def sign_out(request: Request) -> Response:
    await logout(request)
    return RedirectResponse("/login", status_code=303)


def confirm_page(then: str, error: str = "") -> HTMLResponse:
    what = "sign out all your other devices" if then == "others" else "sign that device out"
    return page(
        "Confirm it's you",
        "<h1>Confirm it's you</h1>"
        f"<p>To {what}, enter your password again.</p>"
        + (f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "")
        + '<form method="post" action="/confirm"><p><label>Password <input name="password" '
        'type="password" required autofocus autocomplete="current-password"></label></p>'
        f'<input type="hidden" name="then" value="{"others" if then == "others" else "device"}">'
        '<button type="submit">Confirm</button> <a href="/devices">Cancel</a></form>',
        401 if error else 200,
    )


class Account:
    """The pages that need the demo's passwords or alerts."""

    def __init__(self, passwords: Passwords, alerts: SignInAlerts) -> None:
        self.passwords = passwords
        self.alerts = alerts

    async def sign_in(self, request: Request) -> Response:
        form = await _form(request)
        name = form.get("name", "").strip()[:64]
        password = form.get("password", "")
        if not name or not password:
            return sign_in_page(name, "Enter your name and password.")
        if not await self.passwords.sign_in(name, password):
            return sign_in_page(name, "Wrong name or password.")
        await login(request, name, remember="remember" in form)
        return RedirectResponse("/devices", status_code=303)

    async def confirm_form(self, request: Request) -> Response:
        if _signed_in(request) is None:
            return RedirectResponse("/login", status_code=303)
        return confirm_page(request.query_params.get("then", "others"))

    async def confirm(self, request: Request) -> Response:
        me = _signed_in(request)
        if me is None or me.user_id is None:
            return RedirectResponse("/login", status_code=303)
        form = await _form(request)
        if not await self.passwords.check(me.user_id, form.get("password", "")):
            return confirm_page(form.get("then", "others"), "Wrong password.")
        await reauthenticate(request)
        request.session["flash"] = "Password confirmed: you can sign other devices out now."
        return RedirectResponse("/devices", status_code=303)

    async def devices(self, request: Request) -> Response:
        me = _signed_in(request)
        if me is None or me.user_id is None:
            return RedirectResponse("/login", status_code=303)
        now = datetime.fromtimestamp(session_config(request).clock(), tz=timezone.utc)
        sessions = await user_sessions(request).list_sessions(me.user_id, current=me.public_id)
        flash = request.session.pop("flash", None)
        others = len(sessions) > 1
        return page(
            "Where you're signed in",
            "<h1>Where you're signed in</h1>"
            f"<p>Signed in as <b>{html.escape(me.user_id)}</b>.</p>"
            + (f'<p class="flash" role="status">{html.escape(flash)}</p>' if flash else "")
            + _alerts(self.alerts.recent(me.user_id), now)
            + f'<ul id="devices">{"".join(_device(info, now) for info in sessions)}</ul>'
            + (
                '<p><button id="sign-out-others" onclick="revoke(\'/account/sessions\', '
                "'others')\">Sign out all other devices</button></p>"
                if others
                else ""
            )
            + '<form method="post" action="/logout"><button type="submit">Sign out</button></form>'
            + REVOKE_SCRIPT,
        )


# Ending another session needs a recent password: on 403 reauthentication_required, ask for it.
REVOKE_SCRIPT = """<script>
async function revoke(url, then) {
  const response = await fetch(url, {method: 'DELETE'});
  if (response.status === 403) {
    const body = await response.json().catch(() => ({}));
    if (body.error === 'reauthentication_required') {
      location.assign('/confirm?then=' + then);
      return;
    }
  }
  location.reload();
}
</script>"""


def _alerts(events: list[SessionEvent], now: datetime) -> str:
    if not events:
        return ""
    items = ""
    for event in events[:3]:
        at = datetime.fromtimestamp(event.at, tz=timezone.utc)
        items += (
            f"<li><b>{html.escape(event.device_label or 'Unknown device')}</b> · "
            f"{_where(event.location, event.ip)} · {_time(at, _ago(at, now))}</li>"
        )
    return (
        '<section id="new-sign-ins" class="notice" role="status">'
        "<h2>New sign-in to your account</h2>"
        f"<ul>{items}</ul><p>Not you? Sign that device out below.</p></section>"
    )


def _device(info: SessionInfo, now: datetime) -> str:
    kind = info.device.kind if info.device else "other"
    label = info.device.label if info.device else "Unknown device"
    seen = "Active now" if now - info.last_seen_at < ACTIVE_NOW else _ago(info.last_seen_at, now)
    badges = ' <span class="badge">This device</span>' if info.current else ""
    if info.new_device and now - info.created_at < NEW_FOR:
        badges += ' <span class="badge new">New</span>'
    button = (
        ""
        if info.current
        else f"<button onclick=\"revoke('/account/sessions/{info.public_id}', 'device')\">"
        "Sign out</button>"
    )
    return (
        f'<li{" class=this" if info.current else ""} data-id="{info.public_id}">'
        f'<span class="glyph" role="img" aria-label="{kind}" title="{kind}">{GLYPHS[kind]}</span>'
        f'<div class="grow"><b class="label">{html.escape(label)}</b>{badges}'
        f"{_hinted(info.device)}"
        f'<div class="meta">{_where(info.location, info.ip)} · '
        f"{_time(info.last_seen_at, seen)}</div></div>{button}</li>"
    )


def _hinted(device: Device | None) -> str:
    """What Chromium's client hints added: the platform version and the form factor."""
    if device is None or not (device.platform_version or device.form_factor):
        return ""
    platform = f"{device.os or 'Platform'} {device.platform_version or ''}".strip()
    parts = [platform if device.platform_version else None, device.form_factor]
    shown = " · ".join(part for part in parts if part)
    return f'<div class="meta hints">{html.escape(shown)}</div>'


def _where(location: str | None, ip: str | None) -> str:
    return html.escape(" · ".join(part for part in (location, ip or "unknown IP") if part))


def _time(at: datetime, text: str) -> str:
    exact = at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f'<time datetime="{at.strftime("%Y-%m-%dT%H:%M:%SZ")}" title="{exact}">{text}</time>'


def _ago(then: datetime, now: datetime) -> str:
    """ "just now", "1 minute ago", "3 hours ago", "2 days ago"."""
    seconds = max((now - then).total_seconds(), 0)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def _signed_in(request: Request) -> SessionInfo | None:
    me = get_session(request)
    return me if me is not None and me.user_id is not None else None


async def _form(request: Request) -> dict[str, str]:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    return {name: values[0] for name, values in form.items()}


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
    if environ.get("SESSIONWARD_LOCATION_HEADER"):
        try:
            options["locate"] = header_locator(environ["SESSIONWARD_LOCATION_HEADER"])
        except ValueError as error:
            raise ConfigurationError(f"SESSIONWARD_LOCATION_HEADER: {error}") from None
    return options


_FALSE = ("false", "0", "no", "off")


def _store(environ: Mapping[str, str]) -> Store:
    url = environ.get("REDIS_URL")
    return RedisStore.from_url(url) if url else MemoryStore()


def create_app(
    environ: Mapping[str, str] = os.environ, *, clock: Callable[[], float] = time.time
) -> SessionMiddleware:
    """Wrap the routes in the middleware directly, so bad settings fail at import, not later.

    `clock` is for tests that move time (past the recent-sign-in window, say)."""
    alerts = SignInAlerts()
    account = Account(Passwords(), alerts)
    routes = Starlette(
        routes=[
            Route("/", home),
            Route("/login", sign_in_form, methods=["GET"]),
            Route("/login", account.sign_in, methods=["POST"]),
            Route("/logout", sign_out, methods=["POST"]),
            Route("/confirm", account.confirm_form, methods=["GET"]),
            Route("/confirm", account.confirm, methods=["POST"]),
            Route("/devices", account.devices),
            Mount("/account", routes=device_routes(recent_auth=RECENT_AUTH)),
            Mount("/admin", routes=admin_routes(environ, page)),  # examples/admin_page.py
            Route("/session", read_session, methods=["GET"]),
            Route("/session", merge_session, methods=["POST"]),
            Route("/session", clear_session, methods=["DELETE"]),
        ]
    )
    options = session_options(environ)
    return SessionMiddleware(routes, events=Events([alerts]), clock=clock, **options)


try:
    app = create_app()
except ConfigurationError as error:
    sys.exit(f"examples/app.py: {error} (set SESSIONWARD_SECRET_KEYS; see this file's docstring)")


if __name__ == "__main__":
    try:
        import uvicorn
    except ImportError:
        sys.exit('this example runs under uvicorn: pip install "sessionward[example]"')

    host = os.environ.get("HOST", "127.0.0.1")
    uvicorn.run(app, host=host, port=int(os.environ.get("PORT", "8000")))
