"""`AdminSessions`: every session of a store, walked with a cursor, counted, filtered and
revoked; on memory, a real Redis and a real three-primary Cluster."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from sessionward import (
    AdminSessions,
    ConfigurationError,
    Events,
    MemoryStore,
    SessionEvent,
    Store,
    UserSessions,
)
from sessionward.testing import login_client, session_middleware
from tests.apps import CHROME, IPHONE, RecordingStore, build_app
from tests.conftest import Clock

pytestmark = pytest.mark.anyio


def browser(app: object, agent: str = CHROME) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    headers = {"user-agent": agent}
    return httpx.AsyncClient(transport=transport, base_url="https://testserver", headers=headers)


async def populate(app: object) -> None:
    """ada on a Mac and an iPhone, bob on a Mac, and three anonymous visitors."""
    for user, agent in (("ada", CHROME), ("ada", IPHONE), ("bob", CHROME)):
        async with browser(app, agent) as client:
            await login_client(client, app, user)  # type: ignore[arg-type]
    for visit in range(3):
        async with browser(app, "curl/8.5.0") as client:
            await client.post("/session", json={"visit": visit})


def admin_of(app: object) -> AdminSessions:
    return AdminSessions(session_middleware(app).config)  # type: ignore[arg-type]


async def test_the_walk_finds_every_live_session_once_across_pages(
    store: Store, clock: Clock
) -> None:
    app = build_app(store, clock=clock)
    await populate(app)
    admin = admin_of(app)
    pages = [page async for page in admin.pages(page_size=2)]
    found = [key for page in pages for key, _ in page.records]
    assert len(found) == len(set(found)) == 6
    assert pages[-1].cursor == "0"
    assert await admin.count() == 6
    users = sorted([info.user_id or "-" async for info in admin.sessions()])
    assert users == ["-", "-", "-", "ada", "ada", "bob"]


async def test_a_walk_resumes_from_a_pages_cursor(store: Store, clock: Clock) -> None:
    app = build_app(store, clock=clock)
    await populate(app)
    admin = admin_of(app)
    first = None
    async for page in admin.pages(page_size=1):
        if page.records:
            first = page
            break
    assert first is not None
    assert first.cursor != "0"
    rest = [
        key
        async for page in admin.pages(cursor=first.cursor, page_size=2)
        for key, _ in page.records
    ]
    assert len({*rest, *(key for key, _ in first.records)}) == 6  # a step may hold several


async def test_filters_by_user_transport_kind_activity_and_sign_in(
    store: Store, clock: Clock
) -> None:
    app = build_app(store, clock=clock)
    await populate(app)
    admin = admin_of(app)
    assert await admin.count(user_id="ada") == 2
    assert await admin.count(kind="mobile") == 1
    assert await admin.count(kind="desktop") == 2
    assert await admin.count(signed_in=False) == 3
    assert await admin.count(signed_in=True, transport="cookie") == 3
    assert await admin.count(transport="bearer") == 0
    clock.advance(3600)
    async with browser(app) as client:  # a new visitor, an hour later
        await client.post("/session", json={"late": True})
    assert await admin.count(active_since=timedelta(minutes=5)) == 1
    ada = [info async for info in admin.sessions(user_id="ada", kind="mobile")]
    assert [info.device.label if info.device else None for info in ada] == ["Safari on iPhone"]


async def test_ended_sessions_are_not_counted(store: Store, clock: Clock) -> None:
    app = build_app(store, clock=clock, idle_ttl=600)
    await populate(app)
    clock.advance(601)
    assert await admin_of(app).count() == 0


async def test_revoking_by_filter_ends_sessions_unindexes_them_and_tells_listeners(
    store: Store, clock: Clock
) -> None:
    events = Events()
    ended: list[SessionEvent] = []

    @events.listen
    async def record(event: SessionEvent) -> None:
        ended.append(event)

    app = build_app(store, clock=clock, events=events)
    await populate(app)
    admin = admin_of(app)
    ended.clear()
    assert await admin.revoke(kind="mobile") == 1
    assert [(event.type, event.user_id) for event in ended] == [("session.revoked", "ada")]
    users = UserSessions(admin.config)
    assert [info.device.label for info in await users.list_sessions("ada") if info.device] == [
        "Chrome 131 on macOS"
    ]
    assert await store.index_read("ada") != {}  # the Mac's entry stays
    assert await admin.revoke(signed_in=False) == 3
    assert await admin.count() == 2


async def test_revoking_everyone_must_be_said(store: Store, clock: Clock) -> None:
    app = build_app(store, clock=clock)
    await populate(app)
    admin = admin_of(app)
    with pytest.raises(ValueError, match="everyone=True"):
        await admin.revoke()
    assert await admin.revoke(everyone=True) == 6
    assert await admin.count() == 0


async def test_revoking_a_users_sessions_by_filter_reads_the_index_first(
    store: Store, clock: Clock
) -> None:
    app = build_app(store, clock=clock)
    await populate(app)
    admin = admin_of(app)
    assert await admin.revoke(user_id="ada", page_size=1) == 2
    assert await admin.count(user_id="ada") == 0
    assert await admin.count() == 4


async def test_ending_one_session_by_its_public_id(store: Store, clock: Clock) -> None:
    app = build_app(store, clock=clock)
    await populate(app)
    admin = admin_of(app)
    anonymous, *_ = [info async for info in admin.sessions(signed_in=False)]
    signed_in, *_ = [info async for info in admin.sessions(user_id="bob")]
    assert await admin.end(anonymous.public_id)
    assert await admin.end(signed_in.public_id)
    assert not await admin.end(signed_in.public_id)
    assert not await admin.end("0" * 64)
    assert await admin.count() == 4
    assert await store.index_read("bob") == {}


async def test_bad_arguments_are_refused(clock: Clock) -> None:
    admin = AdminSessions(MemoryStore(), clock=clock)
    for filters, message in (
        ({"kind": "fridge"}, "kind must be one of"),
        ({"transport": "pigeon"}, "transport must be"),
        ({"page_size": 0}, "page_size must be"),
    ):
        with pytest.raises(ValueError, match=message):
            await admin.count(**filters)
    with pytest.raises(ValueError, match="anonymous"):
        await admin.count(user_id="ada", signed_in=False)
    with pytest.raises(ValueError, match="not a MemoryStore cursor"):
        await admin.count(cursor="12")


async def test_a_store_that_cannot_walk_says_so() -> None:
    admin = AdminSessions(RecordingStore(MemoryStore()))
    with pytest.raises(ConfigurationError, match="RecordingStore cannot walk its sessions"):
        await admin.count()
    assert await admin.count(user_id="ada") == 0  # a user's index needs no walk


async def test_a_memory_walk_holds_one_page_at_a_time(clock: Clock) -> None:
    store = MemoryStore()
    app = build_app(store, clock=clock)
    await populate(app)
    cursor, keys = await store.scan("0", 4)
    assert len(keys) == 4
    assert keys == sorted(keys)
    cursor, more = await store.scan(cursor, 4)
    assert cursor == "0"
    assert len(more) == 2
    assert min(more) > max(keys)
