"""Request helpers: sign a user in and out, and read the current session's record.

`login` rotates the session id (so an id fixed by an attacker before sign-in is worthless),
keeps the data, records the device and indexes the session under the user. `logout` ends the
session at once; the response tells the browser to drop the cookie.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from typing import Literal, overload

from starlette.requests import HTTPConnection

from .config import MAX_LIFETIME, SessionConfig
from .core import SignInChoices
from .exceptions import StoreUnavailable
from .refresh import TokenPair
from .request_session import RequestSession
from .token_pairs import TokenPairs
from .users import SessionInfo, UserSessions


def _current(connection: HTTPConnection) -> RequestSession:
    current = connection.scope.get("sessionward")
    if not isinstance(current, RequestSession):
        raise RuntimeError(
            "sessionward's SessionMiddleware is not installed around this route: add it with "
            "app.add_middleware(SessionMiddleware, ...)"
        )
    return current


def _read(connection: HTTPConnection) -> RequestSession:
    """The request's session, counted as read: a response built from it varies on the
    credential, as after a read of `request.session`, so no shared cache hands one user's
    page to another."""
    current = _current(connection)
    current.session.mark_accessed()
    return current


@overload
async def login(
    connection: HTTPConnection,
    user_id: str,
    *,
    transport: Literal["cookie"] = "cookie",
    keep: bool | Collection[str] = True,
    remember: bool = True,
    idle_ttl: int | None = None,
    absolute_ttl: int | None = None,
    device_id: None = None,
) -> None: ...


@overload
async def login(
    connection: HTTPConnection,
    user_id: str,
    *,
    transport: Literal["bearer"],
    keep: bool | Collection[str] = True,
    remember: bool = True,
    idle_ttl: int | None = None,
    absolute_ttl: int | None = None,
    device_id: str | None = None,
) -> AccessToken: ...


async def login(
    connection: HTTPConnection,
    user_id: str,
    *,
    transport: Literal["cookie", "bearer"] = "cookie",
    keep: bool | Collection[str] = True,
    remember: bool = True,
    idle_ttl: int | None = None,
    absolute_ttl: int | None = None,
    device_id: str | None = None,
) -> AccessToken | None:
    """Sign `user_id` in.

    With the cookie (the default): bind this browser's session to the user under a new id;
    the old id stops working at once. `keep` says what of the data before sign-in stays: all
    of it (`True`, so a cart survives), nothing (`False`), or the keys named. Whatever an
    attacker could plant in a browser before the victim signs in (`{"next": ...}`) is kept
    with `True`: keep less when the session holds anything that grants or redirects. With
    `transport="bearer"`: start a separate session for an API or mobile client and return its
    JWT for the client to send as `Authorization: Bearer <token>` (an `AccessToken`: a `str`
    that also carries the client's `device_token`).

    `remember=False` (an unticked "keep me signed in") makes the cookie last only until the
    browser closes. `idle_ttl` and `absolute_ttl` (seconds) give this one session shorter
    lifetimes than the middleware's, which cap them.

    Each sign-in is checked against the devices the account has used: the `session.login`
    event and `SessionInfo.new_device` say when it is the first from this one. A browser is
    recognised by a long-lived device cookie set here; a bearer client by the `device_id` the
    app passes (an install id, say; stored only as an HMAC), or else by the device token it
    got at its last sign-in and sends back in the `Device-Token` header. Never by its
    user-agent alone.
    """
    _check_user_id(user_id)
    choices = _choices(remember, idle_ttl, absolute_ttl)
    if transport == "bearer":
        return await _login_bearer(connection, user_id, choices, _device_id(device_id))
    if device_id is not None:
        raise ValueError(
            "device_id is for bearer clients: a browser is recognised by its device cookie"
        )
    await _login_cookie(connection, user_id, keep, choices)
    return None


MAX_DEVICE_ID_LENGTH = 512


def _device_id(device_id: object) -> str | None:
    if device_id is None:
        return None
    if not isinstance(device_id, str) or not device_id or len(device_id) > MAX_DEVICE_ID_LENGTH:
        raise ValueError(
            f"device_id must be a non-empty str of at most {MAX_DEVICE_ID_LENGTH} characters, "
            f"not {device_id!r:.80}"
        )
    return device_id


def _choices(remember: bool, idle_ttl: int | None, absolute_ttl: int | None) -> SignInChoices:
    if not isinstance(remember, bool):  # "false" from a form would be true
        raise ValueError(f"login(remember=...) must be True or False, not {remember!r}")
    for name, seconds in (("idle_ttl", idle_ttl), ("absolute_ttl", absolute_ttl)):
        if seconds is None:
            continue
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not seconds > 0:
            raise ValueError(
                f"login({name}=...) must be a positive int of seconds, not {seconds!r}"
            )
    return SignInChoices(
        remember=remember,
        idle_ttl_ms=None if idle_ttl is None else min(idle_ttl, MAX_LIFETIME) * 1000,
        absolute_ttl_ms=None if absolute_ttl is None else min(absolute_ttl, MAX_LIFETIME) * 1000,
    )


async def regenerate(connection: HTTPConnection) -> None:
    """Give this browser's session a new id now, keeping its data; the old id dies at once.

    For apps that sign users in by writing the session themselves
    (`request.session["user"] = ...`, as with Starlette's own middleware): call it there, so
    that a session id an attacker planted before sign-in is worthless after. `login()` does
    this itself.
    """
    current = _current(connection)
    if current.bearer:
        raise ValueError("a bearer session's id is in its token: sign the client in again")
    if current.degraded:
        raise StoreUnavailable("cannot regenerate while the session store is unavailable")
    await current.regenerate()


async def reauthenticate(connection: HTTPConnection) -> str | TokenPair | None:
    """Record that the signed-in user just proved who they are again (password, second factor).

    Call it after checking that proof: it opens what `recently_authenticated` guards (signing
    other devices out, changing a password) for a while. The session moves to a new id, as
    at any change of privilege; its data, lifetimes and "remember me" choice stay. It is not
    a sign-in: listeners get `session.reauthenticated`, not `session.login`. A bearer session
    gets a new access token, returned here, since the old one names the old id; one from a
    token pair (`login_bearer`) gets a new `TokenPair`, its refresh token starting a new
    family. A cookie session returns `None`, and its response carries the new cookie. So
    does a session signed out while this ran: it stays signed out.
    """
    current = _current(connection)
    if current.degraded:
        raise StoreUnavailable("cannot reauthenticate while the session store is unavailable")
    record = current.record
    if current.key is None or record is None or record.user_id is None:
        raise ValueError("reauthenticate() needs a signed-in session: call login() instead")
    if record.refresh is not None:  # a token pair's: a new family for the new id
        pairs = TokenPairs(current.core)
        secret, family = pairs.new_family()
        await current.regenerate(reauthenticated=True, refresh=family)
        if current.session_id is None:
            return None
        return pairs.pair(current.session_id, record.user_id, secret)
    await current.regenerate(reauthenticated=True)
    if not current.bearer or current.session_id is None:
        return None
    config = current.core.config
    return config.bearer_transport().signer.issue(
        current.session_id, record.user_id, now=config.clock()
    )


async def login_bearer(
    connection: HTTPConnection,
    user_id: str,
    *,
    idle_ttl: int | None = None,
    absolute_ttl: int | None = None,
    device_id: str | None = None,
) -> TokenPair:
    """Sign an API or mobile client in: a new bearer session and its first `TokenPair`.

    The access token is short-lived (`BearerTransport(access_token_lifetime=...)`, 15
    minutes by default); the refresh token, sent only to the token endpoint, gets the next
    pair (`refresh_tokens`, `token_routes()`). `pair.to_dict()` is the RFC 6749 token
    response. The other arguments are `login`'s.
    """
    _check_user_id(user_id)
    choices = _choices(True, idle_ttl, absolute_ttl)
    current = _current(connection)
    return await TokenPairs(current.core).issue(
        user_id, client=current.client, choices=choices, device_id=_device_id(device_id)
    )


async def refresh_tokens(connection: HTTPConnection, refresh_token: str) -> TokenPair:
    """Trade a refresh token for the next pair; `InvalidGrant` for one that gets nothing.

    For an app's own token endpoint; `token_routes()` is a ready one. The refresh token comes
    from the request body (never a query string), and the request itself needs no access
    token: send none, since an expired one is refused before the endpoint runs.
    """
    current = _current(connection)
    return await TokenPairs(current.core).refresh(refresh_token, client=current.client)


def recently_authenticated(connection: HTTPConnection, *, within: float) -> bool:
    """Whether the signed-in user proved who they are (`login`, `reauthenticate`) at most
    `within` seconds ago; `False` for a visitor who is not signed in.

    Guard what a stolen cookie must not do with it: sign the owner out everywhere, change
    the password or e-mail. Answer "please enter your password again" when it is `False`.
    """
    if isinstance(within, bool) or not isinstance(within, (int, float)) or not within >= 0:
        raise ValueError(f"within must be a number of seconds, not {within!r}")
    current = _read(connection)
    record = current.record
    if record is None or record.user_id is None:
        return False
    config = current.core.config
    return config.now_ms() - record.signed_in_at_ms <= within * 1000


def recent_window(seconds: object, what: str) -> float:
    """A "signed in this recently" window checked where it is configured (`device_routes`,
    `RecentAuth`), not at the first request."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise ValueError(f"{what} must be a positive number of seconds, not {seconds!r}")
    return float(seconds)


MAX_USER_ID_LENGTH = 512


def _check_user_id(user_id: object) -> None:
    """Both stores must take the id as it is: text that encodes to UTF-8, of sane length."""
    if not isinstance(user_id, str) or not user_id or len(user_id) > MAX_USER_ID_LENGTH:
        raise ValueError(
            f"user_id must be a non-empty str of at most {MAX_USER_ID_LENGTH} characters, "
            f"not {user_id!r:.80}"
        )
    try:
        user_id.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"user_id {user_id!r:.80} is not valid Unicode text") from None


async def _login_cookie(
    connection: HTTPConnection,
    user_id: str,
    keep: bool | Collection[str],
    choices: SignInChoices,
) -> None:
    current = _current(connection)
    if current.bearer:
        raise ValueError(
            "this request came with a bearer token: sign API clients in with "
            "login(request, user_id, transport='bearer')"
        )
    if current.degraded:
        raise StoreUnavailable("cannot sign in while the session store is unavailable")
    if current.cross_site:
        raise PermissionError("a websocket opened by another site's page cannot sign in")
    await current.sign_in(user_id, keep=keep, choices=choices)


async def _login_bearer(
    connection: HTTPConnection, user_id: str, choices: SignInChoices, device_id: str | None
) -> AccessToken:
    current = _current(connection)
    core = current.core
    bearer = core.config.bearer_transport()
    device, device_token = core.bearer_device(current.client, device_id)
    signed_in = await core.sign_in(
        user_id,
        current.client,
        transport="bearer",
        values={},
        choices=choices,
        device_id=device,
    )
    now = signed_in.record.created_at_ms / 1000
    return AccessToken(bearer.signer.issue(signed_in.session_id, user_id, now=now), device_token)


class AccessToken(str):
    """The JWT `login(transport="bearer")` returns: a `str`, as before, that also carries the
    device token (`device_token`) for the client to send back in the `Device-Token` header
    at its next sign-in; `None` when the app passed a `device_id` of its own."""

    device_token: str | None

    def __new__(cls, token: str, device_token: str | None) -> AccessToken:
        access = super().__new__(cls, token)
        access.device_token = device_token
        return access


async def refresh_token(connection: HTTPConnection) -> str:
    """A new JWT (new `jti`, fresh `exp`) for the bearer session this request came with.

    Deprecated: sign clients in with `login_bearer` and refresh with `refresh_tokens`, whose
    access tokens are short-lived and whose refresh tokens rotate and catch theft.
    """
    warnings.warn(
        "refresh_token(request) is deprecated: use login_bearer() and refresh_tokens()",
        DeprecationWarning,
        stacklevel=2,
    )
    current = _current(connection)
    config = current.core.config
    bearer = config.bearer_transport()
    if not current.bearer or current.session_id is None or current.record is None:
        raise ValueError("refresh_token() needs a request authenticated by a bearer token")
    if current.record.refresh is not None:  # its access tokens must stay short-lived
        raise ValueError(
            "this session came from login_bearer(): refresh it with its refresh token "
            "(refresh_tokens(), POST /token/refresh), not refresh_token()"
        )
    user_id = current.record.user_id or ""
    return bearer.signer.issue(current.session_id, user_id, now=config.clock())


async def logout(connection: HTTPConnection) -> None:
    """End the session now and empty `request.session`; the response expires the cookie."""
    current = _current(connection)
    await current.end("session.logout")
    current.session.clear()


def get_session(connection: HTTPConnection) -> SessionInfo | None:
    """The current session's record, or `None` for a visitor with no stored session."""
    current = _read(connection)
    if current.key is None or current.record is None:
        return None
    return SessionInfo.from_record(current.key, current.record, current=True)


def user_sessions(connection: HTTPConnection) -> UserSessions:
    """The middleware's `UserSessions`: list and revoke any user's sessions from a handler."""
    return _current(connection).core.users


def session_config(connection: HTTPConnection) -> SessionConfig:
    """The settings of the middleware this request went through."""
    return _current(connection).core.config
