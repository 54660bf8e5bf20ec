"""The cost table as an SVG bar chart (matplotlib, Agg): one panel per scenario."""

from __future__ import annotations

from pathlib import Path

from browser import SCENARIOS
from report import Results, Row, cost_rows

COLOURS = {
    "floor": "#bdbdbd",
    "raw": "#8c8c8c",
    "starlette": "#6baed6",
    "starsessions": "#fdae6b",
    "sessionward": "#31a354",
}


def _annotation(row: Row) -> str:
    text = f"{row.median:.0f} µs  x{row.median / row.floor:.2f} floor"
    if row.raw is not None and row.family != "raw":
        text += f", x{row.median / row.raw:.2f} raw"
    return text


def draw(results: Results, path: Path) -> str:
    """Write the chart to `path`; return a line for the report saying where, or why not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "(no chart: matplotlib is not installed; `pip install -e .[bench]`)"
    plt.rcParams.update({"svg.hashsalt": "sessionward-bench", "font.size": 9})
    rows = cost_rows(results, results.plan.parsers)
    panels = [[row for row in rows if row.key.scenario == s] for s in SCENARIOS]
    figure, axes = plt.subplots(
        len(panels),
        1,
        figsize=(10, 1.2 + 0.32 * len(rows)),
        sharex=True,
        gridspec_kw={"height_ratios": [len(panel) for panel in panels]},
    )
    widest = max(row.median for row in rows)
    for axis, scenario, panel in zip(axes, SCENARIOS, panels, strict=True):
        positions = range(len(panel))
        bars = axis.barh(
            positions,
            [row.median for row in panel],
            color=[COLOURS.get(row.family, "#9e9ac8") for row in panel],
            edgecolor="#555555",
            linewidth=0.5,
        )
        for bar, row in zip(bars, panel, strict=True):
            bar.set_hatch("//" if row.family in ("floor", "raw") else "")
        axis.bar_label(bars, [_annotation(row) for row in panel], padding=3, fontsize=8)
        axis.set_yticks(list(positions), [row.label for row in panel])
        axis.invert_yaxis()
        axis.set_title(f"{scenario}", loc="left", fontweight="bold")
        axis.set_xlim(0, widest * 1.45)
        axis.grid(axis="x", linewidth=0.3)
        axis.set_axisbelow(True)
    axes[-1].set_xlabel("µs per request (median of round means); lower is better")
    plan = results.plan
    figure.suptitle(
        f"Session middleware cost per request, in-process ASGI calls ({plan.repeat} run(s) x "
        f"{plan.rounds} rounds x {plan.requests} requests)",
        fontsize=10,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="svg", metadata={"Date": None})
    plt.close(figure)
    return f"Chart: {path}"
