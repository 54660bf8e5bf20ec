"""Many sessions written straight into Redis in `RedisStore`'s layout (see docs/operations.md,
"Layout"): a pipeline of raw HSET and PEXPIRE, thousands a round trip, for the tests and the
benchmark of `sessionward stats` (benchmarks/cli_stats.py)."""

from __future__ import annotations

import hashlib
from typing import Any

from sessionward.record import (
    AGENT,
    BROWSER,
    CREATED,
    EXPIRES,
    FIRST_IP,
    HARDWARE,
    IDLE,
    IP,
    KIND,
    LABEL,
    SEEN,
    SYSTEM,
    TRANSPORT,
    USER,
)
from sessionward.stores.redis_header import HEADER, LAYOUT

DAY_MS = 24 * 3600 * 1000
# (label, kind, browser, system, hardware) as `record.device_to_fields` packs them.
DEVICES = (
    ("Chrome 131 on macOS", "desktop", "Chrome\x1f131", "macOS\x1f10.15.7", "Mac\x1fApple\x1fMac"),
    ("Safari on iPhone", "mobile", "Safari\x1f17", "iOS\x1f17.5", "iPhone\x1fApple\x1fiPhone"),
    ("Firefox 133 on Windows", "desktop", "Firefox\x1f133", "Windows\x1f10", "Other\x1f\x1f"),
    ("Chrome 131 on Android", "mobile", "Chrome\x1f131", "Android\x1f14", "K\x1fGeneric\x1fK"),
)


def session_key(number: int) -> str:
    return hashlib.sha256(b"session %d" % number).hexdigest()


def session_fields(number: int, now_ms: int) -> dict[str, str | bytes]:
    """Session `number`: every third anonymous, every fifth a bearer client, last seen up to
    ten days ago, with a fourteen-day idle TTL and a thirty-day lifetime."""
    seen = now_ms - (number * 7919) % (10 * DAY_MS)
    created = seen - DAY_MS
    expires, idle = created + 30 * DAY_MS, 14 * DAY_MS
    label, kind, browser, system, hardware = DEVICES[number % len(DEVICES)]
    fields: dict[str, str | bytes] = {
        HEADER: LAYOUT.pack(seen, expires, idle, 12),
        CREATED: str(created),
        SEEN: str(seen),
        EXPIRES: str(expires),
        IDLE: str(idle),
        TRANSPORT: "bearer" if number % 5 == 0 else "cookie",
        IP: f"127.0.{number // 256 % 256}.{number % 256}",
        FIRST_IP: "127.0.0.1",
        AGENT: f"{number % len(DEVICES):016x}",
        LABEL: label,
        KIND: kind,
        BROWSER: browser,
        SYSTEM: system,
        HARDWARE: hardware,
        "d:cart": "[1, 2]",
    }
    if number % 3:
        fields[USER] = f"user-{number % 1000}"
    return fields


async def write_sessions(
    client: Any, count: int, now_ms: int, *, prefix: str = "sessionward:", batch: int = 5000
) -> None:
    """Write sessions 0 to `count - 1`, `batch` of them a pipelined round trip (per node, on a
    Cluster), each with the TTL its deadlines give it."""
    for start in range(0, count, batch):
        async with client.pipeline(transaction=False) as pipe:
            for number in range(start, min(start + batch, count)):
                fields = session_fields(number, now_ms)
                key = f"{prefix}s:{{{session_key(number)}}}"
                pipe.hset(key, mapping=fields)
                seen, expires = int(fields[SEEN]), int(fields[EXPIRES])
                pipe.pexpire(key, min(seen + 14 * DAY_MS, expires) - now_ms)
            await pipe.execute()


def expected(count: int) -> dict[str, Any]:
    """What `sessionward stats` should count of `write_sessions(client, count, ...)`."""
    bearer = len(range(0, count, 5))
    anonymous = len(range(0, count, 3))
    mobile = sum(1 for number in range(count) if number % len(DEVICES) in (1, 3))
    return {
        "live": count,
        "signed_in": count - anonymous,
        "transports": {"bearer": bearer, "cookie": count - bearer},
        "kinds": {"mobile": mobile, "desktop": count - mobile},
    }
