"""Session stores: the `Store` protocol and its in-memory and Redis implementations."""

from .base import Store
from .memory import MemoryStore
from .redis import RedisStore

__all__ = ["MemoryStore", "RedisStore", "Store"]
