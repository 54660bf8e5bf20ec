"""Soak: sessionward under a steady load for a long time, watching for leaks.

    python benchmarks/load_soak.py --seconds 600 --rate 150

One uvicorn worker runs `benchmarks/load_app.py` on sessionward with a short idle TTL
(`LOAD_IDLE_TTL`, 20 s here), so that sessions expire about as fast as they are made. Users
from a pool of 500 sign in, read, write, list their devices, and half the time sign out; the
other half leave their session to expire. The load is paced at `--rate` requests/s (about half
of what `load.py` measured as the maximum).

Every 10 s it samples the app's resident memory (`VmRSS` of the worker) and the number of
Redis keys. The report gives both over time and the verdicts: the app's memory after warm-up
(the first fifth of the run) grows by at most 5 %, and the key count in the last half stays
within 10 % of its mean there (no leak of indexes, device logs or refresh state). Each of
the 500 users keeps a session index and a device log for as long as its devices are
remembered, so the count levels off once every user has signed in: judge a run of minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from load import start_app, wait_until_up  # noqa: E402
from load_client import LoadClient, Pace  # noqa: E402

from tests.redis_server import free_port, start_server  # noqa: E402

SAMPLE_EVERY = 10.0
USERS = 500


async def visitor(base_url: str, pace: Pace, deadline: float, seed: int, errors: list[str]) -> None:
    n = seed
    while time.monotonic() < deadline:
        n += 7
        client = LoadClient(base_url)
        try:
            steps: list[tuple[str, str, object]] = [
                ("POST", "/login", {"user": f"user-{n % USERS}"}),
                ("GET", "/session", None),
                ("POST", "/session", {"counter": n}),
                ("GET", "/account/sessions", None),
            ]
            if n % 2:
                steps.append(("POST", "/logout", None))
            for method, path, body in steps:
                await pace.turn()
                response = await client.request(method, path, json=body)
                if response.status_code >= 400:
                    errors.append(f"{method} {path}: {response.status_code}")
        finally:
            await client.aclose()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def sample(pid: int, redis_url: str, deadline: float) -> list[tuple[float, int, int]]:
    samples, started = [], time.monotonic()
    with redis.Redis.from_url(redis_url) as client:
        while time.monotonic() < deadline:
            await asyncio.sleep(SAMPLE_EVERY)
            keys = int(client.dbsize())
            samples.append((time.monotonic() - started, rss_kib(pid), keys))
            print(f"{samples[-1][0]:6.0f} s  RSS {samples[-1][1] / 1024:6.1f} MiB  keys {keys}")
    return samples


async def soak(base_url: str, pid: int, redis_url: str, options: argparse.Namespace) -> None:
    deadline = time.monotonic() + options.seconds
    pace, errors = Pace(options.rate), list[str]()
    visitors = [visitor(base_url, pace, deadline, seed, errors) for seed in range(50)]
    sampling = asyncio.create_task(sample(pid, redis_url, deadline))
    await asyncio.gather(*visitors)
    samples = await sampling
    report(samples, errors, options)


def report(
    samples: list[tuple[float, int, int]], errors: list[str], options: argparse.Namespace
) -> None:
    warm = [s for s in samples if s[0] >= options.seconds / 5]
    late = [s for s in samples if s[0] >= options.seconds / 2]
    growth = (warm[-1][1] - warm[0][1]) / warm[0][1]
    mean_keys = statistics.fmean(s[2] for s in late)
    spread = max(abs(s[2] - mean_keys) for s in late) / mean_keys
    print(f"\n{options.seconds:.0f} s at {options.rate:.0f} requests/s, {len(errors)} errors")
    print(
        f"RSS after warm-up: {warm[0][1] / 1024:.1f} -> {warm[-1][1] / 1024:.1f} MiB "
        f"({growth:+.1%}; at most +5 %: {'met' if growth <= 0.05 else 'NOT met'})"
    )
    print(
        f"Redis keys, last half: mean {mean_keys:.0f}, widest swing {spread:.1%} "
        f"(flat within 10 %: {'met' if spread <= 0.10 else 'NOT met'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--rate", type=float, default=150.0)
    options = parser.parse_args()
    os.environ["LOAD_IDLE_TTL"] = "20"
    server = start_server()
    port = free_port()
    app = start_app("sessionward", server.url, port, workers=1)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base_url, app)
        asyncio.run(soak(base_url, app.pid, server.url, options))  # one worker: one process
    finally:
        app.terminate()
        app.wait(timeout=15)
        server.remove()


if __name__ == "__main__":
    main()
