"""Figure: the conversation turn and first sync ingest figures again, on PostgreSQL.

The same code as on SQLite, with renkei on a database of its own at 127.0.0.1:5432
(created and dropped here) and the baselines through raw ``psycopg``.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from bench import conversation_turn, first_sync
from bench.databases import fresh_postgres, postgres_available
from bench.result import FigureResult, unavailable

NAME = "PostgreSQL"
_ROWS = [
    (f"{conversation_turn.NAME}, PostgreSQL", "turns/s", "reported"),
    (f"{first_sync.NAME}, PostgreSQL", "statements/s", "reported"),
]


def run(quick: bool) -> FigureResult:
    reason = postgres_available()
    if reason is not None:
        return unavailable(NAME, _ROWS, reason)
    turns, statements, repeats = (200, 5_000, 2) if quick else (2000, 200_000, 3)
    result = FigureResult(NAME)
    with fresh_postgres() as url:
        value, conversation = asyncio.run(conversation_turn.renkei_turns(url, turns, repeats))
        baseline = conversation_turn.postgres_baseline(url, conversation, turns * 5, repeats)
        result.rows.append(conversation_turn.turn_row(_ROWS[0][0], value, baseline, goal=False))
    with fresh_postgres() as url, tempfile.TemporaryDirectory(prefix="renkei-bench-") as folder:
        value, account_id = asyncio.run(
            first_sync.renkei_ingest(url, Path(folder) / "data", statements)
        )
        baseline = first_sync.postgres_baseline(url, account_id, repeats)
        result.rows.append(first_sync.ingest_row(_ROWS[1][0], value, baseline, goal=False))
    result.notes.append(
        f"{turns:,} turns and {statements:,} statements as on SQLite; PostgreSQL on loopback, "
        "each figure on a fresh database."
    )
    return result
