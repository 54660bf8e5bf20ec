"""`SessionMiddleware`: the pure ASGI callable that gives each request its session.

One request, in order: the transport finds the token; the signer checks it (a bad signature
never reaches the store); the store loads and touches the session in one call; the handler
runs with `scope["session"]`; when the response starts, only the changed keys are saved and
the cookie is written only if it changed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .exceptions import ConfigurationError, InvalidToken, SessionError, StoreUnavailable
from .record import DATA_PREFIX, SessionRecord, split_fields
from .session import Changes, Session, dumps
from .stores import MemoryStore, Store
from .tokens import CookieSigner, new_session_id, session_hash
from .transports import CookieTransport

logger = logging.getLogger("sessionward")

DAY = 24 * 3600
RETRY_AFTER_SECONDS = 1
_UNAVAILABLE_BODY = b"The session store is unavailable; please retry shortly.\n"


@dataclass(slots=True)
class _Current:
    """One request's session between load and save."""

    session: Session
    session_id: str | None = None  # the live session's secret id; None until one is stored
    record: SessionRecord | None = None
    resign: bool = False  # the cookie was signed with an older key


class SessionMiddleware:
    """Server-side sessions with an activity TTL, behind a signed cookie.

    A drop-in replacement for Starlette's `SessionMiddleware`: handlers keep using
    `request.session` as a dict; only the constructor arguments change.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret_keys: str | bytes | Sequence[str | bytes],
        store: Store | None = None,
        cookie: CookieTransport | None = None,
        idle_ttl: int = 14 * DAY,
        absolute_ttl: int = 30 * DAY,
        max_session_bytes: int = 64 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value in (
            ("idle_ttl", idle_ttl),
            ("absolute_ttl", absolute_ttl),
            ("max_session_bytes", max_session_bytes),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive int, not {value!r}")
        self.app = app
        self.signer = CookieSigner(secret_keys)
        self.store: Store = store if store is not None else MemoryStore()
        self.cookie = cookie if cookie is not None else CookieTransport()
        self.idle_ttl_ms = idle_ttl * 1000
        self.absolute_ttl_ms = absolute_ttl * 1000
        self.max_session_bytes = max_session_bytes
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            current = await self._load(scope)
        except StoreUnavailable as exc:
            logger.warning("sessionward: could not load the session: %s", exc)
            await _refuse(scope, send)
            return
        scope["session"] = current.session
        if scope["type"] == "http":
            await self._serve_http(scope, receive, send, current)
        else:
            await self._serve_websocket(scope, receive, send, current)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- load ------------------------------------------------------------------------------

    async def _load(self, scope: Scope) -> _Current:
        for token in self.cookie.read(scope):
            try:
                verified = self.signer.verify(token)
            except InvalidToken:
                continue
            key = session_hash(verified.session_id)
            fields = await self.store.load(key, self._now_ms(), self.idle_ttl_ms)
            if fields is None:
                continue
            data, meta = split_fields(fields)
            record = SessionRecord.from_fields(meta)
            if record is None:
                continue
            stale = not verified.signed_with_current_key
            return _Current(Session(data), verified.session_id, record, resign=stale)
        return _Current(Session())

    # -- serve -----------------------------------------------------------------------------

    async def _serve_http(
        self, scope: Scope, receive: Receive, send: Send, current: _Current
    ) -> None:
        refused = False

        async def send_with_session(message: Message) -> None:
            nonlocal refused
            if refused:
                return
            if message["type"] == "http.response.start":
                try:
                    cookie = await self._save(scope, current)
                except StoreUnavailable as exc:
                    logger.warning("sessionward: could not save the session: %s", exc)
                    refused = True
                    await _refuse(scope, send)
                    return
                self._add_headers(message, current, cookie)
            await send(message)

        await self.app(scope, receive, send_with_session)

    async def _serve_websocket(
        self, scope: Scope, receive: Receive, send: Send, current: _Current
    ) -> None:
        async def send_with_session(message: Message) -> None:
            if message["type"] == "websocket.accept":
                cookie = await self._save(scope, current)
                if cookie is not None:
                    headers = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_session)
        if current.session_id is not None:  # changes made after the handshake
            try:
                await self._save_changes(current)
            except StoreUnavailable as exc:
                logger.warning("sessionward: could not save a websocket session: %s", exc)

    def _add_headers(self, message: Message, current: _Current, cookie: str | None) -> None:
        read_a_session = current.session.accessed and current.session_id is not None
        if not read_a_session and cookie is None:
            return
        headers = MutableHeaders(scope=message)
        headers.add_vary_header("Cookie")
        if cookie is not None:
            headers.append("set-cookie", cookie)
            if "cache-control" not in headers:
                headers["cache-control"] = "private, no-store"

    # -- save ------------------------------------------------------------------------------

    async def _save(self, scope: Scope, current: _Current) -> str | None:
        """Persist what the request changed; return a `Set-Cookie` value if the cookie changes."""
        session = current.session
        if current.session_id is None:
            return await self._create(scope, current) if dict.__len__(session) else None
        if session.cleared or (session.modified and not dict.__len__(session)):
            await self.store.delete(session_hash(current.session_id))
            current.session_id = current.record = None
            if dict.__len__(session):  # cleared, then filled again: a new session, a new id
                return await self._create(scope, current)
            return self.cookie.expire_cookie(scope)
        await self._save_changes(current)
        if current.resign and current.session_id is not None and current.record is not None:
            current.resign = False
            token = self.signer.issue(current.session_id)
            return self.cookie.set_cookie(scope, token, self._seconds_left(current.record))
        return None

    async def _save_changes(self, current: _Current) -> None:
        session = current.session
        if current.session_id is None or not session.accessed:
            return
        changes = session.changes()
        if not changes:
            return
        self._check_size(session, changes)
        saved = await self.store.save(
            session_hash(current.session_id),
            {DATA_PREFIX + key: text for key, text in changes.write.items()},
            [DATA_PREFIX + key for key in changes.delete],
            self._now_ms(),
            self.idle_ttl_ms,
            create=False,
        )
        if saved:
            session.mark_saved()
        else:  # ended meanwhile (logout elsewhere, expiry): do not bring it back
            logger.info("sessionward: session ended before this request saved; changes dropped")
            current.session_id = current.record = None

    async def _create(self, scope: Scope, current: _Current) -> str | None:
        changes = current.session.changes()
        self._check_size(current.session, changes)
        now_ms = self._now_ms()
        record = SessionRecord.new(now_ms, self.absolute_ttl_ms)
        fields = record.to_fields()
        fields.update((DATA_PREFIX + key, text) for key, text in changes.write.items())
        session_id = new_session_id()
        key = session_hash(session_id)
        if not await self.store.save(key, fields, (), now_ms, self.idle_ttl_ms, create=True):
            logger.error("sessionward: the store refused a new session id; nothing saved")
            return None
        current.session.mark_saved()
        current.session_id, current.record, current.resign = session_id, record, False
        token = self.signer.issue(session_id)
        return self.cookie.set_cookie(scope, token, self._seconds_left(record))

    def _check_size(self, session: Session, changes: Changes) -> None:
        if changes.size <= self.max_session_bytes:
            return
        sizes = sorted(((len(dumps(k, v)), k) for k, v in dict.items(session)), reverse=True)
        largest = ", ".join(f"{key!r} ({size} bytes)" for size, key in sizes[:3])
        raise SessionError(
            f"the session is {changes.size} bytes, over max_session_bytes="
            f"{self.max_session_bytes}; largest keys: {largest}. Store less in the session "
            "(an id to look up elsewhere) or raise max_session_bytes"
        )

    def _seconds_left(self, record: SessionRecord) -> int:
        return max(0, (record.expires_at_ms - self._now_ms()) // 1000)


async def _refuse(scope: Scope, send: Send) -> None:
    """Answer 503 (http) or close with 1013, try again later (websocket)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1013, "reason": "session store unavailable"})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(_UNAVAILABLE_BODY)).encode()),
                (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _UNAVAILABLE_BODY})
