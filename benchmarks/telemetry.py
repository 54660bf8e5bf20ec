"""What OpenTelemetry costs a request: telemetry off, on with the API alone, and on with an SDK.

    python benchmarks/telemetry.py [--rounds 9] [--requests 2000] [--runs 3]

The same in-process ASGI calls as benchmarks/account.py (a prebuilt scope, the cookie the
last response set), for a GET that reads the session and a POST that writes it. Per store,
the cells differ in `telemetry=` only: `False`; `True` with `opentelemetry-api` installed and
no SDK configured (the global proxies, as an app that never sets OpenTelemetry up has them);
and a `Telemetry` on an SDK `MeterProvider` (an in-memory reader), with or without an SDK
`TracerProvider` (sampling every span, a `BatchSpanProcessor` to an exporter that drops
them), as an app that exports would have. A MemoryStore call makes no span, so there the
last two cells measure the same. Cells of one store are timed in interleaved, shuffled
rounds; each figure is the median of the round means, and `--runs` repeats the whole
measurement, since one run on a shared machine is noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections.abc import Sequence
from functools import partial

import redis.asyncio as redis_asyncio
from account import Browser, Cell, build, time_cells
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from sessionward import MemoryStore, RedisStore, Store
from sessionward.telemetry import Telemetry
from tests.redis_server import start_server

SETTINGS = ("off", "API only", "SDK, metrics", "SDK, metrics + spans")


class DroppingExporter(SpanExporter):
    """Takes the spans and drops them: the cost measured is recording, not shipping."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def sdk_telemetry(spans: bool) -> tuple[Telemetry, TracerProvider | None]:
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    if not spans:  # the global proxy's tracer: no SDK, so no spans
        return Telemetry(meter_provider=meter_provider), None
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
    telemetry = Telemetry(meter_provider=meter_provider, tracer_provider=tracer_provider)
    return telemetry, tracer_provider


async def browsers(store_of: type[Store] | str) -> tuple[dict[str, Browser], TracerProvider]:
    """A browser with a stored session per setting, each on an app and a store of its own."""
    metrics_only, _ = sdk_telemetry(spans=False)
    traced, tracer_provider = sdk_telemetry(spans=True)
    assert tracer_provider is not None
    settings: dict[str, bool | Telemetry] = dict(
        zip(SETTINGS, (False, True, metrics_only, traced), strict=True)
    )
    found: dict[str, Browser] = {}
    for name, setting in settings.items():
        if isinstance(store_of, str):
            store: Store = RedisStore(redis_asyncio.Redis.from_url(store_of))
        else:
            store = store_of()
        browser = Browser(build(store, telemetry=setting))
        assert await browser.request("POST", "/write") == 200
        found[name] = browser
    return found, tracer_provider


async def measure(store_of: type[Store] | str, rounds: int, requests: int) -> dict[str, float]:
    found, tracer_provider = await browsers(store_of)
    cells: dict[str, Cell] = {}
    for name, browser in found.items():
        cells[f"GET, {name}"] = partial(browser.request, "GET", "/read")
        cells[f"POST, {name}"] = partial(browser.request, "POST", "/write")
    try:
        return await time_cells(cells, rounds, requests)
    finally:
        tracer_provider.shutdown()


def report(title: str, runs: list[dict[str, float]]) -> None:
    print(f"\n| {title} | " + " | ".join(f"run {n + 1}" for n in range(len(runs))) + " |")
    print("| --- |" + " --: |" * len(runs))
    for cell in runs[0]:
        print(f"| {cell} | " + " | ".join(f"{run[cell]:.1f}" for run in runs) + " |")
    for method in ("GET", "POST"):
        off = [run[f"{method}, off"] for run in runs]
        for setting in SETTINGS[1:]:
            on = [run[f"{method}, {setting}"] for run in runs]
            extra = [b - a for a, b in zip(off, on, strict=True)]
            share = [100 * (b / a - 1) for a, b in zip(off, on, strict=True)]
            print(
                f"{method}, {setting} over off: median {statistics.median(extra):+.1f} µs, "
                f"{statistics.median(share):+.1f} % (runs: "
                + ", ".join(f"{x:+.1f} µs" for x in extra)
                + ")"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stores", choices=["memory", "redis", "both"], default="both")
    options = parser.parse_args()
    if options.stores != "redis":
        memory = [
            asyncio.run(measure(MemoryStore, options.rounds, options.requests))
            for _ in range(options.runs)
        ]
        report("MemoryStore, µs a request", memory)
    if options.stores == "memory":
        return
    server = start_server()
    try:
        on_redis = [
            asyncio.run(measure(server.url, options.rounds, max(1, options.requests // 4)))
            for _ in range(options.runs)
        ]
    finally:
        server.remove()
    report("RedisStore, µs a request", on_redis)


if __name__ == "__main__":
    main()
