"""Test an app's signed-in pages without its sign-in form (Django's `force_login`).

    from sessionward.testing import Clock, login_client

    clock = Clock()
    app = Starlette(routes=...)
    app.add_middleware(SessionMiddleware, secret_keys=[...], clock=clock)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="https://testserver") as client:
        await login_client(client, app, "ada")   # the cookie a real login() sets
        assert (await client.get("/me")).status_code == 200
        clock.advance(3600)                      # an hour idle: the session has ended

`login_client` stores the session a real `login()` makes (the device log, the user's
index, `session.login`) in the app's own store, through the app's own `SessionMiddleware`, and
gives the client its cookie, or, with `transport="bearer"`, its `Authorization` header.
`login_test_client` does the same for Starlette's `TestClient`.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from anyio.from_thread import start_blocking_portal
from starlette.types import ASGIApp

from .client import Client
from .core import SessionCore
from .device_ids import new_device_id
from .middleware import SessionMiddleware
from .refresh import TokenPair
from .token_pairs import TokenPairs

__all__ = ["Clock", "login_client", "login_test_client", "session_middleware"]


class Clock:
    """A clock a test moves by hand: pass it as `SessionMiddleware(clock=...)`, then
    `advance` it to reach idle and absolute deadlines without waiting."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class _HttpClient(Protocol):
    """What both `httpx.AsyncClient` and Starlette's `TestClient` offer."""

    @property
    def cookies(self) -> Any: ...

    @property
    def headers(self) -> Any: ...

    @property
    def base_url(self) -> Any: ...


def session_middleware(app: ASGIApp) -> SessionMiddleware:
    """The `SessionMiddleware` an app runs requests through: the app itself, or the one in a
    Starlette (or FastAPI) app's middleware stack, built now if no request has built it."""
    layer: Any = app
    if getattr(layer, "middleware_stack", False) is None:  # Starlette builds it lazily
        layer.middleware_stack = layer.build_middleware_stack()
    layer = getattr(layer, "middleware_stack", None) or layer
    for _ in range(64):  # a stack is a chain of `app` attributes
        if isinstance(layer, SessionMiddleware):
            return layer
        layer = getattr(layer, "app", None)
        if layer is None:
            break
    raise LookupError("no SessionMiddleware in this app: add it with app.add_middleware()")


async def login_client(
    client: _HttpClient,
    app: ASGIApp,
    user_id: str,
    *,
    transport: Literal["cookie", "bearer"] = "cookie",
) -> TokenPair | None:
    """Sign `client` in to `app` as `user_id`, as `login()` would at a sign-in.

    The cookie goes into the client's cookie jar for its `base_url`'s host (use
    `https://testserver`: the session cookie is Secure); a bearer session becomes the
    client's `Authorization` header, and its `TokenPair` is returned for refresh tests (the
    app needs a `bearer` transport). The device is the client's `User-Agent`.
    """
    core = session_middleware(app).core
    client_info = _client_of(client, core)
    if transport == "bearer":
        pair = await TokenPairs(core).issue(user_id, client=client_info)
        client.headers["authorization"] = f"Bearer {pair.access_token}"
        return pair
    if transport != "cookie":
        raise ValueError(f"transport must be 'cookie' or 'bearer', not {transport!r}")
    device_id = new_device_id()
    signed_in = await core.sign_in(
        user_id, client_info, transport="cookie", values={}, device_id=device_id
    )
    config = core.config
    host = _cookie_domain(client.base_url.host)
    client.cookies.set(config.cookie.name, config.signer.issue(signed_in.session_id), host)
    client.cookies.set(config.device_cookie.name, _device_value(core, device_id), host)
    return None


def _cookie_domain(host: str) -> str:
    """The domain the standard library's cookie jar files a host's cookies under: a host
    without a dot (`testserver`) as `testserver.local` (RFC 2965's effective host name)."""
    return host if "." in host else host + ".local"


def login_test_client(
    client: Any, user_id: str, *, transport: Literal["cookie", "bearer"] = "cookie"
) -> TokenPair | None:
    """`login_client` for Starlette's `TestClient` (its app is `client.app`)."""
    with start_blocking_portal() as portal:
        pair: TokenPair | None = portal.call(_login, client, client.app, user_id, transport)
    return pair


async def _login(
    client: Any, app: ASGIApp, user_id: str, transport: Literal["cookie", "bearer"]
) -> TokenPair | None:
    return await login_client(client, app, user_id, transport=transport)


def _client_of(client: _HttpClient, core: SessionCore) -> Client:
    agent = client.headers.get("user-agent", "")
    headers = [(b"user-agent", agent.encode("latin-1", "replace"))]
    scope = {"type": "http", "headers": headers, "client": ("127.0.0.1", 50000)}
    return Client(scope, core.config.trusted_proxies, core.config.locate)


def _device_value(core: SessionCore, device_id: str) -> str:
    """The device cookie's value (its `Set-Cookie` without the attributes)."""
    set_cookie = core.config.device_cookie.set_cookie(device_id)
    return set_cookie.split(";", 1)[0].split("=", 1)[1]
