"""The table (terminal and Markdown), the JSON list and the chart."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from pathlib import Path

from bench.machine import Machine
from bench.result import FigureResult, Row

HEADER = ("figure", "renkei", "baseline", "ratio", "goal", "met")


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.2f}"


def cells(row: Row) -> tuple[str, str, str, str, str, str]:
    figure = f"{row.figure} ({row.unit})"
    if row.unavailable is not None:
        return (figure, f"not available: {row.unavailable}", "—", "—", row.goal, "no")
    ratio = row.ratio
    return (
        figure,
        _number(row.value),
        _number(row.baseline),
        "—" if ratio is None else f"{ratio:.2f}×",
        row.goal,
        "yes" if row.met else "no",
    )


def rows_of(results: Sequence[FigureResult]) -> list[Row]:
    return [row for result in results for row in result.rows]


def text_table(results: Sequence[FigureResult]) -> str:
    lines = [HEADER, *(cells(row) for row in rows_of(results))]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    out = []
    for index, line in enumerate(lines):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown_table(results: Sequence[FigureResult]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows_of(results):
        lines.append("| " + " | ".join(cells(row)) + " |")
    return "\n".join(lines)


def write_json(results: Sequence[FigureResult], path: Path) -> None:
    path.write_text(
        json.dumps([row.as_json() for row in rows_of(results)], ensure_ascii=False, indent=2)
        + "\n",
        encoding="utf-8",
    )


def write_chart(results: Sequence[FigureResult], path: Path) -> None:
    """Throughput (renkei beside its baseline, log scale) and latency, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows_of(results) if r.value is not None and r.unavailable is None]
    throughput = [r for r in rows if r.chart == "throughput"]
    latency = [r for r in rows if r.chart == "latency"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    for axis, chosen, title, scale in (
        (left, throughput, "throughput (per second, log scale)", "log"),
        (right, latency, "latency (ms)", "linear"),
    ):
        labels = [f"{r.figure}\n({r.unit})" for r in chosen]
        positions = list(range(len(chosen)))
        height = 0.38
        axis.barh(
            [p - height / 2 for p in positions],
            [r.value or 0.0 for r in chosen],
            height,
            label="renkei",
            color="#c0392b",
        )
        axis.barh(
            [p + height / 2 for p in positions],
            [r.baseline or 0.0 for r in chosen],
            height,
            label="baseline",
            color="#7f8c8d",
        )
        axis.set_yticks(positions, labels, fontsize=7)
        axis.invert_yaxis()
        axis.set_xscale(scale)
        axis.set_title(title)
        axis.legend(loc="lower right", fontsize=8)
        axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown(
    results: Sequence[FigureResult],
    machine: Machine,
    *,
    quick: bool,
    chart: str,
    analysis: str,
    took: float,
) -> str:
    mode = "`python -m bench --quick` (small sizes)" if quick else "`python -m bench`"
    lines = [
        "# Benchmarks",
        "",
        "Each figure is measured beside a baseline run in the same process on the same "
        "machine, so the ratio holds on a noisy machine; read the ratios, not the absolute "
        "numbers. The goals are those of the benchmark issue: they are reported against, "
        "not enforced (CI runs the quick mode to check that every figure runs).",
        "",
        f"Produced by {mode} on {dt.date.today().isoformat()} in {took:.0f} s.",
        "",
        "## Machine",
        "",
        *machine.lines(),
        "",
        "## Results",
        "",
        markdown_table(results),
        "",
        f"![renkei beside its baselines: throughput and latency]({chart})",
        "",
        "## How each figure is measured",
        "",
    ]
    for result in results:
        lines.append(f"- **{result.name}** ({result.seconds:.1f} s): " + " ".join(result.notes))
    lines += ["", analysis.strip(), ""]
    return "\n".join(lines)
