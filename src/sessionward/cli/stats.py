"""`sessionward stats`: how many sessions Redis holds, of which kinds, how soon they go idle,
and what each costs in memory.

It walks the keyspace with `AdminSessions` (a bounded `SCAN` on each primary, never `KEYS`)
and asks `MEMORY USAGE` of an evenly spread sample. Stopped by Ctrl-C (or `--max-pages`), it
saves where it was and the counts so far to a state file, and `--resume FILE` carries on.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from ..admin import AdminSessions, SessionPage, kind_of
from ..config import SessionConfig
from .output import console, duration, emit_json, facts, fancy
from .target import Target, redis_client, run, target_options

HOUR_MS = 3_600_000
# Where each live session's idle deadline falls, from now: (label, upper bound in ms).
IDLE_BUCKETS = (
    ("< 1h", HOUR_MS),
    ("1h-1d", 24 * HOUR_MS),
    ("1d-7d", 7 * 24 * HOUR_MS),
    ("7d-30d", 30 * 24 * HOUR_MS),
    (">= 30d", None),
)
DEFAULT_STATE = "sessionward-stats.state.json"


@dataclass
class Tally:
    """The counts of a walk so far and its cursor: all a resumed walk needs (JSON-ready)."""

    cursor: str = "0"
    pages: int = 0
    scanned: int = 0  # session keys seen, live or not
    live: int = 0
    signed_in: int = 0
    transports: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    idle: dict[str, int] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=list)  # MEMORY USAGE of the sample, bytes
    seconds: float = 0.0

    def add(self, page: SessionPage, now_ms: int) -> None:
        transports, kinds, idle = Counter(self.transports), Counter(self.kinds), Counter(self.idle)
        for _, record in page.records:
            self.signed_in += record.user_id is not None
            transports[record.transport] += 1
            kinds[kind_of(record) or "unknown"] += 1
            left = min(record.last_seen_at_ms + record.idle_ttl_ms, record.expires_at_ms)
            idle[_bucket(left - now_ms)] += 1
        self.transports, self.kinds, self.idle = dict(transports), dict(kinds), dict(idle)
        self.live += len(page.records)
        self.scanned += page.scanned
        self.pages += 1
        self.cursor = page.cursor


def _bucket(ms: int) -> str:
    for label, bound in IDLE_BUCKETS:
        if bound is None or ms < bound:
            return label
    raise AssertionError("the last bucket has no bound")  # pragma: no cover


def memory(tally: Tally) -> dict[str, Any]:
    sizes = sorted(tally.sizes)
    if not sizes:
        return {"sampled": 0}
    mean = statistics.fmean(sizes)
    return {
        "sampled": len(sizes),
        "mean_bytes": round(mean),
        "median_bytes": round(statistics.median(sizes)),
        "p95_bytes": sizes[min(len(sizes) - 1, int(len(sizes) * 0.95))],
        "estimated_total_bytes": round(mean * tally.live),
    }


async def walk(
    config: SessionConfig,
    tally: Tally,
    *,
    count: int,
    sample: int,
    max_pages: int | None,
    show_progress: bool,
) -> bool:
    """Walk on from `tally.cursor`, counting into `tally`; `True` once the walk is over,
    `False` when `max_pages` stopped it. `tally` is whole after every page, so a Ctrl-C
    between two loses nothing."""
    client = redis_client(config)
    store: Any = getattr(config.store, "wrapped", config.store)  # a RedisStore
    estimate = max(int(await client.dbsize()), 1)  # every key, not only sessions
    stride = max(1, estimate // max(sample, 1))
    progress = _progress(estimate, tally.scanned) if show_progress else None
    started, pages = time.perf_counter(), 0
    try:
        async for page in AdminSessions(config).pages(cursor=tally.cursor, page_size=count):
            wanted = [
                store.key(key)
                for position, (key, _) in enumerate(page.records, start=tally.live)
                if position % stride == 0
            ][: max(sample - len(tally.sizes), 0)]
            sizes = await _memory_usage(client, wanted) if wanted else []
            tally.add(page, config.now_ms())
            tally.sizes += [size for size in sizes if size]
            tally.seconds += time.perf_counter() - started
            started, pages = time.perf_counter(), pages + 1
            if progress is not None:
                progress[0].update(progress[1], completed=min(tally.scanned, estimate))
            if page.cursor != "0" and max_pages is not None and pages >= max_pages:
                return False
        return True
    finally:
        if progress is not None:
            progress[0].stop()


async def _memory_usage(client: Any, keys: list[str]) -> list[int]:
    async with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.memory_usage(key)
        return [int(size or 0) for size in await pipe.execute()]


def _progress(total: int, done: int) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress(
        "walking the keyspace",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console(),
        transient=True,
    )
    task = bar.add_task("scan", total=total, completed=done)
    bar.start()
    return bar, task


@click.command()
@click.option(
    "--count",
    type=click.IntRange(1, 10_000),
    default=1000,
    show_default=True,
    help="SCAN COUNT: keys each step looks at.",
)
@click.option(
    "--sample",
    type=click.IntRange(0, 100_000),
    default=500,
    show_default=True,
    help="Sessions whose MEMORY USAGE is measured.",
)
@click.option("--resume", type=click.Path(dir_okay=False, path_type=Path), help="A state file.")
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_STATE,
    show_default=True,
    help="Where an interrupted walk saves its place.",
)
@click.option("--max-pages", type=click.IntRange(1), help="Stop (and save) after this many steps.")
@target_options
def stats(
    target: Target,
    count: int,
    sample: int,
    resume: Path | None,
    state: Path,
    max_pages: int | None,
) -> None:
    """Count live sessions (signed in, anonymous, by transport and device kind), the spread
    of their idle deadlines, and bytes per session, walking Redis with SCAN.

    Ctrl-C stops the walk and saves its place and counts to the state file; --resume FILE
    carries on from there.
    """
    tally = _load_state(resume) if resume is not None else Tally()
    show_progress = fancy() and not target.as_json

    async def work(config: SessionConfig) -> bool:
        return await walk(
            config,
            tally,
            count=count,
            sample=sample,
            max_pages=max_pages,
            show_progress=show_progress,
        )

    try:
        finished = run(target, work)
    except KeyboardInterrupt:
        finished = False
    if not finished:
        state.write_text(json.dumps(asdict(tally)), encoding="utf-8")
        click.echo(
            f"Stopped after {tally.scanned} sessions; resume with: "
            f"sessionward stats --resume {state}",
            err=True,
        )
    _report(target, tally, finished)
    if not finished:
        raise SystemExit(130)


def _load_state(path: Path) -> Tally:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return Tally(**saved)
    except (OSError, ValueError, TypeError) as exc:
        raise click.ClickException(f"--resume {path}: not a stats state file ({exc})") from None


def _report(target: Target, tally: Tally, finished: bool) -> None:
    report = {**asdict(tally), "finished": finished, "memory": memory(tally)}
    report["seconds"] = round(tally.seconds, 3)
    del report["sizes"]
    if target.as_json:
        emit_json(report)
        return
    status = "complete" if finished else "partial"
    facts(
        f"Sessions ({status} walk: {tally.scanned} keys in {tally.pages} steps, "
        f"{duration(tally.seconds * 1000)})",
        {
            "live": tally.live,
            "signed in": tally.signed_in,
            "anonymous": tally.live - tally.signed_in,
        },
    )
    facts("By transport", _ranked(tally.transports))
    facts("By device kind", _ranked(tally.kinds))
    facts("Idle deadline in", {label: tally.idle.get(label, 0) for label, _ in IDLE_BUCKETS})
    mem = report["memory"]
    if mem["sampled"]:
        facts(
            f"Memory (MEMORY USAGE of {mem['sampled']} sessions)",
            {
                "mean": f"{mem['mean_bytes']} B",
                "median": f"{mem['median_bytes']} B",
                "p95": f"{mem['p95_bytes']} B",
                "all live sessions": f"~{mem['estimated_total_bytes'] / 1e6:.1f} MB",
            },
        )


def _ranked(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))) or {"-": 0}
