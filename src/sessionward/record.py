"""The session record: the meta fields stored beside the data, and the split between the two.

A session is stored as a flat map of string fields. Session keys live under `d:<key>` (one
JSON value each); the record's own facts live under `m:<name>`. Both stores keep this shape,
so the middleware never needs to know which store it talks to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from .devices import KINDS, Device, DeviceKind

DATA_PREFIX = "d:"
META_PREFIX = "m:"
CREATED = "m:created"
EXPIRES = "m:expires"
SEEN = "m:seen"
HITS = "m:hits"
USER = "m:user"
IP = "m:ip"
FIRST_IP = "m:ip0"
AGENT = "m:uah"
TRANSPORT = "m:via"
# The device, as several short fields rather than one JSON blob: Redis keeps a hash whose
# values are all under 64 bytes as a compact listpack, less than half the memory of a table.
LABEL = "m:label"
KIND = "m:kind"
BROWSER = "m:br"
SYSTEM = "m:os"
HARDWARE = "m:hw"
DEVICE_FIELDS = (LABEL, KIND, BROWSER, SYSTEM, HARDWARE)
# What listing a user's devices reads of each session: everything but the data.
RECORD_FIELDS = (CREATED, EXPIRES, SEEN, HITS, USER, IP, FIRST_IP, AGENT, TRANSPORT, *DEVICE_FIELDS)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """Facts about a session that are not its data. Times are Unix epoch milliseconds."""

    created_at_ms: int
    expires_at_ms: int
    last_seen_at_ms: int
    hits: int = 1
    user_id: str | None = None
    ip: str | None = None
    first_ip: str | None = None
    device_fields: Mapping[str, str] | None = None  # as stored; `device` parses them on demand
    agent_hash: str | None = None  # which user-agent string the device was parsed from
    transport: str = "cookie"

    @classmethod
    def from_fields(cls, meta: Mapping[str, str | None]) -> SessionRecord | None:
        """Read the record back; `None` when a required field is missing or not a number."""
        try:
            created, expires, seen = (
                int(meta[CREATED] or ""),
                int(meta[EXPIRES] or ""),
                int(meta[SEEN] or ""),
            )
            hits = int(meta.get(HITS) or 1)
        except (KeyError, ValueError):
            return None
        return cls(
            created,
            expires,
            seen,
            hits,
            user_id=meta.get(USER) or None,
            ip=meta.get(IP) or None,
            first_ip=meta.get(FIRST_IP) or None,
            device_fields=_device_part(meta),
            agent_hash=meta.get(AGENT) or None,
            transport=meta.get(TRANSPORT) or "cookie",
        )

    def to_fields(self) -> dict[str, str]:
        fields = {
            CREATED: str(self.created_at_ms),
            EXPIRES: str(self.expires_at_ms),
            SEEN: str(self.last_seen_at_ms),
            HITS: str(self.hits),
            TRANSPORT: self.transport,
        }
        optional = {
            USER: self.user_id,
            IP: self.ip,
            FIRST_IP: self.first_ip,
            AGENT: self.agent_hash,
        }
        fields.update((name, value) for name, value in optional.items() if value is not None)
        if self.device_fields:
            fields.update(self.device_fields)
        return fields

    @property
    def device(self) -> Device | None:
        """The device, read from its fields only when asked (a device list, not every request)."""
        return device_from_fields(self.device_fields) if self.device_fields else None


def _device_part(meta: Mapping[str, str | None]) -> dict[str, str] | None:
    part = {name: value for name in DEVICE_FIELDS if (value := meta.get(name))}
    return part or None


def device_to_fields(device: Device) -> dict[str, str]:
    return {
        LABEL: device.label,
        KIND: device.kind,
        BROWSER: _pack(device.browser, device.browser_version),
        SYSTEM: _pack(device.os, device.os_version),
        HARDWARE: _pack(device.device_family, device.brand, device.model),
    }


def device_from_fields(meta: Mapping[str, str | None]) -> Device | None:
    """The stored device, or `None` when it is missing or unreadable (never an error)."""
    label, kind = meta.get(LABEL), meta.get(KIND)
    if not label or kind not in KINDS:
        return None
    browser, browser_version = _unpack(meta.get(BROWSER), 2)
    system, system_version = _unpack(meta.get(SYSTEM), 2)
    family, brand, model = _unpack(meta.get(HARDWARE), 3)
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


def split_fields(fields: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Separate stored fields into (session data by key, meta fields)."""
    data: dict[str, str] = {}
    meta: dict[str, str] = {}
    for name, value in fields.items():
        prefix = name[:2]
        if prefix == DATA_PREFIX:
            data[name[2:]] = value
        elif prefix == META_PREFIX:
            meta[name] = value
    return data, meta


def data_fields(values: Mapping[str, str]) -> dict[str, str]:
    """Session keys and their JSON as store fields."""
    return {DATA_PREFIX + key: text for key, text in values.items()}


def touch_ttl_ms(meta: Mapping[str, str], now_ms: int, idle_ttl_ms: int) -> int | None:
    """How long a session may live after a request at `now_ms`; `None` if it is dead.

    Dead means idle for `idle_ttl_ms`, past its absolute deadline, or unreadable. This is the
    rule the Redis script applies too; keeping it here keeps the two stores in step.
    """
    try:
        seen, expires = int(meta[SEEN]), int(meta[EXPIRES])
    except (KeyError, ValueError):
        return None
    if now_ms >= expires or now_ms >= seen + idle_ttl_ms:
        return None
    return min(idle_ttl_ms, expires - now_ms)
