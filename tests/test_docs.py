"""The documentation site (docs/) runs as written, and its API reference misses no public name.

`mkdocs build --strict` (in .ci/run) checks links, anchors and that every `::: name` resolves;
these tests check what a build cannot: that the code on each page runs and does what the
page says, and that the reference covers every public name.
"""

from __future__ import annotations

import importlib
import inspect
import re
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import redis.asyncio as redis_asyncio
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.routing import Route

import sessionward
import sessionward.fastapi
import sessionward.testing
from sessionward import SessionMiddleware
from sessionward.testing import session_middleware
from tests.apps import COOKIE, OLD_SECRET, SECRET
from tests.conftest import client_for

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
# A fenced block, possibly indented (inside a list or an admonition), with an optional title.
_FENCE = re.compile(r"^( *)```([\w-]*)[^\n]*\n(.*?)^\1```", flags=re.MULTILINE | re.DOTALL)
# The deployment examples name cluster and sentinel hosts; the tests only ever reach loopback
# (building those clients connects to nothing, but the addresses are swapped all the same).
# A network such as 10.0.0.0/8 in `trusted_proxies` is left as it is.
_HOSTS = re.compile(r"\b10\.0\.0\.\d+\b(?!/)")
PUBLIC_MODULES = (sessionward, sessionward.fastapi, sessionward.testing)


def page_name(page: Path) -> str:
    return page.relative_to(DOCS).as_posix()


def fences(page: Path) -> list[tuple[str, str]]:
    """Each fenced block of a page: its language and its dedented source."""
    text = page.read_text(encoding="utf-8")
    return [(language, textwrap.dedent(body)) for _, language, body in _FENCE.findall(text)]


def python_blocks(page: Path) -> list[str]:
    return [source for language, source in fences(page) if language in ("python", "py")]


def blocks_of(name: str) -> list[str]:
    return python_blocks(DOCS / name)


BLOCKS = [
    pytest.param(source, page_name(page), id=f"{page_name(page)}:{number}")
    for page in PAGES
    for number, source in enumerate(python_blocks(page), start=1)
]


def run_block(source: str, page: str) -> dict[str, Any]:
    """Run a page's block as a module of its own; its globals, for a test to drive."""
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(_HOSTS.sub("127.0.0.1", source), f"docs/{page}", "exec"), namespace)
    return namespace


def only(blocks: list[str], *marks: str) -> str:
    """The one block that contains every mark."""
    (source,) = [block for block in blocks if all(mark in block for mark in marks)]
    return source


# -- every block runs --------------------------------------------------------------------


@pytest.mark.parametrize(("source", "page"), BLOCKS)
def test_every_python_block_runs(source: str, page: str) -> None:
    if "starsessions" in source:  # the "before" of the migration page: the bench extra
        pytest.importorskip("starsessions")
    namespace = run_block(source, page)
    if "app" in namespace and re.search(
        r"^from sessionward import[^)]*\bSessionMiddleware\b", source, re.M
    ):
        # Starlette builds its middleware at the first request; build it now, so that the
        # page's settings are checked even where the block sends no request.
        session_middleware(namespace["app"])


def test_every_page_but_the_reference_shows_code() -> None:
    guides = [page for page in PAGES if not page_name(page).startswith("reference/")]
    assert len(guides) >= 11
    assert [page_name(page) for page in guides if not python_blocks(page)] == []


def test_code_is_fenced_as_python_or_shell() -> None:
    # A block in another fence would be neither run here nor formatted by ruff.
    languages = {language for page in PAGES for language, _ in fences(page)}
    assert languages <= {"python", "py", "sh"}


def test_the_performance_page_shows_the_benchmark_chart() -> None:
    assert "](assets/results.svg)" in (DOCS / "performance.md").read_text(encoding="utf-8")
    chart = DOCS / "assets" / "results.svg"
    assert chart.read_bytes().startswith(b"<?xml")
    original = ROOT / "benchmarks" / "results.svg"
    if not original.exists():  # the sdist carries docs/, not benchmarks/
        return
    # A copy, since MkDocs serves only docs/: after a benchmark run,
    # `cp benchmarks/results.svg docs/assets/results.svg`.
    assert chart.read_bytes() == original.read_bytes()


# -- the API reference -------------------------------------------------------------------


def reference_directives() -> list[str]:
    return [
        match
        for page in sorted((DOCS / "reference").glob("*.md"))
        for match in re.findall(r"^::: *([\w.]+) *$", page.read_text(encoding="utf-8"), re.M)
    ]


def resolve(path: str) -> object:
    """The object a `::: dotted.path` directive names: the longest importable module, then
    attributes."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise LookupError(path)


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda module: module.__name__)
def test_the_reference_documents_every_public_name(module: ModuleType) -> None:
    documented = set(reference_directives())
    missing = [name for name in module.__all__ if f"{module.__name__}.{name}" not in documented]
    assert missing == []


def test_every_reference_directive_names_a_real_object() -> None:
    directives = reference_directives()
    assert len(directives) == len(set(directives))  # each name once
    for path in directives:
        assert resolve(path) is not None


def test_the_settings_table_lists_every_middleware_argument() -> None:
    sessions = (DOCS / "sessions.md").read_text(encoding="utf-8")
    arguments = list(inspect.signature(SessionMiddleware.__init__).parameters)[2:]  # self, app
    assert [name for name in arguments if f"| `{name}` |" not in sessions] == []


def test_the_migration_page_maps_every_starlette_argument() -> None:
    migrating = (DOCS / "migrating.md").read_text(encoding="utf-8")
    arguments = list(inspect.signature(StarletteSessionMiddleware.__init__).parameters)[2:]
    assert [name for name in arguments if f"`{name}" not in migrating] == []


# -- what the examples do ----------------------------------------------------------------


@pytest.mark.anyio
async def test_the_starlette_quick_start_keeps_visits_in_redis(
    redis_url: str, redis_client: redis_asyncio.Redis
) -> None:
    source = only(blocks_of("getting-started.md"), "RedisStore.from_url")
    source = source.replace("redis://127.0.0.1:6379/0", redis_url)
    app = run_block(source, "getting-started.md")["app"]
    try:
        async with client_for(app) as browser:
            await browser.get("/")
            response = await browser.get("/")
    finally:
        await session_middleware(app).config.store.aclose()
    assert response.json() == {"visits": 2}
    assert len([key async for key in redis_client.scan_iter(match="sessionward:s:*")]) == 1


@pytest.mark.anyio
async def test_the_migration_test_client_fix_signs_in_over_https() -> None:
    app = run_block(only(blocks_of("migrating.md"), "TestClient(app)", "login("), "migrating.md")[
        "app"
    ]
    plain = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    async with plain as client:
        signed_in = await client.post("/login")
        lost = await client.get("/me")
    async with client_for(app) as client:  # https://testserver
        await client.post("/login")
        kept = await client.get("/me")
    (cookie,) = [
        value
        for value in signed_in.headers.get_list("set-cookie")
        if value.startswith(f"{COOKIE}=")
    ]
    assert "; secure" in cookie  # what a plain-http client never sends back
    assert lost.json() == {"user": None}
    assert kept.json() == {"user": "ada"}


@pytest.mark.anyio
async def test_the_migration_fixes_let_the_callback_and_the_dev_server_in() -> None:
    blocks = blocks_of("migrating.md")
    create_app = run_block(only(blocks, "csrf_exempt", "def create_app"), "migrating.md")[
        "create_app"
    ]
    provider = {"sec-fetch-site": "cross-site", "origin": "https://accounts.example.com"}
    for options, status in (({}, 403), ({"csrf_exempt": ["/auth/callback"]}, 200)):
        async with client_for(create_app(**options)) as browser:
            assert (await browser.post("/auth/callback", headers=provider)).status_code == status

    dev_server = run_block(only(blocks, "localhost:5173"), "migrating.md")
    untrusting = Starlette(routes=[Route("/api/draft", dev_server["save"], methods=["POST"])])
    untrusting.add_middleware(SessionMiddleware, secret_keys=[SECRET])
    vite = {"sec-fetch-site": "same-site", "origin": "http://localhost:5173"}
    for app, status in ((untrusting, 403), (dev_server["app"], 200)):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as api:
            assert (await api.post("/api/draft", headers=vite)).status_code == status


@pytest.mark.anyio
async def test_the_account_security_example_guards_with_a_recent_sign_in() -> None:
    source = only(blocks_of("account-security.md"), "recently_authenticated(request")
    app = run_block(source, "account-security.md")["app"]
    async with client_for(app) as client:
        signed_in = await client.post("/login", json={"user": "ada"})
        recent = await client.post("/email")
        wrong = await client.post("/confirm", json={"password": "guess"})
        right = await client.post("/confirm", json={"password": "correct horse battery staple"})
    (session_cookie,) = [
        cookie
        for cookie in signed_in.headers.get_list("set-cookie")
        if cookie.startswith(f"{COOKIE}=")
    ]
    assert "max-age" not in session_cookie.lower()  # the box was left unticked
    assert recent.json() == {"changed": True}
    assert wrong.status_code == 403
    assert right.json() == {"confirmed": True}


async def _visit(app: Any, token: str | None) -> tuple[int, str | None]:
    """One visit with the session cookie `token`: the count, and the cookie sent back."""
    headers = {"cookie": f"{COOKIE}={token}"} if token else {}
    async with client_for(app) as browser:
        response = await browser.get("/", headers=headers)
    sent = [
        cookie.split(";", 1)[0].split("=", 1)[1]
        for cookie in response.headers.get_list("set-cookie")
        if cookie.startswith(f"{COOKIE}=")
    ]
    return response.json()["visits"], sent[0] if sent else None


@pytest.mark.anyio
async def test_key_rotation_as_the_operations_page_describes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = only(blocks_of("operations.md"), "SESSIONWARD_SECRET_KEYS")

    def app_with(keys: str) -> Any:
        monkeypatch.setenv("SESSIONWARD_SECRET_KEYS", keys)
        return run_block(source, "operations.md")["app"]

    # The apps share the process's MemoryStore, as processes share one Redis.
    before, during, after = (
        app_with(OLD_SECRET),
        app_with(f"{SECRET},{OLD_SECRET}"),
        app_with(SECRET),
    )
    first, old_token = await _visit(before, None)
    second, new_token = await _visit(during, old_token)
    assert (first, second) == (1, 2)
    assert new_token not in (None, old_token)  # re-signed with the new key
    assert await _visit(after, new_token) == (3, None)
    visits, _ = await _visit(after, old_token)  # never re-signed: a fresh session
    assert visits == 1


@pytest.mark.anyio
async def test_the_fastapi_example_with_its_own_cookie_name_guards_its_routes() -> None:
    app = run_block(only(blocks_of("getting-started.md"), "SessionAuth("), "getting-started.md")[
        "app"
    ]
    async with client_for(app) as client:
        visitor = await client.get("/me")
    assert visitor.status_code == 401
    assert visitor.headers["www-authenticate"] == 'Cookie cookie-name="sid"'
    assert app.openapi()["components"]["securitySchemes"]["cookieAuth"]["name"] == "sid"


@pytest.mark.anyio
async def test_the_fastapi_dependencies_example_guards_its_routes() -> None:
    source = only(blocks_of("getting-started.md"), "from sessionward.fastapi import", "RecentAuth")
    app = run_block(source, "getting-started.md")["app"]
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
    source = only(blocks_of("bearer.md"), "install_id", "token_routes")
    app = run_block(source, "bearer.md")["app"]
    async with client_for(app) as api:
        pair = (await api.post("/api/login", json={"user": "ada", "install_id": "i-1"})).json()
        body = {"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]}
        nxt = (await api.post("/token/refresh", data=body)).json()
    assert pair["expires_in"] == 900
    assert nxt["refresh_token"] != pair["refresh_token"]
