"""sessionward: signed, Redis-backed, device-aware sessions for Starlette and FastAPI.

`import sessionward` loads none of the package's modules: each public name is imported from
its module when first used (PEP 562), so an app pays for what it uses. A cookie-only app never
imports PyJWT and cryptography (the bearer tokens), one on a `MemoryStore` never imports
redis-py, and none imports the device or token routes it does not mount. `from sessionward
import X` and `sessionward.X` work for every name in `__all__`, as they always did; so does
`sessionward.devices` and the like for the modules the package used to import eagerly.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and editors see; at run time, `__getattr__` below
    from .addresses import TrustedProxies
    from .admin import AdminSessions, SessionPage
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

    __version__: str

__all__ = [
    "AccessToken",
    "AdminSessions",
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
    "SessionPage",
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

# The module each public name is imported from: the imports above, as data
# (tests/test_imports.py checks that the two agree, and that every name resolves).
_HOMES = {
    "TrustedProxies": "addresses",
    **dict.fromkeys(["AdminSessions", "SessionPage"], "admin"),
    **dict.fromkeys(
        [
            "AccessToken",
            "get_session",
            "login",
            "login_bearer",
            "logout",
            "reauthenticate",
            "recently_authenticated",
            "refresh_token",
            "refresh_tokens",
            "regenerate",
            "user_sessions",
        ],
        "auth",
    ),
    **dict.fromkeys(["BearerClaims", "BearerSigner", "JWTKey"], "bearer"),
    "SessionConfig": "config",
    **dict.fromkeys(["DeviceCookie", "new_device_id"], "device_ids"),
    **dict.fromkeys(["Device", "parse_user_agent"], "devices"),
    **dict.fromkeys(["Events", "SessionEvent"], "events"),
    **dict.fromkeys(
        [
            "ConfigurationError",
            "ExpiredToken",
            "InvalidGrant",
            "InvalidToken",
            "SessionError",
            "SessionwardError",
            "StoreUnavailable",
            "TokenNotYetValid",
        ],
        "exceptions",
    ),
    "SessionMiddleware": "middleware",
    "SessionRecord": "record",
    "TokenPair": "refresh",
    **dict.fromkeys(["device_routes", "token_routes"], "routes"),
    "Session": "session",
    **dict.fromkeys(["DeviceEntry", "MemoryStore", "RedisStore", "Store"], "stores"),
    "TokenPairs": "token_pairs",
    "CookieSigner": "tokens",
    **dict.fromkeys(["BearerTransport", "CookieTransport"], "transports"),
    **dict.fromkeys(["KnownDevice", "SessionInfo", "UserSessions"], "users"),
}
# Modules that `import sessionward` used to import, and so were attributes of the package
# (`sessionward.devices.USER_AGENT_BACKEND`); still reachable that way, imported when first used.
_SUBMODULES = frozenset(
    {
        "addresses",
        "auth",
        "bearer",
        "client",
        "config",
        "core",
        "csrf",
        "device_ids",
        "devices",
        "events",
        "exceptions",
        "locations",
        "middleware",
        "origins",
        "record",
        "refresh",
        "request_session",
        "routes",
        "session",
        "stores",
        "telemetry",
        "token_pairs",
        "tokens",
        "transports",
        "ua_rules",
        "users",
    }
)


def __getattr__(name: str) -> Any:
    """A public name or a submodule, imported on first use and kept (PEP 562)."""
    home = _HOMES.get(name)
    value: Any
    if home is not None:
        value = getattr(_submodule(home), name)
    elif name in _SUBMODULES:
        value = _submodule(name)
    elif name == "__version__":
        value = _version()
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, "__version__"})


def _submodule(name: str) -> Any:
    # `__import__`, not `importlib.import_module`: only the former goes through the import
    # statement's machinery, which `python -X importtime` reports on.
    qualified = f"{__name__}.{name}"
    __import__(qualified)
    return sys.modules[qualified]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sessionward")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree never installed
        return "0+unknown"
