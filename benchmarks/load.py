"""Load and soak: examples/app.py under uvicorn with Redis, driven by many cookie-jar clients.

    python benchmarks/load.py                  # 60 s, 50 users with 2 devices each
    python benchmarks/load.py --seconds 10 --users 10

Each simulated user has two devices (two cookie jars). In a loop each device signs in, reads
and writes its session and lists its devices; now and then the first device signs the other
out ("sign out all other devices"), and the second signs in again. Everything runs on loopback:
a redis-server and the app are started here (or REDIS_URL is used) and stopped by pid.

Afterwards it checks that every device's last acknowledged write is still in its session (no
lost data) and that Redis holds no key without a TTL, then prints requests/s, p50/p99 latency
and errors. The request loops are bounded by --seconds and stop by themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.redis_server import RedisServer, free_port, start_server  # noqa: E402

SECRET = "load-test-secret-key-0123456789abcdef"


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def check(self, held: bool, kind: str) -> None:
        if not held:
            self.error(kind)


@dataclass
class Device:
    client: httpx.AsyncClient
    written: int | None = None  # the last value the server acknowledged


async def timed(tally: Tally, request: Awaitable[httpx.Response]) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = await request
    except httpx.HTTPError as exc:
        tally.error(type(exc).__name__)
        return None
    tally.latencies.append(time.perf_counter() - started)
    if response.status_code >= 400:
        tally.error(f"HTTP {response.status_code}")
    return response


async def device_step(device: Device, name: str, step: int, tally: Tally) -> None:
    client = device.client
    if device.written is None:
        form = {"name": name, "password": f"{name} password", "remember": "on"}
        origin = {"origin": str(client.base_url).rstrip("/")}
        await timed(tally, client.post("/login", data=form, headers=origin))
    read = await timed(tally, client.get("/session"))
    acknowledged = device.written
    if read is not None and read.status_code == 200 and acknowledged is not None:
        tally.check(read.json().get("counter") == acknowledged, "lost write")
    written = await timed(tally, client.post("/session", json={"counter": step}))
    if written is not None and written.status_code == 200:
        device.written = step
    await timed(tally, client.get("/account/sessions"))


async def user_loop(base_url: str, name: str, deadline: float, tally: Tally) -> list[Device]:
    origin = {"origin": base_url}
    devices = [Device(httpx.AsyncClient(base_url=base_url, timeout=10)) for _ in range(2)]
    step = 0
    while time.monotonic() < deadline:
        step += 1
        for device in devices:
            await device_step(device, name, step, tally)
        if step % 10 == 0:  # sign the second device out; it signs in again next step
            await timed(tally, devices[0].client.delete("/account/sessions", headers=origin))
            devices[1].written = None
            devices[1].client.cookies.clear()
    return devices


async def verify(devices: list[Device], tally: Tally) -> None:
    for device in devices:
        if device.written is None:
            continue
        response = await device.client.get("/session")
        if response.json().get("counter") != device.written:
            tally.error("lost write (final check)")
        await device.client.aclose()


def keys_without_ttl(url: str) -> int:
    with redis.Redis.from_url(url) as client:
        return sum(1 for key in client.scan_iter(count=1000) if client.ttl(key) == -1)


def start_app(redis_url: str, port: int) -> subprocess.Popen[bytes]:
    environment = {**os.environ, "SESSIONWARD_SECRET_KEYS": SECRET, "REDIS_URL": redis_url}
    # Plain http on loopback: httpx, unlike a browser, keeps Secure cookies to https.
    environment.update(HOST="127.0.0.1", PORT=str(port), SESSIONWARD_COOKIE_SECURE="false")
    return subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "app.py")],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_until_up(base_url: str, app: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(base_url + "/session", timeout=1)
            return
        except httpx.TransportError:
            if app.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


async def drive(base_url: str, users: int, seconds: float) -> tuple[Tally, float, list[Device]]:
    tally = Tally()
    started = time.monotonic()
    results = await asyncio.gather(
        *(user_loop(base_url, f"user-{n}", started + seconds, tally) for n in range(users))
    )
    elapsed = time.monotonic() - started
    devices = [device for group in results for device in group]
    await verify(devices, tally)
    return tally, elapsed, devices


def report(tally: Tally, elapsed: float, users: int, without_ttl: int) -> None:
    latencies = sorted(tally.latencies)
    quantiles = statistics.quantiles(latencies, n=100)
    print(f"users: {users} x 2 devices, {elapsed:.1f} s, {len(latencies)} requests")
    print(f"throughput: {len(latencies) / elapsed:.0f} requests/s")
    print(f"latency: p50 {quantiles[49] * 1000:.1f} ms, p99 {quantiles[98] * 1000:.1f} ms")
    print(f"errors: {sum(tally.errors.values())} {tally.errors or ''}")
    print(f"Redis keys without a TTL: {without_ttl}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--users", type=int, default=50)
    options = parser.parse_args()
    server: RedisServer | None = None
    redis_url = os.environ.get("REDIS_URL")
    if redis_url is None:
        server = start_server()
        redis_url = server.url
    port = free_port()
    app = start_app(redis_url, port)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base_url, app)
        tally, elapsed, _ = asyncio.run(drive(base_url, options.users, options.seconds))
        report(tally, elapsed, options.users, keys_without_ttl(redis_url))
    finally:
        app.terminate()
        app.wait(timeout=10)
        if server is not None:
            server.stop()
    if tally.errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
