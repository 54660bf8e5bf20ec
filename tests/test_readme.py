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


def test_the_readme_is_a_landing_page() -> None:
    """The guides live in docs/; the README says what it is and where to read on."""
    assert len(README.splitlines()) <= 250
    assert "![" not in README  # the package index shows no image the sdist does not carry


def test_the_readme_has_both_quick_starts() -> None:
    assert any("Starlette(" in block for block in BLOCKS)
    assert any("FastAPI()" in block for block in BLOCKS)


def test_every_link_into_the_repository_resolves() -> None:
    root = Path(__file__).resolve().parent.parent
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README):
        assert (root / target).exists(), target


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
async def test_the_device_list_example_signs_in_and_lists_this_device() -> None:
    (source,) = [block for block in BLOCKS if "device_routes()" in block]
    app = run_block(source)["app"]
    origin = {"origin": "https://testserver"}
    async with client_for(app) as client:
        visitor = await client.get("/account/sessions")
        signed_in = await client.post("/login", json={"user": "ada"}, headers=origin)
        listed = await client.get("/account/sessions")
        await client.post("/logout", headers=origin)
        after = await client.get("/account/sessions")
    assert visitor.status_code == 401
    assert signed_in.json() == {"signed_in": "ada"}
    (this_device,) = listed.json()["sessions"]
    assert this_device["current"] is True
    assert after.status_code == 401
