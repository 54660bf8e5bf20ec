"""sessionward: signed, Redis-backed, device-aware sessions for Starlette and FastAPI."""

from .exceptions import (
    ConfigurationError,
    InvalidToken,
    SessionError,
    SessionwardError,
    StoreUnavailable,
)
from .middleware import SessionMiddleware
from .record import SessionRecord
from .session import Session
from .stores import MemoryStore, RedisStore, Store
from .tokens import CookieSigner
from .transports import CookieTransport

__all__ = [
    "ConfigurationError",
    "CookieSigner",
    "CookieTransport",
    "InvalidToken",
    "MemoryStore",
    "RedisStore",
    "Session",
    "SessionError",
    "SessionMiddleware",
    "SessionRecord",
    "SessionwardError",
    "Store",
    "StoreUnavailable",
]
