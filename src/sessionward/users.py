"""A user's sessions: the per-user index, the device list, signing sessions out, and the
devices the user has signed in from (to tell a sign-in from a new one).

`UserSessions` is the server-side API. The middleware keeps one (reach it from a handler with
`user_sessions(request)`); build another on the same store for work outside requests, such as
signing a user out everywhere from an admin task.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from .config import SessionConfig
from .device_ids import DEVICE_COOKIE_MAX_AGE
from .devices import Device
from .events import EventType, SessionEvent
from .record import SessionRecord
from .stores import DeviceEntry, Store
from .stores.base import SIGN_IN_GRACE_MS

_PUBLIC_ID = re.compile(r"[0-9a-f]{64}")  # fullmatch: "$" would let "\n" through
# A known device is forgotten when its cookie would be: 400 days after its last sign-in.
KNOWN_DEVICE_TTL = DEVICE_COOKIE_MAX_AGE
MAX_KNOWN_DEVICES = 50  # and as many locations; the least recently seen go first
# Passes a revocation makes after finding sessions that moved: each needs the mover to win a
# race again, so this many is never reached by chance.
_MAX_PASSES = 8
# Labels and locations are shown, not parsed: stored at most this long.
MAX_DEVICE_TEXT = 256


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A read-only view of one session, safe to show its owner: it holds no token."""

    public_id: str
    user_id: str | None
    device: Device | None
    ip: str | None
    first_ip: str | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    transport: str
    current: bool = False
    authenticated_at: datetime | None = None  # `None` only for a session nobody signed in to
    location: str | None = None
    new_device: bool = False  # signed in from a device the account had not used before
    remember: bool = True
    first_sign_in: bool = False  # the account's very first sign-in: a new device, expectedly

    @classmethod
    def from_record(
        cls, public_id: str, record: SessionRecord, *, current: bool = False
    ) -> SessionInfo:
        return cls(
            public_id=public_id,
            user_id=record.user_id,
            device=record.device,
            ip=record.ip,
            first_ip=record.first_ip,
            created_at=_datetime(record.created_at_ms),
            last_seen_at=_datetime(record.last_seen_at_ms),
            expires_at=_datetime(record.expires_at_ms),
            transport=record.transport,
            current=current,
            authenticated_at=(
                _datetime(record.signed_in_at_ms) if record.user_id is not None else None
            ),
            location=record.location,
            new_device=record.new_device,
            remember=record.remember,
            first_sign_in=record.first_sign_in,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as the device-list endpoints return it."""
        device = self.device
        return {
            "id": self.public_id,
            "current": self.current,
            "label": device.label if device else "Unknown device",
            "device": device.to_dict() if device else None,
            "ip": self.ip,
            "first_ip": self.first_ip,
            "transport": self.transport,
            "created_at": self.created_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "authenticated_at": at.isoformat() if (at := self.authenticated_at) else None,
            "location": self.location,
            "new_device": self.new_device,
            "first_sign_in": self.first_sign_in,
        }


@dataclass(frozen=True, slots=True)
class KnownDevice:
    """A device the user has signed in from. `id` is the HMAC the store keeps, which names
    it publicly (to forget it) without revealing the device id its cookie carries."""

    id: str
    first_seen: datetime
    last_seen: datetime
    label: str
    location: str | None

    @classmethod
    def from_entry(cls, entry: DeviceEntry) -> KnownDevice:
        first_seen, last_seen = _datetime(entry.first_seen_ms), _datetime(entry.last_seen_ms)
        return cls(entry.hash, first_seen, last_seen, entry.label, entry.location)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "id": self.id,
            "label": self.label,
            "location": self.location,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
        }


class UserSessions:
    """List, revoke and cap a user's sessions, reading only that user's index: never a SCAN.

    Takes a `SessionConfig`, or `SessionConfig`'s keywords, which build one:
    `UserSessions(store, idle_ttl=..., absolute_ttl=...)` (the store may also be a keyword).
    Give it the middleware's settings: `idle_ttl` decides which sessions count as live.
    """

    def __init__(self, config: SessionConfig | Store | None = None, **settings: Any) -> None:
        if isinstance(config, SessionConfig):
            if settings:
                raise TypeError("pass either a SessionConfig or settings for one, not both")
        elif config is not None:
            config = SessionConfig(store=config, **settings)
        else:
            config = SessionConfig(**settings)
        self.config = config
        self.store = config.store

    async def list_sessions(
        self,
        user_id: str,
        *,
        current: str | None = None,
        active_since: datetime | timedelta | None = None,
        transport: Literal["cookie", "bearer"] | None = None,
    ) -> list[SessionInfo]:
        """The user's live sessions, most recently active first; `current` marks one.

        `active_since` keeps those whose own last activity is at or after a moment (an aware
        `datetime`) or within a `timedelta` of now ("devices used in the last 30 days");
        `transport` keeps only browsers' (`"cookie"`) or API and mobile clients'
        (`"bearer"`). Three round trips whatever the count: read the index, read the
        records (pipelined), then refresh the index's scores and drop entries whose
        session is gone.
        """
        since_ms = self._since_ms(active_since)
        if transport not in (None, "cookie", "bearer"):
            raise ValueError(f"transport must be 'cookie', 'bearer' or None, not {transport!r}")
        live = [
            (key, record)
            for key, record in await self._live(user_id)
            if record.last_seen_at_ms >= since_ms
            and (transport is None or record.transport == transport)
        ]
        live.sort(key=lambda item: item[1].last_seen_at_ms, reverse=True)
        return [
            SessionInfo.from_record(key, record, current=key == current) for key, record in live
        ]

    def _since_ms(self, active_since: datetime | timedelta | None) -> int:
        if active_since is None:
            return 0
        if isinstance(active_since, timedelta):
            return self.config.now_ms() - int(active_since.total_seconds() * 1000)
        if not isinstance(active_since, datetime) or active_since.tzinfo is None:
            raise ValueError(
                "active_since must be an aware datetime (datetime.now(timezone.utc) - ...) "
                f"or a timedelta, not {active_since!r}"
            )
        return int(active_since.timestamp() * 1000)

    async def revoke(self, user_id: str, public_id: str) -> bool:
        """Sign out one of the user's sessions; `False` if it is unknown or someone else's.

        A session that moves to a new id while this runs (`regenerate`, `reauthenticate`)
        is followed to it: the same session, created at the same moment on the same device.
        """
        if not _PUBLIC_ID.fullmatch(public_id):
            return False
        (meta,) = await self.store.read_records([public_id])
        record = self._record(meta)
        if record is None or record.user_id != user_id:
            return False
        ending = [(public_id, record)]
        for _ in range(_MAX_PASSES):
            if await self._end(ending, user_id, "session.revoked") != 0:
                break
            held, _stale = await self._held(user_id)  # it moved, or ended meanwhile
            ending = [(key, moved) for key, moved in held if _same_session(moved, record)]
            if not ending:
                break
        self._count("revoked", 1)
        return True

    async def revoke_all(self, user_id: str, *, keep: str | None = None) -> int:
        """Sign out every session of the user except `keep`; return how many ended.

        Every session the store still holds ends, live by this object's `idle_ttl` or not,
        and so does any that moves while this runs (`regenerate`, `reauthenticate`, a
        `login()` that replaces it): when a pass finds a session already gone, the index is
        read again, since a session that moved is indexed under its new id before the old
        one goes. When this returns, none of the user's sessions that existed when it
        started is alive, except `keep`.
        """
        revoked = 0
        for _ in range(_MAX_PASSES):
            held, stale = await self._held(user_id)
            ending = [(key, record) for key, record in held if key != keep]
            ended = await self._end(ending, user_id, "session.revoked", also_unindex=stale)
            revoked += len(ending) if ended is None else ended
            if ended is None or ended == len(ending):  # nothing moved under this pass
                break
        self._count("revoked", revoked)
        return revoked

    async def see_device(
        self,
        user_id: str,
        hashes: Sequence[str],
        label: str,
        location: str | None,
        now_ms: int,
    ) -> tuple[bool, bool, bool]:
        """Record a sign-in from the device known by `hashes` (`DeviceCookie.hashes`); return
        `(new_device, new_location, first_sign_in)` (`Store.device_seen`). One round trip.
        The user's log then lives `KNOWN_DEVICE_TTL` more, and keeps the `MAX_KNOWN_DEVICES`
        most recently seen."""
        if not hashes:
            raise ValueError("hashes is empty: pass DeviceCookie.hashes(device_id)")
        ttl_ms = KNOWN_DEVICE_TTL * 1000
        label, place = _storable(label), None if location is None else _storable(location)
        return await self.store.device_seen(
            user_id, hashes, label, place, now_ms, ttl_ms, MAX_KNOWN_DEVICES
        )

    async def known_devices(self, user_id: str) -> list[KnownDevice]:
        """The devices the user has signed in from, most recently seen first."""
        entries = await self.store.devices_read(user_id)
        entries.sort(key=lambda entry: (entry.last_seen_ms, entry.hash), reverse=True)
        return [KnownDevice.from_entry(entry) for entry in entries]

    async def forget_device(self, user_id: str, device: str | KnownDevice) -> bool:
        """Forget one known device (by its public id): its next sign-in counts as new.
        `False` if the user has no such device. Its sessions are not signed out."""
        device_id = device.id if isinstance(device, KnownDevice) else device
        if not isinstance(device_id, str) or not _PUBLIC_ID.fullmatch(device_id):
            return False
        return await self.store.devices_forget(user_id, [device_id]) > 0

    async def forget_devices(self, user_id: str) -> int:
        """Forget every known device and location of the user (account deletion); return how
        many devices went. `revoke_all` keeps them: signing out is not forgetting."""
        return await self.store.devices_forget(user_id, None)

    async def add(self, user_id: str, key: str, now_ms: int) -> None:
        """Index a newly signed-in session (before it exists: a stale entry is harmless)."""
        await self.store.index_add(user_id, key, now_ms, self.config.absolute_ttl_ms)

    async def enforce_limit(self, user_id: str, keep: str, created_at_ms: int) -> None:
        """Past `max_sessions_per_user`, sign out the least recently used older sessions.

        Only sessions created before `keep` may go: a sign-in made at the same moment
        enforces the limit itself, so two simultaneous sign-ins cannot end each other.
        """
        limit = self.config.max_sessions_per_user
        if limit is None:
            return
        live = await self._live(user_id)
        mine = (created_at_ms, keep)
        older = [item for item in live if (item[1].created_at_ms, item[0]) < mine]
        total = len(live) + (0 if any(key == keep for key, _ in live) else 1)
        excess = min(total - limit, len(older))
        if excess > 0:
            older.sort(key=lambda item: item[1].last_seen_at_ms)
            await self._end(older[:excess], user_id, "session.revoked")
            self._count("evicted", excess)

    async def forget(self, user_id: str, key: str) -> None:
        """Drop a session that has already been deleted from the user's index."""
        await self.store.index_update(user_id, {}, [key])

    async def emit(
        self, kind: EventType, key: str, record: SessionRecord, *, new_location: bool = False
    ) -> None:
        label = record.device.label if record.device else None
        at = self.config.clock()
        event = SessionEvent(
            kind,
            key,
            record.user_id,
            label,
            record.ip,
            at,
            new_device=record.new_device and kind == "session.login",
            location=record.location,
            new_location=new_location,
            first_sign_in=record.first_sign_in and kind == "session.login",
        )
        if (telemetry := self.config.telemetry) is not None:
            telemetry.event(kind, record.transport)
        await self.config.events.emit(event)

    def _count(self, ended: Literal["revoked", "evicted"], sessions: int) -> None:
        """Count sessions signed out by `revoke*` or by `max_sessions_per_user`."""
        if (telemetry := self.config.telemetry) is not None and sessions:
            tally = telemetry.revoked if ended == "revoked" else telemetry.evicted
            tally.add(amount=sessions)

    async def _live(self, user_id: str) -> list[tuple[str, SessionRecord]]:
        """The user's sessions that are live by the liveness rule, their index scores updated."""
        held, stale = await self._held(user_id)
        now_ms = self.config.now_ms()
        live = [(key, record) for key, record in held if record.remaining_ms(now_ms) is not None]
        scores = {key: record.last_seen_at_ms for key, record in live}
        await self.store.index_update(user_id, scores, stale)
        return live

    async def _held(self, user_id: str) -> tuple[list[tuple[str, SessionRecord]], list[str]]:
        """The user's indexed sessions the store still holds, and the index entries to drop.

        An entry is dropped only when its session is gone or someone else's: never for being
        idle by this object's `idle_ttl`, since a job configured with a shorter one than the
        middleware's would otherwise unindex sessions that still work.
        """
        indexed = await self.store.index_read(user_id)
        keys = list(indexed)
        now_ms = self.config.now_ms()
        held: list[tuple[str, SessionRecord]] = []
        stale: list[str] = []
        for key, meta in zip(keys, await self.store.read_records(keys), strict=True):
            record = self._record(meta)
            if record is not None and record.user_id == user_id:
                held.append((key, record))
            elif record is not None or indexed[key] < now_ms - SIGN_IN_GRACE_MS:
                stale.append(key)
            # else: indexed moments ago, not stored yet: a sign-in in progress, keep it
        return held, stale

    def _record(self, meta: dict[str, str] | None) -> SessionRecord | None:
        return SessionRecord.from_fields(meta, self.config.idle_ttl_ms) if meta else None

    async def _end(
        self,
        sessions: Sequence[tuple[str, SessionRecord]],
        user_id: str,
        kind: EventType,
        also_unindex: Sequence[str] = (),
    ) -> int | None:
        """End `sessions`; return how many the store still held (`None`: it cannot tell)."""
        keys = [key for key, _ in sessions]
        ended = await self.store.delete(*keys) if keys else 0  # first: a crash leaves only
        await self.store.index_update(user_id, {}, [*keys, *also_unindex])  # stale entries
        for key, record in sessions:
            await self.emit(kind, key, record)
        return ended


def _same_session(moved: SessionRecord, record: SessionRecord) -> bool:
    """Whether `moved` is `record`'s session under a new id: a move keeps the creation time
    (to the millisecond), the first IP and the device."""
    return (
        moved.created_at_ms == record.created_at_ms
        and moved.first_ip == record.first_ip
        and moved.agent_hash == record.agent_hash
    )


_LAST_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z: a corrupt record's time stops here


def _storable(text: str) -> str:
    """`text` capped in length, any lone surrogate replaced: every store can keep it."""
    return text[:MAX_DEVICE_TEXT].encode("utf-8", "replace").decode("utf-8")


def _datetime(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(min(max(epoch_ms, 0), _LAST_MS) / 1000, tz=timezone.utc)
