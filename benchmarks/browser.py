"""The app every case serves, and an in-process browser that calls it.

Every ASGI app is called in-process: a prebuilt scope, a trivial `receive`, a `send` that reads
the status and `Set-Cookie` headers. No sockets between the "browser" and the app, so a figure
is the session layer's own cost plus Starlette's routing. Like a browser, each request carries
the cookies the previous responses set (latest value per name; an expired cookie is dropped).
"""

from __future__ import annotations

import itertools
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Scope

SECRET = "benchmark-secret-key-0123456789abcdefghijklmnop"
TTL = 14 * 24 * 3600  # seconds: sessionward's default idle TTL, used by every compared case
SCENARIOS = ("read", "write", "untouched")
SIZES = ("1 key", "100 keys", "64 KB value")
USER_AGENT = (  # every request carries one, as browsers' do
    b"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    b"(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
BASE_HEADERS = [(b"host", b"localhost"), (b"user-agent", USER_AGENT)]
# What Chrome 131 on macOS sends with a navigation, in its order, once the site has asked for
# the high-entropy client hints (`Accept-CH`): the cookie comes last, after 18 others.
CHROME_HEADERS = [
    (b"host", b"localhost"),
    (b"connection", b"keep-alive"),
    (b"sec-ch-ua", b'"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"'),
    (b"sec-ch-ua-mobile", b"?0"),
    (b"sec-ch-ua-platform", b'"macOS"'),
    (b"sec-ch-ua-platform-version", b'"15.1.0"'),
    (b"sec-ch-ua-model", b'""'),
    (
        b"sec-ch-ua-full-version-list",
        b'"Google Chrome";v="131.0.6778.86", "Chromium";v="131.0.6778.86", '
        b'"Not_A Brand";v="24.0.0.0"',
    ),
    (b"sec-ch-ua-form-factors", b'"Desktop"'),
    (b"upgrade-insecure-requests", b"1"),
    (b"user-agent", USER_AGENT),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"sec-fetch-site", b"same-origin"),
    (b"sec-fetch-mode", b"navigate"),
    (b"sec-fetch-user", b"?1"),
    (b"sec-fetch-dest", b"document"),
    (b"referer", b"https://localhost/"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
    (b"accept-language", b"en-GB,en;q=0.9"),
]
COUNTER = itertools.count()  # the values the write handler stores


# -- the app every case serves --------------------------------------------------------------------


def payload(size: str) -> dict[str, Any]:
    """What the first request stores. Every size has "k", the key read and written."""
    data: dict[str, Any] = {"k": "value"}
    if size == "100 keys":  # small dicts: mutable values, as carts and flash lists are
        data.update({f"item{i}": {"id": i, "label": f"item number {i}"} for i in range(99)})
    elif size == "64 KB value":
        data["blob"] = "x" * 65536
    return data


def _setup_route(size: str) -> Route:
    data = payload(size)

    async def setup(request: Request) -> Response:
        request.session.update(data)
        return PlainTextResponse("ok")

    return Route(f"/setup/{size.replace(' ', '-')}", setup)


async def _read(request: Request) -> Response:
    found = request.session.get("k") is not None
    return PlainTextResponse("ok", status_code=200 if found else 404)


async def _write(request: Request) -> Response:
    request.session["k"] = next(COUNTER)
    return PlainTextResponse("ok")


async def _untouched(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _peek(request: Request) -> Response:
    return PlainTextResponse(repr(request.session.get("k")))


ROUTES = [
    Route("/read", _read),
    Route("/write", _write),
    Route("/untouched", _untouched),
    Route("/peek", _peek),
    *(_setup_route(size) for size in SIZES),
]


def session_app(*middleware: Middleware) -> Starlette:
    """The one Starlette app shape every case serves, under its own middleware (if any)."""
    return Starlette(routes=ROUTES, middleware=list(middleware))


# -- an in-process browser ------------------------------------------------------------------------


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def template(path: str) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 50000),
        "server": ("localhost", 8000),
    }


class Browser:
    """Calls an ASGI app directly and keeps the cookies it sets, as a browser would."""

    def __init__(
        self, app: ASGIApp, base_headers: list[tuple[bytes, bytes]] = BASE_HEADERS
    ) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}
        self.base_headers = base_headers  # sent with every request, before the cookie
        self.headers: list[tuple[bytes, bytes]] = list(base_headers)
        self.status = 0
        self.body = b""

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            for name, value in message.get("headers", ()):
                if name.lower() == b"set-cookie":
                    self._set_cookie(value.decode("latin-1"))
        elif message["type"] == "http.response.body":
            self.body = message.get("body", b"")

    def _set_cookie(self, header: str) -> None:
        pair, _, attributes = header.partition(";")
        name, _, value = pair.strip().partition("=")
        expired = value in ("", "''", '""')
        for attribute in attributes.lower().split(";"):
            key, _, argument = attribute.strip().partition("=")
            expired |= (key, argument.strip()) == ("max-age", "0")
            expired |= key == "expires" and "1970" in argument
        if expired:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value
        self.headers = list(self.base_headers)
        if self.cookies:
            cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            self.headers.append((b"cookie", cookie.encode("latin-1")))

    async def request(self, template: Scope) -> None:
        scope = dict(template)
        scope["headers"] = list(self.headers)
        await self.app(scope, _receive, self.send)
        if self.status != 200:
            raise RuntimeError(f"{scope['path']} answered {self.status}")

    async def get(self, path: str) -> bytes:
        await self.request(template(path))
        return self.body
