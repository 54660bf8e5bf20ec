"""Signing in and out, the device list endpoints, and the server-side API, on both stores."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import redis.asyncio as redis_asyncio
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sessionward import (
    BearerSigner,
    BearerTransport,
    ConfigurationError,
    Events,
    JWTKey,
    MemoryStore,
    RedisStore,
    SessionEvent,
    Store,
    StoreUnavailable,
    UserSessions,
    device_routes,
    login,
    regenerate,
)
from tests.apps import CHROME, COOKIE, IPHONE, RecordingStore, build_app
from tests.conftest import Clock, client_for
from tests.redis_server import RedisServer
from tests.test_devices import REAL_USER_AGENTS

pytestmark = pytest.mark.anyio

SAME_ORIGIN = {"origin": "https://testserver"}


def browser(app: Any, user_agent: str = CHROME) -> httpx.AsyncClient:
    client = client_for(app)
    client.headers["user-agent"] = user_agent
    return client


async def sessions_of(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/account/sessions")
    assert response.status_code == 200
    listed: list[dict[str, Any]] = response.json()["sessions"]
    return listed


async def test_login_rotates_the_id_keeps_the_data_and_indexes_the_device(store: Store) -> None:
    app = build_app(store)
    async with browser(app) as client:
        await client.post("/session", json={"cart": [1]})
        anonymous_token = client.cookies[COOKIE]
        signed_in = await client.post("/login/ada")
        token = client.cookies[COOKIE]
        me = (await client.get("/me")).json()
        listed = await sessions_of(client)
        replay = await client.get("/me", headers={"cookie": f"{COOKIE}={anonymous_token}"})
    assert signed_in.json() == {"cart": [1]}
    assert token != anonymous_token
    assert me["user_id"] == "ada"
    assert replay.json() is None  # the pre-login id stopped working at once
    assert [entry["id"] for entry in listed] == [me["id"]]
    assert listed[0]["current"] is True
    assert "Chrome" in listed[0]["label"]
    assert token.partition(".")[0] not in json.dumps(listed)


async def test_logout_ends_the_session_and_unindexes_it(store: Store) -> None:
    app = build_app(store)
    async with browser(app) as client:
        await client.post("/login/ada")
        token = client.cookies[COOKIE]
        me = (await client.get("/me")).json()
        assert list(await store.index_read("ada")) == [me["id"]]
        response = await client.post("/logout")
        # The index itself, not the listing: listing would drop a stale entry by itself.
        assert await store.index_read("ada") == {}
        replay = await client.get("/me", headers={"cookie": f"{COOKIE}={token}"})
    assert "expires=Thu, 01 Jan 1970" in response.headers["set-cookie"]
    assert replay.json() is None
    assert await UserSessions(store, idle_ttl=3600, absolute_ttl=7200).list_sessions("ada") == []


async def test_revoking_a_device_signs_it_out_on_its_next_request(store: Store) -> None:
    app = build_app(store)
    async with browser(app, CHROME) as laptop, browser(app, IPHONE) as phone:
        await laptop.post("/login/ada")
        await phone.post("/login/ada")
        listed = await sessions_of(laptop)
        assert len(listed) == 2
        (other,) = [entry for entry in listed if not entry["current"]]
        assert "iPhone" in other["label"]
        revoked = await laptop.delete(f"/account/sessions/{other['id']}", headers=SAME_ORIGIN)
        assert revoked.status_code == 204
        assert revoked.headers["cache-control"] == "private, no-store"
        assert (await phone.get("/me")).json() is None
        assert (await laptop.get("/me")).json()["user_id"] == "ada"


async def test_sign_out_others_leaves_exactly_the_current_session(store: Store) -> None:
    app = build_app(store)
    clients = [browser(app) for _ in range(3)]
    for client in clients:
        await client.post("/login/ada")
    response = await clients[0].delete("/account/sessions", headers=SAME_ORIGIN)
    assert response.json() == {"revoked": 2}
    assert response.headers["cache-control"] == "private, no-store"
    assert [entry["current"] for entry in await sessions_of(clients[0])] == [True]
    assert (await clients[1].get("/me")).json() is None
    for client in clients:
        await client.aclose()


async def test_the_server_side_revoke_all_leaves_none(store: Store) -> None:
    app = build_app(store)
    async with browser(app) as first, browser(app) as second:
        await first.post("/login/ada")
        await second.post("/login/ada")
        users = UserSessions(store, idle_ttl=3600, absolute_ttl=7200)
        assert len(await users.list_sessions("ada")) == 2
        assert await users.revoke_all("ada") == 2
        assert await users.list_sessions("ada") == []
        assert (await first.get("/me")).json() is None
        assert (await second.get("/me")).json() is None


async def test_one_user_cannot_see_or_revoke_anothers_session(store: Store) -> None:
    app = build_app(store)
    async with browser(app) as ada, browser(app) as bob:
        await ada.post("/login/ada")
        await bob.post("/login/bob")
        (bobs,) = await sessions_of(bob)
        assert [entry["current"] for entry in await sessions_of(ada)] == [True]
        attack = await ada.delete(f"/account/sessions/{bobs['id']}", headers=SAME_ORIGIN)
        unknown = await ada.delete("/account/sessions/" + "0" * 64, headers=SAME_ORIGIN)
        garbage = await ada.delete("/account/sessions/not-an-id", headers=SAME_ORIGIN)
        assert attack.status_code == unknown.status_code == garbage.status_code == 404
        assert attack.json() == unknown.json() == {"error": "no such session"}
        assert attack.headers["cache-control"] == "private, no-store"
        assert (await bob.get("/me")).json()["user_id"] == "bob"


async def test_the_device_endpoints_need_a_signed_in_user(store: Store) -> None:
    async with browser(build_app(store)) as client:
        await client.post("/session", json={"anonymous": True})
        assert (await client.get("/account/sessions")).status_code == 401
        assert (await client.delete("/account/sessions", headers=SAME_ORIGIN)).status_code == 401


@pytest.mark.parametrize("csrf", [True, False])  # the middleware's check, or the routes' own
@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"origin": "https://testserver.evil.example"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site", "origin": "https://www.testserver"},
    ],
)
async def test_state_changing_endpoints_refuse_cross_origin_requests(
    store: Store, headers: dict[str, str], csrf: bool
) -> None:
    async with browser(build_app(store, csrf=csrf)) as client, browser(build_app(store)) as other:
        await client.post("/login/ada")
        await other.post("/login/ada")
        refused = await client.delete("/account/sessions", headers=headers)
        assert refused.status_code == 403
        assert refused.json()["error"] == "cross_origin_request"
        assert len(await sessions_of(client)) == 2
        same_origin = {"origin": "https://testserver", "sec-fetch-site": "same-origin"}
        assert (await client.delete("/account/sessions", headers=same_origin)).status_code == 200


@pytest.mark.parametrize("headers", [{}, {"referer": "https://evil.example/page"}])
async def test_a_delete_that_names_no_origin_is_no_browsers_and_passes(
    store: Store, headers: dict[str, str]
) -> None:
    """As in Go: browsers send `Origin` (and `Sec-Fetch-Site`) on every DELETE."""
    async with browser(build_app(store)) as client, browser(build_app(store)) as other:
        await client.post("/login/ada")
        await other.post("/login/ada")
        assert (await client.delete("/account/sessions", headers=headers)).json() == {"revoked": 1}


async def test_the_least_recently_used_session_goes_past_the_limit(
    store: Store, clock: Clock
) -> None:
    app = build_app(store, max_sessions_per_user=2, clock=clock)
    oldest, middle, newest = browser(app), browser(app), browser(app)
    await oldest.post("/login/ada")
    clock.advance(10)
    await middle.post("/login/ada")
    clock.advance(10)
    await oldest.get("/me")  # now the middle one is the least recently used
    clock.advance(10)
    await newest.post("/login/ada")
    assert (await middle.get("/me")).json() is None
    assert (await oldest.get("/me")).json()["user_id"] == "ada"
    assert len(await sessions_of(newest)) == 2
    for client in (oldest, middle, newest):
        await client.aclose()


async def test_listing_drops_sessions_that_expired(store: Store, clock: Clock) -> None:
    app = build_app(store, idle_ttl=60, clock=clock)
    async with browser(app) as idle, browser(app) as active:
        await idle.post("/login/ada")
        clock.advance(50)
        await active.post("/login/ada")
        clock.advance(20)  # the first one is idle past 60 s now
        assert len(await sessions_of(active)) == 1


async def test_most_recently_active_sessions_come_first(store: Store, clock: Clock) -> None:
    app = build_app(store, clock=clock)
    async with browser(app, CHROME) as laptop, browser(app, IPHONE) as phone:
        await laptop.post("/login/ada")
        clock.advance(5)
        await phone.post("/login/ada")
        clock.advance(5)
        listed = await sessions_of(laptop)
    assert [entry["current"] for entry in listed] == [True, False]
    assert listed[0]["last_seen_at"] > listed[1]["last_seen_at"]


async def test_a_new_user_agent_updates_the_device(store: Store) -> None:
    app = build_app(store)
    async with browser(app, CHROME) as client:
        await client.post("/login/ada")
        client.headers["user-agent"] = IPHONE
        await client.get("/me")
        (entry,) = await sessions_of(client)
    assert "iPhone" in entry["label"]


async def test_forwarded_for_is_only_believed_from_trusted_proxies(store: Store) -> None:
    spoofed = {"x-forwarded-for": "203.0.113.7"}
    async with browser(build_app(store)) as direct:
        await direct.post("/login/ada", headers=spoofed)
        assert (await direct.get("/me")).json()["ip"] == "127.0.0.1"
    trusting = build_app(store, trusted_proxies=["127.0.0.0/8", "10.0.0.0/8"])
    async with browser(trusting) as proxied:
        chain = {"x-forwarded-for": "198.51.100.1, 203.0.113.7, 10.0.0.2"}
        await proxied.post("/login/bob", headers=chain)
        me = (await proxied.get("/me", headers=chain)).json()
    assert me["ip"] == "203.0.113.7"


async def test_lifecycle_events_reach_listeners(store: Store) -> None:
    seen: list[SessionEvent] = []
    events = Events()

    @events.listen
    async def record(event: SessionEvent) -> None:
        seen.append(event)

    app = build_app(store, events=events)
    async with browser(app, IPHONE) as phone, browser(app) as laptop:
        await phone.post("/session", json={"a": 1})
        await phone.post("/login/ada")
        await laptop.post("/login/ada")
        await laptop.delete("/account/sessions", headers=SAME_ORIGIN)
        await laptop.post("/logout")
    kinds = [event.type for event in seen]
    assert kinds == [
        "session.created",
        "session.login",
        "session.login",
        "session.revoked",
        "session.logout",
    ]
    assert seen[1].user_id == "ada"
    assert seen[1].device_label is not None
    assert "iPhone" in seen[1].device_label
    assert seen[1].ip == "127.0.0.1"
    assert seen[3].public_id == seen[1].public_id


async def test_events_are_published_on_redis(redis_url: str) -> None:
    client = redis_asyncio.Redis.from_url(redis_url)
    await client.flushdb()
    pubsub = client.pubsub()
    await pubsub.subscribe("sessionward:events")
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    app = build_app(RedisStore(client), events=Events(redis=client))
    async with browser(app) as laptop:
        await laptop.post("/login/ada")
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
    assert message is not None
    payload = json.loads(message["data"])
    assert payload["type"] == "session.login"
    assert payload["user_id"] == "ada"
    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed in newer redis-py
    await client.aclose()


async def test_a_stuck_listener_does_not_hold_up_sign_in(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    async def stuck(event: SessionEvent) -> None:
        await asyncio.Event().wait()  # never returns

    async def after(event: SessionEvent) -> None:
        seen.append(event.type)

    app = build_app(store, events=Events([stuck, after], timeout=0.2))
    async with browser(app) as laptop:
        started = time.monotonic()
        response = await laptop.post("/login/ada")
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed < 2
    assert seen == ["session.login"]  # the listeners after it still hear of it
    assert "given up" in caplog.text


async def test_a_failing_listener_does_not_break_sign_in(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    async def failing(event: SessionEvent) -> None:
        raise RuntimeError("the audit log is down")

    async def after(event: SessionEvent) -> None:
        seen.append(event.type)

    app = build_app(store, events=Events([failing, after]))
    async with browser(app) as laptop:
        response = await laptop.post("/login/ada")
        me = (await laptop.get("/me")).json()
    assert response.status_code == 200
    assert me["user_id"] == "ada"
    assert seen == ["session.login"]  # the listeners after it still hear of it
    assert "the audit log is down" in caplog.text


async def test_a_frozen_events_redis_does_not_hold_up_sign_in(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert private_redis.process is not None
    client = redis_asyncio.Redis.from_url(private_redis.url)
    await client.ping()
    os.kill(private_redis.process.pid, signal.SIGSTOP)
    try:
        app = build_app(MemoryStore(), events=Events(redis=client, timeout=0.2))
        async with browser(app) as laptop:
            started = time.monotonic()
            response = await laptop.post("/login/ada")
            elapsed = time.monotonic() - started
    finally:
        os.kill(private_redis.process.pid, signal.SIGCONT)
        await client.aclose()
    assert response.status_code == 200
    assert elapsed < 2
    assert "could not publish session.login" in caplog.text


def test_an_events_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigurationError):
        Events(timeout=0)


async def test_the_device_list_labels_every_kind_of_client(store: Store) -> None:
    agents = [param.values[:2] for param in REAL_USER_AGENTS]
    app = build_app(store)
    clients = [browser(app, str(agent)) for agent, _ in agents]
    for client in clients:
        assert (await client.post("/login/ada")).status_code == 200
    listed = await sessions_of(clients[0])
    assert sorted(entry["label"] for entry in listed) == sorted(str(label) for _, label in agents)
    assert len(agents) >= 15
    for client in clients:
        await client.aclose()


async def test_signing_in_as_someone_else_starts_with_empty_data(store: Store) -> None:
    async with browser(build_app(store)) as shared_computer:
        await shared_computer.post("/login/alice")
        await shared_computer.post("/session", json={"oauth_token": "alice-secret"})
        bob = await shared_computer.post("/login/bob")
        assert bob.json() == {}
        assert (await shared_computer.get("/session")).json() == {}


async def test_the_same_user_signing_in_again_keeps_the_data(store: Store) -> None:
    async with browser(build_app(store)) as client:
        await client.post("/login/alice")
        await client.post("/session", json={"cart": [1]})
        again = await client.post("/login/alice")
    assert again.json() == {"cart": [1]}


async def test_a_list_changed_in_place_after_login_is_saved(store: Store) -> None:
    app = build_app(store)

    async def cart_then_login(request: Request) -> Response:
        cart = request.session.setdefault("cart", [])
        await login(request, "ada")
        cart.append(1)
        return PlainTextResponse("ok")

    app.router.routes.append(Route("/cart-login", cart_then_login, methods=["POST"]))
    async with browser(app) as client:
        await client.post("/cart-login")
        assert (await client.get("/session")).json() == {"cart": [1]}


async def test_a_cookie_login_on_a_bearer_request_is_refused(store: Store, clock: Clock) -> None:
    transport = BearerTransport(BearerSigner(JWTKey("k", "HS256", "k" * 32)))
    app = build_app(store, bearer=transport, clock=clock)
    async with browser(app) as api:
        token = (await api.post("/api/login/ada")).json()["token"]
        with pytest.raises(ValueError, match="transport='bearer'"):
            await api.post("/login/ada", headers={"authorization": f"Bearer {token}"})


async def test_a_dict_stored_before_login_and_changed_after_is_saved(store: Store) -> None:
    app = build_app(store)

    async def profile_then_login(request: Request) -> Response:
        profile = {"theme": "light"}
        request.session["profile"] = profile
        await login(request, "ada")
        profile["theme"] = "dark"
        return PlainTextResponse("ok")

    app.router.routes.append(Route("/profile-login", profile_then_login, methods=["POST"]))
    async with browser(app) as client:
        await client.post("/profile-login")
        assert (await client.get("/session")).json() == {"profile": {"theme": "dark"}}


async def test_simultaneous_sign_ins_under_a_limit_never_sign_everyone_out(
    store: Store,
) -> None:
    """A sign-in only ends sessions created before it: two at once may both stay (one over
    the limit, until the next sign-in), but they can never end each other."""
    app = build_app(store, max_sessions_per_user=1)
    for _ in range(5):
        async with browser(app) as laptop, browser(app) as phone:
            await asyncio.gather(laptop.post("/login/ada"), phone.post("/login/ada"))
            signed_in = [(await client.get("/me")).json() is not None for client in (laptop, phone)]
        assert signed_in.count(True) >= 1
        await UserSessions(store, idle_ttl=3600, absolute_ttl=7200).revoke_all("ada")


@pytest.mark.parametrize("user_id", ["ada\ud800", "", "x" * 513])
async def test_an_unstorable_user_id_is_refused_the_same_on_every_store(
    store: Store, user_id: str
) -> None:
    app = build_app(store)

    async def sign_in_raw(request: Request) -> Response:
        await login(request, user_id)
        return PlainTextResponse("unreachable")

    app.router.routes.append(Route("/raw-login", sign_in_raw, methods=["POST"]))
    async with browser(app) as client:
        with pytest.raises(ValueError, match="user_id"):
            await client.post("/raw-login")


async def test_a_listing_during_a_sign_in_keeps_its_fresh_index_entry(
    store: Store, clock: Clock
) -> None:
    users = UserSessions(store, idle_ttl=3600, absolute_ttl=7200, clock=clock)
    now_ms = int(clock() * 1000)
    await store.index_add("ada", "f" * 64, now_ms, 7_200_000)  # indexed, not stored yet
    await store.index_add("ada", "0" * 64, now_ms - 120_000, 7_200_000)  # long gone
    assert await users.list_sessions("ada") == []
    assert list(await store.index_read("ada")) == ["f" * 64]


async def test_a_job_with_a_shorter_idle_ttl_still_signs_out_everything(
    store: Store, clock: Clock
) -> None:
    """A `UserSessions` set up with a shorter idle TTL than the middleware's misses nothing."""
    async with client_for(build_app(store, idle_ttl=30 * 24 * 3600, clock=clock)) as browser:
        await browser.post("/login/ada")
        clock.advance(20 * 24 * 3600)  # idle for 20 days: live for the middleware
        job = UserSessions(store=store, idle_ttl=14 * 24 * 3600, absolute_ttl=40 * 24 * 3600)
        job.config.clock = clock
        assert await job.list_sessions("ada") == []  # not live by the job's own idle TTL...
        assert await store.index_read("ada") != {}  # ...but not unindexed either
        assert await job.revoke_all("ada") == 1
        assert (await browser.get("/me")).json() is None


async def test_a_sign_in_keeps_its_new_session_when_a_later_step_fails(store: Store) -> None:
    """The new session is the request's as soon as it is stored, whatever fails after."""

    class FailingDelete(RecordingStore):
        async def delete(self, *keys: str) -> None:
            raise StoreUnavailable("the old session could not be deleted")

    async def sign_in(request: Request) -> Response:
        with contextlib.suppress(StoreUnavailable):  # the handler carries on regardless
            await login(request, "ada")
        return PlainTextResponse("signed in")

    app = build_app(FailingDelete(store))
    app.router.routes.insert(0, Route("/fragile-login", sign_in, methods=["POST"]))
    async with client_for(app) as browser:
        await browser.post("/session", json={"cart": [1]})
        old_cookie = browser.cookies[COOKIE]
        response = await browser.post("/fragile-login")
        assert response.status_code == 200
        assert browser.cookies[COOKIE] != old_cookie
        me = (await browser.get("/me")).json()
        assert me["user_id"] == "ada"


@pytest.mark.parametrize("missing", ["m:created", "m:seen", "m:expires"])
async def test_a_record_the_store_returns_unreadable_is_no_session(
    store: Store, missing: str
) -> None:
    """A store (a custom one, say) that hands back a record missing a required field."""

    class Unreadable(RecordingStore):
        async def load(
            self, key: str, now_ms: int, idle_ttl_ms: int, *, touch: bool = True
        ) -> dict[str, str] | None:
            fields = await super().load(key, now_ms, idle_ttl_ms, touch=touch)
            return None if fields is None else {k: v for k, v in fields.items() if k != missing}

    async with client_for(build_app(Unreadable(store))) as browser:
        await browser.post("/login/ada")
        assert (await browser.get("/me")).json() is None
        assert (await browser.get("/session")).json() == {}


@pytest.mark.parametrize(
    "origin",
    [
        "app.example.com",
        "https://",
        "ftp://app.example.com",
        "https://a.example/path",
        "https://user@a.example",
        "https://a.example:port",
        "https://a.example/?q",
        "https://*.example.com",  # no wildcards: it would silently match nothing
        "https://ex ample.com",
        "https://a_b.example",
    ],
)
def test_a_trusted_origin_must_be_scheme_host_and_port(origin: str) -> None:
    with pytest.raises(ConfigurationError, match="scheme://host"):
        device_routes(trusted_origins=[origin])


def test_well_formed_trusted_origins_are_accepted() -> None:
    device_routes(trusted_origins=["https://app.example.com", "http://localhost:8000/"])


async def test_a_public_id_with_a_trailing_newline_never_reaches_the_store(store: Store) -> None:
    async with browser(build_app(store)) as client:
        await client.post("/login/ada")
        (mine,) = await sessions_of(client)
        recording = RecordingStore(store)
        users = UserSessions(recording, idle_ttl=3600, absolute_ttl=7200)
        assert not await users.revoke("ada", mine["id"] + "\n")
        assert recording.calls == []
        assert len(await sessions_of(client)) == 1


def keep_app(store: Store, keep: bool | list[str]) -> Any:
    async def sign_in(request: Request) -> Response:
        await login(request, "ada", keep=keep)
        return PlainTextResponse("signed in")

    app = build_app(store)
    app.router.routes.insert(0, Route("/login-keeping", sign_in, methods=["POST"]))
    return app


@pytest.mark.parametrize(
    ("keep", "after"),
    [
        (True, {"cart": [1], "next": "https://evil.example", "role": "admin"}),
        (False, {}),
        (["cart"], {"cart": [1]}),
    ],
)
async def test_login_keeps_only_what_it_is_told_to(
    store: Store, keep: bool | list[str], after: dict[str, Any]
) -> None:
    """What an attacker planted before sign-in ("next", "role") need not survive it."""
    async with browser(keep_app(store, keep)) as client:
        planted = {"cart": [1], "next": "https://evil.example", "role": "admin"}
        await client.post("/session", json=planted)
        assert (await client.post("/login-keeping")).status_code == 200
        assert (await client.get("/session")).json() == after
        assert (await client.get("/me")).json()["user_id"] == "ada"


def regenerating_app(store: Store) -> Any:
    async def sign_in_by_hand(request: Request) -> Response:
        """Starlette's idiom: sign in by writing the session, then regenerate."""
        request.session["user"] = "ada"
        await regenerate(request)
        return PlainTextResponse("signed in")

    app = build_app(store)
    app.router.routes.insert(0, Route("/hand-login", sign_in_by_hand, methods=["POST"]))
    return app


async def test_regenerate_defeats_a_planted_session_id(store: Store) -> None:
    app = regenerating_app(store)
    async with browser(app) as attacker, browser(app) as victim:
        await attacker.post("/session", json={"theme": "dark"})
        planted = attacker.cookies[COOKIE]
        signed_in = await victim.post("/hand-login", headers={"cookie": f"{COOKIE}={planted}"})
        assert signed_in.cookies[COOKIE] != planted
        assert (await victim.get("/session")).json() == {"theme": "dark", "user": "ada"}
        replay = await attacker.get("/session")  # the attacker's copy of the id is dead
        assert replay.json() == {}


async def test_regenerate_keeps_a_signed_in_session_indexed_under_its_new_id(
    store: Store,
) -> None:
    async def again(request: Request) -> Response:
        await regenerate(request)
        return PlainTextResponse("regenerated")

    app = build_app(store)
    app.router.routes.insert(0, Route("/regenerate", again, methods=["POST"]))
    async with browser(app) as client:
        await client.post("/login/ada")
        (before,) = await sessions_of(client)
        await client.post("/regenerate")
        (after,) = await sessions_of(client)
        assert after["id"] != before["id"]
        assert after["current"] is True
        assert list(await store.index_read("ada")) == [after["id"]]
        assert (await client.get("/me")).json()["user_id"] == "ada"


async def test_regenerate_without_a_stored_session_does_nothing(store: Store) -> None:
    app = regenerating_app(store)
    async with browser(app) as client:
        await client.post("/hand-login")  # the first write makes a new id anyway
        assert (await client.get("/session")).json() == {"user": "ada"}


class RacingStore(RecordingStore):
    """Runs `race` once, at the moment a test picks: after the revocation read the records
    it will end (`after_read`), or as a sign-in indexes its new session (`on_index_add`)."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.after_read: Any = None
        self.on_index_add: Any = None

    async def read_records(self, keys: Sequence[str]) -> list[dict[str, str] | None]:
        found = await super().read_records(keys)
        race, self.after_read = self.after_read, None
        if race is not None:
            await race()
        return found

    async def index_add(self, user_id: str, key: str, score_ms: int, ttl_ms: int) -> None:
        await super().index_add(user_id, key, score_ms, ttl_ms)
        race, self.on_index_add = self.on_index_add, None
        if race is not None:
            await race()


def with_regenerate(app: Any) -> Any:
    async def again(request: Request) -> Response:
        await regenerate(request)
        return PlainTextResponse("regenerated")

    app.router.routes.insert(0, Route("/regenerate", again, methods=["POST"]))
    return app


@pytest.mark.parametrize("move", ["/regenerate", "/login/ada"])
async def test_sign_out_everywhere_follows_a_session_that_moves_meanwhile(
    store: Store, move: str
) -> None:
    # Regression: a session that moved to a new id between the revocation's read of the
    # index and its delete survived, and `revoke_all` still answered 1.
    racing = RacingStore(store)
    app = with_regenerate(build_app(racing))
    users = UserSessions(racing, idle_ttl=3600, absolute_ttl=7200)
    async with browser(app) as thief:
        await thief.post("/login/ada")

        async def race() -> None:
            assert (await thief.post(move)).status_code == 200

        racing.after_read = race
        assert await users.revoke_all("ada") == 1
        assert (await thief.get("/me")).json() is None
        assert await users.list_sessions("ada") == []


async def test_one_revocation_follows_a_session_that_moves_meanwhile(store: Store) -> None:
    racing = RacingStore(store)
    app = with_regenerate(build_app(racing))
    users = UserSessions(racing, idle_ttl=3600, absolute_ttl=7200)
    async with browser(app) as thief, browser(app, IPHONE) as phone:
        await thief.post("/login/ada")
        await phone.post("/login/ada")
        (stolen,) = [entry for entry in await sessions_of(phone) if not entry["current"]]

        async def race() -> None:
            assert (await thief.post("/regenerate")).status_code == 200

        racing.after_read = race
        assert await users.revoke("ada", stolen["id"])
        assert (await thief.get("/me")).json() is None
        assert [entry["current"] for entry in await sessions_of(phone)] == [True]


async def test_a_sign_in_that_replaces_a_session_signed_out_meanwhile_stays_out(
    store: Store,
) -> None:
    # The sign-out everywhere runs after the new session is indexed and before it is stored:
    # it ends the old one, so the sign-in that replaces it must not leave the new one alive.
    racing = RacingStore(store)
    app = build_app(racing)
    users = UserSessions(racing, idle_ttl=3600, absolute_ttl=7200)
    async with browser(app) as thief:
        await thief.post("/login/ada")

        async def race() -> None:
            assert await users.revoke_all("ada") == 1

        racing.on_index_add = race
        response = await thief.post("/login/ada")
        assert response.status_code == 200
        assert "expires=Thu, 01 Jan 1970" in response.headers["set-cookie"]
        assert (await thief.get("/me")).json() is None
        assert await users.list_sessions("ada") == []


async def test_list_sessions_filters_by_last_activity_and_transport(
    store: Store, clock: Clock
) -> None:
    transport = BearerTransport(BearerSigner(JWTKey("k", "HS256", "k" * 32)))
    lifetimes = {"idle_ttl": 90 * 86400, "absolute_ttl": 400 * 86400}
    app = build_app(store, clock=clock, bearer=transport, **lifetimes)
    users = UserSessions(store, clock=clock, **lifetimes)
    async with browser(app) as old_laptop, browser(app, IPHONE) as phone:
        await old_laptop.post("/login/ada")
        clock.advance(40 * 86400)  # the laptop was last used 40 days ago
        await phone.post("/login/ada")
        await phone.post("/api/login/ada")  # and the phone's app signed in too
        everything = await users.list_sessions("ada")
        recent = await users.list_sessions("ada", active_since=timedelta(days=30))
        since = datetime.fromtimestamp(clock() - 30 * 86400, tz=timezone.utc)
        also_recent = await users.list_sessions("ada", active_since=since)
        apps = await users.list_sessions("ada", transport="bearer")
        browsers = await users.list_sessions("ada", transport="cookie", active_since=since)
    assert len(everything) == 3
    assert len(recent) == len(also_recent) == 2
    assert [info.transport for info in apps] == ["bearer"]
    assert [info.transport for info in browsers] == ["cookie"]
    assert browsers[0].device is not None
    assert "iPhone" in browsers[0].device.label  # not the laptop, idle for 40 days


@pytest.mark.parametrize(
    "options",
    [
        {"active_since": datetime(2026, 1, 1)},  # naive: whose midnight?
        {"active_since": "30 days"},
        {"active_since": 30},
        {"transport": "websocket"},
    ],
)
async def test_list_sessions_says_what_is_wrong_with_a_filter(
    store: Store, options: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=r"active_since|transport"):
        await UserSessions(store).list_sessions("ada", **options)
