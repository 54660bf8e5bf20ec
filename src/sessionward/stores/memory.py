"""`MemoryStore`: sessions in this process's memory, the embedded default.

Good for development, tests and single-process apps. Sessions vanish on restart and are not
shared between workers; use `RedisStore` for anything else.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from ..record import (
    EXPIRES,
    IDLE,
    META_PREFIX,
    SEEN,
    changes_lifetimes,
    own_idle_ttl_ms,
    remaining_ms,
    stored_int,
)


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

    def read_numbers(self) -> None:
        get = self.fields.get
        self.seen_ms, self.expires_ms = stored_int(get(SEEN)), stored_int(get(EXPIRES))
        self.own_idle_ms = stored_int(get(IDLE))

    def remaining_ms(self, now_ms: int, idle_ttl_ms: int) -> int | None:
        """`record.touch_ttl_ms` of the fields, from the parsed numbers."""
        if self.seen_ms is None or self.expires_ms is None:
            return None
        idle = own_idle_ttl_ms(self.own_idle_ms, idle_ttl_ms)
        return remaining_ms(now_ms, self.seen_ms, self.expires_ms, idle)


@dataclass(slots=True)
class _Index:
    scores: dict[str, int]
    deadline_ms: int


class MemoryStore:
    """Sessions in a dict ordered by last use, so expired ones are found at the front.

    Each call first drops the expired entries at the front of the order. Sessions whose
    absolute deadline comes before their idle deadline may sit a little longer behind fresher
    ones, but never past their idle deadline, and they are never returned: growth is bounded
    by the sessions active within one idle TTL, and cleanup costs O(1) amortised per call.
    User indexes expire like Redis keys and are dropped when read after their deadline.
    """

    def __init__(self) -> None:
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._indexes: dict[str, _Index] = {}
        self._now_ms = 0  # the latest time any call told us about

    def __len__(self) -> int:
        return len(self._entries)

    async def load(self, key: str, now_ms: int, idle_ttl_ms: int) -> dict[str, str] | None:
        entry = self._live_entry(key, now_ms)
        if entry is None:
            return None
        ttl_ms = entry.remaining_ms(now_ms, idle_ttl_ms)
        if ttl_ms is None:
            del self._entries[key]
            return None
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
    ) -> bool:
        delete = tuple(delete)  # read twice below
        entry = self._live_entry(key, now_ms)
        ttl_ms: int | None = None
        if create:
            if entry is not None:
                return False
            entry = _Entry({}, now_ms)
        elif entry is None or (ttl_ms := entry.remaining_ms(now_ms, idle_ttl_ms)) is None:
            return False
        fields = entry.fields
        fields.update(write)
        for name in delete:
            fields.pop(name, None)
        if create or changes_lifetimes(write, delete):
            entry.read_numbers()
            ttl_ms = entry.remaining_ms(now_ms, idle_ttl_ms)
        if ttl_ms is None:
            self._entries.pop(key, None)
            return False
        self._keep(key, entry, now_ms + ttl_ms)
        return True

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._entries.pop(key, None)

    async def read_records(self, keys: Sequence[str]) -> list[dict[str, str] | None]:
        records: list[dict[str, str] | None] = []
        for key in keys:
            entry = self._live_entry(key, self._now_ms)
            meta = None
            if entry is not None:
                meta = {k: v for k, v in entry.fields.items() if k.startswith(META_PREFIX)}
            records.append(meta)
        return records

    async def index_add(self, user_id: str, key: str, score_ms: int, ttl_ms: int) -> None:
        self._now_ms = max(self._now_ms, score_ms)
        index = self._live_index(user_id)
        if index is None:
            index = self._indexes[user_id] = _Index({}, 0)
        # A member last active a whole lifetime ago is dead, whoever forgot to remove it.
        for member in [m for m, score in index.scores.items() if score <= score_ms - ttl_ms]:
            del index.scores[member]
        index.scores[key] = score_ms
        index.deadline_ms = max(index.deadline_ms, score_ms + ttl_ms)

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

    async def aclose(self) -> None:
        self._entries.clear()
        self._indexes.clear()

    def _live_index(self, user_id: str) -> _Index | None:
        index = self._indexes.get(user_id)
        if index is not None and index.deadline_ms <= self._now_ms:
            del self._indexes[user_id]
            return None
        return index

    def _live_entry(self, key: str, now_ms: int) -> _Entry | None:
        self._now_ms = max(self._now_ms, now_ms)
        self._drop_expired(now_ms)
        entry = self._entries.get(key)
        if entry is not None and entry.deadline_ms <= now_ms:
            del self._entries[key]
            return None
        return entry

    def _keep(self, key: str, entry: _Entry, deadline_ms: int) -> None:
        entry.deadline_ms = deadline_ms
        self._entries[key] = entry
        self._entries.move_to_end(key)

    def _drop_expired(self, now_ms: int) -> None:
        entries = self._entries
        while entries:
            key, first = next(iter(entries.items()))
            if first.deadline_ms > now_ms:
                return
            del entries[key]
