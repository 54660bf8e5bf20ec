"""`Owners`: the bookkeeping behind `MemoryStore`'s fair eviction, checked against a plain
recount after every step of random work."""

from __future__ import annotations

import random

from sessionward.stores.memory_owners import Owners


def expected_victim(held: dict[str, list[str]]) -> set[str | None]:
    """Any least recently used session of a user holding the most, when that is over one."""
    most = max((len(keys) for keys in held.values()), default=0)
    if most < 2:
        return {None}
    return {keys[0] for keys in held.values() if len(keys) == most}


def test_the_victim_is_always_from_the_largest_holder() -> None:
    rng = random.Random(7)
    owners = Owners()
    held: dict[str, list[str]] = {}
    for step in range(5000):
        user = f"u{rng.randrange(6)}"
        keys = held.setdefault(user, [])
        if keys and rng.random() < 0.45:
            key = rng.choice(keys)
            keys.remove(key)
            owners.drop(user, key)
        elif keys and rng.random() < 0.3:
            key = rng.choice(keys)  # used again: now the user's latest
            keys.remove(key)
            keys.append(key)
            owners.use(user, key)
        else:
            key = f"{user}-{step}"
            keys.append(key)
            owners.use(user, key)
        if not keys:
            del held[user]
        assert owners.victim() in expected_victim(held), step
        assert all(owners.holds(u) for u in held)
    owners.drop("nobody", "nothing")  # unknown: no error
    owners.clear()
    assert owners.victim() is None
