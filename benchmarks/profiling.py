"""`run.py --profile`: whole requests of one case under cProfile or pyinstrument.

Only whole requests are profiled, through the case's public API; the tables group by file, so
they name whatever functions sessionward has today without this module knowing them.
"""

from __future__ import annotations

import cProfile
import gc
import itertools
import pstats
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness import CASES, Key, Stats, make_cell
from report import provenance

OURS = ("sessionward/", "itsdangerous/")


def _short(filename: str, function: str) -> str:
    if filename == "~":
        return function
    for marker in ("site-packages/", "/src/", "/lib/python"):
        if marker in filename:
            filename = filename.rpartition(marker)[2]
            break
    return f"{filename.removeprefix('3.11/').removeprefix('3.12/')}:{function}"


def _tables(profile: cProfile.Profile, requests: int) -> list[str]:
    """Per-request own and cumulative time: the whole stack, then sessionward and itsdangerous."""
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    rows = [
        (_short(filename, function), calls / requests, own, cumulative)
        for (filename, _, function), (_, calls, own, cumulative, _) in raw.items()
    ]
    ours = [row for row in rows if row[0].startswith(OURS)]
    lines = []
    for title, chosen in (
        ("Top own time, whole stack", sorted(rows, key=lambda r: -r[2])[:18]),
        (
            "sessionward and itsdangerous, by cumulative time",
            sorted(ours, key=lambda r: -r[3])[:22],
        ),
    ):
        lines += [
            f"\n{title}:\n",
            "| function | calls/req | own µs/req | cum µs/req |",
            "|---|--:|--:|--:|",
        ]
        lines += [
            f"| `{name}` | {calls:.2f} | {own * 1e6 / requests:.2f} | {cum * 1e6 / requests:.2f} |"
            for name, calls, own, cum in chosen
        ]
    return lines


@contextmanager
def _profiler(kind: str, title: str, requests: int) -> Iterator[None]:
    gc.collect()
    if kind == "pyinstrument":
        from pyinstrument import Profiler

        sampler = Profiler(interval=0.0001, async_mode="disabled")
        with sampler:
            yield
        print(f"\n### {title} (pyinstrument)\n\n```")
        print(sampler.output_text(unicode=False, color=False, show_all=False))
        print("```")
        return
    profile = cProfile.Profile()
    with profile:
        yield
    print(f"\n### {title} (cProfile; its per-call overhead inflates small functions)")
    print(*_tables(profile, requests), sep="\n")


async def profile(case_key: str, kind: str, requests: int, url: str | None, parser: str) -> None:
    case = CASES[case_key]
    print(f"# Profile: {case.label}\n\n- sessionward imported from {provenance()}")
    sizes = ("1 key", "100 keys") if "100 keys" in case.sizes else ("1 key",)
    scenarios = [s for s in ("read", "write") if s in case.scenarios]
    for size, scenario in itertools.product(sizes, scenarios):
        cell = make_cell(Key(case_key, scenario, size, parser if case.redis else ""), url)
        try:
            await cell.prepare(100)
            stats = Stats(runs=[[]])
            n = requests if size == "1 key" else max(2, requests // 10)
            with _profiler(kind, f"{scenario}, {size}: {n} requests", n):
                await cell.run_round(n, stats)
        finally:
            await cell.env.close()
