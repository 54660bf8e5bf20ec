"""`InstrumentedStore`: any store, its calls counted, timed and traced (see `telemetry`).

`SessionConfig` wraps its store in one when telemetry is on, so every store call, whoever
makes it, is measured in this one place. A `RedisStore` call gets a CLIENT span and a
duration; a `MemoryStore` call gets neither: it is a dict operation in this process that
takes a µs or two, less than the span would, and a trace of it would say nothing a profiler
does not. Other stores are timed and traced like Redis, without `db.system.name`.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Collection, Mapping, Sequence
from time import perf_counter
from typing import Any, TypeVar

from ..exceptions import StoreUnavailable
from ..telemetry import Telemetry
from .base import DeviceEntry, Store
from .memory import MemoryStore

T = TypeVar("T")
_HIT, _MISS = ("hit",), ("miss",)
_SAVED, _ENDED = ("saved",), ("ended",)
_OPERATIONS = (
    "load",
    "save",
    "delete",
    "read_records",
    "index_add",
    "index_read",
    "index_update",
    "device_seen",
    "devices_read",
    "devices_forget",
    "refresh",
)


class InstrumentedStore:
    """A `Store` that passes every call to `wrapped` and records what it did and took."""

    def __init__(self, wrapped: Store, telemetry: Telemetry) -> None:
        self.wrapped = wrapped
        self.telemetry = telemetry
        self._timed = not isinstance(wrapped, MemoryStore)
        system = {"db.system.name": "redis"} if _is_redis_store(wrapped) else {}
        self._attributes = {op: {"db.operation.name": op, **system} for op in _OPERATIONS}

    def __getattr__(self, name: str) -> Any:
        """The wrapped store's own attributes (`client`, `prefix`, `key()`, ...)."""
        return getattr(self.wrapped, name)

    async def load(
        self, key: str, now_ms: int, idle_ttl_ms: int, *, touch: bool = True
    ) -> dict[str, str] | None:
        if touch:  # passed only when False: a custom store may not take it
            call = self.wrapped.load(key, now_ms, idle_ttl_ms)
        else:
            loader: Any = self.wrapped.load
            call = loader(key, now_ms, idle_ttl_ms, touch=False)
        # A MemoryStore call is awaited as it is: it cannot fail for an outage, and an
        # extra coroutine would cost more than the rest of the measuring.
        fields = await (self._measure("load", call) if self._timed else call)
        self.telemetry.loaded.add(_HIT if fields is not None else _MISS)
        return fields

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
        if touch:  # passed only when False, as to `load`
            call = self.wrapped.save(
                key, write, delete, now_ms, idle_ttl_ms, create=create, max_bytes=max_bytes
            )
        else:
            saver: Any = self.wrapped.save
            call = saver(
                key,
                write,
                delete,
                now_ms,
                idle_ttl_ms,
                create=create,
                max_bytes=max_bytes,
                touch=False,
            )
        saved = await (self._measure("save", call) if self._timed else call)
        telemetry = self.telemetry
        if create:
            if saved:
                telemetry.created.add()
        elif saved:
            telemetry.saved.add(_SAVED)
            telemetry.fields_written.add(amount=len(write) + len(delete))
        else:  # ended meanwhile: the changes were dropped
            telemetry.saved.add(_ENDED)
        return saved

    async def delete(self, *keys: str) -> int | None:
        return await self._measure("delete", self.wrapped.delete(*keys))

    async def read_records(self, keys: Sequence[str]) -> list[dict[str, str] | None]:
        return await self._measure("read_records", self.wrapped.read_records(keys))

    async def index_add(self, user_id: str, key: str, score_ms: int, ttl_ms: int) -> None:
        await self._measure("index_add", self.wrapped.index_add(user_id, key, score_ms, ttl_ms))

    async def index_read(self, user_id: str) -> dict[str, int]:
        return await self._measure("index_read", self.wrapped.index_read(user_id))

    async def index_update(
        self, user_id: str, scores: Mapping[str, int], remove: Collection[str]
    ) -> None:
        call = self.wrapped.index_update(user_id, scores, remove)
        await self._measure("index_update", call)

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
        call = self.wrapped.device_seen(
            user_id, hashes, label, location, now_ms, ttl_ms, max_devices
        )
        return await self._measure("device_seen", call)

    async def devices_read(self, user_id: str) -> list[DeviceEntry]:
        return await self._measure("devices_read", self.wrapped.devices_read(user_id))

    async def devices_forget(self, user_id: str, hashes: Collection[str] | None) -> int:
        return await self._measure("devices_forget", self.wrapped.devices_forget(user_id, hashes))

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
        call = self.wrapped.refresh(key, now_ms, idle_ttl_ms, presented, chains, grace_ms, client)
        return await self._measure("refresh", call)

    async def aclose(self) -> None:
        await self.wrapped.aclose()

    async def _measure(self, operation: str, call: Awaitable[T]) -> T:
        """Await one store call: count an outage; time and trace it unless it is in memory."""
        if not self._timed:
            try:
                return await call
            except StoreUnavailable as exc:
                self._count_error(operation, exc)
                raise
        telemetry = self.telemetry
        attributes = self._attributes[operation]
        span = telemetry.start_span(operation, attributes)
        started = perf_counter()
        try:
            result = await call
        except Exception as exc:
            error_type = self._count_error(operation, exc)
            telemetry.duration.record(
                perf_counter() - started, {**attributes, "error.type": error_type}
            )
            telemetry.failed(span, error_type)
            raise
        finally:
            if span is not None:
                span.end()
        telemetry.duration.record(perf_counter() - started, attributes)
        return result

    def _count_error(self, operation: str, exc: Exception) -> str:
        """The error's type for `error.type`: the cause of an outage (`ConnectionError`)."""
        cause = exc.__cause__ if isinstance(exc, StoreUnavailable) else None
        error_type = type(cause if cause is not None else exc).__name__
        if isinstance(exc, StoreUnavailable):
            self.telemetry.store_errors.add((operation, error_type))
        return error_type


def _is_redis_store(store: Store) -> bool:
    """Whether `store` is a `RedisStore`, without importing redis-py to find out: if its
    module was never imported, no store can be one."""
    module = sys.modules.get(f"{__package__}.redis")
    return module is not None and isinstance(store, module.RedisStore)
