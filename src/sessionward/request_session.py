"""One request's session: what was loaded, what changed, and the cookie decision.

The middleware builds one per request and keeps it in `scope["sessionward"]`; the request
helpers (`login`, `logout`, ...) act on it. It works through a `SessionCore` and never sees the
middleware. Every cookie decision (send, re-send, expire, leave alone) is made in `save`, from
the flags the other steps set.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping

from .client import Client
from .core import (
    DEFAULT_CHOICES,
    Loaded,
    ReplacedSessionEnded,
    SessionCore,
    SignedIn,
    SignInChoices,
)
from .device_ids import new_device_id
from .events import EventType
from .exceptions import SessionError, StoreUnavailable
from .record import AGENT, DATA_PREFIX, HINTS, IP, USER, SessionRecord, data_fields, data_of
from .session import Changes, Session, dumps, encoded_size
from .tokens import new_session_id, session_hash

logger = logging.getLogger("sessionward")


class RequestSession:
    """The session of one request, between its load and the start of its response."""

    def __init__(
        self,
        core: SessionCore,
        client: Client,
        session_id: str | None = None,
        loaded: Loaded | None = None,
        *,
        bearer: bool = False,
        degraded: bool = False,
        cross_site: bool = False,
        resign: bool = False,
        touch: bool = True,
    ) -> None:
        self.core = core
        self.client = client
        self.session_id = session_id  # the live session's secret id; `None` until one is stored
        self._record: SessionRecord | None = None
        self._loaded = loaded  # until `record` is first asked for: most requests never do
        if loaded is not None:
            fields = loaded.fields
            self.session = Session(data_of(fields), max_bytes=core.config.max_session_bytes)
            self.key: str | None = loaded.key
            # A new IP or user-agent to record, saved with the next write (or on its own).
            self.meta_changes = client.changes(
                fields.get(IP),
                fields.get(AGENT),
                signed_in=USER in fields,
                recorded_hints=fields.get(HINTS),
            )
        else:
            self.session = Session(max_bytes=core.config.max_session_bytes)
            self.key, self.meta_changes = None, {}
        self.bearer = bearer  # authenticated by a JWT: never answered with a cookie
        self.degraded = degraded  # the store was down at load: anonymous and read-only
        # A websocket another site's page opened: anonymous, and never stored, so its writes
        # cannot set a cookie that replaces the visitor's own.
        self.cross_site = cross_site
        self.send_cookie = resign  # (re)send the cookie: signed with an old key, or a new id
        self.expire_cookie = False  # tell the browser to forget its cookie
        self.device_cookie: str | None = None  # a `Set-Cookie` for the device cookie, at sign-in
        self.answered = False  # the response started (or the websocket was accepted)
        self.touch = touch  # counts as activity: `False` leaves the idle deadline where it is

    @property
    def record(self) -> SessionRecord | None:
        """The stored session's record; `None` while there is none."""
        if self._loaded is not None:
            self._record = self._loaded.record(self.core.config.idle_ttl_ms)
            self._loaded = None
        return self._record

    @record.setter
    def record(self, record: SessionRecord | None) -> None:
        self._record, self._loaded = record, None

    @property
    def user_id(self) -> str | None:
        if self._loaded is not None:
            return self._loaded.user_id
        return self._record.user_id if self._record is not None else None

    # -- saving ----------------------------------------------------------------------------

    async def save(self) -> str | None:
        """Persist what the request changed; return a `Set-Cookie` value if the cookie changes."""
        session = self.session
        if self.cross_site:
            return None
        if self.degraded:
            if session.modified or dict.__len__(session):
                raise StoreUnavailable("the store was unavailable when this session was loaded")
            return None
        if self.bearer:  # no cookie to send, and no new session a client could receive
            await self.save_or_end()
            return None
        emptied = session.modified and not dict.__len__(session) and self.user_id is None
        if self.session_id is not None and (session.cleared or emptied):
            await self.end("session.logout" if self.user_id is not None else None)
        if self.session_id is None:
            if dict.__len__(session):  # a first write, or an ended session filled again
                return await self._create()
            return self._expired_cookie()
        if await self.save_changes() and self.core.config.cookie.slides:
            self.send_cookie = True  # a fixed Max-Age counts from the last change, as Starlette's
        return self._cookie() if self.send_cookie else None

    async def save_or_end(self) -> None:
        """Save without touching the cookie: bearer requests, and websockets after accept."""
        if self.cross_site:
            return
        if self.session_id is None and dict.__len__(self.session):
            logger.warning(
                "sessionward: a session first written where no cookie can be sent (after "
                "websocket.accept(), or after a bearer session ended) is not stored"
            )
        if self.session.cleared:
            await self.end("session.logout")
        else:
            await self.save_changes()

    async def save_changes(self) -> bool:
        """Write what changed; whether any session data was written."""
        session, key = self.session, self.key
        changes = session.changes() if session.may_have_changed else None
        if key is None or not (changes or self.meta_changes):
            return False
        write = dict(self.meta_changes)
        delete: list[str] = []
        if changes:
            self._check_size(changes.size)
            write.update(data_fields(changes.write))
            delete = [DATA_PREFIX + name for name in changes.delete]
        config = self.core.config
        now_ms = config.now_ms()
        limit = config.max_session_bytes
        store, idle_ms = config.store, config.idle_ttl_ms
        if self.touch:
            stored = await store.save(
                key, write, delete, now_ms, idle_ms, create=False, max_bytes=limit
            )
        else:  # passed only when False, as to `load`
            stored = await store.save(
                key, write, delete, now_ms, idle_ms, create=False, max_bytes=limit, touch=False
            )
        if stored:
            if changes is not None:
                session.mark_saved(changes)
            self.meta_changes.clear()
            return bool(changes)
        # Ended meanwhile (logout elsewhere, expiry): do not bring it back.
        logger.info("sessionward: session ended before this request saved; changes dropped")
        self.session_id = self.key = self.record = None
        return False

    # -- new ids ---------------------------------------------------------------------------

    async def _create(self) -> str | None:
        """Store the session a visitor just wrote to for the first time, under a new id."""
        values, size = self._serialised()
        session_id = new_session_id()
        key = session_hash(session_id)
        record = self.core.new_record(self.client, self.core.config.now_ms())
        if not await self.core.create(key, record, values):
            logger.error("sessionward: the store refused a new session id; nothing saved")
            return None
        self._adopt(session_id, key, record, values, size)
        await self.core.users.emit("session.created", key, record)
        return self._cookie()

    async def sign_in(
        self,
        user_id: str,
        *,
        keep: bool | Collection[str] = True,
        choices: SignInChoices = DEFAULT_CHOICES,
    ) -> None:
        """Sign the browser in as `user_id` under a new id; the old id dies at once.

        The data named by `keep` stays (a cart survives sign-in), none of it if the session
        belonged to another user: what one person left in a shared browser must not pass to
        the next.
        """
        self._check_not_answered("login()")
        old = (self.key, self.record) if self.key is not None and self.record else None
        if old is not None and old[1].user_id not in (None, user_id):
            keep = False
        self._keep_only(keep)
        values, size = self._serialised()
        device_cookie = self.core.config.device_cookie
        device_id = device_cookie.read(self.client.scope) or new_device_id()

        def adopt(signed_in: SignedIn) -> None:
            self._adopt(signed_in.session_id, signed_in.key, signed_in.record, values, size)
            self.send_cookie = True
            self.device_cookie = device_cookie.set_cookie(device_id)  # 400 more days

        try:
            await self.core.sign_in(
                user_id,
                self.client,
                transport="cookie",
                values=values,
                replacing=old,
                adopt=adopt,
                choices=choices,
                device_id=device_id,
            )
        except ReplacedSessionEnded:
            self._signed_out()

    async def regenerate(
        self, *, reauthenticated: bool = False, refresh: Mapping[str, str] | None = None
    ) -> None:
        """The same session, data and record under a new id; the old id dies at once.

        `reauthenticated`: the user just proved who they are again (see `core.regenerate`).
        """
        self._check_not_answered("reauthenticate()" if reauthenticated else "regenerate()")
        key, record = self.key, self.record
        if key is None or record is None:
            return  # nothing stored: the first save makes a new id anyway
        values, size = self._serialised()
        moved = await self.core.regenerate(
            key, record, values, reauthenticated=reauthenticated, refresh=refresh
        )
        if moved is None:
            self._signed_out()
            return
        self._adopt(*moved, values, size)
        self.send_cookie = not self.bearer

    def _signed_out(self) -> None:
        """The session was signed out while this request ran: it stays signed out."""
        self.session.clear()
        self.session_id = self.key = self.record = None
        self.send_cookie, self.expire_cookie = False, True
        self.meta_changes.clear()

    def _check_not_answered(self, what: str) -> None:
        if self.answered:
            raise RuntimeError(
                f"{what} was called after the response started (or the websocket was "
                "accepted): the new session cookie could no longer be sent. Call it first."
            )

    def _keep_only(self, keep: bool | Collection[str]) -> None:
        if keep is True:
            return
        kept = set() if keep is False else set(keep)
        for name in [name for name in dict.keys(self.session) if name not in kept]:
            del self.session[name]

    def _serialised(self) -> tuple[dict[str, str], int]:
        """Every key's JSON and their size in bytes, checked against `max_session_bytes`."""
        values = self.session.serialised()
        size = sum(encoded_size(k) + encoded_size(v) for k, v in values.items())
        self._check_size(size)
        return values, size

    def _adopt(
        self, session_id: str, key: str, record: SessionRecord, values: dict[str, str], size: int
    ) -> None:
        """Make a just-stored session this request's, with `values` as its saved baseline."""
        self.session.mark_saved(Changes(values, [], size), replace=True)
        self.session_id, self.key, self.record = session_id, key, record
        self.meta_changes.clear()
        self.expire_cookie = False

    # -- ending ----------------------------------------------------------------------------

    async def end(self, event: EventType | None) -> None:
        """Delete the session now (logout, `clear()`) and unindex it."""
        key, record = self.key, self.record
        if key is None or record is None:
            return
        await self.core.end(key, record, event=event)
        self.session_id = self.key = self.record = None
        self.send_cookie, self.expire_cookie = False, True
        self.meta_changes.clear()

    # -- cookies ---------------------------------------------------------------------------

    def _cookie(self) -> str | None:
        if self.session_id is None or self.record is None:
            return None
        self.send_cookie = self.expire_cookie = False
        config = self.core.config
        token = config.signer.issue(self.session_id)
        record = self.record
        if not record.remember:  # the browser forgets it when it closes
            return config.cookie.set_cookie(token, None)
        # Rounded up: the milliseconds since the record was made must not cost a second.
        seconds_left = max(0, -(-(record.expires_at_ms - config.now_ms()) // 1000))
        return config.cookie.set_cookie(token, seconds_left)

    def _expired_cookie(self) -> str | None:
        if not self.expire_cookie:
            return None
        self.expire_cookie = False
        return self.core.config.cookie.expire_cookie()

    def _check_size(self, size: int) -> None:
        limit = self.core.config.max_session_bytes
        if size <= limit:
            return
        session = self.session
        sizes = sorted(
            ((encoded_size(dumps(k, v)), k) for k, v in dict.items(session)), reverse=True
        )
        largest = ", ".join(f"{key!r} ({length} bytes)" for length, key in sizes[:3])
        raise SessionError(
            f"the session is {size} bytes, over max_session_bytes={limit}; largest keys: "
            f"{largest}. Store less in the session (an id to look up elsewhere) or raise "
            "max_session_bytes"
        )
