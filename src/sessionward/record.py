"""The session record: the meta fields stored beside the data, and the split between the two.

A session is stored as a flat map of string fields. Session keys live under `d:<key>` (one
JSON value each); the record's own facts live under `m:<name>`. Both stores keep this shape,
so the middleware never needs to know which store it talks to.

It also holds the one liveness rule (`remaining_ms`): when a session has ended, and how long it
may live after a request. The Redis scripts repeat it in Lua and the memory store applies it;
`tests/test_record.py` pins every copy to this one on the same edge cases.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import cast

from .devices import KINDS, Device, DeviceKind
from .session import encoded_size

DATA_PREFIX = "d:"
META_PREFIX = "m:"
CREATED = "m:created"
EXPIRES = "m:expires"
SEEN = "m:seen"
IDLE = "m:idle"  # the session's own idle TTL (ms); absent in records written by 0.1
SIZE = "m:size"  # bytes of data (`data_size`), kept by the stores; absent in 0.1's records
USER = "m:user"
IP = "m:ip"
FIRST_IP = "m:ip0"
AGENT = "m:uah"
TRANSPORT = "m:via"
# Added in 0.2; a record without them reads as the defaults noted (records are additive).
AUTHENTICATED = "m:auth"  # when the user last proved who they are (ms); else `m:created`
REMEMBER = "m:rem"  # "0": a browser-session cookie (no Max-Age); else remembered
LOCATION = "m:loc"  # a short place name from `locate`, when one is configured
NEW_DEVICE = "m:new"  # "1": signed in from a device the account had not used before
FIRST_SIGN_IN = "m:first"  # "1": the account's very first sign-in
# A bearer session from a token pair: hashes of its refresh family (`sessionward.refresh`).
REFRESH = "m:rt"  # the current refresh token's
REFRESH_PARENT = "m:rtp"  # the one it replaced
REFRESH_ROTATED = "m:rtt"  # when that one was used (ms)
REFRESH_SALT = "m:rtk"  # the family's random value, mixed into each successor (from 0.3)
REFRESH_CLIENT = "m:rtc"  # who made the last rotation: a hash of its device, else user-agent
REFRESH_REPLAYS = "m:rtn"  # grace replays of the last rotation so far
REFRESH_FIELDS = (
    REFRESH,
    REFRESH_PARENT,
    REFRESH_ROTATED,
    REFRESH_SALT,
    REFRESH_CLIENT,
    REFRESH_REPLAYS,
)
# The device, as several short fields rather than one JSON blob: Redis keeps a hash whose
# values are all under 64 bytes as a compact listpack, less than half the memory of a table.
LABEL = "m:label"
KIND = "m:kind"
BROWSER = "m:br"
SYSTEM = "m:os"
HARDWARE = "m:hw"
# Added in 0.3, only for a device read with User-Agent Client Hints: the hints' fingerprint
# (`client_hints.fingerprint`), then the platform version and the form factor.
HINTS = "m:ch"
DEVICE_FIELDS = (LABEL, KIND, BROWSER, SYSTEM, HARDWARE, HINTS)
# The fields the liveness rule reads: a store re-reads them only after a save changed one.
LIFETIME_FIELDS = frozenset({SEEN, EXPIRES, IDLE})
# What listing a user's devices reads of each session: everything but the data.
RECORD_FIELDS = (
    CREATED,
    EXPIRES,
    SEEN,
    IDLE,
    SIZE,
    USER,
    IP,
    FIRST_IP,
    AGENT,
    TRANSPORT,
    AUTHENTICATED,
    REMEMBER,
    LOCATION,
    NEW_DEVICE,
    FIRST_SIGN_IN,
    *DEVICE_FIELDS,
    REFRESH_SALT,  # read before a refresh works out the successors
)


DAY_MS = 24 * 3600 * 1000
# The middleware's default idle TTL: what a record from 0.1, which has no `m:idle`, lives by
# unless the middleware says otherwise.
DEFAULT_IDLE_TTL_MS = 14 * DAY_MS


@dataclass(slots=True)  # not frozen: a frozen dataclass costs ~1.3 µs more to build
class SessionRecord:
    """Facts about a session that are not its data. Times are Unix epoch milliseconds.

    Read-only by convention: changing one changes nothing stored. The record carries its own
    lifetimes: `idle_ttl_ms`, and `expires_at_ms`, the absolute deadline. Every store reads
    them from the record, so each session may have its own; the configured idle TTL caps
    the record's (see `own_idle_ttl_ms`).
    """

    created_at_ms: int
    expires_at_ms: int
    last_seen_at_ms: int
    user_id: str | None = None
    ip: str | None = None
    first_ip: str | None = None
    device_fields: Mapping[str, str] | None = None  # as stored; `device` parses them on demand
    agent_hash: str | None = None  # which user-agent string the device was parsed from
    transport: str = "cookie"
    idle_ttl_ms: int = DEFAULT_IDLE_TTL_MS
    authenticated_at_ms: int | None = None  # `None`: never signed in, or a record from 0.1
    remember: bool = True  # `False`: the cookie lasts only as long as the browser session
    location: str | None = None
    new_device: bool = False
    first_sign_in: bool = False
    refresh: Mapping[str, str] | None = None  # a token pair's refresh family, as stored

    @classmethod
    def from_fields(cls, meta: Mapping[str, str | None], idle_ttl_ms: int) -> SessionRecord | None:
        """Read the record back; `None` when a required field is missing or not a number.

        `meta` may hold data fields too: only the record's own names are read. `idle_ttl_ms`
        is the configured idle TTL, which caps the record's own (see `own_idle_ttl_ms`).
        """
        get = meta.get
        created, expires, seen = (
            stored_int(get(CREATED)),
            stored_int(get(EXPIRES)),
            stored_int(get(SEEN)),
        )
        if created is None or expires is None or seen is None:
            return None
        return cls(
            created,
            expires,
            seen,
            user_id=get(USER) or None,
            ip=get(IP) or None,
            first_ip=get(FIRST_IP) or None,
            device_fields=_device_part(meta),
            agent_hash=get(AGENT) or None,
            transport=get(TRANSPORT) or "cookie",
            idle_ttl_ms=own_idle_ttl_ms(stored_int(get(IDLE)), idle_ttl_ms),
            authenticated_at_ms=stored_int(get(AUTHENTICATED)),
            remember=get(REMEMBER) != "0",
            location=get(LOCATION) or None,
            new_device=get(NEW_DEVICE) == "1",
            first_sign_in=get(FIRST_SIGN_IN) == "1",
            refresh=_refresh_part(meta),
        )

    def to_fields(self) -> dict[str, str]:
        fields = {
            CREATED: str(self.created_at_ms),
            EXPIRES: str(self.expires_at_ms),
            SEEN: str(self.last_seen_at_ms),
            IDLE: str(self.idle_ttl_ms),
            TRANSPORT: self.transport,
        }
        optional = {
            USER: self.user_id,
            IP: self.ip,
            FIRST_IP: self.first_ip,
            AGENT: self.agent_hash,
            AUTHENTICATED: None
            if self.authenticated_at_ms is None
            else str(self.authenticated_at_ms),
            REMEMBER: None if self.remember else "0",
            LOCATION: self.location,
            NEW_DEVICE: "1" if self.new_device else None,
            FIRST_SIGN_IN: "1" if self.first_sign_in else None,
        }
        fields.update((name, value) for name, value in optional.items() if value is not None)
        if self.device_fields:
            fields.update(self.device_fields)
        if self.refresh:
            fields.update(self.refresh)
        return fields

    @property
    def signed_in_at_ms(self) -> int:
        """When the user last proved who they are: at sign-in or `reauthenticate`. A session
        signed in before 0.2 recorded no such time and counts its creation."""
        at = self.authenticated_at_ms
        return self.created_at_ms if at is None else at

    def remaining_ms(self, now_ms: int) -> int | None:
        """How long the session may live after a request at `now_ms`; `None` once it has ended."""
        return remaining_ms(now_ms, self.last_seen_at_ms, self.expires_at_ms, self.idle_ttl_ms)

    @property
    def device(self) -> Device | None:
        """The device, read from its fields only when asked (a device list, not every request)."""
        return device_from_fields(self.device_fields) if self.device_fields else None


# -- the liveness rule ----------------------------------------------------------------------


def remaining_ms(
    now_ms: int, last_seen_at_ms: int, expires_at_ms: int, idle_ttl_ms: int
) -> int | None:
    """The one liveness rule: how long a session may live after a request at `now_ms`.

    A session has ended once it has been idle for its idle TTL or reached its absolute
    deadline; otherwise it may live the shorter of the two from now. `None` means ended.
    """
    if now_ms >= expires_at_ms or now_ms >= last_seen_at_ms + idle_ttl_ms:
        return None
    return min(idle_ttl_ms, expires_at_ms - now_ms)


def untouched_ms(
    now_ms: int, last_seen_at_ms: int, expires_at_ms: int, idle_ttl_ms: int
) -> int | None:
    """For a request that does not count as activity (`count_as_activity`): how long the
    session lives on by its deadlines as they stand, its last activity unmoved; `None` means
    ended, as in `remaining_ms`."""
    if remaining_ms(now_ms, last_seen_at_ms, expires_at_ms, idle_ttl_ms) is None:
        return None
    return min(last_seen_at_ms + idle_ttl_ms, expires_at_ms) - now_ms


def touch_ttl_ms(
    meta: Mapping[str, str], now_ms: int, idle_ttl_ms: int, *, touch: bool = True
) -> int | None:
    """`remaining_ms` read from stored fields (`untouched_ms` without `touch`); `None` when
    they are missing or unreadable.

    `idle_ttl_ms` is the configured idle TTL (see `own_idle_ttl_ms`). The stores apply this
    on every load and save: the Redis scripts in Lua, `MemoryStore` on numbers it keeps
    parsed; tests/test_record.py pins both to it.
    """
    seen, expires = stored_int(meta.get(SEEN)), stored_int(meta.get(EXPIRES))
    if seen is None or expires is None:
        return None
    idle = own_idle_ttl_ms(stored_int(meta.get(IDLE)), idle_ttl_ms)
    rule = remaining_ms if touch else untouched_ms
    return rule(now_ms, seen, expires, idle)


# Stored numbers are plain decimal digits. Python's int() also takes "+1", " 1" and "1_0";
# Lua's tonumber takes "0x1" and "1e3": reading only digits keeps both stores in step.
_MAX_DIGITS = 15  # epoch ms fit in 13; Lua's doubles are exact to 2**53


_PLAIN_DIGITS = re.compile(f"[0-9]{{1,{_MAX_DIGITS}}}").fullmatch


def stored_int(text: str | None) -> int | None:
    """A stored whole number, or `None` when it is missing or not plain digits."""
    return int(text) if text and _PLAIN_DIGITS(text) else None


def readable(meta: Mapping[str, str | None]) -> bool:
    """Whether stored fields hold what `SessionRecord.from_fields` needs to read a record."""
    get = meta.get  # no generator: this runs on every request
    return not (
        stored_int(get(CREATED)) is None
        or stored_int(get(EXPIRES)) is None
        or stored_int(get(SEEN)) is None
    )


def changes_lifetimes(write: Collection[str], delete: Collection[str]) -> bool:
    """Whether a save writing and deleting these fields may change the session's lifetimes."""
    return not (LIFETIME_FIELDS.isdisjoint(write) and LIFETIME_FIELDS.isdisjoint(delete))


def own_idle_ttl_ms(own_ms: int | None, configured_ms: int) -> int:
    """A session's idle TTL: its own `m:idle`, never longer than the configured one.

    Lowering the middleware's `idle_ttl` so applies to every session at once; a record with
    no readable `m:idle` (one stored by 0.1) takes the configured TTL.
    """
    return configured_ms if own_ms is None else min(own_ms, configured_ms)


def _refresh_part(meta: Mapping[str, str | None]) -> dict[str, str] | None:
    if not meta.get(REFRESH):
        return None
    return {name: value for name in REFRESH_FIELDS if (value := meta.get(name))}


def _device_part(meta: Mapping[str, str | None]) -> dict[str, str] | None:
    part = {name: value for name in DEVICE_FIELDS if (value := meta.get(name))}
    return part or None


def device_to_fields(device: Device, hints: str | None = None) -> dict[str, str]:
    """The device as record fields; `hints`, the fingerprint of the hints it was read with."""
    fields = {
        LABEL: device.label,
        KIND: device.kind,
        BROWSER: _pack(device.browser, device.browser_version),
        SYSTEM: _pack(device.os, device.os_version),
        HARDWARE: _pack(device.device_family, device.brand, device.model),
    }
    if hints is not None:
        fields[HINTS] = _pack(hints, device.platform_version, device.form_factor)
    return fields


def hints_fingerprint(meta: Mapping[str, str | None]) -> str | None:
    """The stored fingerprint of the hints the device was read with; `None` without one."""
    return meta.get(HINTS) or None


def device_from_fields(meta: Mapping[str, str | None]) -> Device | None:
    """The stored device, or `None` when it is missing or unreadable (never an error)."""
    label, kind = meta.get(LABEL), meta.get(KIND)
    if not label or kind not in KINDS:
        return None
    browser, browser_version = _unpack(meta.get(BROWSER), 2)
    system, system_version = _unpack(meta.get(SYSTEM), 2)
    family, brand, model = _unpack(meta.get(HARDWARE), 3)
    _, platform_version, form_factor = _unpack(meta.get(HINTS), 3)
    return Device(
        browser,
        browser_version,
        system,
        system_version,
        family,
        brand,
        model,
        kind=cast(DeviceKind, kind),
        label=label,
        platform_version=platform_version,
        form_factor=form_factor,
    )


# Unit separator: parsed names never contain control characters; a split is far cheaper
# than JSON on a path every request takes.
_SEPARATOR = "\x1f"


def _pack(*values: str | None) -> str:
    return _SEPARATOR.join(value or "" for value in values)


def _unpack(text: str | None, size: int) -> list[str | None]:
    values = (text or "").split(_SEPARATOR)
    if len(values) != size:
        return [None] * size
    return [value or None for value in values]


def data_of(fields: Mapping[str, str]) -> dict[str, str]:
    """The session data in stored fields: each key's JSON, by key."""
    return {name[2:]: value for name, value in fields.items() if name[:2] == DATA_PREFIX}


def data_size(name: str, value: str) -> int:
    """What a stored data field counts towards `max_session_bytes`: its key and JSON bytes."""
    if name.isascii() and value.isascii():  # nearly always: no encoding needed
        return len(name) - 2 + len(value)
    return encoded_size(name) - 2 + encoded_size(value)


def data_fields(values: Mapping[str, str]) -> dict[str, str]:
    """Session keys and their JSON as store fields."""
    return {DATA_PREFIX + key: text for key, text in values.items()}
