"""The Markdown report of a measurement: the machine, the cost tables, the targets, the traffic."""

from __future__ import annotations

import importlib.metadata
import itertools
import os
import platform
import shutil
import statistics
import subprocess
from dataclasses import dataclass

from browser import SCENARIOS, SIZES
from harness import CASES, Key, Plan, Stats, Target


@dataclass
class Results:
    plan: Plan
    stats: dict[Key, Stats]
    machine: list[str]
    elapsed: float
    targets: list[Target]


@dataclass
class Row:
    key: Key
    label: str
    family: str
    median: float
    p90: float
    floor: float  # the bare floor's median, same scenario
    raw: float | None  # the raw-Redis floor's median, same scenario and parser (Redis cases)


@dataclass
class TargetResult:
    target: Target
    parser: str
    per_run: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.per_run)

    @property
    def met(self) -> bool:
        return self.median <= self.target.limit


def _key(case: str, scenario: str, parser: str, size: str = "1 key") -> Key:
    return Key(case, scenario, size, parser if CASES[case].redis else "")


def _floor_keys(scenario: str, parser: str) -> tuple[Key, Key | None]:
    floor = next(c for c in CASES.values() if c.family == "floor")
    raw = [c for c in CASES.values() if c.family == "raw" and scenario in c.scenarios]
    raw_key = _key(raw[0].key, scenario, parser) if raw and parser else None
    return _key(floor.key, scenario, parser), raw_key


def _row(results: Results, key: Key, label: str) -> Row | None:
    if key not in results.stats:
        return None
    floor, raw = _floor_keys(key.scenario, key.parser)
    stats, case = results.stats[key], CASES[key.case]
    raw_median = results.stats[raw].median() if raw in results.stats else None
    floor_median = results.stats[floor].median()
    return Row(key, label, case.family, stats.median(), stats.p90, floor_median, raw_median)


def cost_rows(results: Results, parsers: tuple[str, ...]) -> list[Row]:
    """Every 1-key cell, by scenario then case; Redis cases once per parser in `parsers`."""
    rows = []
    for scenario, case in itertools.product(SCENARIOS, CASES.values()):
        for parser in parsers if case.redis else ("",):
            label = f"{case.label} [{parser}]" if parser and len(parsers) > 1 else case.label
            row = _row(results, _key(case.key, scenario, parser), label)
            rows += [row] if row else []
    return rows


def evaluate(results: Results) -> list[TargetResult]:
    """Each target's ratio in each run (within one parser), for its median over the runs."""
    evaluated = []
    for target in results.targets:
        redis = CASES[target.numerator[0]].redis or CASES[target.denominator[0]].redis
        for parser in results.plan.parsers if redis else ("",):
            top, bottom = _key(*target.numerator, parser), _key(*target.denominator, parser)
            if top not in results.stats or bottom not in results.stats:
                continue
            per_run = [
                results.stats[top].median(run) / results.stats[bottom].median(run)
                for run in range(results.plan.repeat)
            ]
            evaluated.append(TargetResult(target, parser or "—", per_run))
    return evaluated


def _cost_table(results: Results, parser: str) -> list[str]:
    title = f", redis-py parser: {parser}" if parser else ""
    lines = [f"\n## Per-request cost, session established{title}\n"]
    lines += ["| scenario | case | µs/req | p90 µs | +µs vs floor | x floor | x raw-Redis floor |"]
    lines += ["|---|---|--:|--:|--:|--:|--:|"]
    for row in cost_rows(results, (parser,) if parser else ()):
        raw = "—" if row.raw is None else f"{row.median / row.raw:.2f}"
        lines.append(
            f"| {row.key.scenario} | {row.label} | {row.median:.1f} | {row.p90:.1f} "
            f"| {row.median - row.floor:+.1f} | {row.median / row.floor:.2f} | {raw} |"
        )
    return lines


def _targets_table(results: Results) -> list[str]:
    runs = results.plan.repeat
    lines = [f"\n## Targets (ratio of µs/req; median of {runs} run{'s' * (runs > 1)})\n"]
    columns = "".join(f" run {i + 1} |" for i in range(runs))
    lines.append(f"| ratio | parser |{columns} median | target | |")
    lines.append("|---|---|" + "--:|" * runs + "--:|--:|---|")
    for result in evaluate(results):
        per_run = " | ".join(f"{ratio:.2f}" for ratio in result.per_run)
        lines.append(
            f"| {result.target.label} | {result.parser} | {per_run} | **{result.median:.2f}** "
            f"| ≤ {result.target.limit:.2f} | {'met' if result.met else 'not met'} |"
        )
    return lines


def _traffic_table(results: Results) -> list[str]:
    counted = [(key, s.traffic) for key, s in results.stats.items() if s.traffic]
    if not counted:
        return []
    lines = [
        f"\n## Redis traffic per request ({results.plan.count_requests} requests, "
        f"parser {results.plan.parsers[0]}, counting connections)\n",
        "Round trips: `send_packed_command` calls. Top-level: commands the client packed. "
        "Server: `INFO commandstats` delta, which also counts the commands a Lua script runs.\n",
        "| case | scenario | session | round trips | top-level cmds | server cmds | server-side |",
        "|---|---|---|--:|--:|--:|---|",
    ]
    for key, traffic in counted:
        names = ", ".join(f"{name} {calls:g}" for name, calls in traffic["by_name"].items())
        lines.append(
            f"| {CASES[key.case].label} | {key.scenario} | {key.size} "
            f"| {traffic['round_trips']:.2f} | {traffic['commands']:.2f} "
            f"| {traffic['server']:.2f} | {names} |"
        )
    return lines


def _sizes_table(results: Results) -> list[str]:
    lines = [
        "\n## Cost by session size\n",
        '`100 keys` = "k" + 99 small dicts; `64 KB value` = "k" + one 65 536-character '
        'string. The handler reads or writes "k" only.\n',
        "| case | session | read µs | write µs | read x 1 key | write x 1 key |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for case in (c for c in CASES.values() if len(c.sizes) > 1):
        parser = results.plan.parsers[0] if results.plan.parsers else ""
        if case.redis and not parser:
            continue
        label = f"{case.label} [{parser}]" if case.redis else case.label
        read, write = (results.stats[_key(case.key, s, parser)].median() for s in ("read", "write"))
        for size in SIZES:
            r, w = (
                results.stats[_key(case.key, s, parser, size)].median() for s in ("read", "write")
            )
            lines.append(
                f"| {label} | {size} | {r:.1f} | {w:.1f} | {r / read:.2f} | {w / write:.2f} |"
            )
    return lines


def markdown(results: Results) -> str:
    plan = results.plan
    lines = ["# sessionward benchmarks\n", *results.machine]
    lines.append(
        f"- {plan.repeat} run(s) x {plan.rounds} interleaved rounds x {plan.requests} requests "
        f"per cell; µs/req = median of round means (all runs); p90 over every request; "
        f"{len(results.stats)} cells in {results.elapsed:.0f} s"
    )
    lines.append(
        "- floor: the same Starlette app, a plain dict as the session. raw-Redis floors: the "
        "same app behind a bare ASGI function doing only `GETEX` (read) or `GET` + `SET` "
        "(write) with redis-py, on one fixed key"
    )
    for parser in plan.parsers or ("",):
        lines += _cost_table(results, parser)
    lines += _targets_table(results)
    lines += _traffic_table(results)
    lines += _sizes_table(results)
    return "\n".join(lines)


# -- the machine ----------------------------------------------------------------------------------


def _git(directory: str, *args: str) -> str:
    git = shutil.which("git") or "git"
    done = subprocess.run(
        [git, "-C", directory, *args], capture_output=True, text=True, check=True, timeout=5
    )
    return done.stdout.strip()


def provenance() -> str:
    """Where sessionward was imported from, and which commit that tree is at (if any)."""
    import sessionward

    directory = os.path.dirname(os.path.abspath(sessionward.__file__))
    try:
        head = _git(directory, "rev-parse", "--short", "HEAD")
        dirty = _git(directory, "status", "--porcelain", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return directory
    return f"{directory} (git {head}{', with uncommitted changes' if dirty else ''})"


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return f"{package} {importlib.metadata.version(package)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{package} (not installed)"


def machine(redis_version: str | None, parsers: tuple[str, ...]) -> list[str]:
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    try:
        load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        load = "unknown"
    packages = ("sessionward", "starlette", "starsessions", "redis", "hiredis", "itsdangerous")
    lines = [
        f"- CPU: {_cpu()}, {cores} logical cores ({usable} usable); load (1/5/15 min) {load}",
        f"- sessionward imported from {provenance()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}, asyncio default event loop",
        f"- {', '.join(_version(package) for package in packages)}",
    ]
    if redis_version:
        lines.append(
            f"- redis-server {redis_version} on loopback TCP; redis-py parsers timed: "
            f"{', '.join(parsers)} (pure = _AsyncRESP2Parser); every Redis case gets its own "
            "pool with redis-py's default options"
        )
    return lines
