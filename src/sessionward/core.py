"""The operations on stored sessions a request needs: load and touch, create, sign in, end.

`SessionCore` works on a `SessionConfig` and knows nothing of ASGI. The cookie and the bearer
sign-in both go through `sign_in`, the one place a signed-in session is born, and every step
that spans two keys is ordered so that a crash in between leaves no live orphan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

from .client import Client
from .config import SessionConfig
from .device_ids import new_device_id
from .events import EventType
from .record import LABEL, TRANSPORT, USER, SessionRecord, data_fields, readable
from .tokens import new_session_id, session_hash
from .users import UserSessions


class Loaded(NamedTuple):  # a tuple: built on every request, and cheaply
    """A live session as loaded (and touched): its store key and its fields as stored.

    Most requests need only a few facts of the record, so it is parsed only when asked.
    """

    key: str
    fields: dict[str, str]

    @property
    def user_id(self) -> str | None:
        return self.fields.get(USER) or None

    @property
    def transport(self) -> str:
        return self.fields.get(TRANSPORT) or "cookie"

    def record(self, idle_ttl_ms: int) -> SessionRecord | None:
        return SessionRecord.from_fields(self.fields, idle_ttl_ms)


@dataclass(frozen=True, slots=True)
class SignInChoices:
    """What the app chose for one sign-in: its lifetimes (capped by the configured ones, in
    ms; `None` takes them) and whether the browser should remember it after it closes."""

    remember: bool = True
    idle_ttl_ms: int | None = None
    absolute_ttl_ms: int | None = None


DEFAULT_CHOICES = SignInChoices()


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A session `sign_in` stored: the secret id for the token, its store key and record."""

    session_id: str
    key: str
    record: SessionRecord


class ReplacedSessionEnded(Exception):
    """A sign-in replaced a session of the same user that was signed out meanwhile, so the
    new session was ended too: the request is left signed out."""


class SessionCore:
    """Stored sessions, as one configuration defines them."""

    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self.users = UserSessions(config)

    async def load(self, key: str, *, touch: bool = True) -> Loaded | None:
        """Load and touch a live session in one store call; `None` if it has ended.

        `touch=False`: the request does not count as activity (`count_as_activity`), so the
        session's idle deadline and last activity stay where they are.
        """
        config = self.config
        if touch:
            fields = await config.store.load(key, config.now_ms(), config.idle_ttl_ms)
        else:  # passed only when False: a custom store without `touch` keeps working
            fields = await config.store.load(key, config.now_ms(), config.idle_ttl_ms, touch=False)
        if fields is None:
            return None
        # Checked now, parsed later: a request that was let in always has a record to read.
        return Loaded(key, fields) if readable(fields) else None

    def new_record(
        self,
        client: Client,
        now_ms: int,
        *,
        user_id: str | None = None,
        transport: str = "cookie",
        first_ip: str | None = None,
        choices: SignInChoices = DEFAULT_CHOICES,
    ) -> SessionRecord:
        """The record of a session created now by this client: with the configured lifetimes,
        or the shorter ones a sign-in chose."""
        config = self.config
        idle_ms, absolute_ms = config.idle_ttl_ms, config.absolute_ttl_ms
        if choices.idle_ttl_ms is not None:
            idle_ms = min(idle_ms, choices.idle_ttl_ms)
        if choices.absolute_ttl_ms is not None:
            absolute_ms = min(absolute_ms, choices.absolute_ttl_ms)
        return SessionRecord(
            now_ms,
            now_ms + absolute_ms,
            now_ms,
            user_id=user_id,
            ip=client.ip,
            first_ip=first_ip or client.ip,
            device_fields=client.device_fields,
            agent_hash=client.agent_hash,
            transport=transport,
            idle_ttl_ms=idle_ms,
            authenticated_at_ms=now_ms if user_id is not None else None,
            remember=choices.remember,
            location=client.location() if user_id is not None else None,
        )

    async def create(self, key: str, record: SessionRecord, values: Mapping[str, str]) -> bool:
        """Store a brand-new session; `False` if the key is taken (it never is: 256 bits)."""
        fields = {**record.to_fields(), **data_fields(values)}
        config = self.config
        now_ms = record.last_seen_at_ms
        limit = config.max_session_bytes
        return await config.store.save(
            key, fields, (), now_ms, config.idle_ttl_ms, create=True, max_bytes=limit
        )

    async def sign_in(
        self,
        user_id: str,
        client: Client,
        *,
        transport: str,
        values: Mapping[str, str],
        replacing: tuple[str, SessionRecord] | None = None,
        adopt: Callable[[SignedIn], None] | None = None,
        choices: SignInChoices = DEFAULT_CHOICES,
        device_id: str,
        refresh: Mapping[str, str] | None = None,
    ) -> SignedIn:
        """Store a new session for `user_id` holding `values`; end the one it replaces.

        `device_id` names the device across sign-ins (the device cookie's id, or a bearer
        client's, from `bearer_device`); the user's log of known devices says whether it is
        new.

        Order: the device log (a crash after it leaves only a sighting), the index (a crash
        leaves a stale entry, never an unindexed session), then the session, which `adopt`
        hands to the request at once (should a later step fail, the request holds the
        session that exists), then the old session is deleted, the event sent, and the
        limit applied.

        `ReplacedSessionEnded` (only with `replacing`) when the replaced session was the same
        user's and was signed out while this ran (a sign-out everywhere, which may have read
        the index before the new session was in it): the new session is ended too, as
        `regenerate` undoes the move of a session signed out meanwhile.
        """
        now_ms = self.config.now_ms()
        first_ip = replacing[1].first_ip if replacing is not None else None
        record = self.new_record(
            client, now_ms, user_id=user_id, transport=transport, first_ip=first_ip, choices=choices
        )
        record.refresh = refresh  # a token pair's refresh family, if this is one
        new_location = await self._see_device(user_id, client, record, device_id)
        session_id = new_session_id()
        key = session_hash(session_id)
        await self.users.add(user_id, key, now_ms)
        if not await self.create(key, record, values):
            raise RuntimeError("the session store refused a brand-new session id")
        signed_in = SignedIn(session_id, key, record)
        if adopt is not None:
            adopt(signed_in)
        if replacing is not None and not await self._replace(replacing, user_id):
            await self.end(key, record, event=None)
            raise ReplacedSessionEnded
        await self.users.emit("session.login", key, record, new_location=new_location)
        await self.users.enforce_limit(user_id, key, record.created_at_ms)
        return signed_in

    async def _replace(self, replaced: tuple[str, SessionRecord], user_id: str) -> bool:
        """End the session a sign-in replaces; `False` if it was `user_id`'s and had ended."""
        key, record = replaced
        ended = await self.config.store.delete(key)
        if record.user_id is not None:
            await self.users.forget(record.user_id, key)
        return ended != 0 or record.user_id != user_id

    def bearer_device(self, client: Client, device_id: str | None) -> tuple[str, str | None]:
        """Who a bearer client is across sign-ins, and the device token to hand it back.

        The app's own `device_id` (an install id) when it passes one; else the id in the
        client's `Device-Token` header, if it verifies; else a new id: a new device. Never
        the user-agent alone, which every user of one build of a mobile app shares, so an
        attacker with a phished password could send it and pass for a known device.
        """
        if device_id is not None:
            return device_id, None
        tokens = self.config.device_tokens
        known = tokens.read(client.scope) or new_device_id()
        return known, tokens.issue(known)

    async def _see_device(
        self, user_id: str, client: Client, record: SessionRecord, device_id: str
    ) -> bool:
        """Log the sign-in's device for the user and mark the record if the device is new;
        return whether the place is new."""
        hashes = self.config.device_cookie.hashes(device_id)
        label = (record.device_fields or {}).get(LABEL) or "Unknown device"
        new_device, new_location, first = await self.users.see_device(
            user_id, hashes, label, record.location, record.created_at_ms
        )
        record.new_device, record.first_sign_in = new_device, first
        return new_location

    async def regenerate(
        self,
        key: str,
        record: SessionRecord,
        values: Mapping[str, str],
        *,
        reauthenticated: bool = False,
        refresh: Mapping[str, str] | None = None,
    ) -> tuple[str, str, SessionRecord] | None:
        """Move a session, data and record, to a new id; return the new id, key and record,
        or `None` when the session ended meanwhile (signed out while the request ran).

        Not a sign-in: no login event, and the lifetimes and remember choice stay the
        session's own. `reauthenticated` (the user just proved who they are again) moves the
        sign-in time to now and sends `session.reauthenticated`. Index first, then the new
        session, then the old one goes, as in `sign_in`. Only the move that deletes the old
        session stands: one that finds it gone (a sign-out everywhere, which reads the
        index and so also ends the new one; or a second move of the same session) deletes
        what it made, so nothing signed out comes back.
        """
        now_ms = self.config.now_ms()
        session_id = new_session_id()
        new_key = session_hash(session_id)
        moved = replace(record, last_seen_at_ms=now_ms)
        if refresh is not None:  # a token pair's session starts a new refresh family
            moved.refresh = refresh
        if reauthenticated:
            moved.authenticated_at_ms = now_ms
        if record.user_id is not None:
            await self.users.add(record.user_id, new_key, now_ms)
        if not await self.create(new_key, moved, values):
            raise RuntimeError("the session store refused a brand-new session id")
        if await self.config.store.delete(key) == 0:  # ended meanwhile: undo the move
            await self.end(new_key, moved, event=None)
            return None
        if record.user_id is not None:
            await self.users.forget(record.user_id, key)
        if reauthenticated:
            await self.users.emit("session.reauthenticated", new_key, moved)
        return session_id, new_key, moved

    async def end(self, key: str, record: SessionRecord, *, event: EventType | None) -> None:
        """Delete a session now and unindex it: session first, so a crash leaves no orphan."""
        await self.config.store.delete(key)
        if record.user_id is not None:
            await self.users.forget(record.user_id, key)
        if event is not None:
            await self.users.emit(event, key, record)
