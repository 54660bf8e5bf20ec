"""sessionward: signed, Redis-backed, device-aware sessions for Starlette and FastAPI."""

from importlib.metadata import PackageNotFoundError, version

from .addresses import TrustedProxies
from .auth import (
    AccessToken,
    get_session,
    login,
    login_bearer,
    logout,
    reauthenticate,
    recently_authenticated,
    refresh_token,
    refresh_tokens,
    regenerate,
    user_sessions,
)
from .bearer import BearerClaims, BearerSigner, JWTKey
from .config import SessionConfig
from .device_ids import DeviceCookie, new_device_id
from .devices import Device, parse_user_agent
from .events import Events, SessionEvent
from .exceptions import (
    ConfigurationError,
    ExpiredToken,
    InvalidGrant,
    InvalidToken,
    SessionError,
    SessionwardError,
    StoreUnavailable,
    TokenNotYetValid,
)
from .middleware import SessionMiddleware
from .record import SessionRecord
from .refresh import TokenPair
from .routes import device_routes, token_routes
from .session import Session
from .stores import DeviceEntry, MemoryStore, RedisStore, Store
from .token_pairs import TokenPairs
from .tokens import CookieSigner
from .transports import BearerTransport, CookieTransport
from .users import KnownDevice, SessionInfo, UserSessions

try:
    __version__ = version("sessionward")
except PackageNotFoundError:  # pragma: no cover - run from a source tree never installed
    __version__ = "0+unknown"

__all__ = [
    "AccessToken",
    "BearerClaims",
    "BearerSigner",
    "BearerTransport",
    "ConfigurationError",
    "CookieSigner",
    "CookieTransport",
    "Device",
    "DeviceCookie",
    "DeviceEntry",
    "Events",
    "ExpiredToken",
    "InvalidGrant",
    "InvalidToken",
    "JWTKey",
    "KnownDevice",
    "MemoryStore",
    "RedisStore",
    "Session",
    "SessionConfig",
    "SessionError",
    "SessionEvent",
    "SessionInfo",
    "SessionMiddleware",
    "SessionRecord",
    "SessionwardError",
    "Store",
    "StoreUnavailable",
    "TokenNotYetValid",
    "TokenPair",
    "TokenPairs",
    "TrustedProxies",
    "UserSessions",
    "device_routes",
    "get_session",
    "login",
    "login_bearer",
    "logout",
    "new_device_id",
    "parse_user_agent",
    "reauthenticate",
    "recently_authenticated",
    "refresh_token",
    "refresh_tokens",
    "regenerate",
    "token_routes",
    "user_sessions",
]
