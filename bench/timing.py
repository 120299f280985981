"""Timing helpers: best of a few repetitions, percentiles."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence


def best_rate(repeats: int, count: int, run: Callable[[], float]) -> float:
    """Best throughput (``count`` per second) of ``repeats`` runs; ``run`` returns seconds."""
    return max(count / max(run(), 1e-9) for _ in range(repeats))


async def best_rate_async(repeats: int, count: int, run: Callable[[], Awaitable[float]]) -> float:
    """As :func:`best_rate`, for an async ``run``."""
    best = 0.0
    for _ in range(repeats):
        best = max(best, count / max(await run(), 1e-9))
    return best


async def best_time_async(repeats: int, run: Callable[[], Awaitable[None]]) -> float:
    """Shortest wall time in seconds of ``repeats`` runs."""
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        await run()
        best = min(best, time.perf_counter() - started)
    return best


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The ``fraction`` percentile (nearest rank) of ``samples``."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    rank = max(0, math.ceil(fraction * len(ordered)) - 1)
    return ordered[rank]
