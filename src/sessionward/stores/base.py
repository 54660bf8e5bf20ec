"""The `Store` protocol: every call sessionward makes of a store, and nothing else.

A store holds each session as a flat map of string fields (see `sessionward.record`), keyed by
the SHA-256 of the session id. Every call is atomic on its own; none needs another to follow.
Whether a session is still live is `sessionward.record.touch_ttl_ms`, read from the record's
own fields (`m:seen`, `m:expires`, `m:idle`); `idle_ttl_ms` below is the configured idle TTL,
which caps a record's own `m:idle` and stands in for a record that has none.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import NamedTuple, Protocol

from ..exceptions import SessionError

# A sign-in indexes its session just before storing it (so a crash leaves a stale entry, never
# an unindexed session). An index entry this young whose session is missing is a sign-in in
# progress: neither a listing nor a store's own upkeep may drop it.
SIGN_IN_GRACE_MS = 60_000


class Store(Protocol):
    async def load(
        self, key: str, now_ms: int, idle_ttl_ms: int, *, touch: bool = True
    ) -> dict[str, str] | None:
        """Return a live session's fields, touching it in the same step.

        The touch sets `m:seen` to `now_ms` and extends the store's
        expiry to what `touch_ttl_ms` gives. A session that is missing, has ended by that rule
        (idle too long, past `m:expires`) or is unreadable returns `None` (and may be deleted).
        `touch=False` (a request that does not count as activity, see `count_as_activity`)
        loads without the touch. sessionward passes `touch` only when it is `False`: a store
        that does not take it works unless `count_as_activity` is configured.
        """
        ...

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
        """Write and delete fields and refresh the expiry; return whether it happened.

        With `touch=False` (passed only then, as for `load`) the expiry follows the session's
        deadlines as they stand (`touch_ttl_ms(..., touch=False)`), not a new activity.

        With `create`, the save is refused if the key exists; without it, it is refused unless
        the session is still live by `touch_ttl_ms`, so a slow request cannot resurrect a
        session that was cleared, revoked or expired since it was loaded. A save that would
        leave a session that has ended (say, a past `m:expires`) deletes it and is refused.

        The size of the data (each key's and value's UTF-8 bytes, `session.encoded_size`) is
        kept in `m:size` and changed atomically with the write. A save that would take it
        past `max_bytes` writes nothing and raises `too_large(size, max_bytes)`: concurrent
        requests cannot pass the limit together.
        """
        ...

    async def delete(self, *keys: str) -> int | None:
        """Remove sessions; deleting a missing session is not an error.

        Returns how many of them existed. `regenerate` and `reauthenticate` read it to tell
        a session they moved from one signed out meanwhile (then they undo the move); a
        store that returns `None` cannot tell, and the move stands.
        """
        ...

    async def read_records(self, keys: Sequence[str]) -> list[dict[str, str] | None]:
        """The meta fields of several sessions, without touching them; `None` for gone ones.

        Costs one round trip however many keys: listing a user's devices uses it.
        """
        ...

    # The per-user index: which sessions a user has, scored by last activity (epoch ms).

    async def index_add(self, user_id: str, key: str, score_ms: int, ttl_ms: int) -> None:
        """Add a session to the user's index; the index then lives at least `ttl_ms`.

        `ttl_ms` is the absolute lifetime, so members scored `ttl_ms` or more before
        `score_ms` are dead and dropped here: an index never read cannot grow forever.
        """
        ...

    async def index_read(self, user_id: str) -> dict[str, int]:
        """The session keys in the user's index and their scores, least recently active first."""
        ...

    async def index_update(
        self, user_id: str, scores: Mapping[str, int], remove: Collection[str]
    ) -> None:
        """Set the scores of some sessions and drop others from the user's index, in one step."""
        ...

    # The per-user known-device log: the devices (by the HMACs of their device ids, see
    # `sessionward.device_ids`) and the places a user has signed in from, kept so that a
    # sign-in from a new one can be told apart. Lives `ttl_ms` after the user's last sign-in.

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
        """Record a sign-in from the device known by any of `hashes`, in one atomic step.

        `hashes[0]` is the device's hash under the current key; an entry found under another
        (a key since rotated out of first place) moves to it, keeping its first sighting.
        Sets the entry's last sighting, label and location, and the location's last sighting;
        past `max_devices` devices (or as many locations) the least recently seen go. The log
        then expires `ttl_ms` from now. Returns `(new_device, new_location, first_sign_in)`:
        no entry held any of `hashes`; `location` is not `None` and was not among the user's
        locations; the account has never signed in. An unreadable entry counts as absent.

        `first_sign_in` comes from a marker kept per account with the log, set at the first
        sign-in and living `ttl_ms` after the last: forgetting the devices
        (`devices_forget`), or losing the log, never makes a later sign-in the first. An
        account with a log but no marker (one that signed in before 0.3) is not new either.
        """
        ...

    async def devices_read(self, user_id: str) -> list[DeviceEntry]:
        """The user's known devices, in no particular order, without touching the log.

        Unreadable entries are left out.
        """
        ...

    async def devices_forget(self, user_id: str, hashes: Collection[str] | None) -> int:
        """Forget some of the user's devices, or with `None` the whole log (devices and
        locations, for account deletion); return how many devices went."""
        ...

    # Refresh tokens (`sessionward.refresh`): a bearer session's family of rotating tokens.

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
        """Apply `sessionward.refresh.decide` to a live bearer session, atomically.

        `client` is who presents it (`TokenPairs.fingerprint`). `ROTATED` writes
        `refresh.rotated_fields` and touches the session as `load` does, `REPLAYED` writes
        `refresh.replayed_fields` and touches it, `STOLEN` deletes it, and `INVALID` (a
        missing, ended or cookie session too) changes nothing. Returns the outcome, the key
        position `decide` gave, and the session's fields (after the write; before the delete
        for `STOLEN`; `None` for `INVALID`). One round trip.
        """
        ...

    async def aclose(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...


class ScanningStore(Store, Protocol):
    """A `Store` that can also walk every session it holds, as `AdminSessions` does.

    Kept apart from `Store`, which serves requests and never walks the keyspace, so a custom
    store written for 0.2 still is one; `MemoryStore` and `RedisStore` are both.
    """

    async def scan(self, cursor: str, count: int) -> tuple[str, list[str]]:
        """One step of a walk over every session: the cursor to continue from and a batch of
        session keys (about `count`; possibly none before the walk is over).

        Start from `"0"`; the walk is over when the cursor returned is `"0"`. A session held
        from the start to the end of a walk is returned at least once (Redis's `SCAN`
        guarantee); one created or ended during it may or may not be. A step never reads the
        whole keyspace at once, and the cursor is plain text: a walk may be resumed later,
        by another process, from where it stopped.
        """
        ...


class DeviceEntry(NamedTuple):
    """One device in a user's known-device log, as a store returns it."""

    hash: str  # the HMAC of the device id under the key current at its last sighting
    first_seen_ms: int
    last_seen_ms: int
    label: str
    location: str | None


def too_large(size: int, limit: int) -> SessionError:
    """The error for a save refused by the size limit: a programming error, like a value that
    cannot be stored, so it says what to do."""
    return SessionError(
        f"the session would hold {size} bytes of data, over max_session_bytes={limit}; "
        "nothing was saved. Store less in the session (an id to look up elsewhere) or raise "
        "max_session_bytes"
    )
