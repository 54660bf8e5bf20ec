"""A small Starlette app the behavioural tests drive, and a store wrapper that records calls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from sessionward import (
    SessionMiddleware,
    Store,
    device_routes,
    get_session,
    login,
    logout,
    refresh_token,
)
from sessionward.stores import DeviceEntry

SECRET = "test-secret-key-0123456789abcdefghijkl"
COOKIE = "__Host-session"  # the default name of a Secure cookie for the whole site
OLD_SECRET = "old-secret-key-0123456789abcdefghijklm"
# The user-agents tests sign in with: a desktop Chrome and an iPhone's Safari.
CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


async def read_session(request: Request) -> Response:
    return JSONResponse(dict(request.session))


async def merge_session(request: Request) -> Response:
    request.session.update(await request.json())
    return JSONResponse(dict(request.session))


async def clear_session(request: Request) -> Response:
    request.session.clear()
    return PlainTextResponse("cleared")


async def drop_key(request: Request) -> Response:
    request.session.pop(request.path_params["key"], None)
    return JSONResponse(dict(request.session))


async def append_to_cart(request: Request) -> Response:
    request.session["cart"].append(int(request.path_params["item"]))
    return PlainTextResponse("appended")


async def untouched(request: Request) -> Response:
    return PlainTextResponse("no session used")


async def write_after_gate(request: Request) -> Response:
    """Load the session, wait until the test opens the gate, then write a key."""
    request.app.state.loaded.set()
    await request.app.state.gate.wait()
    request.session[request.path_params["key"]] = "late"
    return PlainTextResponse("written")


async def sign_in(request: Request) -> Response:
    await login(request, request.path_params["user"])
    return JSONResponse(dict(request.session))


async def sign_out(request: Request) -> Response:
    await logout(request)
    return PlainTextResponse("signed out")


async def whoami(request: Request) -> Response:
    info = get_session(request)
    if info is None:
        return JSONResponse(None)
    return JSONResponse({**info.to_dict(), "user_id": info.user_id})


async def api_sign_in(request: Request) -> Response:
    token = await login(request, request.path_params["user"], transport="bearer")
    return JSONResponse({"token": token})


async def api_refresh(request: Request) -> Response:
    return JSONResponse({"token": await refresh_token(request)})


def build_app(store: Store, **options: Any) -> Starlette:
    options.setdefault("secret_keys", [SECRET])
    app = Starlette(
        routes=[
            Route("/session", read_session, methods=["GET"]),
            Route("/session", merge_session, methods=["POST"]),
            Route("/session", clear_session, methods=["DELETE"]),
            Route("/session/{key}", drop_key, methods=["DELETE"]),
            Route("/cart/{item}", append_to_cart, methods=["POST"]),
            Route("/untouched", untouched),
            Route("/gated/{key}", write_after_gate, methods=["POST"]),
            Route("/login/{user}", sign_in, methods=["POST"]),
            Route("/logout", sign_out, methods=["POST"]),
            Route("/me", whoami),
            Route("/api/login/{user}", api_sign_in, methods=["POST"]),
            Route("/api/refresh", api_refresh, methods=["POST"]),
            Mount("/account", routes=device_routes()),
        ],
        middleware=[Middleware(SessionMiddleware, store=store, **options)],
    )
    app.state.loaded = asyncio.Event()
    app.state.gate = asyncio.Event()
    return app


class RecordingStore:
    """Passes every call to a real store and records which calls were made."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.calls: list[str] = []

    async def load(
        self, key: str, now_ms: int, idle_ttl_ms: int, *, touch: bool = True
    ) -> dict[str, str] | None:
        self.calls.append("load" if touch else "load untouched")
        return await self.inner.load(key, now_ms, idle_ttl_ms, touch=touch)

    async def save(
        self,
        key: str,
        write: Mapping[str, str],
        delete: Collection[str],
        now_ms: int,
        idle_ttl_ms: int,
        *,
        create: bool,
        max_bytes: int | None = None,
        touch: bool = True,
    ) -> bool:
        self.calls.append("create" if create else "save" if touch else "save untouched")
        return await self.inner.save(
            key,
            write,
            delete,
            now_ms,
            idle_ttl_ms,
            create=create,
            max_bytes=max_bytes,
            touch=touch,
        )

    async def delete(self, *keys: str) -> int | None:
        self.calls.append("delete")
        return await self.inner.delete(*keys)

    async def read_records(self, keys: Sequence[str]) -> list[dict[str, str] | None]:
        self.calls.append("read_records")
        return await self.inner.read_records(keys)

    async def index_add(self, user_id: str, key: str, score_ms: int, ttl_ms: int) -> None:
        self.calls.append("index_add")
        await self.inner.index_add(user_id, key, score_ms, ttl_ms)

    async def index_read(self, user_id: str) -> dict[str, int]:
        self.calls.append("index_read")
        return await self.inner.index_read(user_id)

    async def index_update(
        self, user_id: str, scores: Mapping[str, int], remove: Collection[str]
    ) -> None:
        self.calls.append("index_update")
        await self.inner.index_update(user_id, scores, remove)

    async def device_seen(
        self,
        user_id: str,
        hashes: Sequence[str],
        label: str,
        location: str | None,
        now_ms: int,
        ttl_ms: int,
        max_devices: int,
    ) -> tuple[bool, bool, bool]:
        self.calls.append("device_seen")
        return await self.inner.device_seen(
            user_id, hashes, label, location, now_ms, ttl_ms, max_devices
        )

    async def devices_read(self, user_id: str) -> list[DeviceEntry]:
        self.calls.append("devices_read")
        return await self.inner.devices_read(user_id)

    async def devices_forget(self, user_id: str, hashes: Collection[str] | None) -> int:
        self.calls.append("devices_forget")
        return await self.inner.devices_forget(user_id, hashes)

    async def refresh(
        self,
        key: str,
        now_ms: int,
        idle_ttl_ms: int,
        presented: str,
        chains: Sequence[Sequence[str]],
        grace_ms: int,
        client: str,
    ) -> tuple[int, int, dict[str, str] | None]:
        self.calls.append("refresh")
        return await self.inner.refresh(
            key, now_ms, idle_ttl_ms, presented, chains, grace_ms, client
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


BUDGET = {"anonymous": 0, "read-only": 1, "untouched": 1, "modifying": 2}


async def round_trips_by_request(
    client: httpx.AsyncClient, round_trips: Callable[[], int]
) -> dict[str, int]:
    """Round trips each kind of request costs, once the scripts are loaded and a session set."""
    await client.post("/session", json={"a": 1})  # loads the scripts, opens connections
    await client.post("/session", json={"a": 2})
    spent = {}
    for name, method, path, options in [
        ("anonymous", "GET", "/session", {"headers": {"cookie": ""}}),
        ("read-only", "GET", "/session", {}),
        ("untouched", "GET", "/untouched", {}),
        ("modifying", "POST", "/session", {"json": {"a": 3}}),
    ]:
        before = round_trips()
        response = await client.request(method, path, **options)  # type: ignore[arg-type]
        assert response.status_code == 200
        spent[name] = round_trips() - before
    return spent
