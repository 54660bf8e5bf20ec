"""Session stores: the `Store` protocol and its in-memory and Redis implementations.

`RedisStore` (and redis-py with it) is imported when first used, so that an app on a
`MemoryStore` never loads redis-py (PEP 562).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .base import DeviceEntry, Store
from .memory import MemoryStore

if TYPE_CHECKING:
    from .redis import RedisStore

__all__ = ["DeviceEntry", "MemoryStore", "RedisStore", "Store"]

# Submodules that importing this package used to import, so were attributes of it.
_SUBMODULES = frozenset(
    {"instrumented", "redis", "redis_connections", "redis_header", "redis_scripts"}
)


def __getattr__(name: str) -> Any:
    value: Any
    if name == "RedisStore":
        value = _submodule("redis").RedisStore
    elif name in _SUBMODULES:
        value = _submodule(name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _submodule(name: str) -> Any:
    qualified = f"{__name__}.{name}"
    __import__(qualified)  # as `import` does, so that `python -X importtime` reports it
    return sys.modules[qualified]
