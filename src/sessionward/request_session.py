"""One request's session: what was loaded, and how it is saved, rotated and ended.

The middleware builds one per request and keeps it in `scope["sessionward"]`; `login` and
`logout` act on it. Every cookie decision (send, re-send, expire, leave alone) is made in
`save`, from the flags the other steps set.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from starlette.types import Scope

from .events import EventType
from .exceptions import SessionError, StoreUnavailable
from .record import DATA_PREFIX, SessionRecord, data_fields
from .session import Changes, Session, dumps, encoded_size
from .tokens import new_session_id, session_hash

if TYPE_CHECKING:
    from .middleware import SessionMiddleware

logger = logging.getLogger("sessionward")


class RequestSession:
    """The session of one request, between its load and the start of its response."""

    def __init__(
        self,
        middleware: SessionMiddleware,
        session: Session,
        session_id: str | None = None,
        record: SessionRecord | None = None,
        *,
        bearer: bool = False,
        degraded: bool = False,
        resign: bool = False,
        meta_changes: dict[str, str] | None = None,
    ) -> None:
        self.middleware = middleware
        self.session = session
        self.session_id = session_id
        self.record = record
        self.bearer = bearer  # authenticated by a JWT: never answered with a cookie
        self.degraded = degraded  # the store was down at load: anonymous and read-only
        self.send_cookie = resign  # (re)send the cookie: signed with an old key, or a new id
        self.expire_cookie = False  # tell the browser to forget its cookie
        self.meta_changes = meta_changes or {}  # a new IP or user-agent to record
        self.answered = False  # the response started (or the websocket was accepted)

    @property
    def session_id(self) -> str | None:
        """The live session's secret id; `None` until one is stored."""
        return self._session_id

    @session_id.setter
    def session_id(self, session_id: str | None) -> None:
        self._session_id = session_id
        self.key = session_hash(session_id) if session_id is not None else None

    @property
    def user_id(self) -> str | None:
        return self.record.user_id if self.record is not None else None

    # -- saving ----------------------------------------------------------------------------

    async def save(self, scope: Scope) -> str | None:
        """Persist what the request changed; return a `Set-Cookie` value if the cookie changes."""
        session = self.session
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
                return await self._create(scope)
            return self._expired_cookie()
        await self.save_changes()
        return self._cookie() if self.send_cookie else None

    async def save_or_end(self) -> None:
        """Save without touching the cookie: bearer requests, and websockets after accept."""
        if self.session_id is None and dict.__len__(self.session):
            logger.warning(
                "sessionward: a session first written where no cookie can be sent (after "
                "websocket.accept(), or after a bearer session ended) is not stored"
            )
        if self.session.cleared:
            await self.end("session.logout")
        else:
            await self.save_changes()

    async def save_changes(self) -> None:
        session, key = self.session, self.key
        changes = session.changes() if session.may_have_changed else None
        if key is None or not (changes or self.meta_changes):
            return
        write = dict(self.meta_changes)
        delete: list[str] = []
        if changes:
            self._check_size(changes.size)
            write.update(data_fields(changes.write))
            delete = [DATA_PREFIX + name for name in changes.delete]
        middleware = self.middleware
        now_ms = middleware.now_ms()
        if await middleware.store.save(
            key, write, delete, now_ms, middleware.idle_ttl_ms, create=False
        ):
            if changes is not None:
                session.mark_saved(changes)
            self.meta_changes.clear()
        else:  # ended meanwhile (logout elsewhere, expiry): do not bring it back
            logger.info("sessionward: session ended before this request saved; changes dropped")
            self.session_id = self.record = None

    # -- new ids ---------------------------------------------------------------------------

    async def _create(self, scope: Scope) -> str | None:
        record = self.middleware.new_record(scope, self.middleware.now_ms())
        if not await self._store_new(record, new_session_id()):
            return None
        await self.middleware.users.emit("session.created", self.key or "", record)
        return self._cookie()

    async def rotate(self, scope: Scope, user_id: str) -> None:
        """Sign the browser in as `user_id` under a new id; the old id dies at once.

        The data is kept (a cart survives sign-in) unless the session belonged to another
        user: what one person left in a shared browser must not pass to the next.
        """
        if self.answered:
            raise RuntimeError(
                "login() was called after the response started (or the websocket was "
                "accepted): the new session cookie could no longer be sent. Sign in first."
            )
        middleware, old_key, old_record = self.middleware, self.key, self.record
        if old_record is not None and old_record.user_id not in (None, user_id):
            self.session.clear()
        now_ms = middleware.now_ms()
        record = middleware.new_record(scope, now_ms, user_id)
        if old_record is not None and old_record.first_ip:
            record = dataclasses.replace(record, first_ip=old_record.first_ip)
        session_id = new_session_id()
        key = session_hash(session_id)
        await middleware.users.add(user_id, key, now_ms)  # first: a stale entry is harmless
        if not await self._store_new(record, session_id):
            raise RuntimeError("the session store refused a brand-new session id")
        if old_key is not None and old_record is not None:
            await middleware.store.delete(old_key)
            if old_record.user_id is not None:
                await middleware.users.forget(old_record.user_id, old_key)
        self.send_cookie = True
        await middleware.users.emit("session.login", key, record)
        await middleware.users.enforce_limit(user_id, key, record.created_at_ms)

    async def _store_new(self, record: SessionRecord, session_id: str) -> bool:
        """Store the whole session under `session_id` with `record`, and adopt it."""
        values = self.session.serialised()
        size = sum(encoded_size(k) + encoded_size(v) for k, v in values.items())
        self._check_size(size)
        if not await self.middleware.create_session(session_id, record, values):
            logger.error("sessionward: the store refused a new session id; nothing saved")
            return False
        self.session.mark_saved(Changes(values, [], size), replace=True)
        self.session_id, self.record = session_id, record
        self.meta_changes.clear()
        self.expire_cookie = False
        return True

    # -- ending ----------------------------------------------------------------------------

    async def end(self, event: EventType | None) -> None:
        """Delete the session now (logout, `clear()`) and unindex it."""
        key, record = self.key, self.record
        if key is None or record is None:
            return
        users = self.middleware.users
        await self.middleware.store.delete(key)  # first: a crash leaves a stale index entry
        if record.user_id is not None:
            await users.forget(record.user_id, key)
        if event is not None:
            await users.emit(event, key, record)
        self.session_id = self.record = None
        self.send_cookie, self.expire_cookie = False, True
        self.meta_changes.clear()

    # -- cookies ---------------------------------------------------------------------------

    def _cookie(self) -> str | None:
        if self.session_id is None or self.record is None:
            return None
        self.send_cookie = self.expire_cookie = False
        middleware = self.middleware
        token = middleware.signer.issue(self.session_id)
        seconds_left = max(0, (self.record.expires_at_ms - middleware.now_ms()) // 1000)
        return middleware.cookie.set_cookie(token, seconds_left)

    def _expired_cookie(self) -> str | None:
        if not self.expire_cookie:
            return None
        self.expire_cookie = False
        return self.middleware.cookie.expire_cookie()

    def _check_size(self, size: int) -> None:
        limit = self.middleware.max_session_bytes
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
