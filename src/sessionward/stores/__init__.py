"""Session stores: the `Store` protocol and its in-memory and Redis implementations."""

from .base import DeviceEntry, Store
from .memory import MemoryStore
from .redis import RedisStore

__all__ = ["DeviceEntry", "MemoryStore", "RedisStore", "Store"]
