"""Redis memory per session, measured with `MEMORY USAGE` on a real server.

    python benchmarks/memory.py

A typical session: a signed-in user on desktop Chrome, its device record, and three small keys
(a cart, a theme, a visit count). Prints the bytes of the session hash and of the user's index
entry, the hash's encoding, and the same for an anonymous session with the three keys only.
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
            await browser.post("/login/ada-lovelace@example.com")
        await browser.post("/session", json=KEYS)
    (session_key,) = [key async for key in client.scan_iter(match="sessionward:s:*")]
    figures: dict[str, object] = {
        "session bytes": await client.memory_usage(session_key, samples=0),
        "encoding": (await client.object("encoding", session_key)).decode(),
        "fields": await client.hlen(session_key),
    }
    if signed_in:
        index_key = "sessionward:u:{ada-lovelace@example.com}"
        figures["user index bytes (one session)"] = await client.memory_usage(index_key)
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
