"""Redis memory per session, measured with `MEMORY USAGE` on a real server.

    python benchmarks/memory.py

A typical session: a signed-in user on desktop Chrome, its device record, and three small keys
(a cart, a theme, a visit count). Prints the bytes of the session hash, its encoding and field
count, the same once the fields kept only for 0.2 (`m:seen`, `m:expires`, `m:idle`, which the
header `m:h` also holds) are gone, and the user's index and known-device log; then an
anonymous session with the three keys only.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import redis.asyncio as redis_asyncio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sessionward import RedisStore  # noqa: E402
from tests.apps import build_app  # noqa: E402
from tests.redis_server import start_server  # noqa: E402

CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
KEYS = {"cart": [1042, 2203, 77], "theme": "dark", "visits": 3}
USER = "ada-lovelace@example.com"
COMPATIBILITY_FIELDS = ("m:seen", "m:expires", "m:idle")  # kept for 0.2 until 0.4


async def measure(url: str, signed_in: bool) -> dict[str, object]:
    client = redis_asyncio.Redis.from_url(url)
    await client.flushdb()
    app = build_app(RedisStore(client))
    transport = httpx.ASGITransport(app=app)
    headers = {"user-agent": CHROME}
    async with httpx.AsyncClient(
        transport=transport, base_url="https://testserver", headers=headers
    ) as browser:
        if signed_in:
            await browser.post(f"/login/{USER}")
        await browser.post("/session", json=KEYS)
        await browser.get("/session")  # a read: the touch rewrites the header
    (session_key,) = [key async for key in client.scan_iter(match="sessionward:s:*")]
    figures: dict[str, object] = {
        "session bytes": await client.memory_usage(session_key, samples=0),
        "encoding": (await client.object("encoding", session_key)).decode(),
        "fields": await client.hlen(session_key),
    }
    if signed_in:
        index = await client.memory_usage(f"sessionward:u:{{{USER}}}", samples=0)
        devices = await client.memory_usage(f"sessionward:k:{{{USER}}}", samples=0)
        figures["user index bytes (one session)"] = index
        figures["known-device log bytes (one device)"] = devices
    await client.hdel(session_key, *COMPATIBILITY_FIELDS)
    figures["session bytes without the 0.2 fields"] = await client.memory_usage(
        session_key, samples=0
    )
    await client.aclose()
    return figures


def main() -> None:
    server = None
    url = os.environ.get("REDIS_URL")
    if url is None:
        server = start_server()
        url = server.url
    try:
        for signed_in in (True, False):
            kind = "signed-in session with device" if signed_in else "anonymous session"
            print(f"{kind}: {asyncio.run(measure(url, signed_in))}")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
