"""The end-user device list: see my signed-in sessions, sign one out, sign all others out.

`device_routes()` returns plain Starlette routes to mount anywhere. Their `DELETE`s made with
the session cookie are refused when a browser says another site's page sent them: the same
rule (`origins.cross_origin`) the middleware applies to every unsafe request, checked here
again so these routes stay protected under `SessionMiddleware(csrf=False)`, which an app
with CSRF tokens of its own may choose (its tokens do not cover these routes), and whatever
`csrf_exempt` says (no callback from another site has any business here). As with the
middleware, a request without `Origin` and `Sec-Fetch-Site` is no browser's and passes.
Bearer requests skip the check: a bearer token is no ambient credential that a cross-site
page could borrow.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import NamedTuple
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .auth import (
    get_session,
    logout,
    recent_window,
    recently_authenticated,
    refresh_tokens,
    session_config,
    user_sessions,
)
from .csrf import forbidden
from .exceptions import InvalidGrant
from .origins import browser_origins, cross_origin
from .transports import challenge


class DeviceEndpoints:
    """The three endpoints as plain request handlers, shared by Starlette and FastAPI routing."""

    def __init__(
        self, *, trusted_origins: Sequence[str] = (), recent_auth: float | None = None
    ) -> None:
        self.trusted_origins = browser_origins(trusted_origins)
        self.recent_auth = (
            None if recent_auth is None else recent_window(recent_auth, "recent_auth")
        )

    async def list_sessions(self, request: Request) -> Response:
        me = self._signed_in(request, changes_state=False)
        if isinstance(me, Response):
            return me
        sessions = await user_sessions(request).list_sessions(me.user_id, current=me.public_id)
        return JSONResponse({"sessions": [info.to_dict() for info in sessions]}, headers=_PRIVATE)

    async def revoke_one(self, request: Request) -> Response:
        me = self._signed_in(request, changes_state=True)
        if isinstance(me, Response):
            return me
        public_id = request.path_params["public_id"]
        if public_id == me.public_id:
            await logout(request)
        elif not self._recent(request):
            return _reauthenticate()
        elif not await user_sessions(request).revoke(me.user_id, public_id):
            return JSONResponse({"error": "no such session"}, status_code=404, headers=_PRIVATE)
        return Response(status_code=204, headers=_PRIVATE)

    async def revoke_others(self, request: Request) -> Response:
        me = self._signed_in(request, changes_state=True)
        if isinstance(me, Response):
            return me
        if not self._recent(request):
            return _reauthenticate()
        ended = await user_sessions(request).revoke_all(me.user_id, keep=me.public_id)
        return JSONResponse({"revoked": ended}, headers=_PRIVATE)

    def _recent(self, request: Request) -> bool:
        """Whether the caller may end *other* sessions: with `recent_auth` set, only within that
        many seconds of signing in or `reauthenticate`, so a stolen cookie cannot sign the
        owner out everywhere."""
        recent_auth = self.recent_auth
        return recent_auth is None or recently_authenticated(request, within=recent_auth)

    def _signed_in(self, request: Request, *, changes_state: bool) -> _Me | Response:
        """The signed-in caller, or the 401 or 403 to answer instead."""
        me = get_session(request)
        if me is None or me.user_id is None:
            return _not_signed_in(request)
        if changes_state and me.transport == "cookie":
            # Ours and the middleware's, merged. While the middleware's own check is on it
            # runs first, so an origin trusted here alone gets in only where that one lets it.
            trusted = self.trusted_origins | session_config(request).trusted_origins
            reason = cross_origin(request.scope["headers"], trusted)
            if reason is not None:
                return JSONResponse(forbidden(reason), status_code=403, headers=_PRIVATE)
        return _Me(me.user_id, me.public_id)


class _Me(NamedTuple):
    user_id: str
    public_id: str


def device_routes(
    *, trusted_origins: Sequence[str] = (), recent_auth: float | None = None
) -> list[BaseRoute]:
    """`GET /sessions`, `DELETE /sessions/{id}` and `DELETE /sessions`, for the signed-in user.

    With `recent_auth` (seconds), ending another session needs a sign-in or `reauthenticate`
    that recent; without one the DELETE answers 403 `reauthentication_required`. Listing, and
    signing out the current session, stay open.
    """
    endpoints = DeviceEndpoints(trusted_origins=trusted_origins, recent_auth=recent_auth)
    return [
        Route("/sessions", endpoints.list_sessions, methods=["GET"]),
        Route("/sessions", endpoints.revoke_others, methods=["DELETE"]),
        Route("/sessions/{public_id}", endpoints.revoke_one, methods=["DELETE"]),
    ]


_PRIVATE = {"cache-control": "private, no-store"}


def _not_signed_in(request: Request) -> Response:
    config = session_config(request)
    headers = {**_PRIVATE, "www-authenticate": challenge(config.cookie, config.bearer)}
    return JSONResponse({"error": "not signed in"}, status_code=401, headers=headers)


def _reauthenticate() -> Response:
    return JSONResponse(
        {
            "error": "reauthentication_required",
            "detail": "confirm who you are again (password or second factor) and retry",
        },
        status_code=403,
        headers=_PRIVATE,
    )


# -- the token endpoint -------------------------------------------------------------------

MAX_TOKEN_REQUEST_BYTES = 4096  # a refresh request is a grant type and a 87-character token
_TOKEN_HEADERS = {"cache-control": "no-store", "pragma": "no-cache"}  # RFC 6749 §5.1


class TokenEndpoint:
    """`POST /token/refresh` (RFC 6749 §6): a refresh token in, the next pair out."""

    async def refresh(self, request: Request) -> Response:
        if "refresh_token" in request.query_params:  # it would sit in every access log
            return _oauth_error("invalid_request", "send the refresh token in the body")
        form = await _token_request(request)
        if form is None:
            return _oauth_error("invalid_request", "send a form or JSON body")
        if form.get("grant_type") != "refresh_token":
            return _oauth_error("unsupported_grant_type", "grant_type must be refresh_token")
        token = form.get("refresh_token")
        if not isinstance(token, str) or not token:
            return _oauth_error("invalid_request", "refresh_token is missing")
        try:
            pair = await refresh_tokens(request, token)
        except InvalidGrant:
            return _oauth_error("invalid_grant")
        return JSONResponse(pair.to_dict(), headers=_TOKEN_HEADERS)


def token_routes() -> list[BaseRoute]:
    """`POST /token/refresh`: trade a refresh token from `login_bearer` for the next pair.

    The body is a form (`grant_type=refresh_token&refresh_token=...`, as RFC 6749 §6 has it)
    or the same as JSON. A bad token of any kind gets `400 {"error": "invalid_grant"}`.
    """
    return [Route("/token/refresh", TokenEndpoint().refresh, methods=["POST"])]


async def _token_request(request: Request) -> dict[str, object] | None:
    """The request's parameters, from a urlencoded form or a JSON object; `None` if neither."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_TOKEN_REQUEST_BYTES:
            return None
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    try:
        if media_type == "application/json":
            parsed = json.loads(body)
            return parsed if isinstance(parsed, dict) else None
        if media_type == "application/x-www-form-urlencoded":
            text = body.decode("utf-8")
            return {
                name: values[0] for name, values in parse_qs(text, strict_parsing=False).items()
            }
    except (UnicodeDecodeError, ValueError, RecursionError):  # `[[[[...` nests past the stack
        return None
    return None


def _oauth_error(code: str, description: str | None = None) -> Response:
    body = (
        {"error": code}
        if description is None
        else {"error": code, "error_description": description}
    )
    return JSONResponse(body, status_code=400, headers=_TOKEN_HEADERS)
