"""`SessionConfig`: what every part of a request needs from configuration, checked once.

The middleware builds one from its arguments; `RequestSession`, the request helpers and
`UserSessions` all read this one object, so a lifetime or a clock is never configured twice.
Build one yourself to work on sessions outside requests (an admin task that signs a user out
everywhere): `UserSessions(SessionConfig(store=..., idle_ttl=..., absolute_ttl=...))`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Literal

from starlette.types import Scope

from .addresses import TrustedProxies
from .csrf import ExemptPaths
from .device_ids import DeviceCookie, DeviceTokens
from .events import Events
from .exceptions import ConfigurationError
from .locations import Locate
from .origins import browser_origins
from .record import DEFAULT_IDLE_TTL_MS
from .refresh import RefreshKeys
from .stores import MemoryStore, Store
from .stores.instrumented import InstrumentedStore
from .telemetry import Telemetry, telemetry_for
from .tokens import CookieSigner
from .transports import BearerTransport, CookieTransport

DAY = 24 * 3600
DEFAULT_IDLE_TTL = DEFAULT_IDLE_TTL_MS // 1000  # 14 days
DEFAULT_ABSOLUTE_TTL = 30 * DAY
DEFAULT_MAX_SESSION_BYTES = 64 * 1024
# Stores keep times as whole milliseconds of at most 15 digits (`record.stored_int`).
MAX_LIFETIME = 100 * 365 * DAY
StoreErrorPolicy = Literal["503", "anonymous"]


class SessionConfig:
    """The store, signer, transports, lifetimes, limits and clock of one set of sessions.

    Lifetimes are given in seconds and kept in milliseconds, the unit every record uses.
    `secret_keys` may be left out only where no cookie is signed (work outside requests).

    `telemetry` is on by default, as OpenTelemetry asks of libraries: with `opentelemetry-api`
    installed, metrics and spans go to the global providers, which record nothing until the
    app configures an SDK. `False` turns it off where the API is installed for another
    library and these metrics are not wanted; a `sessionward.telemetry.Telemetry` records to
    providers of the app's choosing (see `sessionward.telemetry`).
    """

    def __init__(
        self,
        *,
        secret_keys: str | bytes | Sequence[str | bytes] | None = None,
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
        clock: Callable[[], float] = time.time,
    ) -> None:
        if count_as_activity is not None and not callable(count_as_activity):
            raise ConfigurationError(
                "count_as_activity must be a function (scope) -> bool, such as "
                f"lambda scope: scope['path'] != '/api/poll', not {count_as_activity!r}"
            )
        if locate is not None and not callable(locate):
            raise ConfigurationError(
                f"locate must be a function (ip, headers) -> str | None, not {locate!r}"
            )
        _check_positive(idle_ttl=idle_ttl, absolute_ttl=absolute_ttl)
        _check_positive(max_session_bytes=max_session_bytes)
        for name, seconds in (("idle_ttl", idle_ttl), ("absolute_ttl", absolute_ttl)):
            if seconds > MAX_LIFETIME:
                raise ConfigurationError(
                    f"{name}={seconds} is more than 100 years; give a lifetime in seconds"
                )
        if max_sessions_per_user is not None:
            _check_positive(max_sessions_per_user=max_sessions_per_user)
        if on_store_error not in ("503", "anonymous"):
            raise ConfigurationError(
                f"on_store_error must be '503' or 'anonymous', not {on_store_error!r}"
            )
        self._secret_keys = secret_keys
        self._signer = CookieSigner(secret_keys) if secret_keys is not None else None
        self._device_cookie: DeviceCookie | None = None
        self._device_tokens: DeviceTokens | None = None
        self._refresh_keys: RefreshKeys | None = None
        store = store if store is not None else _default_store(clock)
        if isinstance(store, InstrumentedStore):  # another config's: measure it once
            store = store.wrapped
        # OpenTelemetry metrics and spans (`telemetry`): `None` when off or not installed.
        self.telemetry = telemetry_for(telemetry)
        if self.telemetry is not None:  # every store call, whoever makes it, is measured
            store = InstrumentedStore(store, self.telemetry)
        self.store: Store = store
        self.cookie = cookie if cookie is not None else CookieTransport()
        if secret_keys is not None and self.device_cookie.name == self.cookie.name:
            raise ConfigurationError(
                f"the session cookie's name {self.cookie.name!r} is the device cookie's: "
                "give the session cookie another name"
            )
        self.bearer = bearer
        self.idle_ttl_ms = idle_ttl * 1000
        self.absolute_ttl_ms = absolute_ttl * 1000
        self.max_session_bytes = max_session_bytes
        self.max_sessions_per_user = max_sessions_per_user
        if not isinstance(trusted_proxies, TrustedProxies):
            trusted_proxies = TrustedProxies(trusted_proxies)
        self.trusted_proxies = trusted_proxies
        # Sites besides this one whose pages may send unsafe requests and open websockets
        # with the session cookie, as their `Origin` headers spell them.
        self.trusted_origins = browser_origins(trusted_origins)
        if not isinstance(csrf, bool):
            raise ConfigurationError(f"csrf must be True or False, not {csrf!r}")
        self.csrf = csrf  # refuse unsafe requests from other sites' pages (`csrf.py`)
        self.csrf_exempt = ExemptPaths(csrf_exempt)
        self.events = events if events is not None else Events()
        self.on_store_error = on_store_error
        # Where a client is, asked at sign-in and when a session's IP changes (`locations`).
        self.locate = locate
        # Which requests move a session's idle deadline; `None`: every request does.
        self.count_as_activity = count_as_activity
        self.clock = clock

    @property
    def signer(self) -> CookieSigner:
        if self._signer is None:
            raise ConfigurationError(
                "signing cookies needs secret_keys: pass SessionConfig(secret_keys=[...])"
            )
        return self._signer

    @property
    def device_cookie(self) -> DeviceCookie:
        """The long-lived cookie that recognises a browser at its next sign-in (`device_ids`)."""
        if self._device_cookie is None:
            keys = self._keys_for("recognising devices")
            self._device_cookie = DeviceCookie(self.cookie, keys)
        return self._device_cookie

    @property
    def device_tokens(self) -> DeviceTokens:
        """What recognises a bearer client at its next sign-in (`device_ids.DeviceTokens`)."""
        if self._device_tokens is None:
            self._device_tokens = DeviceTokens(self._keys_for("recognising devices"))
        return self._device_tokens

    @property
    def refresh_keys(self) -> RefreshKeys:
        """The keys that derive a refresh token's successor (`refresh.RefreshKeys`)."""
        if self._refresh_keys is None:
            self._refresh_keys = RefreshKeys(self._keys_for("rotating refresh tokens"))
        return self._refresh_keys

    def _keys_for(self, what: str) -> str | bytes | Sequence[str | bytes]:
        """The secret keys, or a `ConfigurationError` saying that `what` needs them."""
        if self._secret_keys is None:
            raise ConfigurationError(
                f"{what} needs secret_keys: pass SessionConfig(secret_keys=[...])"
            )
        return self._secret_keys

    def bearer_transport(self) -> BearerTransport:
        """The bearer transport, or a `ConfigurationError` that says how to add one."""
        if self.bearer is None:
            raise ConfigurationError(
                "bearer sessions need SessionMiddleware(..., "
                "bearer=BearerTransport(BearerSigner(...)))"
            )
        return self.bearer

    def now_ms(self) -> int:
        return int(self.clock() * 1000)


def _check_positive(**settings: int) -> None:
    for name, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigurationError(f"{name} must be a positive int, not {value!r}")


_shared_memory_store: MemoryStore | None = None


def _default_store(clock: Callable[[], float]) -> Store:
    """The embedded default: one `MemoryStore` per process, shared by every middleware built
    without `store=`, so two of them on one cookie (a site and its admin panel) see the same
    sessions. One given its own clock (a test moving time) gets a store of its own."""
    global _shared_memory_store
    if clock is not time.time:
        return MemoryStore()
    if _shared_memory_store is None:
        _shared_memory_store = MemoryStore()
    return _shared_memory_store
