"""How the command line prints: rich tables on a terminal, plain aligned text when piped,
JSON with `--json`."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import click
from rich.console import Console
from rich.table import Table


def console() -> Console:
    """A console on standard output; rich decides whether it is a terminal (`NO_COLOR`,
    `FORCE_COLOR` and a pipe as rich reads them)."""
    return Console(file=sys.stdout, highlight=False)


def fancy() -> bool:
    """Whether standard output is a terminal rich draws on."""
    return console().is_terminal


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False, default=str))


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table: boxed on a terminal, plain columns two spaces apart otherwise."""
    if fancy():
        drawn = Table(title=title, title_justify="left")
        for column in columns:
            drawn.add_column(column, overflow="fold")
        for row in rows:
            drawn.add_row(*row)
        console().print(drawn)
        return
    widths = [
        max([len(column)] + [len(row[i]) for row in rows]) for i, column in enumerate(columns)
    ]
    click.echo(title)
    for row in [list(columns), *rows]:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def facts(title: str, pairs: Mapping[str, object]) -> None:
    """A titled list of `name: value` lines."""
    if fancy():
        console().print(f"[bold]{title}[/bold]")
    else:
        click.echo(title)
    width = max((len(name) for name in pairs), default=0)
    for name, value in pairs.items():
        click.echo(f"  {(name + ':').ljust(width + 1)} {_shown(value)}")


def _shown(value: object) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def moment(value: datetime | int | None) -> str:
    """A time as operators read it, in UTC to the second; epoch ms or a datetime."""
    if value is None:
        return "-"
    if isinstance(value, int):
        value = datetime.fromtimestamp(value / 1000, tz=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc).isoformat()


def duration(ms: float) -> str:
    """A span such as `3d 4h`, `12m` or `850 ms`."""
    if ms < 1000:
        return f"{ms:.0f} ms" if ms >= 1 else f"{ms:.2f} ms"
    seconds = int(ms // 1000)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    shown = [f"{value}{unit}" for value, unit in parts if value][:2]
    return " ".join(shown) or "0s"
