"""`MemoryStore`'s known-device logs and per-account sign-in markers (`Store.device_seen`).

Both expire like Redis keys: dropped when read after their deadline, and swept now and then.
Both are bounded, least recently seen first out: losing a log costs one "new device" alert;
the markers are kept for more accounts than logs, since losing one makes the account's next
sign-in look like its first.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from .base import DeviceEntry

MARKERS_PER_LOG = 4  # accounts remembered as "signed in before", per log kept


@dataclass(slots=True)
class _DeviceLog:
    """A user's known devices and locations, each dict in order of last sighting (a sighting
    re-inserts its entry), so the least recently seen is always the first."""

    devices: dict[str, DeviceEntry]
    places: dict[str, int]
    deadline_ms: int


class DeviceLogs:
    def __init__(self, max_logs: int) -> None:
        self.max_logs = max_logs
        self._logs: dict[str, _DeviceLog] = {}  # least recently seen first
        self._markers: dict[str, int] = {}  # user -> deadline, least recently signed in first

    def __len__(self) -> int:
        return len(self._logs)

    def seen(
        self,
        user_id: str,
        hashes: Sequence[str],
        label: str,
        location: str | None,
        now_ms: int,
        ttl_ms: int,
        max_devices: int,
    ) -> tuple[bool, bool, bool]:
        """`Store.device_seen`, at `now_ms`."""
        log = self._live(user_id, now_ms)
        first_sign_in = log is None and self._markers.get(user_id, 0) <= now_ms
        _renew(self._markers, user_id, now_ms + ttl_ms, self.max_logs * MARKERS_PER_LOG)
        if log is None:
            log = _DeviceLog({}, {}, 0)
        _renew(self._logs, user_id, log, self.max_logs)
        found = [entry for h in hashes if (entry := log.devices.pop(h, None)) is not None]
        first_ms = min((entry.first_seen_ms for entry in found), default=now_ms)
        log.devices[hashes[0]] = DeviceEntry(hashes[0], first_ms, now_ms, label, location)
        new_location = location is not None and location not in log.places
        if location is not None:
            log.places.pop(location, None)
            log.places[location] = now_ms
        _keep_latest(log.devices, max_devices)
        _keep_latest(log.places, max_devices)
        log.deadline_ms = now_ms + ttl_ms
        return not found, new_location, first_sign_in

    def read(self, user_id: str, now_ms: int) -> list[DeviceEntry]:
        log = self._live(user_id, now_ms)
        return [] if log is None else list(log.devices.values())

    def forget(self, user_id: str, hashes: Collection[str] | None, now_ms: int) -> int:
        """`Store.devices_forget`: the account's marker stays."""
        log = self._live(user_id, now_ms)
        if log is None:
            return 0
        if hashes is None:
            del self._logs[user_id]
            return len(log.devices)
        return sum(log.devices.pop(h, None) is not None for h in set(hashes))

    def sweep(self, now_ms: int) -> None:
        """Drop every log and marker past its deadline, not only those someone reads."""
        for user_id in [u for u, log in self._logs.items() if log.deadline_ms <= now_ms]:
            del self._logs[user_id]
        markers = self._markers
        for user_id in [u for u, deadline in markers.items() if deadline <= now_ms]:
            del markers[user_id]

    def clear(self) -> None:
        self._logs.clear()
        self._markers.clear()

    def _live(self, user_id: str, now_ms: int) -> _DeviceLog | None:
        log = self._logs.get(user_id)
        if log is not None and log.deadline_ms <= now_ms:
            del self._logs[user_id]
            return None
        return log


def _renew(order: dict[str, Any], user_id: str, value: Any, limit: int) -> None:
    """Put `user_id` last (the most recent) with `value`; past `limit`, the first go."""
    order.pop(user_id, None)
    order[user_id] = value
    while len(order) > limit:
        del order[next(iter(order))]


def _keep_latest(seen: dict[str, Any], limit: int) -> None:
    """Drop the least recently seen entries (the first ones) past `limit`."""
    while len(seen) > limit:
        del seen[next(iter(seen))]
