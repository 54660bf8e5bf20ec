"""examples/fastapi_app.py runs as written, driven the way the README's testing recipe says:
`TestClient(app, base_url="https://testserver")`, since the session cookie is Secure."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sessionward import ConfigurationError
from tests.apps import SECRET
from tests.conftest import Clock, serve_example

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = {"password": "correct horse battery staple"}
ADA = {"name": "ada", **PASSWORD}
JWT_KEY = "an-hmac-key-for-the-example-0123456789"


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("SESSIONWARD_SECRET_KEYS", SECRET)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return importlib.import_module("examples.fastapi_app")


CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def browser(app: FastAPI) -> TestClient:
    return TestClient(app, base_url="https://testserver", headers={"user-agent": CHROME})


@pytest.fixture
def app(example: ModuleType, clock: Clock) -> FastAPI:
    built: FastAPI = example.create_app(
        {"SESSIONWARD_SECRET_KEYS": SECRET, "SESSIONWARD_JWT_KEY": JWT_KEY}, clock=clock
    )
    return built


def test_sign_in_see_who_and_sign_out(app: FastAPI) -> None:
    with browser(app) as client:
        visitor = client.get("/me")
        wrong = client.post("/login", json={"name": "ada", "password": "guess"})
        assert client.post("/login", json=ADA).json() == {"user": "ada"}
        me = client.get("/me").json()
        assert client.post("/logout").status_code == 204
        after = client.get("/me")
    assert visitor.status_code == after.status_code == 401
    assert visitor.json() == {"detail": "not_signed_in"}
    assert visitor.headers["www-authenticate"].startswith("Bearer, Cookie")
    assert wrong.status_code == 400
    assert (me["user"], me["transport"], me["email"]) == ("ada", "cookie", None)
    assert me["device"] == "Chrome 131 on macOS"


def test_sensitive_routes_want_a_recent_password(app: FastAPI, clock: Clock) -> None:
    with browser(app) as client:
        client.post("/login", json=ADA)
        assert client.put("/email", json={"email": "ada@example.com"}).status_code == 200
        clock.advance(301)
        stale = [client.put("/email", json={"email": "a@b.c"}), client.delete("/account")]
        wrong = client.post("/reauthenticate", json={"password": "guess"})
        confirmed = client.post("/reauthenticate", json=PASSWORD)
        changed = client.put("/email", json={"email": "ada@example.org"})
        email = client.get("/me").json()["email"]
    for response in stale:
        assert response.status_code == 403
        assert response.json() == {"detail": "reauthentication_required"}
    assert wrong.status_code == 400
    assert confirmed.json() == {"confirmed": True, "access_token": None}
    assert changed.json() == {"email": "ada@example.org"}
    assert email == "ada@example.org"


def test_the_device_list_signs_another_device_out(app: FastAPI) -> None:
    with browser(app) as laptop, browser(app) as phone:
        laptop.post("/login", json=ADA)
        phone.post("/login", json=ADA)
        sessions = laptop.get("/account/sessions").json()["sessions"]
        (other,) = [session["id"] for session in sessions if not session["current"]]
        assert laptop.delete(f"/account/sessions/{other}").status_code == 204
        assert phone.get("/me").status_code == 401
        assert laptop.get("/me").status_code == 200


def test_closing_the_account_signs_out_everywhere(app: FastAPI) -> None:
    with browser(app) as laptop, browser(app) as phone:
        laptop.post("/login", json=ADA)
        phone.post("/login", json=ADA)
        assert laptop.delete("/account").status_code == 204
        assert laptop.get("/me").status_code == phone.get("/me").status_code == 401


def test_an_api_client_uses_a_bearer_token(app: FastAPI, clock: Clock) -> None:
    with browser(app) as client:
        token = client.post("/token", json=ADA).json()["access_token"]
        client.headers["authorization"] = f"Bearer {token}"
        me = client.get("/me").json()
        clock.advance(301)
        refused = client.put("/email", json={"email": "ada@example.com"})
        renewed = client.post("/reauthenticate", json=PASSWORD).json()["access_token"]
        old_token = client.get("/me")
        client.headers["authorization"] = f"Bearer {renewed}"
        changed = client.put("/email", json={"email": "ada@example.com"})
        assert not client.cookies
    assert (me["user"], me["transport"]) == ("ada", "bearer")
    assert refused.json() == {"detail": "reauthentication_required"}
    assert old_token.status_code == 401  # the old token named the old session id
    assert changed.json() == {"email": "ada@example.com"}


def test_docs_offer_the_bearer_token_when_the_app_takes_one(
    app: FastAPI, example: ModuleType
) -> None:
    schema = app.openapi()
    assert set(schema["components"]["securitySchemes"]) == {"cookieAuth", "bearerAuth"}
    for path, method in [("/me", "get"), ("/email", "put"), ("/account/sessions", "get")]:
        assert schema["paths"][path][method]["security"] == [
            {"cookieAuth": []},
            {"bearerAuth": []},
        ]
    cookies_only = example.create_app({"SESSIONWARD_SECRET_KEYS": SECRET}).openapi()
    assert "/token" not in cookies_only["paths"]


def test_a_missing_key_stops_start_up(example: ModuleType) -> None:
    with pytest.raises(ConfigurationError, match="secret_keys is empty"):
        example.create_app({})
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
    result = subprocess.run(
        [sys.executable, "examples/fastapi_app.py"],
        cwd=ROOT,
        env={**environment, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "set SESSIONWARD_SECRET_KEYS" in result.stderr


@pytest.fixture
def served() -> Iterator[str]:
    """examples/fastapi_app.py under uvicorn on a loopback port, with its in-memory store."""
    environment = {"SESSIONWARD_SECRET_KEYS": SECRET, "PYTHONPATH": str(ROOT / "src")}
    environment["REDIS_URL"] = ""  # its MemoryStore, whatever this process was given
    with serve_example("examples/fastapi_app.py", environment, "/openapi.json") as base_url:
        yield base_url


def test_it_runs_under_uvicorn(served: str) -> None:
    docs = httpx.get(served + "/docs")
    me = httpx.get(served + "/me")
    assert "swagger-ui" in docs.text
    assert me.status_code == 401
    assert me.json() == {"detail": "not_signed_in"}
