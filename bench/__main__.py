"""``python -m bench``: run every figure, print the table, write the report.

Usage::

    python -m bench                 # full sizes; writes docs/benchmarks.md and its chart
    python -m bench --quick         # small sizes, under a minute; prints the table only
    python -m bench --json out.json # also the table as a JSON list
    python -m bench --only resync,memory
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import (
    conversation_turn,
    first_sync,
    memory,
    notifications,
    postgres,
    report,
    resync,
    scale_out,
    slack_ack,
)
from bench.machine import describe
from bench.result import FigureResult, Row

Figure = Callable[[bool], FigureResult]

# In the order of the table.
FIGURES: dict[str, Figure] = {
    "slack_ack": slack_ack.run,
    "conversation_turn": conversation_turn.run,
    "first_sync": first_sync.run,
    "resync": resync.run,
    "notifications": notifications.run,
    "memory": memory.run,
    "postgres": postgres.run,
    "scale_out": scale_out.run,
}
ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
CHART = ROOT / "docs" / "images" / "benchmarks.png"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="every figure at small sizes")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the table as JSON")
    parser.add_argument(
        "--only", metavar="NAMES", help=f"comma-separated figures of: {', '.join(FIGURES)}"
    )
    parser.add_argument(
        "--docs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write docs/benchmarks.md and its chart (default: a full run of every figure)",
    )
    return parser.parse_args(argv)


def _run_one(name: str, figure: Figure, quick: bool) -> tuple[FigureResult, bool]:
    """Run one figure; a crash becomes a row saying so (and a failed run)."""
    started = time.perf_counter()
    print(f"· {name} …", file=sys.stderr, flush=True)
    try:
        result = figure(quick)
        ok = True
    except Exception as exc:
        traceback.print_exc()
        reason = f"failed: {type(exc).__name__}: {exc}".splitlines()[0][:200]
        result = FigureResult(name, [Row(name, "—", unavailable=reason)])
        ok = False
    result.seconds = time.perf_counter() - started
    return result, ok


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.WARNING)
    chosen = list(FIGURES)
    if args.only:
        chosen = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in chosen if name not in FIGURES]
        if unknown:
            print(f"unknown figures: {', '.join(unknown)}", file=sys.stderr)
            return 2
    started = time.perf_counter()
    results: list[FigureResult] = []
    failed = False
    for name in chosen:
        result, ok = _run_one(name, FIGURES[name], args.quick)
        results.append(result)
        failed = failed or not ok
    took = time.perf_counter() - started
    print(report.text_table(results))
    print(f"\n{took:.1f} s", file=sys.stderr)
    if args.json:
        report.write_json(results, args.json)
    # Only a full run of every figure rewrites the page by default: a partial one would
    # replace the whole table with a few rows.
    if args.docs if args.docs is not None else not (args.quick or args.only):
        from bench import findings  # read when the report is written, after the run

        report.write_chart(results, CHART)
        DOCS.write_text(
            report.markdown(
                results,
                describe(),
                quick=args.quick,
                chart=str(CHART.relative_to(DOCS.parent)),
                analysis=findings.FINDINGS,
                took=took,
            ),
            encoding="utf-8",
        )
        print(f"wrote {DOCS.relative_to(ROOT)} and {CHART.relative_to(ROOT)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
