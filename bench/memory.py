"""Figure: RSS growth of ``renkei serve`` after many conversations were created and left idle.

``renkei serve`` runs in a child process with its defaults; once it answers and its
demo accounts are synced, its resident set size is read (the baseline), then
conversations are created over loopback HTTP (the conversation API, 8 at a time) and
left idle, and the RSS is read again. Goal: growth < 50 MB.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import httpx

from bench.result import FigureResult, Row
from bench.server import renkei_serve

NAME = "memory"
GOAL_MB = 50.0
CONCURRENCY = 8


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MB (``VmRSS`` of ``/proc/<pid>/status``)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def _wait_demo_synced(api: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        busy = False
        for office in (await api.get("/offices")).json():
            for account in (await api.get(f"/offices/{office['id']}/accounts")).json():
                if account["status"] == "syncing" or (
                    account["last_synced_at"] is None and account["last_error"] is None
                ):
                    busy = True
        if not busy:
            return
        await asyncio.sleep(0.2)


async def _create(api: httpx.AsyncClient, count: int) -> float:
    """Create ``count`` conversations, ``CONCURRENCY`` at a time; returns seconds."""
    remaining = iter(range(count))
    failures: list[str] = []

    async def worker() -> None:
        for _ in remaining:
            response = await api.post("/conversations", json={"user": "owner@example.com"})
            if response.status_code != 201:
                failures.append(f"{response.status_code} {response.text[:200]}")
                return

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    if failures:
        raise RuntimeError(f"creating conversations failed: {failures[0]}")
    return time.perf_counter() - started


async def measure(conversations: int, data_dir: Path) -> tuple[float, float, float]:
    """(RSS after start, RSS after the conversations, conversations created per second)."""
    with renkei_serve(data_dir) as served:
        token = (data_dir / "demo-token").read_text().strip()
        async with httpx.AsyncClient(
            base_url=f"{served.base_url}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ) as api:
            await _wait_demo_synced(api)
            await asyncio.sleep(1.0)
            start = rss_mb(served.pid)
            seconds = await _create(api, conversations)
            await asyncio.sleep(2.0)  # left idle
            after = rss_mb(served.pid)
    return start, after, conversations / seconds


def run(quick: bool) -> FigureResult:
    conversations = 2_000 if quick else 100_000
    with tempfile.TemporaryDirectory(prefix="renkei-bench-") as folder:
        start, after, rate = asyncio.run(measure(conversations, Path(folder) / "data"))
    row = Row(
        f"{NAME}, RSS growth after {conversations:,} idle conversations",
        "MB",
        after - start,
        start,
        goal=f"< {GOAL_MB:.0f} MB growth",
        goal_bound=GOAL_MB,
        better="lower",
        goal_on_value=True,
    )
    result = FigureResult(NAME, [row])
    result.notes.append(
        f"Baseline: RSS of `renkei serve` after start ({start:.1f} MB); after "
        f"{conversations:,} conversations it held {after:.1f} MB. The conversations were "
        f"created at {rate:,.0f}/s over loopback HTTP, {CONCURRENCY} at a time."
    )
    return result
