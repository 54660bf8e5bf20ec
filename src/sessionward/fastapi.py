"""FastAPI dependencies for the signed-in session, and the device list as an `APIRouter`.

    from sessionward.fastapi import CurrentSession, RecentAuth

    @app.get("/me")
    async def me(session: CurrentSession) -> dict[str, str | None]:
        return {"user": session.user_id}

The dependencies read what `SessionMiddleware` loaded; they never look at a token themselves.
The security schemes they carry (HTTP bearer, the session cookie) only document the two ways
in for OpenAPI, with `auto_error=False`: a bearer-only client is never refused for lacking a
cookie, nor a browser for lacking a bearer token. Failures raise `HTTPException`, so bodies
are FastAPI's `{"detail": ...}`; the device router keeps `device_routes()`'s bodies.

Needs the `fastapi` extra. Annotations here are evaluated when each function is defined (no
`from __future__ import annotations`): FastAPI reads them, and they name per-instance schemes.
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, cast

try:
    from fastapi import APIRouter, Depends, HTTPException, Request, Response, Security
    from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
    from pydantic import BaseModel
except ModuleNotFoundError as error:  # pragma: no cover - exercised in a subprocess
    if error.name not in ("fastapi", "pydantic"):
        raise
    raise ImportError(
        'sessionward.fastapi needs FastAPI: pip install "sessionward[fastapi]"'
    ) from error

from .auth import get_session, recent_window, recently_authenticated, session_config
from .routes import DeviceEndpoints, TokenEndpoint
from .transports import challenge, default_cookie_name
from .users import SessionInfo

DEFAULT_COOKIE_NAME = default_cookie_name(secure=True, path="/", domain=None)
_PRIVATE = {"Cache-Control": "private, no-store"}


class SessionAuth:
    """The session dependencies, and the security schemes OpenAPI lists them under.

    A class because the cookie's name is a setting of the middleware, which FastAPI has not
    built when routes are declared (and an app may mount several), while a scheme's name is
    fixed in the schema with the route. The module's `CurrentSession` and friends use
    `__Host-session`, the default name; an app that renames its cookie, or takes no bearer
    tokens, declares its own and uses them alike:

        auth = SessionAuth(cookie_name="sid", bearer=False)
        CurrentSession = Annotated[SessionInfo, auth.current_session]
        app.include_router(device_router(auth=auth))

    Declare the alias at module level, as here: under `from __future__ import annotations`
    FastAPI looks annotation names up in the module's globals. The name only documents: what
    a dependency decides comes from what the middleware loaded, and its 401 challenge names
    the cookie the middleware really reads.
    """

    def __init__(self, *, cookie_name: str = DEFAULT_COOKIE_NAME, bearer: bool = True) -> None:
        self.cookie_scheme = APIKeyCookie(
            name=cookie_name,
            scheme_name="cookieAuth",
            description="The session cookie a browser gets at sign-in. Swagger UI's "
            "Authorize cannot set a cookie (the browser sends the one sign-in set): "
            "use bearerAuth there.",
            auto_error=False,
        )
        self.bearer_scheme = (
            HTTPBearer(
                bearerFormat="JWT",
                scheme_name="bearerAuth",
                description="The access token `login(..., transport='bearer')` returns.",
                auto_error=False,
            )
            if bearer
            else None
        )
        documented = _documented(self.cookie_scheme, self.bearer_scheme)
        self.security: list[Any] = [Depends(documented)]
        """For `dependencies=[...]` of a route or router that checks sign-in itself."""

        async def current_session(
            request: Request, _: Annotated[None, Depends(documented)]
        ) -> SessionInfo:
            return _signed_in(request)

        async def optional_session(
            request: Request, _: Annotated[None, Depends(documented)]
        ) -> SessionInfo | None:
            me = get_session(request)
            return me if me is not None and me.user_id is not None else None

        self.current_session: Any = Depends(current_session)
        self.optional_session: Any = Depends(optional_session)

        async def current_user_id(me: Annotated[SessionInfo, self.current_session]) -> str:
            return cast(str, me.user_id)  # current_session lets only signed-in sessions by

        self.current_user_id: Any = Depends(current_user_id)

    def recent_auth(self, seconds: float) -> Any:
        """A dependency: the session, if its user signed in or reauthenticated at most
        `seconds` ago; else 403 `reauthentication_required` (401 when not signed in)."""
        within = recent_window(seconds, "RecentAuth(seconds)")

        async def recently_signed_in(
            request: Request, me: Annotated[SessionInfo, self.current_session]
        ) -> SessionInfo:
            if not recently_authenticated(request, within=within):
                raise HTTPException(403, "reauthentication_required", headers=_PRIVATE)
            return me

        return Depends(recently_signed_in)


def _documented(cookie: APIKeyCookie, bearer: HTTPBearer | None) -> Callable[..., Any]:
    """A dependency that puts the schemes in OpenAPI (as alternatives) and checks nothing."""
    if bearer is None:

        async def cookie_only(_cookie: Annotated[str | None, Security(cookie)]) -> None:
            return None

        return cookie_only

    async def cookie_or_bearer(
        _cookie: Annotated[str | None, Security(cookie)],
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> None:
        return None

    return cookie_or_bearer


def _signed_in(request: Request) -> SessionInfo:
    me = get_session(request)
    if me is None or me.user_id is None:
        config = session_config(request)
        headers = {**_PRIVATE, "WWW-Authenticate": challenge(config.cookie, config.bearer)}
        raise HTTPException(401, "not_signed_in", headers=headers)
    return me


_DEFAULT = SessionAuth()

CurrentSession = Annotated[SessionInfo, _DEFAULT.current_session]
"""The signed-in session; 401 `not_signed_in` with `WWW-Authenticate` otherwise."""

OptionalSession = Annotated[SessionInfo | None, _DEFAULT.optional_session]
"""The signed-in session, or `None` for a visitor who is not signed in."""

CurrentUserId = Annotated[str, _DEFAULT.current_user_id]
"""The signed-in user's id; 401 `not_signed_in` otherwise."""


def RecentAuth(seconds: float) -> Any:  # capitalised like FastAPI's Depends()
    """The session, if its user signed in (`login`) or proved it again (`reauthenticate`) at
    most `seconds` ago: 403 `reauthentication_required` if longer, 401 if not signed in.

    Guard what a stolen cookie must not do. Either `dependencies=[RecentAuth(300)]`, or
    `me: Annotated[SessionInfo, RecentAuth(300)]` for the session itself.
    """
    return _DEFAULT.recent_auth(seconds)


# -- the device list --------------------------------------------------------------------------


class DeviceModel(BaseModel):
    browser: str | None = None
    browser_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    device_family: str | None = None
    brand: str | None = None
    model: str | None = None
    kind: str
    label: str
    platform_version: str | None = None  # from User-Agent Client Hints, where sent
    form_factor: str | None = None


class SessionModel(BaseModel):
    id: str
    current: bool
    label: str
    device: DeviceModel | None
    ip: str | None
    first_ip: str | None
    transport: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    authenticated_at: datetime | None = None
    location: str | None = None
    new_device: bool = False


class SessionList(BaseModel):
    sessions: list[SessionModel]


class Revoked(BaseModel):
    revoked: int


class ErrorModel(BaseModel):
    error: str
    detail: str | None = None


class RefusedModel(BaseModel):
    error: str
    detail: str


_NOT_SIGNED_IN: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorModel, "description": "Not signed in"}
}
_REFUSED: dict[int | str, dict[str, Any]] = {
    403: {
        "model": RefusedModel,
        "description": "Cross-origin request refused, or (with recent_auth) "
        "reauthentication_required: sign in again before ending other sessions",
    }
}


def device_router(
    *,
    trusted_origins: Sequence[str] = (),
    recent_auth: float | None = None,
    auth: SessionAuth = _DEFAULT,
) -> APIRouter:
    """`GET /sessions`, `DELETE /sessions/{public_id}`, `DELETE /sessions`, documented.

    Behaves exactly as `device_routes()` (bodies included); `recent_auth` as there. `auth`
    names the security schemes /docs offers ("Authorize" drives the bearer one).
    """
    endpoints = DeviceEndpoints(trusted_origins=trusted_origins, recent_auth=recent_auth)
    router = APIRouter(tags=["sessions"], dependencies=auth.security)

    @router.get("/sessions", response_model=SessionList, responses={**_NOT_SIGNED_IN})
    async def list_sessions(request: Request) -> Response:
        """The signed-in user's sessions, most recently active first."""
        return await endpoints.list_sessions(request)

    @router.delete(
        "/sessions/{public_id}",
        status_code=204,
        response_class=Response,
        responses={
            **_NOT_SIGNED_IN,
            **_REFUSED,
            404: {"model": ErrorModel, "description": "No such session of yours"},
        },
    )
    async def revoke_session(public_id: str, request: Request) -> Response:
        """Sign out one of your sessions (your current one included)."""
        return await endpoints.revoke_one(request)

    @router.delete("/sessions", response_model=Revoked, responses={**_NOT_SIGNED_IN, **_REFUSED})
    async def revoke_other_sessions(request: Request) -> Response:
        """Sign out every session of yours except this one."""
        return await endpoints.revoke_others(request)

    return router


class TokenRequest(BaseModel):
    """RFC 6749 §6: a refresh token to trade for the next pair (form or JSON)."""

    grant_type: Literal["refresh_token"]
    refresh_token: str


class TokenResponse(BaseModel):
    """RFC 6749 §5.1: what `TokenPair.to_dict()` gives."""

    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str


class OAuthError(BaseModel):
    error: str
    error_description: str | None = None


_TOKEN_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        media_type: {"schema": TokenRequest.model_json_schema()}
        for media_type in ("application/x-www-form-urlencoded", "application/json")
    },
}


def token_router() -> APIRouter:
    """`POST /token/refresh`, as `token_routes()` (RFC 6749 bodies), documented.

    The request needs no access token (send none: an expired one is refused first); the
    refresh token goes in the body only.
    """
    endpoint = TokenEndpoint()
    router = APIRouter(tags=["tokens"])

    @router.post(
        "/token/refresh",
        response_model=TokenResponse,
        responses={
            400: {
                "model": OAuthError,
                "description": "invalid_grant (a bad, used or revoked refresh token), "
                "invalid_request or unsupported_grant_type",
            }
        },
        openapi_extra={"requestBody": _TOKEN_BODY},
    )
    async def refresh_tokens(request: Request) -> Response:
        """Trade a refresh token for the next pair; the used one stops working."""
        return await endpoint.refresh(request)

    return router


__all__ = [
    "DEFAULT_COOKIE_NAME",
    "CurrentSession",
    "CurrentUserId",
    "DeviceModel",
    "ErrorModel",
    "OAuthError",
    "OptionalSession",
    "RecentAuth",
    "RefusedModel",
    "Revoked",
    "SessionAuth",
    "SessionList",
    "SessionModel",
    "TokenRequest",
    "TokenResponse",
    "device_router",
    "token_router",
]
