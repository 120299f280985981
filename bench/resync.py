"""Figure: an incremental resync that finds nothing new, against the history it sits on.

One account is linked and first-synced for real; its history is then grown to each
size by copying the synced rows into earlier years (new ids, new issuer transaction
ids, use dates shifted back by 90 days a copy), as years of syncing would leave them.
At each size ``sync_account`` runs again with the cursor at the end: the issuer has
nothing new. Baseline: the same resync at the smallest size; goal: ≤ 1.5× at the largest.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path

from backend.service.sync import sync_account
from bench.databases import sqlite_path, sqlite_url
from bench.embedded import Embedded, embedded_renkei
from bench.result import FigureResult, Row
from bench.timing import best_time_async

NAME = "incremental resync"
GOAL = 1.5
CARD = "amex-bench-resync"


def grow_history(database_url: str, account_id: str, synced: int, target: int) -> int:
    """Copy the account's first-synced rows into earlier years until it holds ``target``."""
    connection = sqlite3.connect(sqlite_path(database_url), timeout=30)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        (held,) = connection.execute(
            "SELECT count(*) FROM statements WHERE account_id = ?", (account_id,)
        ).fetchone()
        copy = held // synced
        while held < target:
            take = min(synced, target - held)
            connection.execute(
                "INSERT INTO statements (id, account_id, card_id, issuer_txn_id, use_date, "
                "posted_date, merchant, amount_jpy, foreign_amount, foreign_currency, status, "
                "source, holder_name, created_at, updated_at) "
                "SELECT lower(hex(randomblob(16))), account_id, card_id, "
                "issuer_txn_id || '-y' || ?, date(use_date, ?), date(posted_date, ?), merchant, "
                "amount_jpy, foreign_amount, foreign_currency, status, source, holder_name, "
                "created_at, updated_at FROM statements "
                "WHERE account_id = ? AND issuer_txn_id NOT LIKE '%-y%' LIMIT ?",
                (copy, f"-{90 * copy} days", f"-{90 * copy} days", account_id, take),
            )
            held += take
            copy += 1
        connection.commit()
        connection.execute("ANALYZE")
        return int(held)
    finally:
        connection.close()


async def _resync_times(
    renkei: Embedded, url: str, account_id: str, synced: int, sizes: list[int], repeats: int
) -> list[float]:
    async def resync() -> None:
        result = await sync_account(renkei.services, account_id)
        if result.status != "succeeded" or result.added or result.modified:
            raise RuntimeError(f"resync was not a no-op: {result}")

    times = []
    for size in sizes:
        held = await asyncio.to_thread(grow_history, url, account_id, synced, size)
        if held != size:
            raise RuntimeError(f"history holds {held} rows, not {size}")
        for _ in range(3):  # warm the caches at this size
            await resync()
        times.append(await best_time_async(repeats, resync))
    return times


async def measure(url: str, data_dir: Path, sizes: list[int], repeats: int) -> list[float]:
    """Best resync time in seconds at each size (ascending)."""
    synced = sizes[0]
    async with embedded_renkei(url, data_dir) as renkei:
        account_id = await renkei.link_card(CARD, synced)
        first = await sync_account(renkei.services, account_id)
        if first.added != synced:
            raise RuntimeError(f"first sync added {first.added} of {synced}")
        return await _resync_times(renkei, url, account_id, synced, sizes, repeats)


def run(quick: bool) -> FigureResult:
    sizes, repeats = ([1_000, 5_000, 20_000], 5) if quick else ([10_000, 100_000, 1_000_000], 7)
    with tempfile.TemporaryDirectory(prefix="renkei-bench-") as folder:
        url = sqlite_url(Path(folder) / "resync.sqlite3")
        times = asyncio.run(measure(url, Path(folder) / "data", sizes, repeats))
    reference = times[0] * 1000
    rows = [
        Row(
            f"{NAME}, {size:,} statements",
            "ms",
            seconds * 1000,
            reference,
            goal=f"≤ {GOAL}× at {sizes[-1]:,}" if size == sizes[-1] else "reported",
            goal_bound=GOAL if size == sizes[-1] else None,
            better="lower",
            chart="latency",
        )
        for size, seconds in zip(sizes, times, strict=True)
    ]
    result = FigureResult(NAME, rows)
    result.notes.append(
        f"Baseline: the same resync at {sizes[0]:,} statements; best of {repeats} at each size. "
        f"The first {sizes[0]:,} rows come from a real first sync, the rest are those rows "
        "copied into earlier years."
    )
    return result
