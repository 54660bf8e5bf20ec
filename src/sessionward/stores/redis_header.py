"""The record header of `RedisStore`, on the Python side: the lifetimes as the scripts keep them.

In Redis a session's last activity, absolute deadline, own idle TTL and data size live in one
28-byte field, `m:h` (see `HEADER` in `redis_scripts`), which the scripts read and write with
`struct`. Everywhere else sessionward speaks of them as the record's fields `m:seen`,
`m:expires` and `m:idle` (decimal text; see `sessionward.record`), which is what `MemoryStore`
stores and what a custom store sees. This module converts between the two at the edge of
`RedisStore`: a save's lifetime fields become script arguments, and a load's reply (the
lifetimes as integers, then the hash's fields) becomes the record's fields.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Mapping
from typing import Any

from ..record import EXPIRES, IDLE, LIFETIME_FIELDS, SEEN, SIZE, stored_int

HEADER = "m:h"
LAYOUT = struct.Struct("<qqqi")  # seen, expires, own idle (-1: none), size; as Lua's '<i8i8i8i4'
_UNCHANGED = ("", "", "")
# The hash as HGETALL gives it: pairs flat or in a dict, as text or as bytes.
StoredFields = list[str] | list[bytes] | dict[str, str] | dict[bytes, bytes]


def save_arguments(
    write: Mapping[str, str], delete: Collection[str], lifetimes_change: bool
) -> tuple[tuple[str, str, str], list[str], Collection[str]]:
    """A save's lifetime changes as the script takes them (digits to set, '' to leave, '-' to
    remove: last activity, absolute deadline, own idle TTL), then the other fields to write
    as name/value pairs, and to delete."""
    pairs: list[str] = []
    if not lifetimes_change:
        for pair in write.items():
            pairs += pair
        return _UNCHANGED, pairs, delete
    slots = tuple(write.get(name, "-" if name in delete else "") for name in (SEEN, EXPIRES, IDLE))
    for name, value in write.items():
        if name not in LIFETIME_FIELDS:
            pairs += (name, value)
    kept = [name for name in delete if name not in LIFETIME_FIELDS]
    return (slots[0], slots[1], slots[2]), pairs, kept


def loaded_fields(header: bytes, stored: StoredFields) -> dict[str, str]:
    """The record's fields from a load: the lifetimes the script returned, packed as a header,
    and the hash as HGETALL read it: a flat list, or a dict where redis-py makes one (RESP3,
    or a pipeline), of text (decoded by the parser) or of bytes.

    The hash's own copies of the lifetimes (kept for 0.2) give way to the script's figures;
    the header itself, and the size, are the store's and are left out.
    """
    if isinstance(stored, dict):
        fields: dict[Any, Any] = stored
    else:
        pairs = iter(stored)
        fields = dict(zip(pairs, pairs, strict=True))
    if fields and isinstance(next(iter(fields)), bytes):
        fields = {_text(name): _text(value) for name, value in fields.items()}
    fields.pop(HEADER, None)
    seen, expires, own_idle, _ = LAYOUT.unpack(header)
    _apply(fields, seen, expires, own_idle, -1)
    return fields


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def read_header(fields: dict[str, str], header: bytes | None) -> dict[str, str] | None:
    """Fields read without a script (a device list's HMGET) with the header applied as the
    load script applies it: its times, unless 0.2 touched `m:seen` later. `None` when the
    header is there but unreadable, as the scripts would end such a session."""
    if header is None:
        return fields
    if len(header) != LAYOUT.size:
        return None
    seen, expires, own_idle, size = LAYOUT.unpack(header)
    if seen < 0 or expires < 0 or size < 0:
        return None
    plain_seen, plain_size = stored_int(fields.get(SEEN)), stored_int(fields.get(SIZE))
    seen = seen if plain_seen is None else max(seen, plain_seen)
    _apply(fields, seen, expires, own_idle, size if plain_size is None else plain_size)
    return fields


def _apply(fields: dict[str, str], seen: int, expires: int, own_idle: int, size: int) -> None:
    """Put the header's figures in the record's fields; -1 is "none" for the last two."""
    fields[SEEN], fields[EXPIRES] = str(seen), str(expires)
    if own_idle >= 0:
        fields[IDLE] = str(own_idle)
    else:
        fields.pop(IDLE, None)
    if size >= 0:
        fields[SIZE] = str(size)
    else:
        fields.pop(SIZE, None)
