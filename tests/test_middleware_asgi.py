"""SessionMiddleware in the ASGI world: lifespan, streaming, websockets, FastAPI, Starlette code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from sessionward import (
    ConfigurationError,
    CookieTransport,
    MemoryStore,
    RedisStore,
    SessionMiddleware,
    Store,
    StoreUnavailable,
    device_routes,
    login,
)
from sessionward import middleware as middleware_module
from tests.apps import SECRET, RecordingStore, build_app
from tests.conftest import client_for
from tests.redis_server import free_port


@pytest.fixture(params=["memory", "redis"])
def fresh_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """A store with no connections yet, so it can live in a TestClient's own event loop."""
    if request.param == "memory":
        yield MemoryStore()
        return
    store = RedisStore.from_url(request.getfixturevalue("redis_url"))
    yield store


def test_lifespan_passes_through_untouched() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    app = Starlette(
        lifespan=lifespan, middleware=[Middleware(SessionMiddleware, secret_keys=[SECRET])]
    )
    with TestClient(app):
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


@pytest.mark.anyio
async def test_streaming_responses_are_not_buffered() -> None:
    release = asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"first"
        await release.wait()
        yield b"second"

    async def stream(request: Request) -> Response:
        request.session["streamed"] = True
        return StreamingResponse(chunks())

    app = Starlette(
        routes=[Route("/", stream)],
        middleware=[Middleware(SessionMiddleware, secret_keys=[SECRET])],
    )
    sent: list[Message] = []
    first_chunk = asyncio.Event()

    async def receive() -> Message:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message.get("body") == b"first":
            first_chunk.set()

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "scheme": "http",
        "server": ("localhost", 80),
        "client": ("127.0.0.1", 5000),
    }
    task = asyncio.create_task(app(scope, receive, send))
    await asyncio.wait_for(first_chunk.wait(), timeout=5)
    assert not task.done()
    start = sent[0]
    assert any(name == b"set-cookie" for name, _ in start["headers"])
    release.set()
    await asyncio.wait_for(task, timeout=5)
    assert [m.get("body") for m in sent[1:] if m.get("body")] == [b"first", b"second"]


def websocket_app(store: Store, **options: Any) -> Starlette:
    async def write(request: Request) -> Response:
        request.session.update(await request.json())
        return JSONResponse(dict(request.session))

    async def read(request: Request) -> Response:
        return JSONResponse(dict(request.session))

    async def socket(websocket: WebSocket) -> None:
        websocket.session["before_accept"] = 1
        await websocket.accept()
        await websocket.send_json(dict(websocket.session))
        websocket.session["after_accept"] = await websocket.receive_text()
        await websocket.send_text("stored")
        await websocket.close()

    return Starlette(
        routes=[
            Route("/", read),
            Route("/", write, methods=["POST"]),
            WebSocketRoute("/ws", socket),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                store=store,
                secret_keys=[SECRET],
                cookie=CookieTransport(secure=False),  # TestClient's websockets are ws://
                **options,
            )
        ],
    )


def test_websockets_see_and_change_the_session(fresh_store: Store) -> None:
    with TestClient(websocket_app(fresh_store)) as client:
        client.post("/", json={"user": "ada"})
        with client.websocket_connect("/ws") as websocket:
            assert websocket.receive_json() == {"user": "ada", "before_accept": 1}
            websocket.send_text("hello")
        assert client.get("/").json() == {
            "user": "ada",
            "before_accept": 1,
            "after_accept": "hello",
        }


def test_a_websocket_without_a_session_creates_one_at_accept(fresh_store: Store) -> None:
    with TestClient(websocket_app(fresh_store)) as client:
        with client.websocket_connect("/ws") as websocket:
            assert websocket.receive_json() == {"before_accept": 1}
            websocket.send_text("hi")
            assert websocket.receive_text() == "stored"
            headers = dict(websocket.extra_headers or [])
        cookie = headers[b"set-cookie"].decode().partition(";")[0]
        expected = {"before_accept": 1, "after_accept": "hi"}
        assert client.get("/", headers={"cookie": cookie}).json() == expected


async def flash(request: Request) -> Response:
    """Written for Starlette's own SessionMiddleware: flash messages, setdefault, pop."""
    if request.method == "POST":
        request.session.setdefault("_messages", []).append(request.query_params["text"])
        request.session["visits"] = request.session.get("visits", 0) + 1
        return PlainTextResponse("queued")
    messages = request.session.pop("_messages", [])
    return JSONResponse({"messages": messages, "visits": request.session.get("visits")})


@pytest.mark.parametrize(
    "middleware",
    [
        Middleware(StarletteSessionMiddleware, secret_key=SECRET),
        Middleware(SessionMiddleware, secret_keys=[SECRET]),
    ],
    ids=["starlette", "sessionward"],
)
@pytest.mark.anyio
async def test_code_written_for_starlette_sessions_behaves_the_same(
    middleware: Middleware,
) -> None:
    app = Starlette(routes=[Route("/", flash, methods=["GET", "POST"])], middleware=[middleware])
    async with client_for(app) as client:
        await client.post("/?text=one")
        await client.post("/?text=two")
        first = (await client.get("/")).json()
        second = (await client.get("/")).json()
    assert first == {"messages": ["one", "two"], "visits": 2}
    assert second == {"messages": [], "visits": 2}


@pytest.mark.anyio
async def test_fastapi_add_middleware(store: Store) -> None:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, store=store, secret_keys=[SECRET])

    @app.post("/login/{name}")
    async def login(name: str, request: Request) -> dict[str, str]:
        request.session["name"] = name
        return {"ok": name}

    @app.get("/me")
    async def me(request: Request) -> dict[str, Any]:
        return {"name": request.session.get("name")}

    async with client_for(app) as client:
        await client.post("/login/ada")
        assert (await client.get("/me")).json() == {"name": "ada"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"secret_keys": []}, "secret_keys is empty"),
        ({"secret_keys": ["short"]}, "at least 32"),
        ({"secret_keys": [SECRET], "idle_ttl": 0}, "idle_ttl must be a positive int"),
        ({"secret_keys": [SECRET], "absolute_ttl": -5}, "absolute_ttl"),
        ({"secret_keys": [SECRET], "idle_ttl": 1.5}, "idle_ttl"),
        ({"secret_keys": [SECRET], "max_session_bytes": True}, "max_session_bytes"),
        ({"secret_keys": None}, "needs secret_keys"),  # os.environ.get() of an unset variable
        ({"secret_keys": [SECRET], "absolute_ttl": 10**12}, "more than 100 years"),
    ],
)
def test_bad_configuration_fails_at_start_up(options: dict[str, Any], message: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None: ...

    with pytest.raises(ConfigurationError, match=message):
        SessionMiddleware(app, **options)


def test_clear_after_the_handshake_ends_the_session(fresh_store: Store) -> None:
    async def clearing(websocket: WebSocket) -> None:
        await websocket.accept()
        websocket.session.clear()
        await websocket.send_text("cleared")
        await websocket.close()

    app = websocket_app(fresh_store)
    app.router.routes.append(WebSocketRoute("/clear", clearing))
    with TestClient(app) as client:
        client.post("/", json={"user": "ada"})
        with client.websocket_connect("/clear") as websocket:
            assert websocket.receive_text() == "cleared"
            # Saved before the close goes out (TestClient cancels the app when the block ends).
            assert websocket.receive()["type"] == "websocket.close"
        assert client.get("/").json() == {}


def test_a_store_down_at_the_handshake_closes_with_1013() -> None:
    down = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    with (
        TestClient(websocket_app(down)) as client,
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/ws") as websocket,
    ):
        websocket.receive_json()
    assert closed.value.code == 1013


@pytest.mark.anyio
async def test_a_store_failure_inside_the_handler_is_a_503() -> None:
    down = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)

    async def sign_in(request: Request) -> Response:
        await login(request, "ada")
        return PlainTextResponse("unreachable")

    app = Starlette(
        routes=[Route("/login", sign_in, methods=["POST"])],
        middleware=[Middleware(SessionMiddleware, store=down, secret_keys=[SECRET])],
    )
    async with client_for(app) as client:
        response = await client.post("/login")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    await down.aclose()


def test_a_list_stored_before_accept_and_changed_after_is_saved(fresh_store: Store) -> None:
    async def collecting(websocket: WebSocket) -> None:
        items: list[str] = []
        websocket.session["items"] = items
        await websocket.accept()
        items.append("apple")
        await websocket.send_text("added")
        await websocket.close()

    app = websocket_app(fresh_store)
    app.router.routes.append(WebSocketRoute("/collect", collecting))
    with TestClient(app) as client:
        client.post("/", json={"user": "ada"})
        with client.websocket_connect("/collect") as websocket:
            assert websocket.receive_text() == "added"
        assert client.get("/").json() == {"user": "ada", "items": ["apple"]}


def test_login_after_the_websocket_was_accepted_is_refused(fresh_store: Store) -> None:
    async def late_login(websocket: WebSocket) -> None:
        await websocket.accept()
        await login(websocket, "ada")

    app = websocket_app(fresh_store)
    app.router.routes.append(WebSocketRoute("/late", late_login))
    with (
        TestClient(app) as client,
        pytest.raises(RuntimeError, match="after the response started"),
        client.websocket_connect("/late") as websocket,
    ):
        websocket.receive_text()


class DeadOnSignIn(RecordingStore):
    """A store that fails exactly where login() needs it."""

    async def index_add(self, user_id: str, key: str, score_ms: int, ttl_ms: int) -> None:
        raise StoreUnavailable("Redis is unavailable: for this test")


def signing_in_app(*, wrapped_directly: bool) -> Any:
    async def sign_in(request: Request) -> Response:
        await login(request, "ada")
        return PlainTextResponse("signed in")

    async def bug(request: Request) -> Response:
        raise ValueError("a bug in the app")

    routes = [Route("/login", sign_in, methods=["POST"]), Route("/bug", bug)]
    store = DeadOnSignIn(MemoryStore())
    if wrapped_directly:  # the form the README recommends for failing at import
        return SessionMiddleware(Starlette(routes=routes), secret_keys=[SECRET], store=store)
    middleware = [Middleware(SessionMiddleware, secret_keys=[SECRET], store=store)]
    return Starlette(routes=routes, middleware=middleware)


@pytest.mark.parametrize("wrapped_directly", [True, False])
def test_a_store_failure_in_login_is_503_however_the_middleware_is_installed(
    wrapped_directly: bool,
) -> None:
    app = signing_in_app(wrapped_directly=wrapped_directly)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        refused = client.post("/login")
        bug = client.get("/bug")
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert bug.status_code == 500  # the app's own errors stay its own


def test_a_secure_cookie_set_over_plain_http_warns_once_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(middleware_module, "_warned_secure_over_http", False)
    app = build_app(MemoryStore())
    with TestClient(app, base_url="https://testserver") as secure_client:
        secure_client.post("/session", json={"a": 1})
    assert "plain-http" not in caplog.text
    with TestClient(app) as plain_client:  # http://testserver: the cookie never comes back
        for _ in range(3):
            plain_client.post("/session", json={"a": 1})
    warnings = [record for record in caplog.records if "plain-http" in record.getMessage()]
    assert len(warnings) == 1
    assert "base_url='https://testserver'" in warnings[0].getMessage()
    assert "secure=False" in warnings[0].getMessage()


def test_two_middlewares_without_a_store_share_the_sessions() -> None:
    """A site-wide middleware and an admin panel's own (as sqladmin adds) on one cookie."""

    async def site_sign_in(request: Request) -> Response:
        request.session["user"] = "ada"
        return PlainTextResponse("signed in")

    async def admin_sign_in(request: Request) -> Response:
        request.session["admin"] = True
        return JSONResponse(dict(request.session))

    async def whoami(request: Request) -> Response:
        return JSONResponse(dict(request.session))

    admin = SessionMiddleware(
        Starlette(routes=[Route("/login", admin_sign_in, methods=["POST"])]),
        secret_keys=[SECRET],
    )
    site = Starlette(
        routes=[
            Route("/login", site_sign_in, methods=["POST"]),
            Route("/me", whoami),
            Mount("/admin", app=admin),
        ],
        middleware=[Middleware(SessionMiddleware, secret_keys=[SECRET])],
    )
    with TestClient(site, base_url="https://testserver") as client:
        client.post("/login")
        assert client.post("/admin/login").json() == {"user": "ada", "admin": True}
        assert client.get("/me").json() == {"user": "ada", "admin": True}


def test_a_middleware_with_its_own_clock_keeps_its_own_default_store() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None: ...

    def store_of(middleware: SessionMiddleware) -> object:
        store = middleware.config.store  # measured for telemetry when OpenTelemetry is installed
        return getattr(store, "wrapped", store)

    shared = store_of(SessionMiddleware(app, secret_keys=[SECRET]))
    assert store_of(SessionMiddleware(app, secret_keys=[SECRET])) is shared
    assert store_of(SessionMiddleware(app, secret_keys=[SECRET], clock=lambda: 0.0)) is not shared


def test_a_store_outlives_the_event_loops_of_several_test_clients(fresh_store: Store) -> None:
    """TestClient runs a new event loop per `with` block (and per request without one)."""
    app = build_app(fresh_store)
    with TestClient(app, base_url="https://testserver") as first:
        first.post("/session", json={"a": 1})
        cookies = first.cookies
    with TestClient(app, base_url="https://testserver", cookies=cookies) as second:
        assert second.get("/session").json() == {"a": 1}
    loose = TestClient(app, base_url="https://testserver", cookies=cookies)
    assert loose.post("/session", json={"b": 2}).json() == {"a": 1, "b": 2}
    assert loose.get("/session").json() == {"a": 1, "b": 2}


@pytest.mark.parametrize("csrf", [True, False])  # no form token covers a handshake
@pytest.mark.parametrize(
    ("headers", "sees_the_session"),
    [
        ({}, True),  # not a browser: browsers always send Origin on a handshake
        ({"origin": "http://testserver"}, True),
        ({"origin": "https://app.example.com"}, True),  # trusted below
        ({"origin": "https://app.example.com", "sec-fetch-site": "cross-site"}, True),
        ({"origin": "http://testserver", "sec-fetch-site": "same-origin"}, True),
        ({"origin": "https://evil.example"}, False),
        ({"origin": "null"}, False),
        ({"origin": "http://chat.testserver", "sec-fetch-site": "same-site"}, False),
        ({"origin": "http://testserver", "sec-fetch-site": "cross-site"}, False),
    ],
)
def test_a_websocket_from_a_foreign_origin_gets_no_session(
    fresh_store: Store, headers: dict[str, str], sees_the_session: bool, csrf: bool
) -> None:
    """Cross-site websocket hijacking: the browser sends the cookie whoever opens the socket."""
    app = websocket_app(fresh_store, trusted_origins=["https://app.example.com"], csrf=csrf)
    with TestClient(app) as client:
        client.post("/", json={"user": "ada"})
        with client.websocket_connect("/ws", headers=headers) as websocket:
            seen = websocket.receive_json()
            websocket.send_text("from the socket")
            assert websocket.receive_text() == "stored"
            handshake = dict(websocket.extra_headers or [])
        after = client.get("/").json()
    if sees_the_session:
        assert seen == {"user": "ada", "before_accept": 1}
        assert after["after_accept"] == "from the socket"
    else:
        assert seen == {"before_accept": 1}
        assert b"set-cookie" not in handshake  # no cookie to replace the visitor's own
        assert after == {"user": "ada"}  # and nothing the socket wrote was stored


def test_an_exempt_path_never_opens_a_websocket_to_other_sites(fresh_store: Store) -> None:
    """`csrf_exempt` is for cross-site form posts (SSO callbacks); a handshake under an exempt
    path from another site's page still gets no session."""
    app = websocket_app(fresh_store, csrf_exempt=["/ws"])
    with TestClient(app) as client:
        client.post("/", json={"user": "ada"})
        with client.websocket_connect("/ws", headers={"origin": "https://evil.example"}) as ws:
            seen = ws.receive_json()
            ws.send_text("x")
            ws.receive_text()
    assert seen == {"before_accept": 1}


def test_a_middleware_trusted_origin_also_opens_the_device_routes() -> None:
    async def sign_in(request: Request) -> Response:
        await login(request, "ada")
        return PlainTextResponse("in")

    app = Starlette(
        routes=[
            Route("/login", sign_in, methods=["POST"]),
            Mount("/account", routes=device_routes()),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_keys=[SECRET],
                store=MemoryStore(),
                trusted_origins=["https://app.example.com"],
            )
        ],
    )
    with TestClient(app, base_url="https://testserver") as client:
        client.post("/login")
        trusted = client.delete("/account/sessions", headers={"origin": "https://app.example.com"})
        foreign = client.delete("/account/sessions", headers={"origin": "https://evil.example"})
    assert trusted.status_code == 200
    assert foreign.status_code == 403


@pytest.mark.anyio
@pytest.mark.parametrize("store", ["memory", "redis"], indirect=True)
@pytest.mark.parametrize("path", ["/session", "/cart/7"])
async def test_a_request_leaves_nothing_for_the_cyclic_garbage_collector(
    store: Store, path: str
) -> None:
    """Plain reference counting frees everything a request made: a reference cycle (scope ->
    request session -> client -> scope, say) would hand the collector objects on every request.
    Called as raw ASGI, so no test client's own objects are counted. Not on a cluster: there a
    load is a redis-py pipeline, and every `ClusterPipeline` is a cycle of its own (3 objects)."""
    import gc

    app = build_app(store)
    cookie: list[tuple[bytes, bytes]] = []
    body = [b'{"cart": [1]}']

    async def receive() -> Message:
        return {"type": "http.request", "body": body[0], "more_body": False}

    async def send(message: Message) -> None:
        for name, value in message.get("headers", ()):
            if name == b"set-cookie" and value.startswith(b"__Host-session="):
                cookie[:] = [(b"cookie", value.split(b";")[0])]

    async def request(method: str, path: str = path) -> None:
        scope = {
            "type": "http",
            "method": method,
            "scheme": "https",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"testserver"),
                (b"user-agent", b"test"),
                (b"content-type", b"application/json"),
                (b"origin", b"https://testserver"),
                *cookie,
            ],
            "client": ("127.0.0.1", 5000),
            "server": ("testserver", 443),
        }
        await app(scope, receive, send)

    await request("POST", "/session")  # a session to read and write
    assert cookie
    body[0] = b""
    method = "POST" if path.startswith("/cart") else "GET"
    for _ in range(3):  # warm every cache up
        await request(method)
    gc.collect()
    gc.disable()
    try:
        await request(method)
        assert gc.collect() == 0
    finally:
        gc.enable()
