"""The `sessionward` command line against a real Redis: each command, its JSON, and every
kind of bad input answered with one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis_asyncio
from click.testing import CliRunner, Result
from redis.asyncio.cluster import RedisCluster

from sessionward import RedisStore
from sessionward.cli.commands import cli
from sessionward.testing import login_client
from tests.apps import CHROME, IPHONE, SECRET, build_app
from tests.cli_app import BEARER
from tests.conftest import ROOT
from tests.keyspace import expected, write_sessions
from tests.redis_server import free_port

CARD = "4111-never-printed"


@dataclass
class Population:
    ada_mac: str  # cookie values
    ada_phone: str
    bob: str
    visitor: str
    bearer: str  # ada's app on her iPhone


def client_for(app: object, agent: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    headers = {"user-agent": agent}
    return httpx.AsyncClient(transport=transport, base_url="https://testserver", headers=headers)


async def _populate(redis_url: str) -> Population:
    client = redis_asyncio.Redis.from_url(redis_url)
    await client.flushdb()
    app = build_app(RedisStore(client), bearer=BEARER, telemetry=False)
    cookies: list[str] = []
    for user, agent in (("ada", CHROME), ("ada", IPHONE), ("bob", CHROME)):
        async with client_for(app, agent) as browser:
            await login_client(browser, app, user)
            cookies.append(browser.cookies["__Host-session"])
    async with client_for(app, "curl/8.5.0") as visitor:
        await visitor.post("/session", json={"cart": [1, 2], "card": CARD})
        cookies.append(visitor.cookies["__Host-session"])
    async with client_for(app, IPHONE) as phone:
        pair = await login_client(phone, app, "ada", transport="bearer")
    await client.aclose()
    assert pair is not None
    return Population(cookies[0], cookies[1], cookies[2], cookies[3], pair.access_token)


@pytest.fixture
def population(redis_url: str) -> Population:
    return asyncio.run(_populate(redis_url))


@pytest.fixture
def target(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """`--redis-url` with the key in the environment; `tests.cli_app` imported afresh."""
    monkeypatch.setenv("SESSIONWARD_SECRET_KEYS", SECRET)
    monkeypatch.setenv("SESSIONWARD_TEST_REDIS_URL", redis_url)
    for name in ("SESSIONWARD_APP", "SESSIONWARD_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    sys.modules.pop("tests.cli_app", None)
    yield ["--redis-url", redis_url]
    sys.modules.pop("tests.cli_app", None)


def invoke(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin)


def one_line_failure(result: Result) -> str:
    """The failure's message: exit status 1, one line on standard error, no traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_sessions_lists_a_users_devices_most_recent_first(
    population: Population, target: list[str]
) -> None:
    result = invoke("sessions", "ada", *target)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "3 live session(s) of ada"
    assert lines[1].split() == [
        "device",
        "IP",
        "place",
        "last",
        "seen",
        "expires",
        "transport",
        "public",
        "id",
    ]
    assert "Chrome 131 on macOS" in result.stdout
    assert "Safari on iPhone" in result.stdout
    assert sum("bearer" in line for line in lines) == 1
    listed = json.loads(invoke("sessions", "ada", "--json", *target).stdout)
    assert [row["last_seen_at"] for row in listed] == sorted(
        (row["last_seen_at"] for row in listed), reverse=True
    )
    assert {row["transport"] for row in listed} == {"cookie", "bearer"}
    assert all(len(row["id"]) == 64 and "idle_deadline" in row for row in listed)


def test_sessions_through_the_apps_own_configuration(
    population: Population, target: list[str]
) -> None:
    for attribute in ("app", "middleware", "settings"):  # and each as uvicorn finds an app
        result = invoke("sessions", "bob", "--app", f"tests.cli_app:{attribute}", "--json")
        assert result.exit_code == 0, result.output
        assert [row["label"] for row in json.loads(result.stdout)] == ["Chrome 131 on macOS"]
    both = invoke("sessions", "bob", "--app", "tests.cli_app:app", *target)
    assert both.exit_code == 2
    assert "give --app or --redis-url, not both" in both.stderr


def test_revoke_asks_first_then_signs_the_user_out_everywhere_but_one(
    population: Population, target: list[str]
) -> None:
    declined = invoke("revoke", "ada", *target, stdin="n\n")
    assert declined.exit_code == 1
    assert "Aborted" in declined.output
    listed = json.loads(invoke("sessions", "ada", "--json", *target).stdout)
    assert len(listed) == 3
    keep = listed[0]["id"]
    result = invoke("revoke", "ada", "--except", keep, "--yes", *target)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"Signed ada out of 2 session(s) except {keep}."
    assert [
        row["id"] for row in json.loads(invoke("sessions", "ada", "--json", *target).stdout)
    ] == [keep]
    again = json.loads(invoke("revoke", "ada", "--yes", "--json", *target).stdout)
    assert again == {"user_id": "ada", "revoked": 1, "kept": None}


def test_end_signs_out_one_session(population: Population, target: list[str]) -> None:
    (bob,) = json.loads(invoke("sessions", "bob", "--json", *target).stdout)
    result = invoke("end", bob["id"], *target, stdin="y\n")
    assert result.exit_code == 0, result.output
    assert f"Signed out session {bob['id']}." in result.stdout
    assert json.loads(invoke("sessions", "bob", "--json", *target).stdout) == []
    gone = invoke("end", bob["id"], "--yes", *target)
    assert gone.exit_code == 1
    assert gone.stderr.strip() == f"No live session {bob['id']}."


def test_inspect_verifies_a_cookie_and_shows_its_session_but_not_its_data(
    population: Population, target: list[str]
) -> None:
    result = invoke("inspect", *target, stdin=f"__Host-session={population.visitor}\n")
    assert result.exit_code == 0, result.output
    assert "secret_keys[0] (the signing key)" in result.stdout
    assert "data_keys:    card, cart" in result.stdout
    assert CARD not in result.stdout
    assert SECRET not in result.stdout
    shown = json.loads(
        invoke("inspect", "--data", "--json", *target, stdin=population.visitor).stdout
    )
    assert shown["kind"] == "cookie"
    assert shown["key_position"] == 0
    assert shown["session"]["live"] is True
    assert shown["session"]["data"]["card"] == CARD
    assert "session_id" not in shown


def test_inspect_names_the_older_key_that_verified_a_cookie(
    population: Population, target: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONWARD_SECRET_KEYS", f"{'n' * 40}, {SECRET}")
    shown = json.loads(invoke("inspect", "--json", *target, stdin=population.bob).stdout)
    assert shown["key_position"] == 1
    assert shown["session"]["user_id"] == "bob"
    assert shown["session"]["last_sign_in"] == shown["session"]["created_at"]


def test_inspect_verifies_a_bearer_token_with_the_apps_keys(
    population: Population, target: list[str]
) -> None:
    stdin = f"Authorization: Bearer {population.bearer}\n"
    result = invoke("inspect", "--app", "tests.cli_app:app", "--json", stdin=stdin)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["verified_by"] == "key id 'mobile-2026'"
    assert shown["user_id"] == "ada"
    assert shown["issued_at"] < shown["expires_at"]
    assert shown["expired"] is False
    assert shown["session"]["transport"] == "bearer"
    assert shown["session"]["live"] is True


def test_inspect_refuses_tokens_signed_with_another_key_in_one_line(
    population: Population, target: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONWARD_SECRET_KEYS", "x" * 40)
    line = one_line_failure(invoke("inspect", *target, stdin=population.ada_mac))
    assert line == (
        "Error: not one of ours: no configured key verifies this session cookie (bad_signature)"
    )
    forged = population.bearer[:-4] + "AAAA"
    line = one_line_failure(invoke("inspect", "--app", "tests.cli_app:app", stdin=forged))
    assert "not one of ours" in line
    assert one_line_failure(invoke("inspect", *target, stdin="")).startswith("Error: nothing")


def test_check_shows_the_configuration_and_the_server(
    population: Population, target: list[str]
) -> None:
    result = invoke("check", *target)
    assert result.exit_code == 0, result.output
    assert f"1 ({len(SECRET)} bytes; the first signs)" in result.stdout
    assert "path=/; httponly; samesite=lax; secure" in result.stdout
    assert "mode:       standalone" in result.stdout
    assert SECRET not in result.stdout
    report = json.loads(invoke("check", "--json", *target).stdout)
    assert report["redis"]["mode"] == "standalone"
    assert report["redis"]["scripts_loaded"]["save"] is True  # the sign-ins saved
    assert abs(report["redis"]["clock_skew_ms"]) < 1000
    assert report["configuration"]["idle_ttl"] == "14d"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--app", "tests.nowhere:app"], "cannot import 'tests.nowhere'"),
        (["--app", "tests.cli_app:nothing"], "tests.cli_app has no 'nothing'"),
        (["--app", "tests.cli_app:plain"], "Starlette with no SessionMiddleware"),
        (["--app", "tests.cli_app:in_memory"], "MemoryStore, in its own process"),
        (["--redis-url", "redis://127.0.0.1:{port}/0"], "cannot reach the session store"),
    ],
)
def test_bad_targets_fail_in_one_line(
    target: list[str], arguments: list[str], message: str
) -> None:
    arguments = [argument.format(port=free_port()) for argument in arguments]
    line = one_line_failure(invoke("sessions", "ada", *arguments))
    assert message in line


def test_a_missing_key_fails_in_one_line(
    population: Population, target: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SESSIONWARD_SECRET_KEYS")
    line = one_line_failure(invoke("inspect", *target, stdin=population.bob))
    assert line == "Error: signing cookies needs secret_keys: pass SessionConfig(secret_keys=[...])"
    monkeypatch.setenv("SESSIONWARD_SECRET_KEYS", "short")
    assert "is 5 bytes long" in one_line_failure(invoke("check", *target))


def test_no_target_is_a_usage_error(target: list[str]) -> None:
    result = invoke("sessions", "ada")
    assert result.exit_code == 2
    assert "--app module:attribute" in result.stderr


def test_without_click_or_rich_the_command_says_what_to_install() -> None:
    hide = "import sys; sys.modules['click'] = None; from sessionward.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", hide], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert result.returncode == 1
    assert result.stderr == (
        "sessionward: the sessionward command line needs Click and rich: "
        'pip install "sessionward[cli]"\n'
    )


def test_the_entry_point_imports_nothing_heavy_before_its_check() -> None:
    probe = (
        "import sys, sessionward.cli; "
        "print(sorted(m for m in ('click', 'rich', 'redis', 'starlette', 'sessionward.config') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"
    helped = subprocess.run(
        [sys.executable, "-m", "sessionward.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "100"},
    )
    for command in ("sessions", "revoke", "end", "inspect", "stats", "check"):
        assert f"  {command} " in helped.stdout


# -- stats: a walk over every session ----------------------------------------------------


def _write(url: str, count: int, *, cluster: bool = False) -> None:
    async def work() -> None:
        client: Any
        if cluster:
            client = RedisCluster.from_url(url)
            await client.flushall(target_nodes=RedisCluster.PRIMARIES)
        else:
            client = redis_asyncio.Redis.from_url(url)
            await client.flushdb()
        await write_sessions(client, count, int(time.time() * 1000), batch=500)
        await client.aclose()

    asyncio.run(work())


def _counts(report: dict[str, Any]) -> dict[str, Any]:
    return {name: report[name] for name in ("live", "signed_in", "transports", "kinds")}


def test_stats_counts_a_keyspace_and_measures_a_sample(redis_url: str, target: list[str]) -> None:
    _write(redis_url, 1500)
    result = invoke("stats", "--json", "--count", "200", "--sample", "50", *target)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert _counts(report) == expected(1500)
    assert report["finished"] is True
    assert report["cursor"] == "0"
    assert report["pages"] > 1
    assert sum(report["idle"].values()) == 1500
    assert set(report["idle"]) <= {"1d-7d", "7d-30d"}  # idle TTL 14 days, seen up to 10 ago
    assert report["memory"]["sampled"] == 50
    assert 100 < report["memory"]["mean_bytes"] < 2000
    plain = invoke("stats", "--sample", "5", *target)
    assert "live:      1500" in plain.stdout
    assert "anonymous: 500" in plain.stdout
    assert "walking" not in plain.stdout  # no progress bar when piped


def test_stats_stops_saves_its_place_and_resumes(
    redis_url: str, target: list[str], tmp_path: Path
) -> None:
    _write(redis_url, 600)
    state = tmp_path / "walk.json"
    stopped = invoke(
        "stats", "--json", "--count", "100", "--max-pages", "2", "--state", str(state), *target
    )
    assert stopped.exit_code == 130
    assert f"resume with: sessionward stats --resume {state}" in stopped.stderr
    partial = json.loads(stopped.stdout)
    assert partial["finished"] is False
    assert partial["live"] < 600
    resumed = invoke("stats", "--json", "--count", "100", "--resume", str(state), *target)
    assert resumed.exit_code == 0, resumed.output
    assert _counts(json.loads(resumed.stdout)) == expected(600)
    state.write_text("{not json", encoding="utf-8")
    line = one_line_failure(invoke("stats", "--resume", str(state), *target))
    assert line.startswith(f"Error: --resume {state}: not a stats state file")


def test_stats_walks_every_primary_of_a_cluster(redis_cluster_url: str, target: list[str]) -> None:
    _write(redis_cluster_url, 900, cluster=True)
    arguments = ["--redis-url", redis_cluster_url, "--cluster"]
    result = invoke("stats", "--json", "--count", "50", "--sample", "30", *arguments)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert _counts(report) == expected(900)
    assert report["memory"]["sampled"] == 30
    check = json.loads(invoke("check", "--json", *arguments).stdout)
    assert check["redis"]["mode"] == "cluster"
    assert check["redis"]["primaries"] == 3


def test_inspect_on_an_app_that_keeps_sessions_in_memory_says_so(
    population: Population, target: list[str]
) -> None:
    arguments = ["inspect", "--app", "tests.cli_app:in_memory"]
    line = one_line_failure(invoke(*arguments, stdin=population.bob))
    assert "the token is ours (secret_keys[0] (the signing key))" in line
    assert "MemoryStore, in its own process" in line
