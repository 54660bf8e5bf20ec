"""`HeldConnections`: the connections `RedisStore` keeps for the scripts every request runs.

A request's one round trip through `Redis.execute_command` pays for more than the round trip:
a pool checkout and release, a packing of the command argument by argument, and, with a
socket timeout set, an `asyncio.wait_for` task around each send. Those cost more client
instructions than reading and parsing the reply. Here the store holds its connections (made
by redis-py, from the client's own pool settings) in a free list, sends each script as bytes
built mostly in advance, and times the whole round trip under one `asyncio.timeout`: one
timer instead of a task, and the same 503 within the client's socket timeout when Redis is
down or stalled. Only public redis-py API is used: the pool's `connection_class` and
`connection_kwargs`, and the connection's `send_packed_command`, `read_response`,
`disconnect` and `retry`.

It serves `redis.asyncio.Redis` on a plain or blocking `ConnectionPool`; a cluster, Sentinel
or another pool keeps redis-py's own path (see `HeldConnections.serve`).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection

if sys.version_info >= (3, 11):
    from asyncio import timeout as time_limit
else:  # pragma: no cover - redis-py depends on async-timeout before 3.11.3
    from async_timeout import (  # type: ignore[import-not-found, no-redef, unused-ignore]
        timeout as time_limit,
    )


# What `HeldConnections.call` reads back: one reply each, as text (True) or bytes (False).
BYTES = (False,)
BYTES_THEN_TEXT = (False, True)


class HeldConnections:
    """A free list of connections to one Redis server, and one round trip on them."""

    __slots__ = ("_free", "_loop", "_make", "_slots", "limit", "timeout")

    def __init__(self, pool: ConnectionPool) -> None:
        kwargs = dict(pool.connection_kwargs)
        # The client's socket timeout applies to the whole round trip here, so each
        # connection is made without its own (which would add the wait_for task per send).
        self.timeout: float | None = pool.connection_class(**kwargs).socket_timeout
        kwargs["socket_timeout"] = None
        # Text replies are decoded by the parser (in C with hiredis), bytes that are not
        # UTF-8 as U+FFFD as everywhere else; a reply asked for as bytes is left alone.
        kwargs.update(decode_responses=True, encoding="utf-8", encoding_errors="replace")
        connection_class = pool.connection_class

        def make() -> AbstractConnection:
            return connection_class(**kwargs)

        self._make = make
        bounded = getattr(pool, "max_connections", 2**31)
        self.limit: int | None = bounded if bounded < 2**20 else None
        self._free: list[AbstractConnection] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None

    @staticmethod
    def serve(client: object) -> HeldConnections | None:
        """Connections for `client`, or `None` when redis-py's own path must serve it.

        Only a plain `Redis` on redis-py's own pools: a Sentinel pool finds its server anew
        on each connection, a cluster routes by slot, and another pool or client class may
        do anything on each command.
        """
        if type(client) is not Redis:
            return None
        pool = client.connection_pool
        if type(pool) not in (ConnectionPool, BlockingConnectionPool):
            return None
        return HeldConnections(pool)

    async def call(self, command: bytes, replies: tuple[bool, ...] = BYTES) -> list[Any]:
        """Send packed commands and return their replies, one for each of `replies`: text
        where it says `True`, else bytes (`BYTES`, `BYTES_THEN_TEXT`).

        Retried as the client's `retry` says on a dropped or timed-out connection, which is
        closed first. A reply that is an error (`ResponseError`) is raised once every reply
        has been read, so the connection is free for the next call.
        """
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._move_to(loop)
        slots = self._slots
        if slots is not None:
            await slots.acquire()
        free = self._free
        connection = free.pop() if free else self._make()
        try:
            reply = await connection.retry.call_with_retry(
                lambda: self._round_trip(connection, command, replies), _closed_already
            )
        except redis_errors.ResponseError:
            free.append(connection)
            raise
        finally:
            if slots is not None:
                slots.release()
        free.append(connection)
        return reply

    async def _round_trip(
        self, connection: AbstractConnection, command: bytes, replies: tuple[bool, ...]
    ) -> list[Any]:
        try:
            async with time_limit(self.timeout):
                await connection.send_packed_command(command, check_health=False)
                return await _read(connection, replies)
        except redis_errors.ResponseError:
            raise
        except asyncio.TimeoutError:
            await connection.disconnect(nowait=True)
            raise redis_errors.TimeoutError(
                f"Redis did not answer within {self.timeout} s"
            ) from None
        except BaseException:  # a connection left mid-command cannot serve the next one
            await connection.disconnect(nowait=True)
            raise

    def _move_to(self, loop: asyncio.AbstractEventLoop) -> None:
        """Forget connections made in another event loop (Starlette's `TestClient` runs one
        per `with` block): their streams belong to it."""
        self._free.clear()
        self._loop = loop
        self._slots = asyncio.Semaphore(self.limit) if self.limit is not None else None

    async def aclose(self) -> None:
        free, self._free = self._free, []
        for connection in free:
            await connection.disconnect()


async def _read(connection: AbstractConnection, texts: tuple[bool, ...]) -> list[Any]:
    """A reply for each of `texts`; the first error among them raised only after the last
    is read."""
    replies, error = [], None
    for text in texts:
        try:
            replies.append(await connection.read_response(disable_decoding=not text))
        except redis_errors.ResponseError as exc:
            replies.append(None)
            error = error or exc
    if error is not None:
        raise error
    return replies


async def _closed_already(error: Exception) -> None:
    """A failed round trip closed its connection itself; the retry reconnects."""


class PackedScript:
    """EVALSHA of one script on one key, its fixed part packed once."""

    __slots__ = ("_head",)

    def __init__(self, sha: str) -> None:
        self._head = b"$7\r\nEVALSHA\r\n$40\r\n%b\r\n$1\r\n1\r\n" % sha.encode("ascii")

    def command(self, key: bytes, arguments: list[bytes]) -> bytes:
        parts = [b"*%d\r\n" % (4 + len(arguments)), self._head, b"$%d\r\n%b\r\n" % (len(key), key)]
        parts += [b"$%d\r\n%b\r\n" % (len(part), part) for part in arguments]
        return b"".join(parts)
