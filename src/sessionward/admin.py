"""`AdminSessions`: every session a store holds, for operators: walk, count, filter, revoke.

`UserSessions` serves requests and reads one user's index, never the whole keyspace; this
walks the store with a cursor (`SCAN` on Redis, each primary of a Cluster in turn) one
bounded step at a time, so no call holds more than a page of sessions in memory, and a walk
can stop and resume from a cursor printed earlier. Build it on the app's `SessionConfig`
(`session_middleware(app).config`) so that liveness, events and the store are the app's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from .config import SessionConfig
from .devices import KINDS
from .exceptions import ConfigurationError
from .record import KIND, SessionRecord
from .stores import Store
from .users import SessionInfo, UserSessions

DEFAULT_PAGE_SIZE = 500
Transport = Literal["cookie", "bearer"]
_Scan = Callable[[str, int], Awaitable[tuple[str, list[str]]]]


@dataclass(frozen=True, slots=True)
class SessionPage:
    """One step of a walk: the live sessions found that match, and where to resume.

    `cursor` continues the walk after this page (`"0"`: the walk is over); `scanned` is how
    many stored sessions the step looked at, matching or not. `records` pairs each session's
    public id with its stored record, for tools that need more than `SessionInfo` shows
    (its own idle TTL, for one).
    """

    records: list[tuple[str, SessionRecord]]
    cursor: str
    scanned: int

    @property
    def sessions(self) -> list[SessionInfo]:
        return [SessionInfo.from_record(key, record) for key, record in self.records]


@dataclass(frozen=True, slots=True)
class _Filter:
    user_id: str | None
    transport: Transport | None
    kind: str | None
    since_ms: int
    signed_in: bool | None

    def keeps(self, record: SessionRecord) -> bool:
        if self.user_id is not None and record.user_id != self.user_id:
            return False
        if self.signed_in is not None and (record.user_id is not None) != self.signed_in:
            return False
        if self.transport is not None and record.transport != self.transport:
            return False
        if self.kind is not None and kind_of(record) != self.kind:
            return False
        return record.last_seen_at_ms >= self.since_ms


def kind_of(record: SessionRecord) -> str | None:
    """The stored device kind (`Device.kind`), without parsing the rest of the device."""
    fields = record.device_fields
    return fields.get(KIND) if fields else None


class AdminSessions:
    """Every live session of a store: iterate with a cursor, count, filter and revoke.

    Takes a `SessionConfig` or its keywords, as `UserSessions` does. The store must be able
    to walk its sessions (`MemoryStore` and `RedisStore` can; see `ScanningStore`). Every
    method takes the same filters: `user_id` (read from the user's index, not a walk),
    `transport` (`"cookie"` or `"bearer"`), `kind` (a device kind such as `"mobile"`),
    `active_since` (an aware `datetime`, or a `timedelta` before now) and `signed_in`
    (`False`: anonymous sessions only).

        admin = AdminSessions(session_middleware(app).config)
        async for info in admin.sessions(kind="mobile", active_since=timedelta(hours=1)):
            print(info.user_id, info.ip)
        await admin.revoke(user_id="mallory")
    """

    def __init__(self, config: SessionConfig | Store | None = None, **settings: Any) -> None:
        self.users = UserSessions(config, **settings)
        self.config = self.users.config
        self.store = self.config.store

    async def pages(
        self,
        *,
        cursor: str = "0",
        page_size: int = DEFAULT_PAGE_SIZE,
        user_id: str | None = None,
        transport: Transport | None = None,
        kind: str | None = None,
        active_since: datetime | timedelta | None = None,
        signed_in: bool | None = None,
    ) -> AsyncIterator[SessionPage]:
        """The walk, a page (one store step of about `page_size` sessions) at a time, from
        `cursor` (a page's `cursor`, to resume) to the end. Two round trips a page."""
        where = self._filter(user_id, transport, kind, active_since, signed_in)
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValueError(f"page_size must be a positive int, not {page_size!r}")
        step = self._index_step(user_id) if user_id is not None else self._scanner()
        while True:
            cursor, keys = await step(cursor, page_size)
            metas = await self.store.read_records(keys) if keys else []
            now_ms = self.config.now_ms()
            found = []
            for key, meta in zip(keys, metas, strict=True):
                record = self.users._record(meta)
                if record is None or record.remaining_ms(now_ms) is None:
                    continue  # gone, unreadable, or ended by the liveness rule
                if where.keeps(record):
                    found.append((key, record))
            yield SessionPage(found, cursor, len(keys))
            if cursor == "0":
                return

    async def sessions(self, **filters: Any) -> AsyncIterator[SessionInfo]:
        """Each live session that matches, in no particular order (`pages`' arguments)."""
        async for page in self.pages(**filters):
            for info in page.sessions:
                yield info

    async def count(self, **filters: Any) -> int:
        """How many live sessions match (`pages`' arguments): a whole walk."""
        total = 0
        async for page in self.pages(**filters):
            total += len(page.records)
        return total

    async def revoke(self, **filters: Any) -> int:
        """Sign out every live session that matches (`pages`' arguments); return how many.

        As `UserSessions.revoke_all` does it: each session deleted first, then dropped from
        its user's index, and a `session.revoked` event for each. With no filter at all
        this signs everyone out; say so with `everyone=True`.
        """
        everyone = filters.pop("everyone", False)
        named = {"user_id", "transport", "kind", "active_since", "signed_in"}
        if not everyone and all(filters.get(name) is None for name in named):
            raise ValueError("revoke() with no filter signs everyone out: pass everyone=True")
        revoked = 0
        if filters.get("user_id") is not None:  # its index shrinks as it goes: read it first
            found = [item async for page in self.pages(**filters) for item in page.records]
            revoked = await self._end(found)
        else:  # a SCAN sees every session held throughout, whatever ends meanwhile
            async for page in self.pages(**filters):
                revoked += await self._end(page.records)
        self.users._count("revoked", revoked)
        return revoked

    async def end(self, public_id: str) -> bool:
        """Sign out one session by its public id, whoever's it is; `False` if none is live.

        A signed-in session ends through `UserSessions.revoke` (which follows it if it moves
        meanwhile); an anonymous one is deleted, with a `session.revoked` event all the same.
        """
        (meta,) = await self.store.read_records([public_id])
        record = self.users._record(meta)
        if record is None or record.remaining_ms(self.config.now_ms()) is None:
            return False
        if record.user_id is not None:
            return await self.users.revoke(record.user_id, public_id)
        return await self._end([(public_id, record)]) > 0

    async def _end(self, sessions: Sequence[tuple[str, SessionRecord]]) -> int:
        if not sessions:
            return 0
        ended = await self.store.delete(*(key for key, _ in sessions))  # first: see users._end
        by_user: defaultdict[str, list[str]] = defaultdict(list)
        for key, record in sessions:
            if record.user_id is not None:
                by_user[record.user_id].append(key)
        for user_id, keys in by_user.items():
            await self.store.index_update(user_id, {}, keys)
        for key, record in sessions:
            await self.users.emit("session.revoked", key, record)
        return len(sessions) if ended is None else ended

    def _filter(
        self,
        user_id: str | None,
        transport: Transport | None,
        kind: str | None,
        active_since: datetime | timedelta | None,
        signed_in: bool | None,
    ) -> _Filter:
        if transport not in (None, "cookie", "bearer"):
            raise ValueError(f"transport must be 'cookie', 'bearer' or None, not {transport!r}")
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(sorted(KINDS))}, not {kind!r}")
        if user_id is not None and signed_in is False:
            raise ValueError("an anonymous session has no user: drop user_id or signed_in")
        since_ms = self.users._since_ms(active_since)
        return _Filter(user_id, transport, kind, since_ms, signed_in)

    def _scanner(self) -> _Scan:
        scan: _Scan | None = getattr(self.store, "scan", None)
        if scan is None:
            name = type(getattr(self.store, "wrapped", self.store)).__name__
            raise ConfigurationError(
                f"{name} cannot walk its sessions: AdminSessions needs a store with a "
                "scan() method (ScanningStore), as MemoryStore and RedisStore have"
            )
        return scan

    def _index_step(self, user_id: str) -> _Scan:
        """Steps over the user's index, not the keyspace; the cursor is an offset in it."""

        async def step(cursor: str, count: int) -> tuple[str, list[str]]:
            if not cursor.isdigit():
                raise ValueError(f"{cursor!r} is not a cursor of a walk over one user")
            start = int(cursor)
            keys = list(await self.store.index_read(user_id))[start : start + count]
            return (str(start + count) if len(keys) == count else "0"), keys

        return step
