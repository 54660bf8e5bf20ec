"""Instructions per request, counted by valgrind's callgrind: figures that do not move with load.

    python benchmarks/instructions.py                 # the client table (about 10 minutes)
    python benchmarks/instructions.py --server        # Redis's own cost per script instead
    python benchmarks/instructions.py sw-redis/read   # some cells only (case/scenario)
    python benchmarks/instructions.py sw-redis/read+chrome  # as Chrome asks, with client hints

A timing on a shared machine moves 30 % between runs; an instruction count does not. For each
cell (a case of cases.py and a scenario) two Python processes run under callgrind: both build
the cell's app and warm it up exactly as `run.py` does, then one makes `--requests` requests
and the other none. The difference, divided by the requests, is what one request costs the
client: the session layer, the app, and redis-py, without the interpreter's start-up. The
server's cost is counted on a `redis-server` run under callgrind: its counters are zeroed,
the scripts a read and a write send are run `--requests` times, and the total is dumped.
Needs `valgrind` on PATH. Redis cells use hiredis when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import browser  # noqa: E402
import cases  # noqa: E402, F401 - registers the cases
import harness  # noqa: E402
from starlette.types import ASGIApp, Receive, Scope, Send  # noqa: E402

from tests.redis_server import free_port, start_server  # noqa: E402

# The cells the hot-path targets are read from, and the ratios between them.
CELLS = (
    "bare-read/read",
    "bare-write/write",
    "raw-read/read",
    "raw-write/write",
    "ss-redis/write",
    "sw-redis/read",
    "sw-redis/write",
    "sw-redis/untouched",
    "sw-redis/read+chrome",
    "starlette/write",
    "sw-mem/write",
    "sw-mem/read",
)
RATIOS = (
    ("read ÷ the bare GETEX floor", "sw-redis/read", "bare-read/read"),
    ("write ÷ the bare GET+SET floor", "sw-redis/write", "bare-write/write"),
    ("read ÷ the GETEX floor in the app", "sw-redis/read", "raw-read/read"),
    ("write ÷ the GET+SET floor in the app", "sw-redis/write", "raw-write/write"),
    ("write ÷ starsessions + Redis", "sw-redis/write", "ss-redis/write"),
    ("in-memory write ÷ Starlette's cookie middleware", "sw-mem/write", "starlette/write"),
)
_COLLECTED = re.compile(rb"Collected : (\d+)")


def parser_name() -> str:
    from redis.utils import HIREDIS_AVAILABLE

    return "hiredis" if HIREDIS_AVAILABLE else "pure"


def bare_floor(env: harness.Env, *, write: bool) -> ASGIApp:
    """The floors without even Starlette: an ASGI callable that makes a session's round trips
    (`GETEX`; or `GET`, then `SET`) on one fixed key and answers by itself."""
    client, key = env.redis(), f"{env.prefix}bare"
    start = {"type": "http.response.start", "status": 200, "headers": []}
    body = {"type": "http.response.body", "body": b"ok"}

    async def bare(scope: Scope, receive: Receive, send: Send) -> None:
        blob = await (client.get(key) if write else client.getex(key, ex=browser.TTL))
        session = {} if blob is None else json.loads(blob)
        session["k"] = 1
        await send(start)
        await send(body)
        if write or blob is None:
            await client.set(key, json.dumps(session), ex=browser.TTL)

    return bare


async def bare_child(cell: str, requests: int, url: str) -> None:
    env = harness.Env("1 key", url, parser_name())
    app = bare_floor(env, write=cell.startswith("bare-write"))
    visitor = browser.Browser(app)
    template = browser.template("/")
    for _ in range(50 + requests):
        await visitor.request(template)
    await env.close()


async def child(cell: str, requests: int, url: str) -> None:
    """What runs under callgrind: one cell, warmed up, then `requests` requests.

    The user-agent rules are built here, before the app: built in the middleware's warm-up
    thread instead, they would race the requests, and the thread switches would move the
    count by thousands of instructions a request from one run to the next.
    """
    from sessionward.devices import warm_up

    warm_up()
    if cell.startswith("bare-"):
        await bare_child(cell, requests, url)
        return
    case, scenario = cell.split("/")
    scenario, chrome, _ = scenario.partition("+chrome")
    parser = parser_name() if harness.CASES[case].redis else ""
    key = harness.Key(case, scenario, "1 key", parser)
    built = harness.make_cell(key, url)
    if chrome:  # Chrome's 19 headers with the client hints, rather than a user-agent alone
        built.browser.base_headers = built.browser.headers = browser.CHROME_HEADERS
    await built.prepare(50)
    # What the warm-up left is moved out of the collector's sight: a full collection late in
    # the run (or at exit) would otherwise walk it, at a point that differs from one build
    # to the next, and add thousands of instructions a request that no request caused.
    # Garbage a request makes is freed as it goes (counted: no collection in 3,000 requests).
    gc.collect()
    gc.freeze()
    request, template = built.browser.request, built.template
    for _ in range(requests):
        await request(template)
    await built.env.close()


def counted(cell: str, requests: int, url: str) -> int:
    """Instructions of one child process under callgrind."""
    with tempfile.TemporaryDirectory() as folder:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={folder}/out",
            sys.executable,
            __file__,
            "--child",
            cell,
            "--requests",
            str(requests),
            "--url",
            url,
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, capture_output=True, env=env, check=False)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{cell}: {done.stderr.decode(errors='replace')[-2000:]}")
    return int(found.group(1))


def per_request(cell: str, requests: int, url: str) -> float:
    none, many = counted(cell, 0, url), counted(cell, requests, url)
    return (many - none) / requests


def client_table(cells: list[str], requests: int, url: str) -> dict[str, float]:
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        figures = dict(
            zip(cells, pool.map(lambda c: per_request(c, requests, url), cells), strict=True)
        )
    print(f"\nClient instructions per request ({requests} requests, {parser_name()}):\n")
    print("| cell | kIr per request |\n| --- | --: |")
    for cell, figure in figures.items():
        print(f"| {cell} | {figure / 1000:,.1f} |")
    ratios = [(label, a, b) for label, a, b in RATIOS if a in figures and b in figures]
    if ratios:
        print("\n| ratio | instructions |\n| --- | --: |")
        for label, numerator, denominator in ratios:
            print(f"| {label} | {figures[numerator] / figures[denominator]:.2f} |")
    return figures


# -- the server ---------------------------------------------------------------------------------


def server_table(requests: int) -> None:
    """Redis's own instructions per command a sessionward read and write send, and GETEX's."""
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        out = f"{folder}/redis.out"
        server = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--hz",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            figures = asyncio.run(_server_figures(server.pid, port, requests, out))
        finally:
            server.terminate()
            server.wait(30)
    print(f"\nRedis server instructions per command ({requests} of each):\n")
    print("| command | kIr |\n| --- | --: |")
    for name, figure in figures.items():
        print(f"| {name} | {figure / 1000:,.1f} |")


async def _server_figures(pid: int, port: int, requests: int, out: str) -> dict[str, float]:
    import redis.asyncio as redis_asyncio

    from sessionward import RedisStore
    from sessionward.devices import parse_user_agent
    from sessionward.record import SessionRecord, device_to_fields

    client = redis_asyncio.Redis(port=port, socket_timeout=60)
    for _ in range(600):
        try:
            await client.ping()
            break
        except Exception:  # still starting under valgrind
            await asyncio.sleep(0.1)
    store = RedisStore(client)
    now = int(time.time() * 1000)
    # As benchmarks/memory.py: signed in on desktop Chrome, three small keys.
    device = device_to_fields(parse_user_agent(browser.USER_AGENT.decode()))
    record = SessionRecord(
        now,
        now + 10**9,
        now,
        user_id="ada-lovelace@example.com",
        ip="127.0.0.1",
        first_ip="127.0.0.1",
        device_fields=device,
        agent_hash="0123456789abcdef",
        authenticated_at_ms=now,
    )
    data = {"d:cart": "[1042, 2203, 77]", "d:theme": '"dark"', "d:visits": "3"}
    fields = {**record.to_fields(), **data}
    await store.save("k" * 64, fields, (), now, 10**8, create=True)
    await client.set("plain", "x" * 60)

    async def load() -> None:
        await store.load("k" * 64, now, 10**8)

    async def save() -> None:
        await store.save("k" * 64, {"d:visits": "4"}, (), now, 10**8, create=False)

    async def getex() -> None:
        await client.getex("plain", ex=1000)

    figures = {}
    for name, call in (("GETEX", getex), ("load script", load), ("save script", save)):
        await call()  # loads the script
        figures[name] = await _server_cost(pid, out, requests, call)
    await client.aclose()
    return figures


async def _server_cost(pid: int, out: str, requests: int, call: object) -> float:
    """The server's instructions for `requests` calls, less as long a time of idling."""
    assert callable(call)
    totals = []
    for count in (0, requests):
        _control("--zero", pid)
        for _ in range(count):
            await call()
        _control("--dump", pid)
        totals.append(_last_dump_total(out))
    return (totals[1] - totals[0]) / requests


def _control(action: str, pid: int) -> None:
    """callgrind_control on the server: a quick command, not the thing measured."""
    subprocess.run(["callgrind_control", action, str(pid)], capture_output=True, check=True)


def _last_dump_total(out: str) -> int:
    dumps = sorted(Path(out).parent.glob(Path(out).name + ".*"), key=lambda p: p.stat().st_mtime)
    text = dumps[-1].read_text(errors="replace")
    found = re.search(r"^summary: (\d+)", text, re.MULTILINE) or re.search(
        r"^totals: (\d+)", text, re.MULTILINE
    )
    if found is None:
        raise RuntimeError(f"no total in {dumps[-1]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cells", nargs="*", help="case/scenario, e.g. sw-redis/read")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--server", action="store_true", help="count Redis's instructions")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.child, args.requests, args.url))
        return
    if args.server:
        server_table(args.requests)
        return
    server = start_server()
    try:
        client_table(args.cells or list(CELLS), args.requests, server.url)
    finally:
        server.remove()


if __name__ == "__main__":
    main()
