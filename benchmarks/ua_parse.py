"""What one user-agent parse costs, uncached and cached, with each backend this install can run.

    python benchmarks/ua_parse.py           # about 30 s with both backends
    python benchmarks/ua_parse.py --quick   # a few seconds, rougher

Sessions parse a user-agent when they are created or it changes, so the uncached figure is what
a stream of new clients (or an attacker sending a new junk user-agent every time) costs, and
junk is measured at the length cap, where it costs most. Uncached is `parse_user_agent` minus
its LRU (`_parse_capped.__wrapped__`), with ua-parser's legacy 200-entry cache, which
user-agents reads through, emptied before each call. Cached is `parse_user_agent` itself on a
warm cache. Each figure is the median of several rounds of many calls, in µs per call.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import random
import statistics
import string
import timeit
from collections.abc import Callable

from ua_parser import user_agent_parser

from sessionward import devices
from sessionward.devices import MAX_USER_AGENT_CHARS, parse_user_agent

CAP = MAX_USER_AGENT_CHARS
TYPICAL = {
    "desktop: Chrome on Windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36"
    ),
    "iPhone: Safari": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
    ),
    "Android: Chrome on a Samsung": (
        "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.6778.81 Mobile Safari/537.36"
    ),
    "bot: Googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
}


def _repeat(text: str) -> str:
    return (text * (CAP // len(text) + 1))[:CAP]


_random = random.Random(2024)
JUNK = {
    "';' x 256": ";" * CAP,
    "' ' x 256": " " * CAP,
    "'a' x 256": "a" * CAP,
    "'é' x 256": "é" * CAP,
    "random printable": "".join(_random.choice(string.printable) for _ in range(CAP)),
    "'Mozilla/5.0 (' x n": _repeat("Mozilla/5.0 ("),
    "'Android ' x n": _repeat("Android "),
    "'Windows Phone 8.0; ' x n": _repeat("Windows Phone 8.0; "),
    # The slowest string a hill-climb over user-agent tokens found for ua-parser-rs: tokens that
    # pass its prefilter for many rules, each of which then runs over the whole string.
    "hill-climbed (ua-parser-rs)": (
        ".botNokiaSAMSUNG- " + "SonyEricsson" * 8 + "UCWEB" * 6 + "d Mozilla/5.0 (Lin///////x-; "
        "ééAndroid SonyEricssonMozillaéaéééé5.0 ()-Windo;;s Phone ;/HbbTV/1.1.1 (K Chrome Mo"
    ),
}
TARGETS_US = {"typical": 50.0, "worst": 1000.0, "cached": 2.0}


def per_call_us(call: Callable[[], object], rounds: int, round_seconds: float) -> float:
    """Median over `rounds` of the mean time of one call, in µs."""
    timer = timeit.Timer(call)
    once = min(timer.repeat(repeat=3, number=1))
    number = max(1, int(round_seconds / max(once, 1e-7)))
    return statistics.median(timer.repeat(repeat=rounds, number=number)) / number * 1e6


def uncached(user_agent: str) -> Callable[[], object]:
    parse = devices._parse_capped.__wrapped__
    capped = user_agent[:CAP]

    def call() -> object:
        user_agent_parser._PARSE_CACHE.clear()
        return parse(capped)

    return call


def cached(user_agent: str) -> Callable[[], object]:
    parse_user_agent(user_agent)
    return lambda: parse_user_agent(user_agent)


def measure(backend: str, rounds: int, round_seconds: float) -> dict[str, float]:
    """Every row's figure with this backend, which is put back as it was afterwards."""
    in_use = devices._read
    devices._read = devices._READERS[backend]
    devices._parse_capped.cache_clear()
    try:
        figures = {
            name: per_call_us(uncached(user_agent), rounds, round_seconds)
            for name, user_agent in {**TYPICAL, **JUNK}.items()
        }
        figures["cached"] = per_call_us(cached(TYPICAL["desktop: Chrome on Windows"]), rounds, 0.05)
    finally:
        devices._read = in_use
        devices._parse_capped.cache_clear()
    return figures


def versions() -> str:
    found = []
    for package in ("ua-parser", "ua-parser-rs", "user-agents"):
        try:
            found.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{package} (not installed)")
    return ", ".join(found)


def table(results: dict[str, dict[str, float]]) -> str:
    backends = list(results)
    lines = [
        "| case | chars | " + " | ".join(f"{name} (µs)" for name in backends) + " |",
        "|---|---:|" + "---:|" * len(backends),
    ]
    rows = [(name, name, text) for name, text in TYPICAL.items()]
    rows += [(f"junk: {name}", name, text) for name, text in JUNK.items()]
    for label, name, text in rows:
        cells = " | ".join(f"{results[backend][name]:,.1f}" for backend in backends)
        lines.append(f"| {label} | {len(text)} | {cells} |")
    summary = {
        "**worst typical** (target ≤ 50)": [max(r[n] for n in TYPICAL) for r in results.values()],
        "**worst junk** (target ≤ 1,000)": [max(r[n] for n in JUNK) for r in results.values()],
        "**cached** (target ≤ 2)": [r["cached"] for r in results.values()],
    }
    for label, figures in summary.items():
        lines.append(f"| {label} | | " + " | ".join(f"{f:,.1f}" for f in figures) + " |")
    return "\n".join(lines)


def verdict(results: dict[str, dict[str, float]]) -> list[str]:
    lines = []
    for backend, figures in results.items():
        checks = {
            "typical": max(figures[name] for name in TYPICAL) <= TARGETS_US["typical"],
            "worst": max(figures[name] for name in JUNK) <= TARGETS_US["worst"],
            "cached": figures["cached"] <= TARGETS_US["cached"],
        }
        met = ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in checks.items())
        lines.append(f"- {backend}: {met}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    args = parser.parse_args()
    rounds, round_seconds = (3, 0.02) if args.quick else (7, 0.2)
    results = {name: measure(name, rounds, round_seconds) for name in devices._READERS}
    print(f"Python {platform.python_version()} on {platform.machine()}; {versions()}")
    print(f"Backend in use: {devices.USER_AGENT_BACKEND}\n")
    print(table(results))
    print("\nTargets (uncached typical ≤ 50 µs, worst junk ≤ 1 ms, cached ≤ 2 µs):")
    print("\n".join(verdict(results)))


if __name__ == "__main__":
    main()
