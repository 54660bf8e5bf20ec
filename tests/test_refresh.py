"""Refresh tokens: the rotation rule, both stores pinned to it, and token pairs over HTTP on
every store (rotation, reuse grace, theft detection, the token endpoint)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
import redis.asyncio as redis_asyncio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward import (
    BearerSigner,
    BearerTransport,
    Events,
    InvalidGrant,
    JWTKey,
    MemoryStore,
    RedisStore,
    SessionConfig,
    SessionEvent,
    SessionMiddleware,
    Store,
    TokenPair,
    TokenPairs,
    UserSessions,
    get_session,
    login,
    login_bearer,
    reauthenticate,
    recently_authenticated,
    token_routes,
)
from sessionward.record import (
    REFRESH,
    REFRESH_CLIENT,
    REFRESH_PARENT,
    REFRESH_REPLAYS,
    REFRESH_ROTATED,
)
from sessionward.refresh import (
    GENERATIONS,
    MAX_GRACE_REPLAYS,
    Outcome,
    RefreshKeys,
    decide,
    new_secret,
    parse,
    rotated_fields,
    secret_hash,
)
from sessionward.tokens import new_session_id, session_hash
from tests.apps import SECRET
from tests.conftest import Clock, client_for

pytestmark = pytest.mark.anyio

OTHER_SECRET = "another-secret-key-of-32-or-more-characters"
JWT_KEY = JWTKey("k1", "HS256", "bearer-" + "k" * 32)
NOW = 1_800_000_000_000
GRACE = 30_000
KEYS = RefreshKeys([SECRET])
CLIENT = "u:the-phone"  # who made the last rotation, as `TokenPairs.fingerprint` names it


# -- the rule ---------------------------------------------------------------------------------


def family(secret: str, generations: int) -> list[str]:
    """The secrets of a family from `secret` on: secret, its successor, and so on."""
    secrets_ = [secret]
    for _ in range(generations):
        secrets_.append(KEYS.successor(secrets_[-1]))
    return secrets_


S = family(new_secret(), 20)  # S[0] -> S[1] -> ... under SECRET


def token_pairs(store: Store, clock: Clock) -> TokenPairs:
    """Token pairs outside any request, on the tests' keys, `store` and `clock`."""
    config = SessionConfig(
        secret_keys=[SECRET],
        store=store,
        bearer=BearerTransport(BearerSigner(JWT_KEY)),
        clock=clock,
    )
    return TokenPairs(config)


def stored(
    current: int,
    parent: int | None = None,
    rotated: object = NOW - 1000,
    *,
    by: str | None = CLIENT,
    replays: int = 0,
) -> dict[str, str]:
    fields = {REFRESH: secret_hash(S[current]), "m:via": "bearer", "m:user": "ada"}
    if parent is not None:
        fields[REFRESH_PARENT] = secret_hash(S[parent])
        if rotated is not None:
            fields[REFRESH_ROTATED] = str(rotated)
        if by is not None:  # a rotation 0.2 made records no client
            fields[REFRESH_CLIENT], fields[REFRESH_REPLAYS] = by, str(replays)
    return fields


# (name, stored, presented secret index, outcome, position)
RULE = [
    ("the current token rotates", stored(1, 0), 1, Outcome.ROTATED),
    ("the first token of a family rotates", stored(0), 0, Outcome.ROTATED),
    ("the parent within the grace is replayed", stored(1, 0), 0, Outcome.REPLAYED),
    ("the parent at the grace's edge", stored(1, 0, NOW - GRACE), 0, Outcome.REPLAYED),
    ("the parent past the grace is stolen", stored(1, 0, NOW - GRACE - 1), 0, Outcome.STOLEN),
    ("the parent with no time of use", stored(1, 0, None), 0, Outcome.STOLEN),
    ("the parent with an unreadable time", stored(1, 0, "soon"), 0, Outcome.STOLEN),
    ("the parent from another client", stored(1, 0, by="u:a-thief"), 0, Outcome.INVALID),
    ("the parent of a rotation 0.2 made", stored(1, 0, by=None), 0, Outcome.INVALID),
    ("the parent's last replay", stored(1, 0, replays=MAX_GRACE_REPLAYS - 1), 0, Outcome.REPLAYED),
    ("the parent past its replays", stored(1, 0, replays=MAX_GRACE_REPLAYS), 0, Outcome.INVALID),
    (
        "the parent past the grace, any client",
        stored(1, 0, NOW - GRACE - 1, by="x"),
        0,
        Outcome.STOLEN,
    ),
    ("a grandparent, even within the grace", stored(2, 1), 0, Outcome.STOLEN),
    ("an ancestor as old as we look back", stored(GENERATIONS, GENERATIONS - 1), 0, Outcome.STOLEN),
    ("older than we look back", stored(GENERATIONS + 1, GENERATIONS), 0, Outcome.INVALID),
    ("a token from the future", stored(1, 0), 3, Outcome.INVALID),
    ("a family with no current token", {"m:via": "bearer"}, 0, Outcome.INVALID),
]
RULE_IDS = [name for name, *_ in RULE]


@pytest.mark.parametrize(("name", "fields", "presented", "outcome"), RULE, ids=RULE_IDS)
def test_the_rule(name: str, fields: dict[str, str], presented: int, outcome: Outcome) -> None:
    secret = S[presented]
    chains = KEYS.successors(secret)
    assert decide(fields, secret_hash(secret), chains, NOW, GRACE, CLIENT)[0] == outcome


def test_a_replay_across_key_rotation_names_the_key_that_made_the_successor() -> None:
    rotated_keys = RefreshKeys([OTHER_SECRET, SECRET])  # SECRET made S[1] from S[0]
    chains = rotated_keys.successors(S[0])
    replayed = decide(stored(1, 0), secret_hash(S[0]), chains, NOW, GRACE, CLIENT)
    assert replayed == (Outcome.REPLAYED, 1)
    assert rotated_keys.successor(S[0], 1) == S[1]


def test_a_replay_this_process_cannot_link_is_refused_not_judged_theft() -> None:
    # Regression: in a rolling deploy, a worker that does not know the newest key cannot
    # work out the successor the current token was made with, and judged a legitimate
    # retry theft (revoking the session and firing the alert).
    chains = RefreshKeys([OTHER_SECRET]).successors(S[0])  # the key that made S[1] is unknown
    assert decide(stored(1, 0), secret_hash(S[0]), chains, NOW, GRACE, CLIENT)[0] == Outcome.INVALID


def test_every_successor_is_a_well_formed_secret() -> None:
    # 2,000 fixed secrets: about 30 successors end in each base64 character, "X" and "=" look-
    # alikes included, so a wrong strip of the padding cannot pass by luck.
    for number in range(2000):
        successor = KEYS.successor(f"{number:043d}", 0, "salt")
        assert parse(new_session_id() + "." + successor) is not None, successor


def test_the_family_value_changes_every_successor() -> None:
    # Regression: successors came from the parent and a server key alone, so a leaked key
    # and any old token of a family were enough to work out its current token.
    salted, plain = KEYS.successor(S[0], 0, new_secret()), KEYS.successor(S[0])
    assert plain == S[1]
    assert salted != plain
    assert KEYS.successor(S[0], 0, "") == plain  # a family 0.2 started goes on as it was


@pytest.mark.parametrize(
    "token",
    [
        "",
        "x",
        "a" * 87,
        new_session_id() + "." + new_secret() + "x",
        new_session_id() + ":" + new_secret(),
        new_session_id() + "." + "+" * 43,
        None,
        42,
        "eyJhbGciOiJIUzI1NiJ9.eyJzaWQiOiJ4In0.c2ln",
    ],
)
def test_only_a_well_formed_refresh_token_parses(token: Any) -> None:
    assert parse(token) is None


# -- the stores, pinned to the rule -----------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
async def rule_store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    client = redis_asyncio.Redis.from_url(request.getfixturevalue("redis_url"))
    await client.flushdb()
    yield RedisStore(client)
    await client.aclose()


KEY = "b" * 64


async def raw_fields(store: Store) -> dict[str, str] | None:
    """Every field of the session, as stored (`read_records` reads only the listing's)."""
    if isinstance(store, MemoryStore):
        entry = store._entries.get(KEY)
        return None if entry is None else dict(entry.fields)
    assert isinstance(store, RedisStore)
    raw = await store.client.hgetall(store.key(KEY))
    raw.pop(b"m:h", None)  # the store's binary header: its figures are in m:seen and m:expires
    return {_text(name): _text(value) for name, value in raw.items()} or None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def plant(store: Store, fields: dict[str, str]) -> None:
    record = {"m:created": str(NOW - 5000), "m:expires": str(NOW + 10**8), "m:seen": str(NOW - 10)}
    assert await store.save(KEY, {**record, **fields}, (), NOW - 10, 10**8, create=True)


@pytest.mark.parametrize(("name", "fields", "presented", "outcome"), RULE, ids=RULE_IDS)
async def test_each_store_follows_the_rule(
    rule_store: Store, name: str, fields: dict[str, str], presented: int, outcome: Outcome
) -> None:
    await plant(rule_store, fields)
    secret = S[presented]
    chains = KEYS.successors(secret)
    got, position, returned = await rule_store.refresh(
        KEY, NOW, 10**8, secret_hash(secret), chains, GRACE, CLIENT
    )
    after = await raw_fields(rule_store)
    assert (got, position) == (outcome, 0)
    if outcome == Outcome.STOLEN:
        assert after is None  # revoked
        assert returned is not None
        assert returned["m:user"] == "ada"
    elif outcome == Outcome.INVALID:
        assert returned is None
        assert after is not None
        assert after.get(REFRESH) == fields.get(REFRESH)  # nothing written
        assert after["m:seen"] == str(NOW - 10)  # nor touched
    else:
        assert after is not None
        assert after["m:seen"] == str(NOW)
        replays = str(int(fields.get(REFRESH_REPLAYS, "0")) + 1)
        expected = (
            rotated_fields(secret_hash(secret), chains, NOW, CLIENT)
            if outcome == Outcome.ROTATED
            else {
                **{name: fields[name] for name in (REFRESH, REFRESH_PARENT)},
                REFRESH_REPLAYS: replays,
            }
        )
        assert {name: after.get(name) for name in expected} == expected


async def test_a_cookie_session_never_refreshes(rule_store: Store) -> None:
    await plant(rule_store, {**stored(0), "m:via": "cookie"})
    outcome, _, _ = await rule_store.refresh(
        KEY, NOW, 10**8, secret_hash(S[0]), KEYS.successors(S[0]), GRACE, CLIENT
    )
    assert outcome == Outcome.INVALID


async def test_an_ended_session_never_refreshes(rule_store: Store) -> None:
    await plant(rule_store, stored(0))
    later = NOW + 10**8 + 1
    outcome, _, _ = await rule_store.refresh(
        KEY, later, 10**8, secret_hash(S[0]), KEYS.successors(S[0]), GRACE, CLIENT
    )
    assert outcome == Outcome.INVALID


# -- token pairs over HTTP --------------------------------------------------------------------


async def api_sign_in(request: Request) -> Response:
    device = request.query_params.get("device")
    pair = await login_bearer(request, request.path_params["user"], device_id=device)
    return JSONResponse(pair.to_dict())


async def old_style_sign_in(request: Request) -> Response:
    return JSONResponse({"token": await login(request, "ada", transport="bearer")})


async def whoami(request: Request) -> Response:
    info = get_session(request)
    if info is None:
        return JSONResponse(None)
    recent = recently_authenticated(request, within=60)
    return JSONResponse({"user": info.user_id, "id": info.public_id, "recent": recent})


async def confirm(request: Request) -> Response:
    renewed = await reauthenticate(request)
    assert isinstance(renewed, TokenPair)
    return JSONResponse(renewed.to_dict())


class Recorder:
    def __init__(self) -> None:
        self.events: list[SessionEvent] = []

    async def __call__(self, event: SessionEvent) -> None:
        self.events.append(event)


def app_for(
    store: Store, clock: Clock, recorder: Recorder | None = None, **options: Any
) -> Starlette:
    options.setdefault("secret_keys", [SECRET])
    bearer = BearerTransport(BearerSigner(JWT_KEY, lifetime=3600))
    return Starlette(
        routes=[
            Route("/api/login/{user}", api_sign_in, methods=["POST"]),
            Route("/api/old-login", old_style_sign_in, methods=["POST"]),
            Route("/api/me", whoami),
            Route("/api/reauthenticate", confirm, methods=["POST"]),
            *token_routes(),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                store=store,
                clock=clock,
                bearer=bearer,
                events=Events([recorder or Recorder()]),
                **options,
            )
        ],
    )


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def refresh(
    client: httpx.AsyncClient, token: str, *, as_json: bool = False
) -> httpx.Response:
    body = {"grant_type": "refresh_token", "refresh_token": token}
    if as_json:
        return await client.post("/token/refresh", json=body)
    return await client.post("/token/refresh", data=body)


async def test_a_pair_signs_in_and_refreshes(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock)) as api:
        first = (await api.post("/api/login/ada")).json()
        me = (await api.get("/api/me", headers=bearer(first["access_token"]))).json()
        clock.advance(600)
        answer = await refresh(api, first["refresh_token"])
        second = answer.json()
        again = (await api.get("/api/me", headers=bearer(second["access_token"]))).json()
        by_json = (await refresh(api, second["refresh_token"], as_json=True)).json()
    assert set(first) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "device_token",
    }
    assert "device_token" not in second  # a refresh is not a sign-in
    assert first["token_type"] == "Bearer"
    assert first["expires_in"] == 900  # short-lived, whatever the signer's own lifetime
    claims = jwt.decode(first["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 900
    assert me["user"] == again["user"] == "ada"
    assert me["id"] == again["id"]  # the same session throughout
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["pragma"] == "no-cache"
    assert second["refresh_token"] != first["refresh_token"]
    assert by_json["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    assert parse(first["refresh_token"]) is not None  # opaque: not a JWT


async def test_the_store_keeps_only_a_hash_of_the_refresh_token(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock)) as api:
        pair = (await api.post("/api/login/ada")).json()
        me = (await api.get("/api/me", headers=bearer(pair["access_token"]))).json()
    fields = await store.load(me["id"], int(clock() * 1000), 10**8)
    secret = pair["refresh_token"].partition(".")[2]
    assert fields is not None
    assert secret not in repr(fields)
    assert fields[REFRESH] == secret_hash(secret)


async def test_a_retry_within_the_grace_gets_the_same_pair(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock)) as api:
        first = (await api.post("/api/login/ada")).json()
        answer = (await refresh(api, first["refresh_token"])).json()
        clock.advance(29)
        retry = (await refresh(api, first["refresh_token"])).json()
        me = (await api.get("/api/me", headers=bearer(retry["access_token"]))).json()
        onwards = await refresh(api, retry["refresh_token"])
    assert retry["refresh_token"] == answer["refresh_token"]
    claims = [
        jwt.decode(t, options={"verify_signature": False})
        for t in (answer["access_token"], retry["access_token"])
    ]
    assert (claims[0]["sid"], claims[0]["sub"]) == (claims[1]["sid"], claims[1]["sub"])
    assert me["user"] == "ada"
    assert onwards.status_code == 200  # the replayed answer is the family's current token


async def test_racing_refreshes_all_get_the_one_next_token(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock)) as api:
        first = (await api.post("/api/login/ada")).json()
        answers = await asyncio.gather(*(refresh(api, first["refresh_token"]) for _ in range(6)))
        granted = [answer.json() for answer in answers if answer.status_code == 200]
        refused = [answer.json() for answer in answers if answer.status_code != 200]
        (token,) = {pair["refresh_token"] for pair in granted}
        alive = await refresh(api, token)
    # One rotation and at most MAX_GRACE_REPLAYS replays of it; the rest get nothing, and
    # nothing is revoked.
    assert len(granted) == 1 + MAX_GRACE_REPLAYS
    assert refused == [{"error": "invalid_grant"}] * (6 - len(granted))
    assert alive.status_code == 200


async def test_a_thief_cannot_ride_the_grace_after_each_refresh(store: Store, clock: Clock) -> None:
    # Regression: a thief with one stolen token replayed the token the victim had just
    # used, inside the grace after each of the victim's refreshes, and got the live pair
    # every time (12 rotations), with theft detection never firing.
    recorder = Recorder()
    async with (
        client_for(app_for(store, clock, recorder)) as phone,
        client_for(app_for(store, clock, recorder)) as thief,
    ):
        phone.headers["user-agent"] = "ExampleApp/4.2 (iPhone; iOS 18.1)"
        thief.headers["user-agent"] = "curl/8.5.0"
        pair = (await phone.post("/api/login/ada")).json()
        phone.headers["device-token"] = pair["device_token"]
        stolen_rides = []
        for _ in range(12):
            used = pair["refresh_token"]
            pair = (await refresh(phone, used)).json()
            clock.advance(5)
            stolen_rides.append((await refresh(thief, used)).status_code)
        still = await refresh(phone, pair["refresh_token"])
    assert stolen_rides == [400] * 12
    assert still.status_code == 200  # refused, not revoked: the phone keeps its session
    assert not [e for e in recorder.events if e.type == "session.theft_suspected"]


async def test_the_same_client_may_retry_three_times(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock)) as phone:
        first = (await phone.post("/api/login/ada")).json()
        phone.headers["device-token"] = first["device_token"]
        answer = (await refresh(phone, first["refresh_token"])).json()
        phone.headers["user-agent"] = "ExampleApp/4.2 (on another network)"  # the token counts
        retries = [await refresh(phone, first["refresh_token"]) for _ in range(4)]
        onwards = await refresh(phone, answer["refresh_token"])
    assert [retry.json().get("refresh_token") for retry in retries[:3]] == [
        answer["refresh_token"]
    ] * 3
    assert retries[3].json() == {"error": "invalid_grant"}
    assert onwards.status_code == 200


async def test_a_reuse_after_the_grace_revokes_the_session(store: Store, clock: Clock) -> None:
    recorder = Recorder()
    async with client_for(app_for(store, clock, recorder)) as api:
        first = (await api.post("/api/login/ada")).json()
        me = (await api.get("/api/me", headers=bearer(first["access_token"]))).json()
        legit = (await refresh(api, first["refresh_token"])).json()
        clock.advance(31)
        thief = await refresh(api, first["refresh_token"])
        after = await api.get("/api/me", headers=bearer(legit["access_token"]))
        legit_next = await refresh(api, legit["refresh_token"])
    assert thief.status_code == 400
    assert thief.json() == {"error": "invalid_grant"}
    assert after.status_code == 401
    assert 'error_description="session_ended"' in after.headers["www-authenticate"]
    assert legit_next.json() == {"error": "invalid_grant"}
    (event,) = [e for e in recorder.events if e.type == "session.theft_suspected"]
    assert (event.user_id, event.public_id) == ("ada", me["id"])
    assert event.device_label
    assert await store.index_read("ada") == {}  # unindexed, not left for a listing to drop
    assert await UserSessions(store).list_sessions("ada") == []


async def test_a_rotated_token_is_never_handed_out_again(store: Store, clock: Clock) -> None:
    """t0 used, then t1 used: presenting t0 again, even within its grace, would hand out t1,
    whose next use would look like theft. It is theft already: two parties hold t0."""
    async with client_for(app_for(store, clock)) as api:
        t0 = (await api.post("/api/login/ada")).json()["refresh_token"]
        t1 = (await refresh(api, t0)).json()["refresh_token"]
        t2 = (await refresh(api, t1)).json()
        replay = await refresh(api, t0)
        after = await api.get("/api/me", headers=bearer(t2["access_token"]))
    assert replay.json() == {"error": "invalid_grant"}
    assert after.status_code == 401


async def test_a_wrong_or_garbage_token_revokes_nothing(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock)) as api:
        pair = (await api.post("/api/login/ada")).json()
        session_id = pair["refresh_token"].partition(".")[0]
        answers = [
            await refresh(api, f"{session_id}.{new_secret()}"),  # a guess at the secret
            await refresh(api, pair["access_token"]),  # the access token
            await refresh(api, "x" * 500),
            await refresh(api, ""),
        ]
        me = await api.get("/api/me", headers=bearer(pair["access_token"]))
        still = await refresh(api, pair["refresh_token"])
    assert [a.json()["error"] for a in answers] == [
        "invalid_grant",
        "invalid_grant",
        "invalid_grant",
        "invalid_request",
    ]
    assert me.status_code == 200
    assert still.status_code == 200


@pytest.mark.parametrize(
    ("send", "error"),
    [
        ({"data": {"refresh_token": "x"}}, "unsupported_grant_type"),
        ({"data": {"grant_type": "password", "refresh_token": "x"}}, "unsupported_grant_type"),
        ({"data": {"grant_type": "refresh_token"}}, "invalid_request"),
        ({"json": ["refresh_token"]}, "invalid_request"),
        (
            {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}},
            "invalid_request",
        ),
        (
            {"content": b"grant_type=refresh_token", "headers": {"content-type": "text/plain"}},
            "invalid_request",
        ),
        ({"data": {"grant_type": "refresh_token", "refresh_token": "y" * 5000}}, "invalid_request"),
    ],
)
async def test_a_malformed_token_request_is_a_400(
    store: Store, clock: Clock, send: dict[str, Any], error: str
) -> None:
    async with client_for(app_for(store, clock)) as api:
        answer = await api.post("/token/refresh", **send)
    assert answer.status_code == 400
    assert answer.json()["error"] == error
    assert answer.headers["cache-control"] == "no-store"


async def test_a_refresh_token_in_the_query_string_is_refused(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock)) as api:
        pair = (await api.post("/api/login/ada")).json()
        answer = await api.post(
            "/token/refresh",
            params={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]},
        )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


async def test_a_refresh_is_not_a_sign_in(store: Store, clock: Clock) -> None:
    recorder = Recorder()
    async with client_for(app_for(store, clock, recorder)) as api:
        first = (await api.post("/api/login/ada")).json()
        clock.advance(120)
        second = (await refresh(api, first["refresh_token"])).json()
        me = (await api.get("/api/me", headers=bearer(second["access_token"]))).json()
    assert [event.type for event in recorder.events] == ["session.login"]
    assert me["recent"] is False  # the sign-in was 120 s ago; the refresh did not move it


async def test_an_ended_session_refreshes_nothing(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock, idle_ttl=600)) as api:
        pair = (await api.post("/api/login/ada")).json()
        clock.advance(601)
        answer = await refresh(api, pair["refresh_token"])
    assert answer.json() == {"error": "invalid_grant"}


async def test_a_family_survives_key_rotation(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock)) as before:
        pair = (await before.post("/api/login/ada")).json()
        used = (await refresh(before, pair["refresh_token"])).json()
    rotated = app_for(store, clock, secret_keys=[OTHER_SECRET, SECRET])
    async with client_for(rotated) as after:
        retry = (await refresh(after, pair["refresh_token"])).json()  # made under the old key
        onwards = (await refresh(after, used["refresh_token"])).json()
        last = await refresh(after, onwards["refresh_token"])
    assert retry["refresh_token"] == used["refresh_token"]
    assert last.status_code == 200


async def test_a_retry_on_a_worker_without_the_newest_key_is_refused_not_revoked(
    store: Store, clock: Clock
) -> None:
    # Regression: in a rolling deploy of a new key, a retry that reached a worker which did
    # not know it yet matched the stored parent, could not be linked to the current token,
    # and was judged theft: the session was revoked and the alert fired.
    recorder = Recorder()
    new_worker = app_for(store, clock, recorder, secret_keys=[OTHER_SECRET, SECRET])
    old_worker = app_for(store, clock, recorder, secret_keys=[SECRET])
    async with client_for(new_worker) as new, client_for(old_worker) as old:
        pair = (await new.post("/api/login/ada")).json()
        used = (await refresh(new, pair["refresh_token"])).json()  # made under the new key
        retry = await refresh(old, pair["refresh_token"])
        onwards = await refresh(new, used["refresh_token"])
    assert retry.json() == {"error": "invalid_grant"}
    assert onwards.status_code == 200
    assert not [e for e in recorder.events if e.type == "session.theft_suspected"]


async def test_a_leaked_key_and_an_old_token_do_not_give_the_current_one(
    store: Store, clock: Clock
) -> None:
    # Regression: a successor came from its parent and the server key alone, so whoever held
    # a signing key and any old refresh token could work out the family's current token.
    async with client_for(app_for(store, clock)) as api:
        first = (await api.post("/api/login/ada")).json()
        await refresh(api, first["refresh_token"])
        session_id, secret = first["refresh_token"].split(".")
        worked_out = f"{session_id}.{KEYS.successor(secret)}"  # the current one, once
        attempt = await refresh(api, worked_out)
        me = await api.get("/api/me", headers=bearer(first["access_token"]))
    assert attempt.json() == {"error": "invalid_grant"}
    assert me.json()["user"] == "ada"


async def test_reauthenticating_a_pair_starts_a_new_family(store: Store, clock: Clock) -> None:
    async with client_for(app_for(store, clock)) as api:
        pair = (await api.post("/api/login/ada")).json()
        renewed = (
            await api.post("/api/reauthenticate", headers=bearer(pair["access_token"]))
        ).json()
        old = await refresh(api, pair["refresh_token"])
        new = await refresh(api, renewed["refresh_token"])
        me = (await api.get("/api/me", headers=bearer(new.json()["access_token"]))).json()
    assert old.json() == {"error": "invalid_grant"}
    assert new.status_code == 200
    assert me["recent"] is True


async def test_login_with_bearer_still_returns_one_long_lived_jwt(
    store: Store, clock: Clock
) -> None:
    async with client_for(app_for(store, clock)) as api:
        token = (await api.post("/api/old-login")).json()["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600


async def test_token_pairs_work_outside_requests(store: Store, clock: Clock) -> None:
    config = SessionConfig(
        secret_keys=[SECRET],
        store=store,
        bearer=BearerTransport(BearerSigner(JWT_KEY), access_token_lifetime=300),
        clock=clock,
    )
    pairs = TokenPairs(config)
    pair = await pairs.issue("ada", ip="203.0.113.9", user_agent="ExampleApp/2.0 okhttp/4.12")
    nxt = await pairs.refresh(pair.refresh_token)
    with pytest.raises(InvalidGrant):
        await pairs.refresh("garbage")
    (listed,) = await UserSessions(config).list_sessions("ada")
    assert pair.expires_in == nxt.expires_in == 300
    assert listed.ip == "203.0.113.9"
    assert listed.transport == "bearer"
    async with client_for(app_for(store, clock)) as api:
        me = (await api.get("/api/me", headers=bearer(nxt.access_token))).json()
    assert me["user"] == "ada"


async def test_a_token_service_passes_the_clients_headers(store: Store, clock: Clock) -> None:
    """Outside requests, the client's `User-Agent` and `Device-Token` decide what they decide
    in a request: the device list's label, a known device, and who may replay a refresh."""
    pairs = token_pairs(store, clock)
    config = pairs.config
    iphone = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
    )
    first = await pairs.issue("ada", ip="203.0.113.9", user_agent=iphone)
    assert first.device_token is not None
    again = await pairs.issue("ada", user_agent=iphone, device_token=first.device_token)
    stranger = await pairs.issue("ada", user_agent=iphone)
    listed = {info.public_id: info for info in await UserSessions(config).list_sessions("ada")}
    assert [info.new_device for info in listed.values()].count(True) == 2  # first, stranger
    assert all(info.device and info.device.label == "Safari on iPhone" for info in listed.values())
    assert again.device_token == first.device_token
    assert stranger.device_token != first.device_token
    used = await pairs.refresh(
        first.refresh_token, user_agent=iphone, device_token=first.device_token
    )
    replay = await pairs.refresh(
        first.refresh_token, user_agent="curl/8", device_token=first.device_token
    )
    assert replay.refresh_token == used.refresh_token  # the same device, whatever its user-agent
    with pytest.raises(InvalidGrant):
        await pairs.refresh(first.refresh_token, user_agent=iphone)  # the user-agent alone
    with pytest.raises(InvalidGrant):
        await pairs.refresh(first.refresh_token, device_token=stranger.device_token)
    # A header is Latin-1: what is not (an app's name in its own script) becomes "?".
    foreign = await pairs.issue("ada", user_agent="Приложение/1.0 ☃", device_token="токен")
    assert foreign.device_token is not None
    installed = await pairs.issue("ada", user_agent=iphone, device_id="install-7f3a")
    assert installed.device_token is None  # the app's own id names the device
    # A client that never sends its device token is known by its user-agent alone.
    rotated = await pairs.refresh(installed.refresh_token, user_agent=iphone)
    retry = await pairs.refresh(installed.refresh_token, user_agent=iphone)
    assert retry.refresh_token == rotated.refresh_token
    with pytest.raises(InvalidGrant):
        await pairs.refresh(installed.refresh_token, user_agent="curl/8")


async def test_a_pair_keeps_the_lifetimes_its_sign_in_chose(store: Store, clock: Clock) -> None:
    async def short(request: Request) -> Response:
        return JSONResponse((await login_bearer(request, "ada", idle_ttl=60)).to_dict())

    app = app_for(store, clock)
    app.router.routes.append(Route("/api/short", short, methods=["POST"]))
    async with client_for(app) as api:
        pair = (await api.post("/api/short")).json()
        clock.advance(59)
        alive = await refresh(api, pair["refresh_token"])
        clock.advance(61)
        gone = await refresh(api, alive.json()["refresh_token"])
    assert alive.status_code == 200
    assert gone.json() == {"error": "invalid_grant"}  # idle for 61 s of its own 60


async def test_a_family_started_by_0_2_goes_on_unsalted(store: Store, clock: Clock) -> None:
    config = SessionConfig(
        secret_keys=[SECRET],
        store=store,
        bearer=BearerTransport(BearerSigner(JWT_KEY)),
        clock=clock,
    )
    session_id, secret = new_session_id(), new_secret()
    now_ms = int(clock() * 1000)
    record = {  # a bearer session of 0.2: a family with no random value of its own
        "m:created": str(now_ms),
        "m:expires": str(now_ms + 10**8),
        "m:seen": str(now_ms),
        "m:via": "bearer",
        "m:user": "ada",
        REFRESH: secret_hash(secret),
    }
    assert await store.save(session_hash(session_id), record, (), now_ms, 10**8, create=True)
    pair = await TokenPairs(config).refresh(f"{session_id}.{secret}")
    assert pair.refresh_token == f"{session_id}.{KEYS.successor(secret)}"


@pytest.mark.parametrize(("name", "value"), [("access_token_lifetime", 0), ("reuse_grace", -1)])
def test_pair_settings_are_checked(name: str, value: int) -> None:
    from sessionward import ConfigurationError

    with pytest.raises(ConfigurationError, match=name):
        BearerTransport(BearerSigner(JWT_KEY), **{name: value})


async def test_the_fastapi_token_router_refreshes_and_is_documented(
    store: Store, clock: Clock
) -> None:
    from fastapi import FastAPI

    from sessionward.fastapi import token_router

    app = FastAPI()
    app.add_middleware(
        SessionMiddleware,
        secret_keys=[SECRET],
        store=store,
        clock=clock,
        bearer=BearerTransport(BearerSigner(JWT_KEY)),
    )
    app.include_router(token_router())

    @app.post("/login")
    async def sign_in(request: Request) -> dict[str, str | int]:
        return (await login_bearer(request, "ada")).to_dict()

    async with client_for(app) as api:
        pair = (await api.post("/login")).json()
        nxt = await refresh(api, str(pair["refresh_token"]))
        bad = await refresh(api, str(pair["refresh_token"]) + "x")
    operation = app.openapi()["paths"]["/token/refresh"]["post"]
    assert set(nxt.json()) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert nxt.headers["cache-control"] == "no-store"
    assert bad.json() == {"error": "invalid_grant"}
    assert set(operation["requestBody"]["content"]) == {
        "application/x-www-form-urlencoded",
        "application/json",
    }
    assert "400" in operation["responses"]


async def test_a_theft_alert_survives_a_failing_unindex(clock: Clock) -> None:
    from sessionward import StoreUnavailable

    class FlakyIndex(MemoryStore):
        fail = False

        async def index_update(self, user_id: str, scores: Any, remove: Any) -> None:
            if self.fail:
                raise StoreUnavailable("index unreachable")
            await super().index_update(user_id, scores, remove)

    store = FlakyIndex()
    recorder = Recorder()
    async with client_for(app_for(store, clock, recorder)) as api:
        first = (await api.post("/api/login/ada")).json()
        await refresh(api, first["refresh_token"])
        clock.advance(31)
        store.fail = True
        stolen = await refresh(api, first["refresh_token"])
    assert stolen.status_code == 503
    assert [event.type for event in recorder.events] == ["session.login", "session.theft_suspected"]


async def test_the_old_self_renewal_refuses_a_pairs_session(store: Store, clock: Clock) -> None:
    async def renew(request: Request) -> Response:
        from sessionward import refresh_token

        with (
            pytest.warns(DeprecationWarning, match="deprecated"),
            pytest.raises(ValueError, match="refresh_tokens"),
        ):
            await refresh_token(request)
        return JSONResponse(None)

    app = app_for(store, clock)
    app.router.routes.append(Route("/api/renew", renew, methods=["POST"]))
    async with client_for(app) as api:
        pair = (await api.post("/api/login/ada")).json()
        answer = await api.post("/api/renew", headers=bearer(pair["access_token"]))
    assert answer.status_code == 200


async def test_deeply_nested_json_is_a_400_not_a_500(store: Store, clock: Clock) -> None:
    from fastapi import FastAPI

    from sessionward.fastapi import token_router

    fastapi_app = FastAPI()
    fastapi_app.add_middleware(
        SessionMiddleware,
        secret_keys=[SECRET],
        store=store,
        bearer=BearerTransport(BearerSigner(JWT_KEY)),
    )
    fastapi_app.include_router(token_router())
    nested = {"content": b"[" * 3000, "headers": {"content-type": "application/json"}}
    for app in (app_for(store, clock), fastapi_app):
        async with client_for(app) as api:
            answer = await api.post("/token/refresh", **nested)  # type: ignore[arg-type]
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_request"


def test_the_documented_token_request_needs_its_grant_type() -> None:
    from sessionward.fastapi import TokenRequest

    assert "grant_type" in TokenRequest.model_json_schema()["required"]


async def test_token_pairs_say_why_a_refresh_is_refused(
    store: Store, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """The reasons a developer reads when a refresh is refused outside the token endpoint
    (which answers `invalid_grant` whatever they say), and the warning a theft leaves."""
    pairs = token_pairs(store, clock)
    with pytest.raises(InvalidGrant) as malformed:
        await pairs.refresh("garbage")
    with pytest.raises(InvalidGrant) as unknown:
        await pairs.refresh(f"{new_session_id()}.{new_secret()}")
    pair = await pairs.issue("ada", user_agent="ExampleApp/2.0")
    with pytest.raises(InvalidGrant) as wrong_secret:  # a live session, not its family's
        await pairs.refresh(f"{pair.refresh_token.partition('.')[0]}.{new_secret()}")
    await pairs.refresh(pair.refresh_token, user_agent="ExampleApp/2.0")
    clock.advance(31)
    with caplog.at_level("WARNING", logger="sessionward"), pytest.raises(InvalidGrant) as stolen:
        await pairs.refresh(pair.refresh_token, user_agent="ExampleApp/2.0")
    with pytest.raises(InvalidGrant) as ended:
        await pairs.refresh(pair.refresh_token, user_agent="ExampleApp/2.0")
    assert str(malformed.value) == "malformed refresh token"
    assert str(unknown.value) == str(ended.value) == str(wrong_secret.value)
    assert str(unknown.value) == "unknown refresh token, or its session has ended"
    assert str(stolen.value) == "a used refresh token came back: session revoked as stolen"
    (warning,) = [r for r in caplog.records if r.name == "sessionward"]
    session_id = pair.refresh_token.partition(".")[0]
    assert warning.getMessage() == (
        "sessionward: a used refresh token came back (after its grace, or after its successor "
        f"was used too); session {session_hash(session_id)[:12]} of user 'ada' revoked as stolen"
    )


@pytest.mark.parametrize(("after", "replayed"), [(30.0, True), (30.001, False)])
async def test_the_reuse_grace_ends_to_the_millisecond(
    store: Store, clock: Clock, after: float, replayed: bool
) -> None:
    pairs = token_pairs(store, clock)
    pair = await pairs.issue("ada", user_agent="ExampleApp/2.0")
    used = await pairs.refresh(pair.refresh_token, user_agent="ExampleApp/2.0")
    clock.advance(after)
    if replayed:
        again = await pairs.refresh(pair.refresh_token, user_agent="ExampleApp/2.0")
        assert again.refresh_token == used.refresh_token
    else:
        with pytest.raises(InvalidGrant, match="revoked as stolen"):
            await pairs.refresh(pair.refresh_token, user_agent="ExampleApp/2.0")
