"""`RedisStore`: sessions as Redis hashes, loaded and touched in one round trip.

Layout: `<prefix>s:{<sha256 of the session id>}` is a hash with a `d:<key>` field per session
key and `m:<name>` meta fields; `<prefix>u:{<user id>}` is a sorted set of a user's session
hashes scored by last activity. The `{...}` hash tags keep each script on one cluster slot.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from ..exceptions import StoreUnavailable
from ..record import RECORD_FIELDS

# KEYS[1]: the session hash. ARGV[1]: now (ms). ARGV[2]: idle TTL (ms).
# Returns the fields as a flat [name, value, ...] list, already touched: m:seen is now, m:hits
# is one more, and the key expires at min(now + idle TTL, m:expires). Returns nil, deleting the
# key, when the session is idle too long, past m:expires, or lacks readable m:seen/m:expires.
LOAD_AND_TOUCH = """
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return nil end
local now, idle = tonumber(ARGV[1]), tonumber(ARGV[2])
local seen, expires, hits_at
for i = 1, #fields, 2 do
  local name = fields[i]
  if name == 'm:seen' then seen = tonumber(fields[i + 1]); fields[i + 1] = ARGV[1]
  elseif name == 'm:expires' then expires = tonumber(fields[i + 1])
  elseif name == 'm:hits' then hits_at = i + 1 end
end
if not seen or not expires or now >= expires or now >= seen + idle then
  redis.call('DEL', KEYS[1])
  return nil
end
local hits = 1
if hits_at then
  hits = (tonumber(fields[hits_at]) or 0) + 1
  fields[hits_at] = tostring(hits)
else
  fields[#fields + 1] = 'm:hits'
  fields[#fields + 1] = '1'
end
redis.call('HSET', KEYS[1], 'm:seen', ARGV[1], 'm:hits', hits)
redis.call('PEXPIRE', KEYS[1], math.min(idle, expires - now))
return fields
"""

# KEYS[1]: the session hash. ARGV[1]: now (ms). ARGV[2]: idle TTL (ms). ARGV[3]: '1' to create
# a new session, '0' to change a live one. ARGV[4]: n, the number of fields to write; then n
# name/value pairs to write; then the names of fields to delete.
# Returns 1 when saved; 0 when refused: creating over an existing key, or changing a session
# that is gone or past m:expires (so a slow request cannot bring a logged-out session back).
SAVE_IF_LIVE = """
local key = KEYS[1]
local now, idle = tonumber(ARGV[1]), tonumber(ARGV[2])
if ARGV[3] == '1' then
  if redis.call('EXISTS', key) == 1 then return 0 end
else
  local expires = tonumber(redis.call('HGET', key, 'm:expires'))
  if not expires or now >= expires then return 0 end
end
local last_write = 4 + 2 * tonumber(ARGV[4])
for i = 5, last_write, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
for i = last_write + 1, #ARGV do redis.call('HDEL', key, ARGV[i]) end
local expires = tonumber(redis.call('HGET', key, 'm:expires'))
if not expires or now >= expires then
  redis.call('DEL', key)
  return 0
end
redis.call('PEXPIRE', key, math.min(idle, expires - now))
return 1
"""

_UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    redis_errors.ReadOnlyError,
    redis_errors.MasterDownError,
)


@contextmanager
def _unavailable_as_store_error() -> Iterator[None]:
    try:
        yield
    except _UNAVAILABLE as exc:
        raise StoreUnavailable(f"Redis is unavailable: {exc}") from exc


class RedisStore:
    """Sessions in Redis (`redis.asyncio.Redis` or `RedisCluster`), one hash each."""

    def __init__(self, client: Redis | RedisCluster, *, prefix: str = "sessionward:") -> None:
        self.client = client
        self.prefix = prefix
        self._load_and_touch = client.register_script(LOAD_AND_TOUCH)
        self._save_if_live = client.register_script(SAVE_IF_LIVE)

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
        return f"{self.prefix}s:{{{session_key}}}"

    async def load(self, key: str, now_ms: int, idle_ttl_ms: int) -> dict[str, str] | None:
        with _unavailable_as_store_error():
            flat = await self._load_and_touch(keys=[self.key(key)], args=[now_ms, idle_ttl_ms])
        if not flat:
            return None
        return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}

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
        args: list[str | int] = [now_ms, idle_ttl_ms, 1 if create else 0, len(write)]
        for name, value in write.items():
            args += (name, value)
        args += delete
        with _unavailable_as_store_error():
            saved = await self._save_if_live(keys=[self.key(key)], args=args)
        return bool(saved)

    def index_key(self, user_id: str) -> str:
        return f"{self.prefix}u:{{{user_id}}}"

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        with _unavailable_as_store_error():
            async with self.client.pipeline(transaction=False) as pipe:
                for key in keys:  # one DEL each: in a cluster the keys live on different slots
                    pipe.delete(self.key(key))
                await pipe.execute()

    async def read_records(self, keys: Sequence[str]) -> list[dict[str, str] | None]:
        if not keys:
            return []
        with _unavailable_as_store_error():
            async with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hmget(self.key(key), RECORD_FIELDS)
                rows = await pipe.execute()
        return [_record(row) for row in rows]

    async def index_add(self, user_id: str, key: str, score_ms: int, ttl_ms: int) -> None:
        index = self.index_key(user_id)
        with _unavailable_as_store_error():
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.zadd(index, {key: score_ms})
                pipe.pexpire(index, ttl_ms)
                await pipe.execute()

    async def index_read(self, user_id: str) -> list[str]:
        with _unavailable_as_store_error():
            members = await self.client.zrange(self.index_key(user_id), 0, -1)
        return [_text(member) for member in members if isinstance(member, (bytes, str))]

    async def index_update(
        self, user_id: str, scores: Mapping[str, int], remove: Collection[str]
    ) -> None:
        if not scores and not remove:
            return
        index = self.index_key(user_id)
        with _unavailable_as_store_error():
            async with self.client.pipeline(transaction=True) as pipe:
                if scores:
                    pipe.zadd(index, dict(scores), xx=True)  # never re-add a removed session
                if remove:
                    pipe.zrem(index, *remove)
                await pipe.execute()

    async def aclose(self) -> None:
        await self.client.aclose()


def _record(row: list[bytes | str | None]) -> dict[str, str] | None:
    if row[0] is None:  # no m:created: the session is gone
        return None
    return {
        name: _text(value)
        for name, value in zip(RECORD_FIELDS, row, strict=True)
        if value is not None
    }


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
