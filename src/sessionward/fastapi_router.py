"""The device-list endpoints as a FastAPI `APIRouter`, so they appear in the OpenAPI schema.

Needs the `fastapi` extra. Behaviour is exactly `device_routes()`'s; the models here only
describe the responses.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from .routes import DeviceEndpoints


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


_NOT_SIGNED_IN: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorModel, "description": "Not signed in"}
}


class RefusedModel(BaseModel):
    error: str
    detail: str


_REFUSED: dict[int | str, dict[str, Any]] = {
    403: {
        "model": RefusedModel,
        "description": "Cross-origin request refused, or (with recent_auth) "
        "reauthentication_required: sign in again before ending other sessions",
    }
}


def device_router(
    *, trusted_origins: Sequence[str] = (), recent_auth: float | None = None
) -> APIRouter:
    """`GET /sessions`, `DELETE /sessions/{public_id}`, `DELETE /sessions`, documented.

    `recent_auth` as in `device_routes`.
    """
    endpoints = DeviceEndpoints(trusted_origins=trusted_origins, recent_auth=recent_auth)
    router = APIRouter(tags=["sessions"])

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
