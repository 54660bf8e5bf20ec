"""`MemoryStore`: sessions in this process's memory, the embedded default.

For one process: development, tests, a single-worker app. Sessions vanish on restart and are
not shared between workers; use `RedisStore` for anything else. It holds at most
`max_sessions`, and past that forgets the least recently used anonymous session first, so a
flood of visitors who write to their session cannot sign anyone out, then one of the account
holding the most sessions, so one account cannot sign everyone else out. What it keeps beside
sessions (user indexes, known-device logs) is bounded by the same number.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from ..exceptions import ConfigurationError
from ..record import (
    DATA_PREFIX,
    EXPIRES,
    IDLE,
    META_PREFIX,
    SEEN,
    SIZE,
    TRANSPORT,
    USER,
    changes_lifetimes,
    data_size,
    own_idle_ttl_ms,
    remaining_ms,
    stored_int,
    untouched_ms,
)
from ..refresh import Outcome, decide, replayed_fields, rotated_fields
from .base import SIGN_IN_GRACE_MS, DeviceEntry, too_large
from .memory_devices import DeviceLogs
from .memory_owners import Owners


@dataclass(slots=True)
class _Entry:
    """A session's fields, with the numbers the liveness rule reads kept parsed.

    Parsing them on every touch would cost more than the rest of a load.
    """

    fields: dict[str, str]
    deadline_ms: int  # when the entry may be dropped unread: the rule's answer at last use
    seen_ms: int | None = None
    expires_ms: int | None = None
    own_idle_ms: int | None = None
    owner: str | None = None  # the signed-in user; anonymous sessions go first when full
    size: int | None = None  # bytes of data, as `m:size`; None until counted (a 0.1 record)

    def read_numbers(self) -> None:
        get = self.fields.get
        self.seen_ms, self.expires_ms = stored_int(get(SEEN)), stored_int(get(EXPIRES))
        self.own_idle_ms = stored_int(get(IDLE))

    def size_after(self, write: Mapping[str, str], delete: Collection[str]) -> int:
        """The bytes of data once `write` and `delete` are applied (the fields are not)."""
        fields = self.fields
        size = self.size if self.size is not None else _data_size(fields)
        for name, value in write.items():
            if name[:2] == DATA_PREFIX:
                old = fields.get(name)
                size += data_size(name, value) - (0 if old is None else data_size(name, old))
        for name in delete:
            if name[:2] == DATA_PREFIX and (old := fields.get(name)) is not None:
                size -= data_size(name, old)
        return size

    def remaining_ms(self, now_ms: int, idle_ttl_ms: int, touch: bool = True) -> int | None:
        """`record.touch_ttl_ms` of the fields, from the parsed numbers."""
        if self.seen_ms is None or self.expires_ms is None:
            return None
        idle = own_idle_ttl_ms(self.own_idle_ms, idle_ttl_ms)
        rule = remaining_ms if touch else untouched_ms
        return rule(now_ms, self.seen_ms, self.expires_ms, idle)


DEFAULT_MAX_SESSIONS = 100_000
_SWEEP_EVERY = 1024  # index additions between sweeps of expired indexes, at least
_INDEX_PRUNE_AT = 64  # members of one index before a sign-in drops those of gone sessions


@dataclass(slots=True)
class _Index:
    scores: dict[str, int]
    deadline_ms: int


class MemoryStore:
    """Sessions in a dict ordered by last use, so expired ones are found at the front.

    Each call first drops the expired entries at the front of the order. Sessions whose
    absolute deadline comes before their idle deadline may sit a little longer behind fresher
    ones, but never past their idle deadline, and they are never returned: cleanup costs O(1)
    amortised per call. Past `max_sessions`, a new session pushes out the least recently used
    anonymous one; when there is none, the least recently used of the account that holds the
    most sessions; when every account holds one, the least recently used of all. User indexes
    and device logs expire like Redis keys: dropped when read after their deadline, and swept
    now and then; past `max_sessions` of either, the least recently used go.
    """

    def __init__(self, *, max_sessions: int = DEFAULT_MAX_SESSIONS) -> None:
        if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
            raise ConfigurationError(f"max_sessions must be a positive int, not {max_sessions!r}")
        self.max_sessions = max_sessions
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._anonymous: OrderedDict[str, None] = OrderedDict()  # their keys, in the same order
        self._owners = Owners()
        self._indexes: dict[str, _Index] = {}  # least recently added to first
        self._device_logs = DeviceLogs(max_logs=max_sessions)
        self._index_adds_to_sweep = _SWEEP_EVERY
        self._now_ms = 0  # the latest time any call told us about

    def __len__(self) -> int:
        return len(self._entries)

    async def load(
        self, key: str, now_ms: int, idle_ttl_ms: int, *, touch: bool = True
    ) -> dict[str, str] | None:
        entry = self._live_entry(key, now_ms)
        if entry is None:
            return None
        ttl_ms = entry.remaining_ms(now_ms, idle_ttl_ms)
        if ttl_ms is None:
            self._forget(key)
            return None
        if not touch:  # not activity: its deadlines and place in the order stay
            return dict(entry.fields)
        entry.seen_ms = now_ms
        fields = entry.fields
        fields[SEEN] = str(now_ms)
        self._keep(key, entry, now_ms + ttl_ms)
        return dict(fields)

    async def save(
        self,
        key: str,
        write: Mapping[str, str],
        delete: Collection[str],
        now_ms: int,
        idle_ttl_ms: int,
        *,
        create: bool,
        max_bytes: int | None = None,
        touch: bool = True,
    ) -> bool:
        delete = tuple(delete)  # read twice below
        entry = self._live_entry(key, now_ms)
        ttl_ms: int | None = None
        if create:
            if entry is not None:
                return False
            entry = _Entry({}, now_ms)
        elif entry is None or (ttl_ms := entry.remaining_ms(now_ms, idle_ttl_ms, touch)) is None:
            return False
        size = entry.size_after(write, delete)
        if max_bytes and size > max_bytes:
            raise too_large(size, max_bytes)
        fields = entry.fields
        fields.update(write)
        for name in delete:
            fields.pop(name, None)
        fields[SIZE], entry.size = str(size), size
        if create or changes_lifetimes(write, delete):
            entry.read_numbers()
            ttl_ms = entry.remaining_ms(now_ms, idle_ttl_ms, touch or create)
        if ttl_ms is None:
            self._forget(key)
            return False
        if (owner := fields.get(USER)) != entry.owner:
            self._change_owner(key, entry, owner)
        if touch or create:
            self._keep(key, entry, now_ms + ttl_ms)
        else:  # not activity: no later deadline, no move up the least-recently-used order
            entry.deadline_ms = now_ms + ttl_ms
        if create and len(self._entries) > self.max_sessions:
            self._evict()
        return True

    async def delete(self, *keys: str) -> int:
        existed = 0
        for key in keys:
            existed += self._live_entry(key, self._now_ms) is not None
            self._forget(key)
        return existed

    async def read_records(self, keys: Sequence[str]) -> list[dict[str, str] | None]:
        records: list[dict[str, str] | None] = []
        for key in keys:
            entry = self._live_entry(key, self._now_ms)
            meta = None
            if entry is not None:
                meta = {k: v for k, v in entry.fields.items() if k.startswith(META_PREFIX)}
            records.append(meta)
        return records

    async def scan(self, cursor: str, count: int) -> tuple[str, list[str]]:
        """Keys in sorted order after the cursor's, the last key returned: a session's place
        in the least-recently-used order moves with each request, its key never does."""
        if cursor != "0" and not cursor.startswith("k:"):
            raise ValueError(f"{cursor!r} is not a MemoryStore cursor")
        now_ms, after = self._now_ms, cursor[2:]
        live = (key for key, entry in self._entries.items() if entry.deadline_ms > now_ms)
        batch = heapq.nsmallest(count, (key for key in live if key > after) if after else live)
        return (f"k:{batch[-1]}" if len(batch) == count else "0"), batch

    async def index_add(self, user_id: str, key: str, score_ms: int, ttl_ms: int) -> None:
        self._now_ms = max(self._now_ms, score_ms)
        index = self._live_index(user_id)
        if index is None:
            index = _Index({}, 0)
        self._indexes.pop(user_id, None)
        self._indexes[user_id] = index  # the most recently added to, last
        # A member last active a whole lifetime ago is dead, whoever forgot to remove it.
        for member in [m for m, score in index.scores.items() if score <= score_ms - ttl_ms]:
            del index.scores[member]
        if len(index.scores) >= _INDEX_PRUNE_AT:
            self._prune(index, score_ms)
        index.scores[key] = score_ms
        index.deadline_ms = max(index.deadline_ms, score_ms + ttl_ms)
        self._index_adds_to_sweep -= 1
        if self._index_adds_to_sweep <= 0:  # amortised: O(1) a sign-in
            self._sweep_indexes()
        self._bound_indexes()

    async def index_read(self, user_id: str) -> dict[str, int]:
        index = self._live_index(user_id)
        if index is None:
            return {}
        return dict(sorted(index.scores.items(), key=lambda item: item[1]))

    async def index_update(
        self, user_id: str, scores: Mapping[str, int], remove: Collection[str]
    ) -> None:
        index = self._live_index(user_id)
        if index is None:
            return
        index.scores.update(scores)
        for key in remove:
            index.scores.pop(key, None)
        if not index.scores:
            del self._indexes[user_id]

    async def device_seen(
        self,
        user_id: str,
        hashes: Sequence[str],
        label: str,
        location: str | None,
        now_ms: int,
        ttl_ms: int,
        max_devices: int,
    ) -> tuple[bool, bool, bool]:
        self._now_ms = max(self._now_ms, now_ms)
        return self._device_logs.seen(user_id, hashes, label, location, now_ms, ttl_ms, max_devices)

    async def devices_read(self, user_id: str) -> list[DeviceEntry]:
        return self._device_logs.read(user_id, self._now_ms)

    async def devices_forget(self, user_id: str, hashes: Collection[str] | None) -> int:
        return self._device_logs.forget(user_id, hashes, self._now_ms)

    async def refresh(
        self,
        key: str,
        now_ms: int,
        idle_ttl_ms: int,
        presented: str,
        chains: Sequence[Sequence[str]],
        grace_ms: int,
        client: str,
    ) -> tuple[int, int, dict[str, str] | None]:
        entry = self._live_entry(key, now_ms)
        ttl_ms = None if entry is None else entry.remaining_ms(now_ms, idle_ttl_ms)
        if entry is None or ttl_ms is None:
            self._forget(key)
            return Outcome.INVALID, 0, None
        fields = entry.fields
        if fields.get(TRANSPORT) != "bearer":
            return Outcome.INVALID, 0, None
        outcome, position = decide(fields, presented, chains, now_ms, grace_ms, client)
        if outcome == Outcome.INVALID:
            return outcome, 0, None
        if outcome == Outcome.STOLEN:
            self._forget(key)
            return outcome, 0, dict(fields)
        if outcome == Outcome.ROTATED:
            fields.update(rotated_fields(presented, chains, now_ms, client))
        else:
            fields.update(replayed_fields(fields))
        entry.seen_ms = now_ms
        fields[SEEN] = str(now_ms)
        self._keep(key, entry, now_ms + ttl_ms)
        return outcome, position, dict(fields)

    async def aclose(self) -> None:
        self._entries.clear()
        self._anonymous.clear()
        self._owners.clear()
        self._indexes.clear()
        self._device_logs.clear()

    def _live_index(self, user_id: str) -> _Index | None:
        index = self._indexes.get(user_id)
        if index is not None and index.deadline_ms <= self._now_ms:
            del self._indexes[user_id]
            return None
        return index

    def _sweep_indexes(self) -> None:
        """Drop every index and device log past its deadline, not only those someone reads."""
        now_ms = self._now_ms
        for user_id in [u for u, index in self._indexes.items() if index.deadline_ms <= now_ms]:
            del self._indexes[user_id]
        self._device_logs.sweep(now_ms)
        self._index_adds_to_sweep = max(_SWEEP_EVERY, len(self._indexes) + len(self._device_logs))

    def _prune(self, index: _Index, now_ms: int) -> None:
        """Drop members whose session this store no longer holds, but not a sign-in in
        progress: one account signing in again and again cannot grow its index for ever."""
        young = now_ms - SIGN_IN_GRACE_MS
        entries, scores = self._entries, index.scores
        for member in [m for m, score in scores.items() if m not in entries and score < young]:
            del scores[member]

    def _bound_indexes(self) -> None:
        """Past `max_sessions` indexes, drop the least recently added to among those that
        name no session held here and no sign-in in progress."""
        indexes, owners = self._indexes, self._owners
        if len(indexes) <= self.max_sessions:
            return
        young = self._now_ms - SIGN_IN_GRACE_MS
        for user_id, index in list(indexes.items()):
            if not owners.holds(user_id) and max(index.scores.values(), default=0) < young:
                del indexes[user_id]
                if len(indexes) <= self.max_sessions:
                    return

    def _live_entry(self, key: str, now_ms: int) -> _Entry | None:
        self._now_ms = max(self._now_ms, now_ms)
        self._drop_expired(now_ms)
        entry = self._entries.get(key)
        if entry is not None and entry.deadline_ms <= now_ms:
            self._forget(key)
            return None
        return entry

    def _keep(self, key: str, entry: _Entry, deadline_ms: int) -> None:
        entry.deadline_ms = deadline_ms
        self._entries[key] = entry
        self._entries.move_to_end(key)
        self._claim(key, entry)

    def _forget(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._release(key, entry)

    def _change_owner(self, key: str, entry: _Entry, owner: str | None) -> None:
        held = key in self._entries
        if held:
            self._release(key, entry)
        entry.owner = owner
        if held:
            self._claim(key, entry)

    def _claim(self, key: str, entry: _Entry) -> None:
        """Count the session as its owner's latest used, or as the latest anonymous one."""
        if entry.owner is None:
            self._anonymous[key] = None
            self._anonymous.move_to_end(key)
        else:
            self._owners.use(entry.owner, key)

    def _release(self, key: str, entry: _Entry) -> None:
        if entry.owner is None:
            self._anonymous.pop(key, None)
        else:
            self._owners.drop(entry.owner, key)

    def _evict(self) -> None:
        """Make room: the least recently used anonymous session, else one of the account
        holding the most, else the least recently used session of all."""
        if self._anonymous:
            self._forget(next(iter(self._anonymous)))
            return
        victim = self._owners.victim()
        self._forget(victim if victim is not None else next(iter(self._entries)))

    def _drop_expired(self, now_ms: int) -> None:
        entries = self._entries
        while entries:
            key, first = next(iter(entries.items()))
            if first.deadline_ms > now_ms:
                return
            self._forget(key)


def _data_size(fields: Mapping[str, str]) -> int:
    return sum(data_size(name, value) for name, value in fields.items() if name[:2] == DATA_PREFIX)
