"""Load, side by side: the same Starlette app under uvicorn with four session layers.

    python benchmarks/load.py                            # every scenario and case, 20 s each
    python benchmarks/load.py --scenario read-mostly --seconds 30 --users 50
    python benchmarks/load.py --workers 2                # two uvicorn workers, one Redis
    python benchmarks/load.py --fault restart            # Redis stopped and restarted mid-load
    python benchmarks/load.py --fault pause              # Redis paused (SIGSTOP) for 2 s
    python benchmarks/load.py --fault failover           # a Cluster primary killed mid-load
    python benchmarks/load.py --repeat 3                 # three rounds; medians at the end
    python benchmarks/load.py --rate 2000                # offered load: latency below saturation

The app is `benchmarks/load_app.py` (no password hashing in its sign-in); the cases are no
session middleware, Starlette's cookie `SessionMiddleware`, starsessions on Redis and
sessionward on Redis, run one after the other against one redis-server started here (or
`REDIS_URL`), flushed between cells. Each simulated user has two devices (cookie jars, each
on one keep-alive connection of `load_client.py`, which costs the machine a seventh of what
httpx does) that loop over the scenario's steps until the deadline:

- read-mostly: nine reads for each write; every read checks the last acknowledged write;
- write-heavy: every request writes;
- churn: sign in, read, list the devices (where the layer has a list), sign out.

A cell reports requests/s and p50/p99 latency, errors by kind, acknowledged writes that came
back different or missing (checked while it runs and once more at the end), and Redis keys
left without a TTL. With `--fault`, only sessionward runs, and the report adds the answers
given while Redis was away and how long after its return the last error came. Everything runs
on loopback; the loops stop at their deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from load_client import LoadClient, Pace, Response  # noqa: E402
from load_faults import FAULTS, NODE_TIMEOUT_MS, Fault, run_fault  # noqa: E402

from tests.redis_server import (  # noqa: E402
    LocalCluster,
    RedisServer,
    free_port,
    start_cluster,
    start_server,
)

CASES = ("none", "starlette", "starsessions", "sessionward")
SCENARIOS = ("read-mostly", "write-heavy", "churn")
REDIS_CASES = ("starsessions", "sessionward")


@dataclass
class Tally:
    pace: Pace | None = None  # `--rate`: requests spaced out, else each device goes flat out
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    error_times: list[float] = field(default_factory=list)
    lost: int = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.error_times.append(time.monotonic())


@dataclass
class Device:
    client: LoadClient
    written: int | None = None  # the last counter the server acknowledged
    signed_in: bool = False


async def timed(
    tally: Tally, method: str, device: Device, path: str, body: object = None
) -> Response | None:
    if tally.pace is not None:
        await tally.pace.turn()
    started = time.perf_counter()
    try:
        response = await device.client.request(method, path, json=body)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
        tally.error(type(exc).__name__)
        return None
    tally.latencies.append(time.perf_counter() - started)
    if response.status_code >= 400:
        tally.error(f"HTTP {response.status_code}")
    return response


async def check_read(tally: Tally, device: Device) -> None:
    response = await timed(tally, "GET", device, "/session")
    if response is None or response.status_code != 200 or device.written is None:
        return
    if response.json().get("counter") != device.written:
        tally.lost += 1


async def write(tally: Tally, device: Device, value: int) -> None:
    response = await timed(tally, "POST", device, "/session", body={"counter": value})
    if response is not None and response.status_code == 200:
        device.written = value


async def step(scenario: str, case: str, device: Device, user: str, n: int, tally: Tally) -> None:
    if scenario == "churn":
        await timed(tally, "POST", device, "/login", body={"user": user})
        await timed(tally, "GET", device, "/session")
        if case == "sessionward":
            await timed(tally, "GET", device, "/account/sessions")
        await timed(tally, "POST", device, "/logout")
        return
    if not device.signed_in:
        response = await timed(tally, "POST", device, "/login", body={"user": user})
        device.signed_in = response is not None and response.status_code == 200
    if scenario == "write-heavy" or n % 10 == 0:
        await write(tally, device, n)
    else:
        await check_read(tally, device)


async def user_loop(
    base_url: str, scenario: str, case: str, user: str, deadline: float, tally: Tally
) -> list[Device]:
    devices = [Device(LoadClient(base_url)) for _ in range(2)]
    n = 0
    while time.monotonic() < deadline:
        n += 1
        for device in devices:
            await step(scenario, case, device, user, n, tally)
    return devices


async def final_check(devices: list[Device], tally: Tally) -> None:
    for device in devices:
        if device.written is not None:
            response = await device.client.get("/session")
            if response.status_code != 200 or response.json().get("counter") != device.written:
                tally.lost += 1
        await device.client.aclose()


@dataclass
class Cell:
    case: str
    scenario: str
    workers: int
    tally: Tally
    elapsed: float
    without_ttl: int | None
    fault: Fault | None = None

    def figures(self) -> tuple[float, float, float]:
        """Requests/s, then p50 and p99 latency in ms."""
        latencies = sorted(self.tally.latencies)
        q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
        return len(latencies) / self.elapsed, q[49] * 1000, q[98] * 1000

    def row(self) -> str:
        rate, p50, p99 = self.figures()
        errors = sum(self.tally.errors.values())
        ttl = "-" if self.without_ttl is None else str(self.without_ttl)
        lost = "-" if self.case == "none" else str(self.tally.lost)  # it keeps nothing
        return (
            f"| {self.scenario} | {self.case} | {self.workers} | {rate:,.0f} | {p50:.1f} "
            f"| {p99:.1f} | {errors} | {lost} | {ttl} |"
        )


def median_rows(cells: list[Cell]) -> list[str]:
    """One row per scenario and case: the median of each figure over the rounds, and the
    range of requests/s."""
    groups: dict[tuple[str, str], list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.scenario, cell.case), []).append(cell)
    rows = []
    for (scenario, case), group in groups.items():
        rates, p50s, p99s = zip(*(cell.figures() for cell in group), strict=True)
        rows.append(
            f"| {scenario} | {case} | {group[0].workers} | {statistics.median(rates):,.0f} "
            f"({min(rates):,.0f}-{max(rates):,.0f}) | {statistics.median(p50s):.1f} "
            f"| {statistics.median(p99s):.1f} |"
        )
    return rows


async def drive(
    base_url: str,
    scenario: str,
    case: str,
    users: int,
    seconds: float,
    fault: Fault | None,
    rate: float | None = None,
) -> tuple[Tally, float]:
    tally = Tally(Pace(rate) if rate else None)
    started = time.monotonic()
    loops = asyncio.gather(
        *(
            user_loop(base_url, scenario, case, f"user-{n}", started + seconds, tally)
            for n in range(users)
        )
    )
    if fault is not None:
        groups, _ = await asyncio.gather(loops, run_fault(fault, seconds))
    else:
        groups = await loops
    elapsed = time.monotonic() - started
    await final_check([device for group in groups for device in group], tally)
    return tally, elapsed


def start_app(
    case: str, redis_url: str, port: int, workers: int, *, cluster: bool = False
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "load_app:create_app", "--factory"]
    command += ["--app-dir", str(ROOT / "benchmarks"), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    command += ["--no-access-log"]
    environment = {**os.environ, "LOAD_CASE": case, "REDIS_URL": redis_url}
    environment["LOAD_REDIS_CLUSTER"] = "1" if cluster else "0"
    return subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL)


def wait_until_up(base_url: str, app: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(base_url + "/session", timeout=1)
            return
        except httpx.TransportError:
            if app.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@dataclass
class Backend:
    """The Redis the app runs on: one server, or a cluster (`--fault failover`)."""

    url: str
    server: RedisServer | None = None
    cluster: LocalCluster | None = None

    def primaries(self) -> list[redis.Redis]:
        """A client for each reachable primary: the one server, or each cluster primary."""
        if self.cluster is None:
            return [redis.Redis.from_url(self.url)]
        found = []
        for node in self.cluster.nodes:
            client = redis.Redis.from_url(node.url, socket_connect_timeout=0.5)
            try:
                if client.role()[0] == b"master":
                    found.append(client)
                    continue
            except redis.ConnectionError:  # the primary the fault killed
                pass
            client.close()
        return found

    def flush(self) -> None:
        for client in self.primaries():
            with client:
                client.flushdb()

    def keys_without_ttl(self) -> int:
        count = 0
        for client in self.primaries():
            with client:
                count += sum(1 for key in client.scan_iter(count=1000) if client.ttl(key) == -1)
        return count


def run_cell(options: argparse.Namespace, backend: Backend, case: str, scenario: str) -> Cell:
    backend.flush()
    port = free_port()
    app = start_app(case, backend.url, port, options.workers, cluster=backend.cluster is not None)
    base_url = f"http://127.0.0.1:{port}"
    fault = None
    if options.fault:
        fault = Fault(options.fault, backend.server, time.monotonic, backend.cluster)
    try:
        wait_until_up(base_url, app)
        tally, elapsed = asyncio.run(
            drive(base_url, scenario, case, options.users, options.seconds, fault, options.rate)
        )
    finally:
        app.terminate()
        app.wait(timeout=15)
    without_ttl = backend.keys_without_ttl() if case in REDIS_CASES else None
    return Cell(case, scenario, options.workers, tally, elapsed, without_ttl, fault)


def start_backend(options: argparse.Namespace) -> Backend:
    if options.fault == "failover":
        cluster = start_cluster(3, replicas=1, node_timeout_ms=NODE_TIMEOUT_MS)
        return Backend(cluster.url, cluster=cluster)
    redis_url = os.environ.get("REDIS_URL")
    if redis_url is not None and not options.fault:
        return Backend(redis_url)
    server = start_server()
    return Backend(server.url, server=server)


def print_cells(cells: list[Cell], options: argparse.Namespace) -> None:
    print(f"\n{options.users} users x 2 devices, {options.seconds:.0f} s per cell")
    print(
        "\n| scenario | case | workers | requests/s | p50 ms | p99 ms | errors | lost writes "
        "| keys without TTL |"
    )
    print("| --- | --- | --: | --: | --: | --: | --: | --: | --: |")
    for cell in cells:
        print(cell.row())
    if options.repeat > 1:
        print(f"\nMedians of {options.repeat} rounds (requests/s: median, then the range)")
        print("\n| scenario | case | workers | requests/s | p50 ms | p99 ms |")
        print("| --- | --- | --: | --: | --: | --: |")
        print("\n".join(median_rows(cells)))
    for cell in cells:
        if cell.tally.errors:
            print(f"{cell.scenario}/{cell.case} errors: {cell.tally.errors}")
        if cell.fault is not None:
            print(
                cell.fault.summary(cell.tally.error_times, max(cell.tally.latencies, default=0.0))
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--users", type=int, default=25)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--scenario", choices=SCENARIOS, action="append")
    parser.add_argument("--case", choices=CASES, action="append")
    parser.add_argument("--fault", choices=FAULTS)
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the table gives medians")
    parser.add_argument("--rate", type=float, help="requests/s offered, spread over the devices")
    options = parser.parse_args()
    cases = ["sessionward"] if options.fault else options.case or list(CASES)
    backend = start_backend(options)
    cells: list[Cell] = []
    try:
        for _ in range(options.repeat):  # rounds, so a slow spell of the machine hits all
            for scenario in options.scenario or list(SCENARIOS):
                for case in cases:
                    cells.append(run_cell(options, backend, case, scenario))
    finally:
        if backend.server is not None:
            backend.server.remove()
        if backend.cluster is not None:
            backend.cluster.stop()
    print_cells(cells, options)
    if any((cell.tally.lost and cell.case != "none") or cell.without_ttl for cell in cells):
        sys.exit(1)


if __name__ == "__main__":
    main()
