"""Behaviour of SessionMiddleware over HTTP, run once against each store."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from itsdangerous import Signer
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sessionward import (
    CookieSigner,
    CookieTransport,
    Session,
    SessionError,
    SessionMiddleware,
    Store,
)
from sessionward.tokens import session_hash
from tests.apps import COOKIE, OLD_SECRET, SECRET, RecordingStore, build_app
from tests.conftest import Clock, client_for

pytestmark = pytest.mark.anyio


async def test_a_write_sets_a_cookie_and_the_next_request_sees_the_data(store: Store) -> None:
    async with client_for(build_app(store)) as client:
        written = await client.post("/session", json={"user": "ada", "n": 1})
        assert written.status_code == 200
        assert f"{COOKIE}=" in written.headers["set-cookie"]
        read = await client.get("/session")
    assert read.json() == {"user": "ada", "n": 1}
    assert "set-cookie" not in read.headers


async def test_a_read_only_request_only_touches_the_store(store: Store) -> None:
    recording = RecordingStore(store)
    async with client_for(build_app(recording)) as client:
        await client.post("/session", json={"a": 1})
        recording.calls.clear()
        response = await client.get("/session")
        untouched = await client.get("/untouched")
    assert "set-cookie" not in response.headers
    assert "set-cookie" not in untouched.headers
    assert recording.calls == ["load", "load"]


async def test_a_visitor_who_only_reads_creates_nothing(store: Store) -> None:
    recording = RecordingStore(store)
    async with client_for(build_app(recording)) as client:
        first = await client.get("/session")
        second = await client.get("/untouched")
    assert first.json() == {}
    assert "set-cookie" not in first.headers
    assert "set-cookie" not in second.headers
    assert recording.calls == []


@pytest.mark.parametrize(
    "cookie",
    [
        "garbage",
        "",
        "a.b",
        "x" * 5000,
        "\u00e9t\u00e9",
        "\udcff\udcfe invalid utf-8",
        "session-id-without-signature",
    ],
)
async def test_a_bad_cookie_gives_a_fresh_empty_session(store: Store, cookie: str) -> None:
    recording = RecordingStore(store)
    raw = COOKIE.encode() + b"=" + cookie.encode("utf-8", "surrogateescape")
    async with client_for(build_app(recording)) as client:
        response = await client.get("/session", headers={b"cookie": raw})
    assert response.status_code == 200
    assert response.json() == {}
    assert recording.calls == []  # a bad signature never reaches the store


THIRD_SECRET = "third-secret-key-0123456789abcdefghijk"
ROTATIONS = [[SECRET], [SECRET, OLD_SECRET], [SECRET, OLD_SECRET, THIRD_SECRET]]


@pytest.mark.parametrize(
    ("keys", "signing"),
    [
        pytest.param(keys, signing, id=f"{len(keys)}-keys-signed-by-{position}")
        for keys in ROTATIONS
        for position, signing in enumerate(keys)
    ],
)
async def test_tampered_truncated_and_wrong_key_cookies_are_refused(
    store: Store, keys: list[str], signing: str
) -> None:
    """With every rotation state: the second and later keys are checked by a path of their own."""
    async with client_for(build_app(store, secret_keys=[signing])) as client:
        await client.post("/session", json={"secret": "data"})
        token = client.cookies[COOKIE]
    async with client_for(build_app(store, secret_keys=keys)) as owner:
        genuine = await owner.get("/session", headers={"cookie": f"{COOKIE}={token}"})
    assert genuine.json() == {"secret": "data"}
    session_id, _, signature = token.partition(".")
    flipped = chr(ord(signature[5]) ^ 1)
    other_last = "B" if session_id.endswith("A") else "A"
    tampered = [
        f"{session_id}.{signature[:5]}{flipped}{signature[6:]}",
        token[:-3],
        f"{session_id[:-1]}{other_last}.{signature}",
        Signer("another-secret-key-0123456789abcdefgh", salt=b"sessionward.cookie")
        .sign(session_id)
        .decode(),
        session_id,
    ]
    for cookie in tampered:
        async with client_for(build_app(store, secret_keys=keys)) as attacker:
            response = await attacker.get("/session", headers={"cookie": f"{COOKIE}={cookie}"})
        assert response.status_code == 200
        assert response.json() == {}, cookie


async def test_clear_deletes_the_session_and_expires_the_cookie(store: Store) -> None:
    recording = RecordingStore(store)
    async with client_for(build_app(recording)) as client:
        await client.post("/session", json={"a": 1})
        token = client.cookies[COOKIE]
        cleared = await client.delete("/session")
        assert "expires=Thu, 01 Jan 1970" in cleared.headers["set-cookie"]
        assert "session" not in client.cookies
        assert "delete" in recording.calls
        replay = await client.get("/session", headers={"cookie": f"{COOKIE}={token}"})
    assert replay.json() == {}


async def test_removing_the_last_key_ends_the_session(store: Store) -> None:
    recording = RecordingStore(store)
    async with client_for(build_app(recording)) as client:
        await client.post("/session", json={"a": 1})
        token = client.cookies[COOKIE]
        emptied = await client.delete("/session/a")
        replay = await client.get("/session", headers={"cookie": f"{COOKIE}={token}"})
    assert "expires=Thu, 01 Jan 1970" in emptied.headers["set-cookie"]
    assert "delete" in recording.calls
    assert replay.json() == {}


async def test_deleting_one_key_of_several_keeps_the_others(store: Store) -> None:
    async with client_for(build_app(store)) as client:
        await client.post("/session", json={"a": 1, "b": [2], "c": {"d": 3}})
        token = client.cookies[COOKIE]
        dropped = await client.delete("/session/b")
        reloaded = await client.get("/session")
    async with client_for(build_app(store)) as elsewhere:  # nothing cached in the first client
        fresh = await elsewhere.get("/session", headers={"cookie": f"{COOKIE}={token}"})
    assert dropped.json() == {"a": 1, "c": {"d": 3}}
    assert "set-cookie" not in dropped.headers  # the same session, still live
    assert reloaded.json() == {"a": 1, "c": {"d": 3}}
    assert fresh.json() == {"a": 1, "c": {"d": 3}}


async def test_a_nested_mutation_is_saved(store: Store) -> None:
    async with client_for(build_app(store)) as client:
        await client.post("/session", json={"cart": [1, 2]})
        await client.post("/cart/3")
        response = await client.get("/session")
    assert response.json() == {"cart": [1, 2, 3]}


async def test_assigning_an_equal_value_writes_nothing(store: Store) -> None:
    recording = RecordingStore(store)
    async with client_for(build_app(recording)) as client:
        await client.post("/session", json={"cart": [1, 2], "name": "ada"})
        recording.calls.clear()
        response = await client.post("/session", json={"cart": [1, 2], "name": "ada"})
    assert response.status_code == 200
    assert recording.calls == ["load"]
    assert "set-cookie" not in response.headers


async def test_concurrent_requests_changing_different_keys_both_persist(store: Store) -> None:
    app = build_app(store)
    async with client_for(app) as client:
        await client.post("/session", json={"start": True})
        slow = asyncio.create_task(client.post("/gated/slow"))
        await app.state.loaded.wait()
        await client.post("/session", json={"fast": "done"})
        app.state.gate.set()
        assert (await slow).status_code == 200
        response = await client.get("/session")
    assert response.json() == {"start": True, "fast": "done", "slow": "late"}


async def test_a_slow_request_does_not_resurrect_a_cleared_session(store: Store) -> None:
    app = build_app(store)
    async with client_for(app) as client:
        await client.post("/session", json={"user": "ada"})
        token = client.cookies[COOKIE]
        slow = asyncio.create_task(client.post("/gated/late"))
        await app.state.loaded.wait()
        await client.delete("/session")
        app.state.gate.set()
        slow_response = await slow
    assert slow_response.status_code == 200
    assert "set-cookie" not in slow_response.headers
    async with client_for(build_app(store)) as replay:
        response = await replay.get("/session", headers={"cookie": f"{COOKIE}={token}"})
    assert response.json() == {}


async def test_an_idle_session_expires(store: Store, clock: Clock) -> None:
    async with client_for(build_app(store, idle_ttl=60, clock=clock)) as client:
        await client.post("/session", json={"a": 1})
        clock.advance(59)
        assert (await client.get("/session")).json() == {"a": 1}
        clock.advance(59)  # activity moved the deadline: still alive 118 s after creation
        assert (await client.get("/session")).json() == {"a": 1}
        clock.advance(60)
        assert (await client.get("/session")).json() == {}


async def test_a_session_stored_by_0_1_lives_by_the_configured_idle_ttl(
    store: Store, clock: Clock
) -> None:
    """Records written before sessions carried their own idle TTL (no `m:idle`) still load."""
    async with client_for(build_app(store, idle_ttl=60, clock=clock)) as client:
        await client.post("/session", json={"a": 1})
        session_id = CookieSigner([SECRET]).verify(client.cookies[COOKIE]).session_id
        key, now_ms = session_hash(session_id), int(clock() * 1000)
        assert await store.save(key, {}, ["m:idle"], now_ms, 60_000, create=False)
        (meta,) = await store.read_records([key])
        assert meta is not None
        assert "m:idle" not in meta
        clock.advance(59)
        assert (await client.get("/session")).json() == {"a": 1}
        clock.advance(60)
        assert (await client.get("/session")).json() == {}


async def test_lowering_idle_ttl_applies_to_sessions_already_stored(
    store: Store, clock: Clock
) -> None:
    async with client_for(build_app(store, idle_ttl=3600, clock=clock)) as before:
        await before.post("/session", json={"a": 1})
        cookies = before.cookies
    async with client_for(build_app(store, idle_ttl=60, clock=clock)) as after:
        after.cookies = cookies
        clock.advance(59)
        assert (await after.get("/session")).json() == {"a": 1}
        clock.advance(61)
        assert (await after.get("/session")).json() == {}


async def test_activity_never_extends_past_the_absolute_lifetime(
    store: Store, clock: Clock
) -> None:
    async with client_for(build_app(store, idle_ttl=60, absolute_ttl=150, clock=clock)) as client:
        await client.post("/session", json={"a": 1})
        for _ in range(2):
            clock.advance(50)
            assert (await client.get("/session")).json() == {"a": 1}
        clock.advance(50)  # 150 s after creation
        assert (await client.get("/session")).json() == {}


async def test_a_cookie_signed_with_an_old_key_is_resigned(store: Store) -> None:
    async with client_for(build_app(store, secret_keys=[OLD_SECRET])) as old_app:
        await old_app.post("/session", json={"a": 1})
        old_token = old_app.cookies[COOKIE]
    async with client_for(build_app(store, secret_keys=[SECRET, OLD_SECRET])) as client:
        response = await client.get("/session", headers={"cookie": f"{COOKIE}={old_token}"})
        new_token = response.cookies[COOKIE]
        again = await client.get("/session", headers={"cookie": f"{COOKIE}={new_token}"})
    assert response.json() == {"a": 1}
    assert CookieSigner([SECRET]).verify(new_token).session_id == old_token.partition(".")[0]
    assert again.json() == {"a": 1}
    assert "set-cookie" not in again.headers
    async with client_for(build_app(store, secret_keys=[SECRET])) as rotated:
        dropped = await rotated.get("/session", headers={"cookie": f"{COOKIE}={old_token}"})
    assert dropped.json() == {}


async def test_an_unserialisable_value_raises_naming_the_key(store: Store) -> None:
    app = build_app(store)

    async def put_object(request: Request) -> PlainTextResponse:
        request.session["when"] = object()
        return PlainTextResponse("unreachable")

    app.router.routes.append(Route("/bad", put_object))
    async with client_for(app) as client:
        with pytest.raises(SessionError, match=r"\['when'\]"):
            await client.get("/bad")


async def test_an_oversize_assignment_raises_where_it_is_made(store: Store) -> None:
    async with client_for(build_app(store, max_session_bytes=1000)) as client:
        with pytest.raises(SessionError, match=r"session\['blob'\].*max_session_bytes=1000"):
            await client.post("/session", json={"small": 1, "blob": "x" * 2000})
        assert COOKIE not in client.cookies


async def test_the_app_can_catch_an_oversize_assignment(store: Store) -> None:
    async def upload(request: Request) -> PlainTextResponse:
        try:
            request.session["upload"] = "x" * 2000
        except SessionError:
            return PlainTextResponse("too big", status_code=413)
        return PlainTextResponse("kept")

    app = build_app(store, max_session_bytes=1000)
    app.router.routes.insert(0, Route("/upload", upload, methods=["POST"]))
    async with client_for(app) as client:
        await client.post("/session", json={"a": 1})
        assert (await client.post("/upload")).status_code == 413
        assert (await client.get("/session")).json() == {"a": 1}


async def test_a_list_grown_in_place_past_the_limit_raises_with_the_largest_keys(
    store: Store,
) -> None:
    async def grow(request: Request) -> PlainTextResponse:
        request.session["cart"].extend(["item"] * 300)  # not an assignment: seen at save
        return PlainTextResponse("grown")

    app = build_app(store, max_session_bytes=1000)
    app.router.routes.insert(0, Route("/grow", grow, methods=["POST"]))
    async with client_for(app) as client:
        await client.post("/session", json={"cart": [], "small": 1})
        with pytest.raises(SessionError, match=r"max_session_bytes=1000.*'cart'"):
            await client.post("/grow")


async def test_cookie_responses_are_private_and_vary_on_cookie(store: Store) -> None:
    async with client_for(build_app(store)) as client:
        written = await client.post("/session", json={"a": 1})
        read = await client.get("/session")
        untouched = await client.get("/untouched")
    assert written.headers["cache-control"] == "private, no-store"
    assert written.headers["vary"] == "Cookie"
    assert read.headers["vary"] == "Cookie"
    assert "cache-control" not in read.headers
    assert "vary" not in untouched.headers


async def test_session_values_round_trip_as_json(store: Store) -> None:
    value = {"text": "caf\u00e9 \u2615", "n": 1.5, "flag": False, "none": None, "list": [1, [2]]}
    async with client_for(build_app(store)) as client:
        await client.post("/session", json=value)
        response = await client.get("/session")
    assert response.json() == value
    assert json.loads(response.text) == value


async def test_lone_surrogates_from_json_bodies_are_stored(store: Store) -> None:
    app = build_app(store)

    async def store_raw(request: Request) -> PlainTextResponse:
        request.session.update(await request.json())
        return PlainTextResponse("stored")

    async def show_ascii(request: Request) -> PlainTextResponse:
        return PlainTextResponse(ascii(dict(request.session)))

    app.router.routes += [Route("/raw", store_raw, methods=["POST"]), Route("/ascii", show_ascii)]
    async with client_for(app) as client:
        stored = await client.post("/raw", content=b'{"text": "a\\ud800b"}')
        shown = await client.get("/ascii")
    assert stored.status_code == 200
    assert shown.text == ascii({"text": "a\ud800b"})


async def test_a_public_cache_control_never_goes_out_with_a_cookie(store: Store) -> None:
    app = build_app(store)

    async def cached(request: Request) -> PlainTextResponse:
        request.session["n"] = 1
        return PlainTextResponse("hi", headers={"cache-control": "public, max-age=600"})

    async def private(request: Request) -> PlainTextResponse:
        request.session["n"] = 2
        return PlainTextResponse("hi", headers={"cache-control": "no-cache"})

    app.router.routes += [Route("/cached", cached), Route("/private", private)]
    async with client_for(app) as client:
        public_response = await client.get("/cached")
        private_response = await client.get("/private")
    assert public_response.headers["cache-control"] == "max-age=600, private, no-store"
    assert private_response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("public, no-cache", "no-cache, private, no-store"),  # "no-cache" did not protect it
        ("x-private-note", "x-private-note, private, no-store"),  # nor did a made-up word
        ("Public, S-MaxAge=60, no-store", "no-store, private"),
        ("private, no-store", "private, no-store"),
    ],
)
async def test_cache_control_is_read_as_directives_when_a_cookie_is_set(
    store: Store, given: str, sent: str
) -> None:
    async def first_write(request: Request) -> PlainTextResponse:
        request.session["n"] = 1
        return PlainTextResponse("hi", headers={"cache-control": given})

    app = build_app(store)
    app.router.routes.insert(0, Route("/first", first_write))
    async with client_for(app) as client:
        response = await client.get("/first")
    assert "set-cookie" in response.headers
    assert response.headers["cache-control"] == sent


async def test_a_response_start_without_headers_still_gets_its_cookie(store: Store) -> None:
    async def bare(scope: Any, receive: Any, send: Any) -> None:
        scope["session"]["n"] = 1
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"ok"})

    app = SessionMiddleware(bare, store=store, secret_keys=[SECRET])
    async with client_for(app) as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert f"{COOKIE}=" in response.headers["set-cookie"]


async def test_cookie_joins_the_apps_own_vary_header(store: Store) -> None:
    app = build_app(store)

    async def varying(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(request.session.get("n")), headers={"vary": "Accept"})

    app.router.routes.append(Route("/varying", varying))
    async with client_for(app) as client:
        await client.post("/session", json={"n": 1})
        response = await client.get("/varying")
    assert response.headers.get_list("vary") == ["Accept, Cookie"]


async def test_a_vary_header_spelt_in_capitals_still_ends_up_varying_on_cookie(
    store: Store,
) -> None:
    """ASGI names are lower-case, but an app may send `Vary` raw: it gets a second `Vary`
    line rather than a merge, which HTTP reads as one list (RFC 9110, 5.3)."""
    app = build_app(store)

    async def raw(request: Request) -> PlainTextResponse:
        response = PlainTextResponse(str(request.session.get("n")))
        response.raw_headers.append((b"Vary", b"Accept"))
        return response

    app.router.routes.append(Route("/raw", raw))
    async with client_for(app) as client:
        await client.post("/session", json={"n": 1})
        response = await client.get("/raw")
    assert response.text == "1"
    assert response.headers.get_list("vary") == ["Accept", "Cookie"]


async def test_max_session_bytes_counts_utf8_bytes(store: Store) -> None:
    async with client_for(build_app(store, max_session_bytes=1000)) as client:
        with pytest.raises(SessionError, match="max_session_bytes=1000"):
            await client.post("/session", json={"note": "\U0001f600" * 300})  # 1200 bytes


async def test_an_absolute_max_age_is_not_a_second_short(store: Store) -> None:
    """The record is made a few milliseconds before the cookie: that must not cost a second."""
    ticks = iter(range(10**9))

    def ticking() -> float:  # one millisecond later on every call
        return 1_800_000_000 + next(ticks) / 1000

    async with client_for(build_app(store, absolute_ttl=3600, clock=ticking)) as client:
        response = await client.post("/session", json={"a": 1})
    assert "; Max-Age=3600;" in response.headers["set-cookie"]


async def test_a_fixed_max_age_is_sent_again_whenever_the_session_changes(store: Store) -> None:
    """As Starlette's middleware does: a busy session's cookie must not lapse after N seconds."""
    app = build_app(store, cookie=CookieTransport(max_age=600))
    async with client_for(app) as client:
        first = await client.post("/session", json={"a": 1})
        changed = await client.post("/session", json={"a": 2})
        unchanged = await client.post("/session", json={"a": 2})
        read = await client.get("/session")
    assert "Max-Age=600" in first.headers["set-cookie"]
    assert "Max-Age=600" in changed.headers["set-cookie"]
    assert "set-cookie" not in unchanged.headers
    assert "set-cookie" not in read.headers


async def test_mark_accessed_makes_a_response_vary_on_the_cookie(store: Store) -> None:
    async def touch(request: Request) -> PlainTextResponse:
        session: Session = request.session  # type: ignore[assignment]
        session.mark_accessed()  # Starlette's Session API
        return PlainTextResponse("ok")

    app = build_app(store)
    app.router.routes.insert(0, Route("/touch", touch))
    async with client_for(app) as client:
        await client.post("/session", json={"a": 1})
        response = await client.get("/touch")
    assert response.headers["vary"] == "Cookie"
