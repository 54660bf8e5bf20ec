"""A lean HTTP/1.1 client for `load.py`: one keep-alive connection and one cookie jar a device.

httpx spends several times the server's CPU on each request; on a machine of two cores the
load generator then measures itself. This client writes each request in one buffer and reads
only what the load checks (status, `Set-Cookie`, the body by `Content-Length`), so most of
the machine is left to the app and Redis. It speaks to our own loopback app only: no TLS, no
chunked bodies, no redirects.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

_TIMEOUT = 10.0  # seconds: a request that takes longer is an error, never a hang


class Response:
    __slots__ = ("body", "status_code")

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class LoadClient:
    """A device: requests one at a time on one connection, re-opened after an error."""

    def __init__(self, base_url: str, timeout: float = _TIMEOUT) -> None:
        host, _, port = base_url.removeprefix("http://").rstrip("/").partition(":")
        self.host, self.port, self.timeout = host, int(port or 80), timeout
        self.cookies: dict[str, str] = {}
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, path: str, json: object = None) -> Response:
        try:
            return await asyncio.wait_for(self._exchange(method, path, json), self.timeout)
        except BaseException:
            await self.aclose()  # a half-read reply must not be read as the next one's
            raise

    async def get(self, path: str) -> Response:
        return await self.request("GET", path)

    async def aclose(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()

    async def _exchange(self, method: str, path: str, payload: object) -> Response:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        writer.write(self._request_bytes(method, path, payload))
        head = await reader.readuntil(b"\r\n\r\n")
        status, length, close = self._read_head(head)
        body = await reader.readexactly(length)
        if close:
            await self.aclose()
        return Response(status, body)

    def _request_bytes(self, method: str, path: str, payload: object) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        if self.cookies:
            lines.append("cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        body = b""
        if payload is not None:
            body = json.dumps(payload).encode()
            lines.append("content-type: application/json")
        if payload is not None or method == "POST":
            lines.append(f"content-length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def _read_head(self, head: bytes) -> tuple[int, int, bool]:
        status_line, *fields = head.decode("latin-1").split("\r\n")
        status, length, close = int(status_line.split(" ", 2)[1]), 0, False
        for field in fields:
            name, _, value = field.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "set-cookie":
                self._set_cookie(value)
            elif name == "connection":
                close = value.lower() == "close"
        return status, length, close

    def _set_cookie(self, header: str) -> None:
        pair, *attributes = header.split(";")
        name, _, value = pair.strip().partition("=")
        expired = False
        for attribute in attributes:
            key, _, argument = attribute.strip().lower().partition("=")
            expired |= (key == "max-age" and argument.strip() == "0") or (
                key == "expires" and "1970" in argument
            )
        if expired:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value


class Pace:
    """Spaces requests `1 / rate` apart across every coroutine that takes a turn: an offered
    rate (open loop), so latency is measured below saturation rather than in its queue."""

    def __init__(self, rate: float) -> None:
        self.interval, self.next = 1.0 / rate, time.monotonic()

    async def turn(self) -> None:
        self.next = max(self.next + self.interval, time.monotonic() - 1.0)
        await asyncio.sleep(max(0.0, self.next - time.monotonic()))
