"""`RedisStore`: sessions as Redis hashes, loaded and touched in one round trip.

Layout: `<prefix>s:{<sha256 of the session id>}` is a hash with a `d:<key>` field per session
key and `m:<name>` meta fields; `<prefix>u:{<user id>}` is a sorted set of a user's session
hashes scored by last activity; `<prefix>k:{<user id>}` is a user's known-device log, a hash
with `d:<device hash>` -> `<first seen ms>|<last seen ms>|<JSON [label, location]>` per
device (the HMAC of its device id, see `sessionward.device_ids`) and `l:<location>` -> `<last
seen ms>` per place signed in from. The log shares the index's hash tag, so both sit on the
user's one slot, and expires a device cookie's lifetime after the last sign-in.

Cluster-safe by construction, so one code path serves `redis.asyncio.Redis` and
`RedisCluster` alike: every script and every pipeline step names exactly one key (the `{...}`
hash tag pins it to one slot), and the multi-key work (deleting several sessions, reading
several records) is a non-transactional pipeline of single-key commands, which a cluster
client splits into one batch per node. There is no MULTI/EXEC: redis-py 5's cluster client
refuses `pipeline(transaction=True)`, and where a step must be atomic a script on its one key
is atomic on both clients. The scripts themselves are in `redis_scripts`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any, cast

from redis import exceptions as redis_errors
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.client import NEVER_DECODE

from ..record import RECORD_FIELDS, changes_lifetimes, stored_int
from ..refresh import MAX_GRACE_REPLAYS
from .base import DeviceEntry, too_large
from .redis_calls import Call, Script, parses_in_c, pool_limit, unavailable_error
from .redis_connections import BYTES, BYTES_THEN_TEXT, HeldConnections
from .redis_header import HEADER, StoredFields, loaded_fields, read_header, save_arguments
from .redis_scan import scan_sessions
from .redis_scripts import (
    DEVICE_SEEN,
    DEVICES_FORGET_ALL,
    INDEX_ADD,
    LOAD_AND_TOUCH,
    LOAD_AND_TOUCH_JSON,
    LOAD_UNTOUCHED,
    LOAD_UNTOUCHED_JSON,
    REFRESH_ROTATE,
    SAVE_IF_LIVE,
)


class RedisStore:
    """Sessions in Redis (`redis.asyncio.Redis` or `RedisCluster`), one hash each."""

    def __init__(self, client: Redis | RedisCluster, *, prefix: str = "sessionward:") -> None:
        self.client = client
        self.prefix = prefix
        # Without hiredis, the fields come back as one JSON string (see redis_scripts).
        self._fields_as_json = not parses_in_c(client)
        if self._fields_as_json:
            self._load_and_touch = Script(LOAD_AND_TOUCH_JSON)
            self._load_untouched = Script(LOAD_UNTOUCHED_JSON)
        else:
            self._load_and_touch = Script(LOAD_AND_TOUCH)
            self._load_untouched = Script(LOAD_UNTOUCHED)
        self._save_if_live = Script(SAVE_IF_LIVE)
        # A sign-in's two: sent by SHA too, since an app under sign-in churn runs them as
        # often as its reads (the scripts' text would cross the wire, and be hashed, each time).
        self._device_seen = Script(DEVICE_SEEN)
        self._index_add = Script(INDEX_ADD)
        self._call = Call(client, pool_limit(client))
        self._held = HeldConnections.serve(client)
        self._session_prefix = f"{prefix}s:{{"

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "sessionward:",
        socket_timeout: float = 2.0,
        socket_connect_timeout: float = 2.0,
        retries: int = 1,
        **client_options: Any,
    ) -> RedisStore:
        """Connect with timeouts, so an outage turns into a prompt 503 instead of a hang."""
        client = Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries),
            **client_options,
        )
        return cls(client, prefix=prefix)

    def key(self, session_key: str) -> str:
        return self._session_prefix + session_key + "}"

    async def load(
        self, key: str, now_ms: int, idle_ttl_ms: int, *, touch: bool = True
    ) -> dict[str, str] | None:
        script = self._load_and_touch if touch else self._load_untouched
        if self._fields_as_json:
            reply = await self._run(script, self.key(key), now_ms, idle_ttl_ms)
            if not reply:
                return None
            lifetimes, encoded = reply
            return loaded_fields(lifetimes, json.loads(encoded.decode("utf-8", "replace")))
        lifetimes, fields = await self._run_then_read(script, self.key(key), now_ms, idle_ttl_ms)
        return loaded_fields(lifetimes, fields) if lifetimes and fields else None

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
        lifetimes_change = create or changes_lifetimes(write, delete)
        mode = 1 if create else 2 if lifetimes_change else 0 if touch else 3
        lifetimes, pairs, delete = save_arguments(write, delete, lifetimes_change)
        args: list[str | int] = [now_ms, idle_ttl_ms, mode, max_bytes or 0, *lifetimes]
        args.append(len(pairs) // 2)
        args += pairs
        args += delete
        saved = await self._run(self._save_if_live, self.key(key), *args)
        if saved < 0:
            raise too_large(-saved, max_bytes or 0)
        return bool(saved)

    async def _run(self, script: Script, key: str, *args: str | int) -> Any:
        """Run a one-key script, sent by SHA, and return its reply.

        On NOSCRIPT (a fresh server, a promoted replica, SCRIPT FLUSH) the script is loaded
        (on every primary, for a cluster) and sent once more. Not redis-py's `Script`, which
        imports inside every call: this runs on every request.
        """
        if self._held is not None:
            command = script.packed.command(key.encode(), [_bytes(arg) for arg in args])
            (reply,) = await self._send_held(script, command, BYTES)
            return reply
        async with self._call:
            try:
                return await self.client.execute_command(*script.sha_call, key, *args, **_RAW)
            except redis_errors.NoScriptError:
                await self.client.script_load(script.source)
                return await self.client.execute_command(*script.sha_call, key, *args, **_RAW)

    async def _run_then_read(
        self, script: Script, key: str, *args: str | int
    ) -> tuple[Any, StoredFields]:
        """`_run`, then HGETALL of the same key, in the same round trip: the script's reply
        (bytes) and the hash's fields (a flat list or a dict, of text or of bytes).

        The fields come straight from Redis: a script that returned them would have Redis
        convert each one into Lua and back, which costs the server more than the script.
        Not atomic with the script, and need not be: a change in between is one the next
        request would see anyway, and a delete in between reads as no fields.
        """
        if self._held is not None:
            encoded = key.encode()
            command = script.packed.command(encoded, [_bytes(arg) for arg in args])
            command += _HGETALL + b"$%d\r\n%b\r\n" % (len(encoded), encoded)
            reply, fields = await self._send_held(script, command, BYTES_THEN_TEXT)
            return reply, fields
        async with self._call:
            for attempt in (1, 2):
                async with self.client.pipeline(transaction=False) as pipe:
                    pipe.execute_command(*script.sha_call, key, *args, **_RAW)
                    pipe.execute_command("HGETALL", key, **_RAW)
                    reply, fields = await pipe.execute(raise_on_error=False)
                if not isinstance(reply, redis_errors.NoScriptError) or attempt == 2:
                    break
                await self.client.script_load(script.source)
            for result in (reply, fields):
                if isinstance(result, Exception):
                    raise result
            return reply, fields

    async def _send_held(
        self, script: Script, command: bytes, replies: tuple[bool, ...]
    ) -> list[Any]:
        """Send a packed command (or several) on the held connections (`HeldConnections`)."""
        assert self._held is not None
        try:
            try:
                return await self._held.call(command, replies)
            except redis_errors.NoScriptError:
                async with self._call:
                    await self.client.script_load(script.source)
                return await self._held.call(command, replies)
        except Exception as exc:
            if (unavailable := unavailable_error(exc)) is not None:
                raise unavailable from exc
            raise

    async def scan(self, cursor: str, count: int) -> tuple[str, list[str]]:
        """A bounded `SCAN` step over the sessions, on each primary of a Cluster in turn
        (`redis_scan`): for operators' tools, never a request."""
        async with self._call:
            return await scan_sessions(self.client, self.prefix, cursor, count)

    def index_key(self, user_id: str) -> str:
        return f"{self.prefix}u:{{{user_id}}}"

    async def delete(self, *keys: str) -> int:
        """One DEL per key, pipelined: the keys sit on different slots (and cluster nodes).

        Not atomic across keys, and need not be: each DEL stands alone, and callers delete
        sessions before touching the index, so a failure part-way leaves only stale index
        entries, which the next listing drops.
        """
        if not keys:
            return 0
        async with self._call, self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.delete(self.key(key))
            return sum(await pipe.execute())

    async def read_records(self, keys: Sequence[str]) -> list[dict[str, str] | None]:
        """One pipelined HMGET per session: one round trip per node holding any of them."""
        if not keys:
            return []
        async with self._call, self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.execute_command("HMGET", self.key(key), *_READ_FIELDS, **_RAW)
            rows = await pipe.execute()
        return [_record(row) for row in rows]

    async def index_add(self, user_id: str, key: str, score_ms: int, ttl_ms: int) -> None:
        await self._run(self._index_add, self.index_key(user_id), key, score_ms, ttl_ms)

    async def index_read(self, user_id: str) -> dict[str, int]:
        async with self._call:
            members = await self.client.zrange(self.index_key(user_id), 0, -1, withscores=True)
        return {_text(member): int(score) for member, score in cast(_Scored, members)}

    async def index_update(
        self, user_id: str, scores: Mapping[str, int], remove: Collection[str]
    ) -> None:
        if not scores and not remove:
            return
        index = self.index_key(user_id)
        # Two idempotent steps on one key, so no MULTI: a failure between them leaves stale
        # entries, which the next listing drops. XX: never re-add a session just removed.
        async with self._call, self.client.pipeline(transaction=False) as pipe:
            if scores:
                pipe.zadd(index, dict(scores), xx=True)
            if remove:
                pipe.zrem(index, *remove)
            await pipe.execute()

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
        length = len(chains[0]) if chains else 0
        hashes = [hash_ for chain in chains for hash_ in chain]
        args: list[str | int] = [now_ms, idle_ttl_ms, presented, grace_ms, length, len(chains)]
        args += [client, MAX_GRACE_REPLAYS]
        args += hashes
        async with self._call:
            reply = await self.client.eval(REFRESH_ROTATE, 1, self.key(key), *args)
        if not reply:
            return 0, 0, None
        outcome, position, encoded = reply
        fields = json.loads(_text(encoded)) if encoded else None
        return int(outcome), int(position), fields if isinstance(fields, dict) else None

    def device_log_key(self, user_id: str) -> str:
        return f"{self.prefix}k:{{{user_id}}}"

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
        tail = json.dumps([label, location])
        place: list[str | int] = [0, ""] if location is None else [1, location]
        args = [now_ms, ttl_ms, max_devices, tail, *place, *hashes]
        key = self.device_log_key(user_id)
        new_device, new_location, first = await self._run(self._device_seen, key, *args)
        return bool(new_device), bool(new_location), bool(first)

    async def devices_read(self, user_id: str) -> list[DeviceEntry]:
        async with self._call:
            fields = await self.client.hgetall(self.device_log_key(user_id))
        entries = (_device_entry(_text(name), _text(value)) for name, value in fields.items())
        return [entry for entry in entries if entry is not None]

    async def devices_forget(self, user_id: str, hashes: Collection[str] | None) -> int:
        key = self.device_log_key(user_id)
        async with self._call:
            if hashes is None:
                return int(await self.client.eval(DEVICES_FORGET_ALL, 1, key))
            if not hashes:
                return 0
            return int(await self.client.hdel(key, *{f"d:{h}" for h in hashes}))

    async def aclose(self) -> None:
        if self._held is not None:
            await self._held.aclose()
        await self.client.aclose()


def _device_entry(name: str, value: str) -> DeviceEntry | None:
    """A `d:` field of a device log as an entry; `None` for other fields and unreadable ones."""
    if not name.startswith("d:"):
        return None
    first, _, rest = value.partition("|")
    last, _, tail = rest.partition("|")
    first_ms, last_ms = stored_int(first), stored_int(last)
    try:
        label, location = json.loads(tail)
    except (ValueError, TypeError):  # not JSON, or not a pair
        return None
    if first_ms is None or last_ms is None or not isinstance(label, str):
        return None
    if location is not None and not isinstance(location, str):
        return None
    return DeviceEntry(name[2:], first_ms, last_ms, label, location)


# What a device list reads of each session: the record's fields and the header (read last).
_READ_FIELDS = (*RECORD_FIELDS, HEADER)
_HGETALL = b"*2\r\n$7\r\nHGETALL\r\n"
# Replies as bytes whatever the client's `decode_responses`: the header is binary.
_RAW: dict[str, Any] = {NEVER_DECODE: []}


def _record(row: list[bytes | None]) -> dict[str, str] | None:
    if row[0] is None:  # no m:created: the session is gone
        return None
    *values, header = row
    fields = {
        name: _text(value)
        for name, value in zip(RECORD_FIELDS, values, strict=True)
        if value is not None
    }
    return read_header(fields, header)


_Scored = list[tuple[bytes | str, float]]


def _bytes(value: str | int) -> bytes:
    return b"%d" % value if type(value) is int else str(value).encode()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
