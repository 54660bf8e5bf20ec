"""How `RedisStore` calls redis-py: which failures mean the store is down (a 503, never a
500), how many calls may be in flight, and scripts sent by SHA.
"""

from __future__ import annotations

import asyncio
import hashlib
from types import TracebackType
from typing import TypeGuard

from redis import exceptions as redis_errors
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.connection import DefaultParser
from redis.utils import HIREDIS_AVAILABLE

from ..exceptions import StoreUnavailable
from .redis_connections import PackedScript

# What "the store is unavailable" means: the request gets a 503, not a 500. Beyond a dead or
# slow server this covers a cluster in flux: CLUSTERDOWN and a primary failing over
# (ClusterDownError, MasterDownError), TRYAGAIN during resharding, a redirect storm that
# exhausted the client's redirect budget (ClusterError "TTL exhausted", or a raw MOVED/ASK),
# and RedisClusterException, which redis-py raises when no startup node answers, the slots are
# not all covered, or the nodes disagree on the slot map. Every call of the store names keys
# of one slot each, so a RedisClusterException there means topology, not misuse. A full connection
# pool (MaxConnectionsError) is a ConnectionError too, though `RedisStore` queues rather than
# hitting it (see `pool_limit`).
_UNAVAILABLE: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterError,  # incl. ClusterDownError, MasterDownError, "TTL exhausted"
    redis_errors.TryAgainError,
    redis_errors.AskError,  # and MovedError, its subclass
    redis_errors.ReadOnlyError,  # a primary just demoted to replica (Sentinel or cluster)
    redis_errors.OutOfMemoryError,  # maxmemory reached with noeviction: writes fail
    redis_errors.RedisClusterException,  # incl. SlotNotCoveredError
)


def pool_limit(client: Redis | RedisCluster) -> int | None:
    """How many store calls may be in flight before the client's pool runs out, if it can.

    `RedisCluster` gives each node a fixed pool (100 connections by default in redis-py 8)
    and raises MaxConnectionsError at once when it is exhausted, where `Redis`'s default pool
    just grows. One hot session lives on one node, so a burst of concurrent requests on it
    would turn into 503s. Each store call holds at most one connection per node, so capping
    the calls in flight at the pool size makes the excess wait its turn instead. `None`: the
    pool is unbounded (2**31), and no cap is needed.
    """
    if isinstance(client, RedisCluster):
        nodes = list(client.nodes_manager.startup_nodes.values()) or client.get_nodes()
        limits = [getattr(node, "max_connections", None) for node in nodes]
    else:
        limits = [getattr(client.connection_pool, "max_connections", None)]
    known = [limit for limit in limits if isinstance(limit, int) and limit > 0]
    if not known:
        return 100  # cannot tell: assume redis-py 8's per-node default
    return min(known) if min(known) < 2**20 else None


class Call:
    """`async with self._call:` around every Redis call of the store.

    Waits for a free slot when the pool is bounded (see `pool_limit`) and turns an outage
    into `StoreUnavailable`. It also notices a new event loop: Starlette's `TestClient` runs
    one per `with` block, and redis-py's connections (and asyncio's semaphores) belong to the
    loop that made them, so those of a finished loop are dropped, not reused ("Event loop is
    closed"). A class, not `@asynccontextmanager`: it runs on every request.
    """

    __slots__ = ("_client", "_limit", "_loop", "slots")

    def __init__(self, client: Redis | RedisCluster, limit: int | None) -> None:
        self._client, self._limit = client, limit
        self._loop: asyncio.AbstractEventLoop | None = None
        self.slots: asyncio.Semaphore | None = None

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._move_to(loop)
        if self.slots is not None:
            await self.slots.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.slots is not None:
            self.slots.release()
        if (unavailable := unavailable_error(exc)) is not None:
            raise unavailable from exc

    def _move_to(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is not None:
            _drop_connections(self._client)
        self._loop = loop
        self.slots = asyncio.Semaphore(self._limit) if self._limit is not None else None


def _drop_connections(client: Redis | RedisCluster) -> None:
    """Forget connections made in another event loop; new ones are made as needed."""
    if isinstance(client, RedisCluster):
        for node in client.get_nodes():  # redis-py keeps a node's connections in these two
            getattr(node, "_connections", []).clear()
            getattr(node, "_free", []).clear()
    else:
        client.connection_pool.reset()  # type: ignore[no-untyped-call]


def parses_in_c(client: Redis | RedisCluster) -> bool:
    """Whether the client reads replies with hiredis: redis-py's default when it is
    installed, unless the app chose another parser."""
    if not HIREDIS_AVAILABLE:
        return False
    if not isinstance(client, Redis):
        return True  # a cluster's nodes take redis-py's default
    parser = client.connection_pool.connection_kwargs.get("parser_class", DefaultParser)
    return parser is DefaultParser or "Hiredis" in getattr(parser, "__name__", "")


class Script:
    """A one-key Lua script, sent by SHA (see `RedisStore._run`)."""

    __slots__ = ("packed", "sha", "sha_call", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8"), usedforsecurity=False).hexdigest()
        self.sha_call = ("EVALSHA", self.sha, 1)
        self.packed = PackedScript(self.sha)


# Error codes of a server that is up but refuses to write for now: answer 503, not 500.
_REFUSING = frozenset({"NOREPLICAS", "MISCONF", "BUSY", "MASTERDOWN", "OOM"})


def unavailable_error(exc: BaseException | None) -> StoreUnavailable | None:
    """The `StoreUnavailable` an outage becomes, or `None` for other errors."""
    if not (isinstance(exc, _UNAVAILABLE) or refuses_writes(exc)):
        return None
    return StoreUnavailable(f"Redis is unavailable: {_describe(exc)}")


def refuses_writes(exc: BaseException | None) -> TypeGuard[redis_errors.ResponseError]:
    if not isinstance(exc, redis_errors.ResponseError):
        return False
    return str(exc).split(" ", 1)[0] in _REFUSING


def _describe(exc: Exception) -> str:
    """The class and the message: some redis errors (MaxConnectionsError) have no message."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
