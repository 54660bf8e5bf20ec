"""Hostile input over the whole middleware: whatever arrives, no 500 and nothing stored.

Requests are raw ASGI messages, so headers can hold bytes no HTTP client would send.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.types import Message

from sessionward import (
    BearerSigner,
    BearerTransport,
    CookieSigner,
    JWTKey,
    MemoryStore,
    RedisStore,
)
from sessionward.tokens import new_session_id
from tests.apps import COOKIE, SECRET, RecordingStore, build_app

HEADER_NAMES = [
    b"cookie",
    b"authorization",
    b"user-agent",
    b"x-forwarded-for",
    b"forwarded",
    b"host",
    b"origin",
    b"referer",
    b"sec-fetch-site",
]
header_values = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [b"x" * 10_000, COOKIE.encode() + b"=" + b"A" * 5000, b"Bearer " + b"e" * 9000]
    ),
    st.builds(
        lambda n, token: b"; ".join([COOKIE.encode() + b"=" + token] * n),
        st.integers(1, 50),
        st.sampled_from([b"garbage", b"a.b", b"\xff\xfe.\x00"]),
    ),
)
headers = st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_values), max_size=8)
paths = st.sampled_from(["/session", "/untouched", "/me", "/account/sessions"])


def scope_for(method: str, path: str, raw_headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": raw_headers,
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 443),
    }


async def call(app: Any, scope: dict[str, Any], body: bytes = b"{}") -> list[Message]:
    sent: list[Message] = []
    body_sent = False

    async def receive() -> Message:
        nonlocal body_sent
        if body_sent:
            await asyncio.sleep(60)
            return {"type": "http.disconnect"}
        body_sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def status_of(messages: list[Message]) -> int:
    starts = [m for m in messages if m["type"] == "http.response.start"]
    assert len(starts) == 1
    status: int = starts[0]["status"]
    return status


BEARER = BearerTransport(BearerSigner(JWTKey("k1", "HS256", "h" * 32)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["GET", "POST", "DELETE"]), path=paths, raw_headers=headers)
def test_anonymous_hostile_requests_never_fail_and_store_nothing(
    method: str, path: str, raw_headers: list[tuple[bytes, bytes]]
) -> None:
    recording = RecordingStore(MemoryStore())
    app = build_app(recording, bearer=BEARER, trusted_proxies=["127.0.0.0/8"])
    read_only_path = "/untouched" if method == "POST" and path == "/session" else path
    messages = asyncio.run(call(app, scope_for(method, read_only_path, raw_headers)))
    assert status_of(messages) in {200, 204, 401, 403, 404, 405}
    assert not {"create", "save", "index_add"} & set(recording.calls)


@settings(max_examples=150, deadline=None)
@given(raw_headers=headers)
def test_hostile_headers_beside_a_valid_cookie_keep_the_session(
    raw_headers: list[tuple[bytes, bytes]],
) -> None:
    store = MemoryStore()
    app = build_app(store, trusted_proxies=["127.0.0.0/8", "::1"])

    async def scenario() -> tuple[int, int, bytes]:
        creating = scope_for("POST", "/session", [(b"host", b"testserver")])
        created = await call(app, creating, body=b'{"kept": true}')
        cookie = _cookie_of(created)
        hostile = [(name, value) for name, value in raw_headers if name != b"cookie"]
        read = await call(app, scope_for("GET", "/session", [(b"cookie", cookie), *hostile]))
        return status_of(created), status_of(read), read[1]["body"]

    assert asyncio.run(scenario()) == (200, 200, b'{"kept":true}')


@pytest.mark.parametrize("agent_size", [10_000, 100_000])
def test_huge_user_agents_are_fine(agent_size: int) -> None:
    store = MemoryStore()
    app = build_app(store)
    agent = (b"Mozilla/5.0 " + b"(junk; " * agent_size)[:agent_size]
    scope = scope_for("POST", "/login/ada", [(b"user-agent", agent), (b"host", b"testserver")])
    assert status_of(asyncio.run(call(app, scope))) == 200


def test_a_forged_cookie_for_a_real_session_id_is_refused() -> None:
    store = MemoryStore()
    app = build_app(store)
    session_id = new_session_id()
    forged = CookieSigner(["f" * 32]).issue(session_id)
    scope = scope_for("GET", "/me", [(b"cookie", COOKIE.encode() + b"=" + forged.encode())])
    messages = asyncio.run(call(app, scope))
    assert status_of(messages) == 200
    assert messages[1]["body"] == b"null"
    assert CookieSigner([SECRET]).issue(session_id) != forged


FIELD_NAMES = [
    b"m:created",
    b"m:expires",
    b"m:seen",
    b"m:hits",
    b"m:user",
    b"m:device",
    b"m:ip",
    b"m:ip0",
    b"m:via",
    b"m:uah",
    b"d:a",
    b"d:\xff",
]
record_fields = st.dictionaries(
    st.one_of(st.sampled_from(FIELD_NAMES), st.binary(max_size=12)),
    st.one_of(
        st.binary(max_size=40),
        st.sampled_from([b"", b"-1", b"1e400", b"nan", b"99999999999999999999", b"{", b"[]"]),
    ),
    max_size=8,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=record_fields)
def test_corrupt_records_planted_in_redis_never_give_a_500(
    redis_url: str, fields: dict[bytes, bytes]
) -> None:
    async def scenario() -> list[int]:
        client = redis_asyncio.Redis.from_url(redis_url)
        await client.flushdb()
        app = build_app(RedisStore(client))
        signed_in = await call(app, scope_for("POST", "/login/ada", [(b"host", b"testserver")]))
        cookie = _cookie_of(signed_in)
        (key,) = [k async for k in client.scan_iter(match="sessionward:s:*")]
        if fields:
            await client.hset(key, mapping=fields)  # type: ignore[arg-type]
        statuses = []
        for method, path in [("GET", "/session"), ("GET", "/me"), ("GET", "/account/sessions")]:
            messages = await call(app, scope_for(method, path, [(b"cookie", cookie)]))
            statuses.append(status_of(messages))
        written = await call(app, scope_for("POST", "/session", [(b"cookie", cookie)]), b'{"b":1}')
        statuses.append(status_of(written))
        await client.aclose()
        return statuses

    assert set(asyncio.run(scenario())) <= {200, 401}


def _cookie_of(messages: list[Message]) -> bytes:
    for message in messages:
        if message["type"] == "http.response.start":
            for name, value in message["headers"]:
                if name == b"set-cookie":
                    cookie: bytes = value.split(b";")[0]
                    return cookie
    raise AssertionError("no cookie was set")
