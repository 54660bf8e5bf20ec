"""Many requests on one session at once: merges, last-writer-wins, and sign-in races."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sessionward import Store, UserSessions
from tests.apps import COOKIE, build_app
from tests.conftest import client_for

pytestmark = pytest.mark.anyio


async def test_200_concurrent_requests_setting_different_keys_all_persist(store: Store) -> None:
    async with client_for(build_app(store)) as client:
        await client.post("/session", json={"start": 0})
        responses = await asyncio.gather(
            *(client.post("/session", json={f"key-{n}": n}) for n in range(200))
        )
        final = (await client.get("/session")).json()
    assert {response.status_code for response in responses} == {200}
    assert final == {"start": 0, **{f"key-{n}": n for n in range(200)}}


async def test_concurrent_writes_to_one_key_end_with_one_of_the_values(store: Store) -> None:
    """Same-key writes are last-writer-wins: the value is whole, never a mix."""
    async with client_for(build_app(store)) as client:
        await client.post("/session", json={"cart": []})
        carts = [[n, n, n] for n in range(50)]
        await asyncio.gather(*(client.post("/session", json={"cart": cart}) for cart in carts))
        final = (await client.get("/session")).json()
    assert final["cart"] in carts


async def test_sign_in_racing_ordinary_requests_leaves_one_indexed_session(store: Store) -> None:
    app = build_app(store)
    async with client_for(app) as client:
        await client.post("/session", json={"cart": [1]})
        old_token = client.cookies[COOKIE]
        old = {"cookie": f"{COOKIE}={old_token}"}

        def ordinary(n: int) -> Awaitable[httpx.Response]:
            return client.post("/session", json={f"k{n}": n}, headers=old)

        results = await asyncio.gather(
            *(ordinary(n) for n in range(20)),
            client.post("/login/ada", headers=old),
            *(ordinary(n) for n in range(20, 40)),
        )
        assert {response.status_code for response in results} == {200}
        new_token = results[20].cookies[COOKIE]
        after_old = await client.get("/me", headers=old)
        after_new = await client.get("/me", headers={"cookie": f"{COOKIE}={new_token}"})
    users = UserSessions(store, idle_ttl=3600, absolute_ttl=7200)
    listed = await users.list_sessions("ada")
    assert [info.public_id for info in listed] == [after_new.json()["id"]]
    assert after_new.json()["user_id"] == "ada"
    assert after_old.json() is None or after_old.json()["user_id"] is None


async def test_concurrent_writes_cannot_pass_max_session_bytes_together(store: Store) -> None:
    """20 requests each adding 9 KB under a 10 KB limit: each alone is under it, together
    they are not. One gets in; the rest are refused whole; the session stays usable."""
    app = build_app(store, max_session_bytes=10_000)
    loaded, gate = asyncio.Event(), asyncio.Event()
    waiting = 0

    async def add_big(request: Request) -> Response:
        nonlocal waiting
        request.session.get("start")  # loaded before any of them saves
        waiting += 1
        if waiting == 20:
            loaded.set()
        await gate.wait()
        request.session[request.path_params["key"]] = "x" * 9000
        return PlainTextResponse("added")

    app.router.routes.insert(0, Route("/big/{key}", add_big, methods=["POST"]))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        await client.post("/session", json={"start": 0})
        requests = [asyncio.ensure_future(client.post(f"/big/k{n}")) for n in range(20)]
        await loaded.wait()
        gate.set()
        statuses = sorted(response.status_code for response in await asyncio.gather(*requests))
        after = (await client.get("/session")).json()
        still_usable = await client.post("/session", json={"small": 1})
    assert statuses == [200] + [500] * 19
    assert sum(1 for key in after if key.startswith("k")) == 1
    assert still_usable.status_code == 200
