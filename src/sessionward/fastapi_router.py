"""Deprecated since 0.2: the FastAPI device router moved to `sessionward.fastapi`.

Importing this module warns; its names are those of `sessionward.fastapi`, unchanged.
"""

from __future__ import annotations

import warnings

from .fastapi import (
    DeviceModel,
    ErrorModel,
    RefusedModel,
    Revoked,
    SessionList,
    SessionModel,
    device_router,
)

__all__ = [
    "DeviceModel",
    "ErrorModel",
    "RefusedModel",
    "Revoked",
    "SessionList",
    "SessionModel",
    "device_router",
]


warnings.warn(
    "sessionward.fastapi_router is deprecated: import device_router from sessionward.fastapi",
    DeprecationWarning,
    stacklevel=2,  # the importer's line: warnings skips importlib's own frames
)
