"""Side-by-side benchmarks: sessionward against Starlette's and starsessions' middlewares.

    python benchmarks/run.py                    # full run, 3 repeats; prints Markdown, draws SVG
    python benchmarks/run.py --quick --repeat 1 # smoke run (a few seconds)
    python benchmarks/run.py --no-redis         # cookie and in-memory cases only
    python benchmarks/run.py --profile          # profile sessionward + MemoryStore requests
    python benchmarks/run.py --previous v0.1.0  # and sessionward at an older commit, same run

The cases are in cases.py (one function each), the measuring in harness.py, the tables in
report.py and the chart in chart.py. Redis is our own redis-server on a free loopback port,
stopped by pid at exit. Redis cases run once per redis-py parser (hiredis and pure Python when
hiredis is installed), and every ratio is taken within one parser.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.utils import HIREDIS_AVAILABLE

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import cases  # noqa: E402
import chart  # noqa: E402
import harness  # noqa: E402
import previous  # noqa: E402
import profiling  # noqa: E402
import report  # noqa: E402

from tests.redis_server import start_server  # noqa: E402

Server = tuple[str, redis.Redis] | None


@contextmanager
def redis_server(enabled: bool) -> Iterator[Server]:
    """Our own redis-server and a plain client for `INFO`, or None."""
    if not enabled:
        yield None
        return
    server = start_server()
    client = redis.Redis.from_url(server.url)
    try:
        yield server.url, client
    finally:
        client.close()
        server.remove()


async def benchmark(args: argparse.Namespace, plan: harness.Plan, server: Server) -> None:
    url, client = server if server else (None, None)
    version = str(client.info("server")["redis_version"]) if client else None
    lines = report.machine(version, plan.parsers)
    started = time.perf_counter()
    stats = await harness.measure(plan, url, client)
    elapsed = time.perf_counter() - started
    results = report.Results(plan, stats, lines, elapsed, cases.TARGETS)
    print(report.markdown(results))
    if args.chart != "":
        print(f"\n{chart.draw(results, Path(args.chart))}")


def _parsers(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[str, ...]:
    if args.no_redis:
        return ()
    if args.parsers != "pure" and not HIREDIS_AVAILABLE:
        if args.parsers == "hiredis":
            parser.error("--parsers hiredis: hiredis is not installed (pip install hiredis)")
        print("(hiredis is not installed: timing the pure-Python parser only)", file=sys.stderr)
        return ("pure",)
    return {"both": ("hiredis", "pure"), "hiredis": ("hiredis",), "pure": ("pure",)}[args.parsers]


def arguments(argv: list[str] | None) -> tuple[argparse.Namespace, harness.Plan]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="a short run (smoke test)")
    add("--rounds", type=int, help="interleaved rounds per run (default 7; quick 3)")
    add("--requests", type=int, help="requests per cell and round (default 1000; quick 150)")
    add("--repeat", type=int, default=3, help="whole runs; targets quote their median (3)")
    add("--no-redis", action="store_true", help="skip the Redis cases")
    add("--parsers", choices=("both", "hiredis", "pure"), default="both", help="redis-py parsers")
    add("--chart", default=str(HERE / "results.svg"), help="SVG path ('' for none)")
    add("--previous", metavar="REF", help="also time sessionward at this git commit or tag")
    add("--profile", action="store_true", help="profile whole requests of --case instead")
    add("--case", default="sw-mem", choices=sorted(harness.CASES), help="case to profile")
    add("--profiler", choices=("cprofile", "pyinstrument"), default="cprofile")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 7)
    requests = args.requests or (150 if args.quick else 1000)
    if rounds < 1 or requests < 2 or args.repeat < 1:
        parser.error("--rounds and --repeat must be >= 1, --requests >= 2")
    parsers = _parsers(args, parser)
    count = 50 if args.quick else 500
    return args, harness.Plan(rounds, requests, args.repeat, parsers, count)


def main(argv: list[str] | None = None) -> None:
    args, plan = arguments(argv)
    if args.previous and not args.profile:
        with previous.checkout(args.previous) as commit:
            cases.previous_cases(commit)
            run(args, plan)
    else:
        run(args, plan)


def run(args: argparse.Namespace, plan: harness.Plan) -> None:
    needs_redis = harness.CASES[args.case].redis if args.profile else bool(plan.parsers)
    with redis_server(needs_redis) as server:
        if args.profile:
            url = server[0] if server else None
            requests = 300 if args.quick else 3000
            parser = plan.parsers[0] if plan.parsers else "pure"
            asyncio.run(profiling.profile(args.case, args.profiler, requests, url, parser))
        else:
            asyncio.run(benchmark(args, plan, server))


if __name__ == "__main__":
    main()
