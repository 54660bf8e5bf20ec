"""`SessionMiddleware`: the pure ASGI callable that gives each request its session.

One request, in order: the transport finds the token; the signer checks it (a bad signature
never reaches the store); the store loads and touches the session in one call; the handler
runs with `scope["session"]`; when the response starts, only the changed keys are saved and
the cookie is written only if it changed (see `RequestSession.save`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .addresses import TrustedProxies
from .client import Client
from .client_hints import ACCEPT_CH, ask_for_hints
from .config import (
    DEFAULT_ABSOLUTE_TTL,
    DEFAULT_IDLE_TTL,
    DEFAULT_MAX_SESSION_BYTES,
    SessionConfig,
    StoreErrorPolicy,
)
from .core import SessionCore
from .csrf import forbidden_json, refusal
from .devices import start_warm_up
from .events import Events
from .exceptions import ConfigurationError, InvalidToken, StoreUnavailable
from .locations import Locate
from .origins import SAFE_METHODS, cross_origin
from .request_session import RequestSession
from .stores import Store
from .telemetry import Telemetry
from .tokens import session_hash
from .transports import BearerTransport, CookieTransport

logger = logging.getLogger("sessionward")

RETRY_AFTER_SECONDS = 1
_UNAVAILABLE_BODY = b"The session store is unavailable; please retry shortly.\n"
_SHARED = frozenset({"public", "s-maxage"})
_TOLD_REASONS = frozenset({"expired", "session_ended"})


class SessionMiddleware:
    """Server-side sessions with an activity TTL, behind a signed cookie or a bearer JWT.

    A drop-in replacement for Starlette's `SessionMiddleware`: handlers keep using
    `request.session` as a dict; only the constructor arguments change. The arguments are
    `SessionConfig`'s; this class is the ASGI plumbing around a `SessionCore`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret_keys: str | bytes | Sequence[str | bytes],
        store: Store | None = None,
        cookie: CookieTransport | None = None,
        bearer: BearerTransport | None = None,
        idle_ttl: int = DEFAULT_IDLE_TTL,
        absolute_ttl: int = DEFAULT_ABSOLUTE_TTL,
        max_session_bytes: int = DEFAULT_MAX_SESSION_BYTES,
        max_sessions_per_user: int | None = None,
        trusted_proxies: TrustedProxies | Sequence[str] = (),
        trusted_origins: Sequence[str] = (),
        csrf: bool = True,
        csrf_exempt: Sequence[str] = (),
        events: Events | None = None,
        on_store_error: StoreErrorPolicy = "503",
        locate: Locate | None = None,
        count_as_activity: Callable[[Scope], bool] | None = None,
        telemetry: bool | Telemetry = True,
        client_hints: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if secret_keys is None:  # `os.environ.get(...)` of a variable that is not set
            raise ConfigurationError(
                "SessionMiddleware needs secret_keys: one or more random keys of 32 or more "
                "characters, e.g. secrets.token_urlsafe(32)"
            )
        self.app = app
        self.config = SessionConfig(
            secret_keys=secret_keys,
            store=store,
            cookie=cookie,
            bearer=bearer,
            idle_ttl=idle_ttl,
            absolute_ttl=absolute_ttl,
            max_session_bytes=max_session_bytes,
            max_sessions_per_user=max_sessions_per_user,
            trusted_proxies=trusted_proxies,
            trusted_origins=trusted_origins,
            csrf=csrf,
            csrf_exempt=csrf_exempt,
            events=events,
            on_store_error=on_store_error,
            locate=locate,
            count_as_activity=count_as_activity,
            telemetry=telemetry,
            clock=clock,
        )
        self.core = SessionCore(self.config)
        self.telemetry = self.config.telemetry
        # `Accept-CH` on HTML pages: the next requests (the sign-in form's POST) carry the
        # high-entropy User-Agent Client Hints a device label reads (`client_hints.py`).
        self.accept_ch = ", ".join(ACCEPT_CH).encode() if client_hints else None
        start_warm_up()  # the user-agent rules, built now in a thread, not in the first request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = Client(scope, self.config.trusted_proxies, self.config.locate)
        bearer = self.config.bearer
        bearer_token = None if bearer is None else bearer.token(client.authorizations)
        if (
            scope["type"] == "http"
            and scope["method"] not in SAFE_METHODS
            and bearer_token is None
            and await self._refused_cross_origin(scope, send)
        ):
            return
        try:
            activity = self.config.count_as_activity
            touch = activity is None or bool(activity(scope))
            if bearer_token is not None:
                current = await self._load_bearer(client, bearer_token, touch)
            else:
                current = await self._load_cookie(scope, client, touch)
        except StoreUnavailable as exc:
            logger.warning("sessionward: could not load the session: %s", exc)
            if self.config.on_store_error == "503" or bearer_token is not None:
                await self._refuse(scope, send)
                return
            current = RequestSession(self.core, client, degraded=True)
        except InvalidToken as exc:
            logger.debug("sessionward: bearer token refused: %s", exc)
            self._rejected("bearer", exc)
            await _unauthorized(scope, send, exc.reason)
            return
        scope["session"] = current.session
        scope["sessionward"] = current
        if scope["type"] == "http":
            await self._serve_http(scope, receive, send, current)
        else:
            await self._serve_websocket(scope, receive, send, current)

    async def _refused_cross_origin(self, scope: Scope, send: Send) -> bool:
        """Answer 403 to an unsafe request from another site's page (see `csrf.py`); a
        bearer token is no ambient credential, so bearer requests never come here."""
        config = self.config
        if not config.csrf:
            return False
        reason = refusal(scope, config.trusted_origins, config.csrf_exempt)
        if reason is None:
            return False
        logger.info(
            "sessionward: refused a cross-origin %s %r: %s", scope["method"], scope["path"], reason
        )
        await _respond(send, 403, forbidden_json(reason), b"application/json")
        return True

    def _rejected(self, transport: str, exc: InvalidToken) -> None:
        if self.telemetry is not None:
            self.telemetry.rejected_tokens.add((transport, exc.reason))

    async def _refuse(self, scope: Scope, send: Send) -> None:
        if self.telemetry is not None:
            self.telemetry.unavailable.add()
        await _refuse(scope, send)

    # -- load ------------------------------------------------------------------------------

    async def _load_cookie(self, scope: Scope, client: Client, touch: bool) -> RequestSession:
        """The session of the first cookie that verifies and names a live cookie session.

        A websocket handshake from another site's page gets none: the browser sends the
        cookie whichever page opens the socket (cross-site websocket hijacking). The same
        rule as for unsafe requests, bar the method (a handshake is a GET), and kept with
        `csrf=False`: no form token of the app's own covers a handshake.
        """
        config = self.config
        if (
            scope["type"] == "websocket"
            # Never the exempt paths: they are for cross-site form posts, not handshakes.
            and cross_origin(scope["headers"], config.trusted_origins) is not None
        ):
            logger.info("sessionward: a websocket from a foreign origin gets no session")
            return RequestSession(self.core, client, cross_site=True)
        for token in config.cookie.tokens(client.cookies):
            try:
                verified = config.signer.verify(token)
            except InvalidToken as exc:
                self._rejected("cookie", exc)
                continue
            loaded = await self.core.load(verified.key, touch=touch)
            if loaded is None or loaded.transport != "cookie":
                continue
            resign = not verified.signed_with_current_key
            return RequestSession(
                self.core, client, verified.session_id, loaded, resign=resign, touch=touch
            )
        return RequestSession(self.core, client, touch=touch)

    async def _load_bearer(self, client: Client, token: str, touch: bool) -> RequestSession:
        """A bearer request's session, or `InvalidToken`: revocation needs no wait for `exp`."""
        claims = self.config.bearer_transport().signer.verify(token, now=self.config.clock())
        loaded = await self.core.load(session_hash(claims.session_id), touch=touch)
        if loaded is None:
            raise InvalidToken("the session has ended", reason="session_ended")
        if loaded.user_id != claims.user_id or loaded.transport != "bearer":
            raise InvalidToken("the session does not belong to the token", reason="session_ended")
        return RequestSession(
            self.core, client, claims.session_id, loaded, bearer=True, touch=touch
        )

    # -- serve -----------------------------------------------------------------------------

    async def _serve_http(
        self, scope: Scope, receive: Receive, send: Send, current: RequestSession
    ) -> None:
        started = refused = False
        # A 500 is held back until the app is done: when this middleware wraps a Starlette app
        # directly, the app's own error middleware answers 500 for a store failure (in login(),
        # say) before raising it on to us, and that failure deserves the 503 it is.
        held: list[Message] = []

        async def send_with_session(message: Message) -> None:
            nonlocal started, refused
            if refused:
                return
            if message["type"] == "http.response.start":
                try:
                    cookie = await current.save()
                except StoreUnavailable as exc:
                    logger.warning("sessionward: could not save the session: %s", exc)
                    refused = True
                    await self._refuse(scope, send)
                    return
                _add_headers(message, current, cookie, self.accept_ch)
                if cookie is not None and scope.get("scheme") == "http":
                    _warn_secure_over_http(self.config.cookie)
                started = current.answered = True
                if message.get("status") == 500:
                    held.append(message)
                    return
            if held:
                held.append(message)
                return
            await send(message)

        try:
            await self.app(scope, receive, send_with_session)
        except StoreUnavailable as exc:  # login, logout or a device list met a dead store
            if refused or (started and not held):
                raise
            logger.warning("sessionward: the store failed inside the handler: %s", exc)
            await self._refuse(scope, send)
            return
        except BaseException:
            for message in held:  # the app's own 500, as it meant it
                await send(message)
            raise
        for message in held:
            await send(message)

    async def _serve_websocket(
        self, scope: Scope, receive: Receive, send: Send, current: RequestSession
    ) -> None:
        accepted = False

        async def send_with_session(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                cookie = await current.save()
                if cookie is not None:
                    headers = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
                    if current.device_cookie is not None:
                        headers.append((b"set-cookie", current.device_cookie.encode()))
                    message = {**message, "headers": headers}
                accepted = current.answered = True
            elif message["type"] == "websocket.close" and current.session_id is not None:
                # Saved before the client hears the close: whatever it does next sees them.
                await current.save_or_end()
            await send(message)

        try:
            await self.app(scope, receive, send_with_session)
            if current.session_id is not None:  # changes made after the handshake
                await current.save_or_end()
        except StoreUnavailable as exc:
            logger.warning("sessionward: the store failed during a websocket: %s", exc)
            if not accepted:
                await self._refuse(scope, send)


def _add_headers(
    message: Message, current: RequestSession, cookie: str | None, accept_ch: bytes | None
) -> None:
    """`Vary` on the credential when a session was read or the cookie changes; never let a
    shared cache keep a cookie; ask an HTML page's browser for client hints (`accept_ch`).

    Every response comes here, so one pass over the app's headers finds all it needs. ASGI's
    header names are lower-case; a `Vary` spelt otherwise gets a second `Vary` line, which
    HTTP reads as one list (RFC 9110, 5.3).
    """
    app_varies = html = False
    for name, value in message.get("headers", ()):
        if name == b"content-type":
            html = value[:9].lower() == b"text/html"
        elif name == b"vary":
            app_varies = True
    if html and accept_ch is not None:
        ask_for_hints(message, accept_ch)
    read_a_session = current.session.accessed and current.session_id is not None
    if not read_a_session and cookie is None:
        return
    vary = b"Authorization" if current.bearer else b"Cookie"
    if not app_varies:
        message["headers"] = [*message.get("headers", ()), (b"vary", vary)]
    else:  # merge into the app's own Vary; the common case above skips the parsing
        MutableHeaders(scope=message).add_vary_header(vary.decode())
    if cookie is not None:
        headers = MutableHeaders(scope=message)
        headers.append("set-cookie", cookie)
        if current.device_cookie is not None:
            headers.append("set-cookie", current.device_cookie)
        headers["cache-control"] = _private(headers.get("cache-control", ""))


def _private(cache_control: str) -> str:
    """The app's Cache-Control with `private, no-store` and without what lets shared caches
    store a response (`public`, `s-maxage`): its other directives stay."""
    directives = [part.strip() for part in cache_control.split(",") if part.strip()]
    kept = [part for part in directives if _directive(part) not in _SHARED]
    present = {_directive(part) for part in kept}
    kept += [name for name in ("private", "no-store") if name not in present]
    return ", ".join(kept)


def _directive(part: str) -> str:
    return part.partition("=")[0].strip().lower()


_warned_secure_over_http = False


def _warn_secure_over_http(cookie: CookieTransport) -> None:
    """Once per process: a Secure cookie set over plain http is never sent back by Python
    clients (httpx, Starlette's TestClient), so every request of theirs is a new session."""
    global _warned_secure_over_http
    if not cookie.secure or _warned_secure_over_http:
        return
    _warned_secure_over_http = True
    logger.warning(
        "sessionward: a Secure session cookie was set on a plain-http request. Browsers send "
        "it back only over https (and to http://localhost); Python clients never over http, "
        "so each of their requests starts a new session. In tests use "
        "TestClient(app, base_url='https://testserver') or httpx's "
        "base_url='https://testserver'; to serve plain http, pass "
        "cookie=CookieTransport(secure=False)."
    )


async def _unauthorized(scope: Scope, send: Send, reason: str) -> None:
    """401 with the RFC 6750 challenge (http), or close with 1008, policy violation (websocket)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": "invalid bearer token"})
        return
    # Only what a client may act on: a detailed reason ("unknown_key" against "bad_signature")
    # would tell a prober which key ids exist. The exception keeps it for the app's logs.
    told = reason if reason in _TOLD_REASONS else "invalid"
    challenge = f'Bearer error="invalid_token", error_description="{told}"'
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
