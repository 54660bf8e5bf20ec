"""`SessionMiddleware`: the pure ASGI callable that gives each request its session.

One request, in order: the transport finds the token; the signer checks it (a bad signature
never reaches the store); the store loads and touches the session in one call; the handler
runs with `scope["session"]`; when the response starts, only the changed keys are saved and
the cookie is written only if it changed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .devices import TrustedProxies, client_ip, parse_user_agent
from .events import Events, EventType
from .exceptions import ConfigurationError, InvalidToken, SessionError, StoreUnavailable
from .record import (
    AGENT,
    DATA_PREFIX,
    IP,
    SessionRecord,
    data_fields,
    device_fields,
    split_fields,
)
from .session import Changes, Session, dumps
from .stores import MemoryStore, Store
from .tokens import CookieSigner, new_session_id, session_hash
from .transports import BearerTransport, CookieTransport
from .users import UserSessions

logger = logging.getLogger("sessionward")

DAY = 24 * 3600
RETRY_AFTER_SECONDS = 1
_UNAVAILABLE_BODY = b"The session store is unavailable; please retry shortly.\n"


@dataclass(slots=True, eq=False)
class RequestSession:
    """One request's session between load and save; `scope["sessionward"]` holds it."""

    middleware: SessionMiddleware
    session: Session
    session_id: str | None = None  # the live session's secret id; None until one is stored
    record: SessionRecord | None = None
    bearer: bool = False  # authenticated by a JWT: never answered with a cookie
    degraded: bool = False  # the store was down at load: served as anonymous, read-only
    send_cookie: bool = False  # (re)send the cookie: signed with an old key, or a new id
    expire_cookie: bool = False  # tell the browser to forget its cookie (logout)
    meta_changes: dict[str, str] = field(default_factory=dict)  # new IP or user-agent

    @property
    def key(self) -> str | None:
        return session_hash(self.session_id) if self.session_id is not None else None


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
        bearer: BearerTransport | None = None,
        idle_ttl: int = 14 * DAY,
        absolute_ttl: int = 30 * DAY,
        max_session_bytes: int = 64 * 1024,
        max_sessions_per_user: int | None = None,
        trusted_proxies: TrustedProxies | Sequence[str] = (),
        events: Events | None = None,
        on_store_error: Literal["503", "anonymous"] = "503",
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check_positive(idle_ttl=idle_ttl, absolute_ttl=absolute_ttl)
        _check_positive(max_session_bytes=max_session_bytes)
        if max_sessions_per_user is not None:
            _check_positive(max_sessions_per_user=max_sessions_per_user)
        self.app = app
        self.signer = CookieSigner(secret_keys)
        self.store: Store = store if store is not None else MemoryStore()
        self.cookie = cookie if cookie is not None else CookieTransport()
        self.bearer = bearer
        self.idle_ttl_ms = idle_ttl * 1000
        self.absolute_ttl_ms = absolute_ttl * 1000
        self.max_session_bytes = max_session_bytes
        self.trusted_proxies = (
            trusted_proxies
            if isinstance(trusted_proxies, TrustedProxies)
            else TrustedProxies(trusted_proxies)
        )
        if on_store_error not in ("503", "anonymous"):
            raise ConfigurationError(
                f"on_store_error must be '503' or 'anonymous', not {on_store_error!r}"
            )
        self.on_store_error = on_store_error
        self.clock = clock
        self.users = UserSessions(
            self.store,
            idle_ttl=idle_ttl,
            absolute_ttl=absolute_ttl,
            max_sessions_per_user=max_sessions_per_user,
            events=events,
            clock=clock,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            current = await self._load(scope)
        except StoreUnavailable as exc:
            logger.warning("sessionward: could not load the session: %s", exc)
            if self.on_store_error == "503" or self._bearer_token(scope) is not None:
                await _refuse(scope, send)
                return
            current = RequestSession(self, Session(), degraded=True)
        except InvalidToken as exc:
            logger.debug("sessionward: bearer token refused: %s", exc)
            await _unauthorized(scope, send, exc.reason)
            return
        scope["session"] = current.session
        scope["sessionward"] = current
        if scope["type"] == "http":
            await self._serve_http(scope, receive, send, current)
        else:
            await self._serve_websocket(scope, receive, send, current)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- load ------------------------------------------------------------------------------

    def _bearer_token(self, scope: Scope) -> str | None:
        return self.bearer.read(scope) if self.bearer is not None else None

    async def _load(self, scope: Scope) -> RequestSession:
        bearer_token = self._bearer_token(scope)
        if bearer_token is not None and self.bearer is not None:
            return await self._load_bearer(scope, self.bearer, bearer_token)
        for token in self.cookie.read(scope):
            try:
                verified = self.signer.verify(token)
            except InvalidToken:
                continue
            key = session_hash(verified.session_id)
            fields = await self.store.load(key, self.now_ms(), self.idle_ttl_ms)
            if fields is None:
                continue
            data, meta = split_fields(fields)
            record = SessionRecord.from_fields(meta)
            if record is None:
                continue
            return RequestSession(
                self,
                Session(data),
                verified.session_id,
                record,
                send_cookie=not verified.signed_with_current_key,
                meta_changes=self._device_changes(scope, record),
            )
        return RequestSession(self, Session())

    async def _load_bearer(
        self, scope: Scope, bearer: BearerTransport, token: str
    ) -> RequestSession:
        """A bearer request's session, or `InvalidToken`: revocation needs no wait for `exp`."""
        claims = bearer.signer.verify(token, now=self.clock())
        key = session_hash(claims.session_id)
        fields = await self.store.load(key, self.now_ms(), self.idle_ttl_ms)
        if fields is None:
            raise InvalidToken("the session has ended", reason="session_ended")
        data, meta = split_fields(fields)
        record = SessionRecord.from_fields(meta)
        if record is None or record.user_id != claims.user_id:
            raise InvalidToken("the session does not belong to the token", reason="session_ended")
        changes = self._device_changes(scope, record)
        return RequestSession(
            self, Session(data), claims.session_id, record, bearer=True, meta_changes=changes
        )

    def _device_changes(self, scope: Scope, record: SessionRecord) -> dict[str, str]:
        """The record fields to update because the client's IP or user-agent changed."""
        changes: dict[str, str] = {}
        ip = client_ip(scope, self.trusted_proxies)
        if ip is not None and ip != record.ip:
            changes[IP] = ip
        agent = _user_agent(scope)
        agent_hash = _hash_agent(agent)
        if agent_hash != record.agent_hash:
            changes[AGENT] = agent_hash
            changes.update(device_fields(parse_user_agent(agent.decode("latin-1"))))
        return changes

    def new_record(
        self, scope: Scope, now_ms: int, user_id: str | None = None, transport: str = "cookie"
    ) -> SessionRecord:
        ip = client_ip(scope, self.trusted_proxies)
        agent = _user_agent(scope)
        return SessionRecord(
            now_ms,
            now_ms + self.absolute_ttl_ms,
            now_ms,
            user_id=user_id,
            ip=ip,
            first_ip=ip,
            device=parse_user_agent(agent.decode("latin-1")),
            agent_hash=_hash_agent(agent),
            transport=transport,
        )

    # -- serve -----------------------------------------------------------------------------

    async def _serve_http(
        self, scope: Scope, receive: Receive, send: Send, current: RequestSession
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
        self, scope: Scope, receive: Receive, send: Send, current: RequestSession
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

    def _add_headers(self, message: Message, current: RequestSession, cookie: str | None) -> None:
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

    async def _save(self, scope: Scope, current: RequestSession) -> str | None:
        """Persist what the request changed; return a `Set-Cookie` value if the cookie changes."""
        session = current.session
        if current.degraded:
            if session.modified or dict.__len__(session):
                raise StoreUnavailable("the store was unavailable when this session was loaded")
            return None
        if current.bearer:  # no cookie to send, and no new session a client could receive
            if session.cleared:
                await self.end(current, "session.logout")
            else:
                await self._save_changes(current)
            return None
        if current.session_id is not None and (
            session.cleared
            or (session.modified and not dict.__len__(session) and not _bound(current))
        ):
            await self.end(current, "session.logout" if _bound(current) else None)
        if current.session_id is None:
            if dict.__len__(session):  # a first write, or the session was ended and refilled
                return await self._create(scope, current)
            if current.expire_cookie:
                current.expire_cookie = False
                return self.cookie.expire_cookie(scope)
            return None
        await self._save_changes(current)
        if current.send_cookie and current.record is not None:
            current.send_cookie = False
            token = self.signer.issue(current.session_id)
            return self.cookie.set_cookie(scope, token, self._seconds_left(current.record))
        return None

    async def _save_changes(self, current: RequestSession) -> None:
        session = current.session
        key = current.key
        changes = session.changes() if session.accessed else None
        if key is None or not (changes or current.meta_changes):
            return
        write = dict(current.meta_changes)
        delete: list[str] = []
        if changes:
            self._check_size(session, changes.size)
            write.update(data_fields(changes.write))
            delete = [DATA_PREFIX + key for key in changes.delete]
        if await self.store.save(key, write, delete, self.now_ms(), self.idle_ttl_ms, create=False):
            if changes is not None:
                session.mark_saved(changes)
            current.meta_changes.clear()
        else:  # ended meanwhile (logout elsewhere, expiry): do not bring it back
            logger.info("sessionward: session ended before this request saved; changes dropped")
            current.session_id = current.record = None

    async def _create(self, scope: Scope, current: RequestSession) -> str | None:
        now_ms = self.now_ms()
        record = self.new_record(scope, now_ms)
        if not await self.store_new(current, record):
            return None
        await self.users.emit("session.created", session_hash(current.session_id or ""), record)
        return self.issue_cookie(scope, current)

    async def store_new(
        self, current: RequestSession, record: SessionRecord, session_id: str | None = None
    ) -> bool:
        """Store the request's whole session under a new id with `record`; adopt it if stored."""
        values = current.session.serialised()
        size = sum(len(k) + len(v) for k, v in values.items())
        self._check_size(current.session, size)
        session_id = session_id or new_session_id()
        if not await self.create_session(session_id, record, values):
            logger.error("sessionward: the store refused a new session id; nothing saved")
            return False
        current.session.mark_saved(Changes(values, [], size), replace=True)
        current.session_id, current.record = session_id, record
        current.meta_changes.clear()
        return True

    async def create_session(
        self, session_id: str, record: SessionRecord, values: dict[str, str]
    ) -> bool:
        fields = {**record.to_fields(), **data_fields(values)}
        key = session_hash(session_id)
        now_ms = record.last_seen_at_ms
        return await self.store.save(key, fields, (), now_ms, self.idle_ttl_ms, create=True)

    def issue_cookie(self, scope: Scope, current: RequestSession) -> str | None:
        if current.session_id is None or current.record is None:
            return None
        current.send_cookie = current.expire_cookie = False
        token = self.signer.issue(current.session_id)
        return self.cookie.set_cookie(scope, token, self._seconds_left(current.record))

    async def end(self, current: RequestSession, event: EventType | None) -> None:
        """Delete the request's session now (logout, `clear()`), and unindex it."""
        key, record = current.key, current.record
        if key is None or record is None:
            return
        await self.store.delete(key)  # the session first: a crash leaves a stale index entry
        if record.user_id is not None:
            await self.users.forget(record.user_id, key)
        if event is not None:
            await self.users.emit(event, key, record)
        current.session_id = current.record = None
        current.send_cookie, current.expire_cookie = False, True
        current.meta_changes.clear()

    def _check_size(self, session: Session, size: int) -> None:
        if size <= self.max_session_bytes:
            return
        sizes = sorted(((len(dumps(k, v)), k) for k, v in dict.items(session)), reverse=True)
        largest = ", ".join(f"{key!r} ({length} bytes)" for length, key in sizes[:3])
        raise SessionError(
            f"the session is {size} bytes, over max_session_bytes="
            f"{self.max_session_bytes}; largest keys: {largest}. Store less in the session "
            "(an id to look up elsewhere) or raise max_session_bytes"
        )

    def _seconds_left(self, record: SessionRecord) -> int:
        return max(0, (record.expires_at_ms - self.now_ms()) // 1000)


def _bound(current: RequestSession) -> bool:
    return current.record is not None and current.record.user_id is not None


def _check_positive(**settings: int) -> None:
    for name, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigurationError(f"{name} must be a positive int, not {value!r}")


def _user_agent(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"user-agent":
            agent: bytes = value
            return agent
    return b""


@lru_cache(maxsize=4096)  # a client sends the same user-agent on every request
def _hash_agent(agent: bytes) -> str:
    """A short fingerprint of the user-agent, to notice a change without storing the string."""
    return hashlib.blake2b(agent, digest_size=8).hexdigest()


async def _unauthorized(scope: Scope, send: Send, reason: str) -> None:
    """401 with the RFC 6750 challenge (http), or close with 1008, policy violation (websocket)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": "invalid bearer token"})
        return
    body = b'{"error":"invalid_token"}'
    challenge = f'Bearer error="invalid_token", error_description="{reason}"'
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", challenge.encode("ascii", "replace")),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


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
