"""A small Starlette app the behavioural tests drive, and a store wrapper that records calls."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sessionward import SessionMiddleware, Store

SECRET = "test-secret-key-0123456789abcdefghijkl"
OLD_SECRET = "old-secret-key-0123456789abcdefghijklm"


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

    async def load(self, key: str, now_ms: int, idle_ttl_ms: int) -> dict[str, str] | None:
        self.calls.append("load")
        return await self.inner.load(key, now_ms, idle_ttl_ms)

    async def save(
        self,
        key: str,
        write: Mapping[str, str],
        delete: Collection[str],
        now_ms: int,
        idle_ttl_ms: int,
        *,
        create: bool,
    ) -> bool:
        self.calls.append("create" if create else "save")
        return await self.inner.save(key, write, delete, now_ms, idle_ttl_ms, create=create)

    async def delete(self, key: str) -> None:
        self.calls.append("delete")
        await self.inner.delete(key)

    async def aclose(self) -> None:
        await self.inner.aclose()
