"""`SessionMiddleware`: the pure ASGI callable that gives each request its session.

One request, in order: the transport finds the token; the signer checks it (a bad signature
never reaches the store); the store loads and touches the session in one call; the handler
runs with `scope["session"]`; when the response starts, only the changed keys are saved and
the cookie is written only if it changed (see `RequestSession.save`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Literal

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .addresses import TrustedProxies, client_ip
from .devices import MAX_USER_AGENT_CHARS, parse_user_agent
from .events import Events
from .exceptions import ConfigurationError, InvalidToken, StoreUnavailable
from .record import AGENT, IP, SessionRecord, data_fields, device_to_fields, split_fields
from .request_session import RequestSession
from .session import Session
from .stores import MemoryStore, Store
from .tokens import CookieSigner, session_hash
from .transports import BearerTransport, CookieTransport
from .users import UserSessions

logger = logging.getLogger("sessionward")

DAY = 24 * 3600
RETRY_AFTER_SECONDS = 1
_UNAVAILABLE_BODY = b"The session store is unavailable; please retry shortly.\n"
_NOT_CACHEABLE = ("private", "no-store", "no-cache")


class SessionMiddleware:
    """Server-side sessions with an activity TTL, behind a signed cookie or a bearer JWT.

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
        if on_store_error not in ("503", "anonymous"):
            raise ConfigurationError(
                f"on_store_error must be '503' or 'anonymous', not {on_store_error!r}"
            )
        self.app = app
        self.signer = CookieSigner(secret_keys)
        self.store: Store = store if store is not None else MemoryStore()
        self.cookie = cookie if cookie is not None else CookieTransport()
        self.bearer = bearer
        self.idle_ttl_ms = idle_ttl * 1000
        self.absolute_ttl_ms = absolute_ttl * 1000
        self.max_session_bytes = max_session_bytes
        if not isinstance(trusted_proxies, TrustedProxies):
            trusted_proxies = TrustedProxies(trusted_proxies)
        self.trusted_proxies = trusted_proxies
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
            found = await self._fetch(verified.session_id)
            if found is None or found[1].transport != "cookie":
                continue
            data, record = found
            return RequestSession(
                self,
                Session(data),
                verified.session_id,
                record,
                resign=not verified.signed_with_current_key,
                meta_changes=self._device_changes(scope, record),
            )
        return RequestSession(self, Session())

    async def _load_bearer(
        self, scope: Scope, bearer: BearerTransport, token: str
    ) -> RequestSession:
        """A bearer request's session, or `InvalidToken`: revocation needs no wait for `exp`."""
        claims = bearer.signer.verify(token, now=self.clock())
        found = await self._fetch(claims.session_id)
        if found is None:
            raise InvalidToken("the session has ended", reason="session_ended")
        data, record = found
        if record.user_id != claims.user_id or record.transport != "bearer":
            raise InvalidToken("the session does not belong to the token", reason="session_ended")
        changes = self._device_changes(scope, record)
        return RequestSession(
            self, Session(data), claims.session_id, record, bearer=True, meta_changes=changes
        )

    async def _fetch(self, session_id: str) -> tuple[dict[str, str], SessionRecord] | None:
        """Load and touch a live session: its data by key, and its record."""
        fields = await self.store.load(session_hash(session_id), self.now_ms(), self.idle_ttl_ms)
        if fields is None:
            return None
        data, meta = split_fields(fields)
        record = SessionRecord.from_fields(meta)
        return None if record is None else (data, record)

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
            changes.update(device_to_fields(parse_user_agent(agent.decode("latin-1"))))
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
            device_fields=device_to_fields(parse_user_agent(agent.decode("latin-1"))),
            agent_hash=_hash_agent(agent),
            transport=transport,
        )

    async def create_session(
        self, session_id: str, record: SessionRecord, values: dict[str, str]
    ) -> bool:
        """Store a brand-new session; `False` if the id is taken (it never is: 256 bits)."""
        fields = {**record.to_fields(), **data_fields(values)}
        key = session_hash(session_id)
        now_ms = record.last_seen_at_ms
        return await self.store.save(key, fields, (), now_ms, self.idle_ttl_ms, create=True)

    # -- serve -----------------------------------------------------------------------------

    async def _serve_http(
        self, scope: Scope, receive: Receive, send: Send, current: RequestSession
    ) -> None:
        started = refused = False

        async def send_with_session(message: Message) -> None:
            nonlocal started, refused
            if refused:
                return
            if message["type"] == "http.response.start":
                try:
                    cookie = await current.save(scope)
                except StoreUnavailable as exc:
                    logger.warning("sessionward: could not save the session: %s", exc)
                    refused = True
                    await _refuse(scope, send)
                    return
                _add_headers(message, current, cookie)
                started = current.answered = True
            await send(message)

        try:
            await self.app(scope, receive, send_with_session)
        except StoreUnavailable as exc:  # login, logout or a device list met a dead store
            if started or refused:
                raise
            logger.warning("sessionward: the store failed inside the handler: %s", exc)
            await _refuse(scope, send)

    async def _serve_websocket(
        self, scope: Scope, receive: Receive, send: Send, current: RequestSession
    ) -> None:
        accepted = False

        async def send_with_session(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                cookie = await current.save(scope)
                if cookie is not None:
                    headers = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
                    message = {**message, "headers": headers}
                accepted = current.answered = True
            await send(message)

        try:
            await self.app(scope, receive, send_with_session)
            if current.session_id is not None:  # changes made after the handshake
                await current.save_or_end()
        except StoreUnavailable as exc:
            logger.warning("sessionward: the store failed during a websocket: %s", exc)
            if not accepted:
                await _refuse(scope, send)


def _add_headers(message: Message, current: RequestSession, cookie: str | None) -> None:
    """`Vary: Cookie` when a session was read or the cookie changes; never cache a cookie."""
    read_a_session = current.session.accessed and current.session_id is not None
    if not read_a_session and cookie is None:
        return
    if not any(name.lower() == b"vary" for name, _ in message.get("headers", ())):
        message["headers"] = [*message.get("headers", ()), (b"vary", b"Cookie")]
    else:  # merge into the app's own Vary; the common case above skips the parsing
        MutableHeaders(scope=message).add_vary_header("Cookie")
    if cookie is not None:
        headers = MutableHeaders(scope=message)
        headers.append("set-cookie", cookie)
        cache_control = headers.get("cache-control", "").lower()
        if not any(word in cache_control for word in _NOT_CACHEABLE):
            headers["cache-control"] = "private, no-store"


def _check_positive(**settings: int) -> None:
    for name, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigurationError(f"{name} must be a positive int, not {value!r}")


def _user_agent(scope: Scope) -> bytes:
    """The user-agent, cut where parsing stops looking, so a huge one costs no more."""
    for name, value in scope["headers"]:
        if name == b"user-agent":
            agent: bytes = value[:MAX_USER_AGENT_CHARS]
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
    challenge = f'Bearer error="invalid_token", error_description="{reason}"'
    await _respond(send, 401, b'{"error":"invalid_token"}', b"application/json", challenge)


async def _refuse(scope: Scope, send: Send) -> None:
    """Answer 503 (http) or close with 1013, try again later (websocket)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1013, "reason": "session store unavailable"})
        return
    await _respond(send, 503, _UNAVAILABLE_BODY, b"text/plain; charset=utf-8")


async def _respond(
    send: Send, status: int, body: bytes, content_type: bytes, challenge: str | None = None
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if status == 503:
        headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
    if challenge is not None:
        headers.append((b"www-authenticate", challenge.encode("ascii", "replace")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
