"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import client_for

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```py(?:thon)?\n(.*?)```", README, flags=re.DOTALL)
# The deployment examples name cluster and sentinel hosts; the tests only ever reach loopback
# (building those clients connects to nothing, but the addresses are swapped all the same).
_HOSTS = re.compile(r"\b10\.0\.0\.\d+\b")


def run_block(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(_HOSTS.sub("127.0.0.1", source), "README.md", "exec"), namespace)
    return namespace


def test_both_spellings_of_python_blocks_are_run() -> None:
    assert any("RedisCluster" in block for block in BLOCKS)  # a ```py block


def test_the_readme_has_both_quick_starts() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("source", BLOCKS)
def test_every_python_block_runs(source: str) -> None:
    namespace = run_block(source)
    assert {"app", "signer", "store"} & set(namespace)


@pytest.mark.anyio
async def test_the_fastapi_quick_start_keeps_a_cart() -> None:
    (source,) = [block for block in BLOCKS if "FastAPI()" in block]
    app = run_block(source)["app"]
    async with client_for(app) as client:
        await client.post("/cart/1")
        response = await client.post("/cart/2")
    assert response.json() == {"cart": [1, 2]}


@pytest.mark.anyio
async def test_the_account_security_example_guards_with_a_recent_sign_in() -> None:
    (source,) = [block for block in BLOCKS if "recent_auth=300" in block and "def alert" in block]
    namespace = run_block(source)
    origin = {"origin": "https://testserver"}
    async with client_for(namespace["app"]) as client:
        signed_in = await client.post("/login", json={"user": "ada"}, headers=origin)
        recent = await client.post("/email", headers=origin)
        wrong = await client.post("/confirm", json={"password": "guess"}, headers=origin)
        right = await client.post(
            "/confirm", json={"password": "correct horse battery staple"}, headers=origin
        )
    (session_cookie,) = [
        cookie
        for cookie in signed_in.headers.get_list("set-cookie")
        if cookie.startswith("__Host-session=")
    ]
    assert "max-age" not in session_cookie.lower()  # the box was left unticked
    assert recent.json() == {"changed": True}
    assert wrong.status_code == 403
    assert right.json() == {"confirmed": True}


@pytest.mark.anyio
async def test_the_fastapi_dependencies_example_guards_its_routes() -> None:
    (source,) = [block for block in BLOCKS if "from sessionward.fastapi import" in block]
    app = run_block(source)["app"]
    async with client_for(app) as client:
        visitor = await client.get("/me")
        stranger = await client.get("/hello")
        await client.post("/login")
        me = await client.get("/me")
        hello = await client.get("/hello")
        email = await client.put("/email")
        password = await client.put("/password")
    assert visitor.status_code == 401
    assert visitor.json() == {"detail": "not_signed_in"}
    assert visitor.headers["www-authenticate"] == 'Cookie cookie-name="__Host-session"'
    assert stranger.json() == {"hello": "stranger"}
    assert me.json()["user"] == "u-1"
    assert hello.json() == {"hello": "u-1"}
    assert email.json() == {"changed_for": "u-1"}
    assert password.status_code == 200
    assert "bearerAuth" in app.openapi()["components"]["securitySchemes"]


@pytest.mark.anyio
async def test_the_token_pair_example_signs_in_and_refreshes() -> None:
    (source,) = [block for block in BLOCKS if "login_bearer" in block and "token_routes" in block]
    app = run_block(source)["app"]
    async with client_for(app) as api:
        pair = (await api.post("/api/login", json={"user": "ada", "install_id": "i-1"})).json()
        body = {"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]}
        nxt = (await api.post("/token/refresh", data=body)).json()
    assert pair["expires_in"] == 900
    assert nxt["refresh_token"] != pair["refresh_token"]
