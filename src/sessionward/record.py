"""The session record: the meta fields stored beside the data, and the split between the two.

A session is stored as a flat map of string fields. Session keys live under `d:<key>` (one
JSON value each); the record's own facts live under `m:<name>`. Both stores keep this shape,
so the middleware never needs to know which store it talks to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DATA_PREFIX = "d:"
META_PREFIX = "m:"
CREATED = "m:created"
EXPIRES = "m:expires"
SEEN = "m:seen"
HITS = "m:hits"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """Facts about a session that are not its data. Times are Unix epoch milliseconds."""

    created_at_ms: int
    expires_at_ms: int
    last_seen_at_ms: int
    hits: int

    @classmethod
    def new(cls, now_ms: int, absolute_ttl_ms: int) -> SessionRecord:
        return cls(now_ms, now_ms + absolute_ttl_ms, now_ms, 1)

    @classmethod
    def from_fields(cls, meta: Mapping[str, str]) -> SessionRecord | None:
        """Read the record back; `None` when a field is missing or not a number (corrupt)."""
        try:
            return cls(int(meta[CREATED]), int(meta[EXPIRES]), int(meta[SEEN]), int(meta[HITS]))
        except (KeyError, ValueError):
            return None

    def to_fields(self) -> dict[str, str]:
        return {
            CREATED: str(self.created_at_ms),
            EXPIRES: str(self.expires_at_ms),
            SEEN: str(self.last_seen_at_ms),
            HITS: str(self.hits),
        }


def split_fields(fields: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Separate stored fields into (session data by key, meta fields)."""
    data: dict[str, str] = {}
    meta: dict[str, str] = {}
    for name, value in fields.items():
        if name.startswith(DATA_PREFIX):
            data[name[len(DATA_PREFIX) :]] = value
        elif name.startswith(META_PREFIX):
            meta[name] = value
    return data, meta


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
