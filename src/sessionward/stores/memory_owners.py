"""Who holds which signed-in sessions of a `MemoryStore`, so that a full store evicts fairly.

Without it, a full store of signed-in sessions evicts the least recently used one, and one
account that signs in `max_sessions` times pushes every other user out. With it, the account
that holds the most sessions gives one up first. Every operation is O(1): users are kept in
buckets by how many sessions they hold, and the largest bucket is known.
"""

from __future__ import annotations

from collections import OrderedDict


class Owners:
    def __init__(self) -> None:
        self._keys: dict[str, OrderedDict[str, None]] = {}  # least recently used first
        self._holding: dict[int, dict[str, None]] = {}  # count -> users holding that many
        self._most = 0

    def holds(self, user_id: str) -> bool:
        return user_id in self._keys

    def use(self, user_id: str, key: str) -> None:
        """Count `key` as the user's and as their most recently used session."""
        keys = self._keys.get(user_id)
        if keys is None:
            keys = self._keys[user_id] = OrderedDict()
        if key in keys:
            keys.move_to_end(key)
            return
        self._move(user_id, len(keys), len(keys) + 1)
        keys[key] = None

    def drop(self, user_id: str, key: str) -> None:
        keys = self._keys.get(user_id)
        if keys is None or key not in keys:
            return
        del keys[key]
        self._move(user_id, len(keys) + 1, len(keys))
        if not keys:
            del self._keys[user_id]

    def victim(self) -> str | None:
        """The least recently used session of the user holding the most, when someone holds
        more than one; `None` when nobody does (then the least recently used of all goes)."""
        if self._most < 2:
            return None
        user_id = next(iter(self._holding[self._most]))
        return next(iter(self._keys[user_id]))

    def _move(self, user_id: str, old: int, new: int) -> None:
        holding = self._holding
        if old:
            bucket = holding[old]
            del bucket[user_id]
            if not bucket:
                del holding[old]
                if self._most == old:
                    self._most = new
        if new:
            holding.setdefault(new, {})[user_id] = None
            self._most = max(self._most, new)

    def clear(self) -> None:
        self._keys.clear()
        self._holding.clear()
        self._most = 0
