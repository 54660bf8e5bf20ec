"""`sessionward.fastapi.device_router`: the same endpoints, documented in OpenAPI with
response models."""

from __future__ import annotations

import time

import pytest
from fastapi import FastAPI, Request

from sessionward import SessionMiddleware, Store, login, reauthenticate
from sessionward.fastapi import SessionList, device_router
from tests.apps import SECRET
from tests.conftest import Clock, client_for

pytestmark = pytest.mark.anyio


def build_fastapi(
    store: Store, clock: Clock | None = None, recent_auth: float | None = None
) -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        SessionMiddleware, store=store, secret_keys=[SECRET], clock=clock or time.time
    )
    app.include_router(device_router(recent_auth=recent_auth), prefix="/account")

    @app.post("/login/{user}")
    async def sign_in(user: str, request: Request) -> dict[str, str]:
        await login(request, user)
        return {"user": user}

    @app.post("/reauthenticate")
    async def confirm(request: Request) -> dict[str, bool]:
        await reauthenticate(request)
        return {"confirmed": True}

    return app


async def test_the_endpoints_appear_in_openapi(store: Store) -> None:
    schema = build_fastapi(store).openapi()
    paths = schema["paths"]
    assert set(paths["/account/sessions"]) == {"get", "delete"}
    assert "delete" in paths["/account/sessions/{public_id}"]
    listed = paths["/account/sessions"]["get"]["responses"]
    assert listed["200"]["content"]["application/json"]["schema"]["$ref"].endswith("SessionList")
    assert "401" in listed


async def test_the_router_lists_and_revokes(store: Store) -> None:
    app = build_fastapi(store)
    async with client_for(app) as laptop, client_for(app) as phone:
        assert (await laptop.get("/account/sessions")).status_code == 401
        await laptop.post("/login/ada")
        await phone.post("/login/ada")
        listed = await laptop.get("/account/sessions")
        sessions = SessionList.model_validate(listed.json()).sessions
        assert [session.current for session in sessions].count(True) == 1
        other = next(session for session in sessions if not session.current)
        origin = {"origin": "https://testserver"}
        revoked = await laptop.delete(f"/account/sessions/{other.id}", headers=origin)
        assert revoked.status_code == 204
        assert (await phone.get("/account/sessions")).status_code == 401
        again = await laptop.delete("/account/sessions", headers=origin)
        assert again.json() == {"revoked": 0}


async def test_the_router_asks_for_a_recent_sign_in_to_end_others(
    store: Store, clock: Clock
) -> None:
    app = build_fastapi(store, clock, recent_auth=60)
    origin = {"origin": "https://testserver"}
    async with client_for(app) as laptop, client_for(app) as phone:
        await phone.post("/login/ada")
        await laptop.post("/login/ada")
        clock.advance(61)
        refused = await laptop.delete("/account/sessions", headers=origin)
        await laptop.post("/reauthenticate", headers=origin)
        allowed = await laptop.delete("/account/sessions", headers=origin)
    assert refused.status_code == 403
    assert refused.json()["error"] == "reauthentication_required"
    assert allowed.json() == {"revoked": 1}
    documented = app.openapi()["paths"]["/account/sessions"]["delete"]["responses"]["403"]
    assert "reauthentication_required" in documented["description"]
