"""Figure: first sync ingest, statements per second from the issuer to committed rows.

renkei: a card with N statements at the sandbox issuer (reached through the in-process
transport, as in the embedded default), linked as the OAuth callback links it, then
``sync_account`` end to end: pages of 500 fetched, matched, inserted and committed
with their cursor. Baseline: the rows renkei stored, upserted again by the raw driver
with ``executemany`` into a table of the same shape, one transaction per 500 rows.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from backend.service.sync import PAGE_SIZE, sync_account
from bench.databases import psycopg_url, sqlite_path, sqlite_url
from bench.embedded import embedded_renkei
from bench.result import FigureResult, Row

NAME = "first sync ingest"
GOAL = 0.25
CARD = "amex-bench-ingest"
_FIELDS = (
    "id, account_id, card_id, issuer_txn_id, use_date, posted_date, merchant, amount_jpy, "
    "foreign_amount, foreign_currency, status, source, holder_name, created_at, updated_at"
)
_UPDATED = "posted_date, merchant, amount_jpy, foreign_amount, foreign_currency, status, updated_at"


def _upsert(placeholder: str) -> str:
    """The baseline's upsert; built from the constants above only."""
    values = ", ".join([placeholder] * len(_FIELDS.split(", ")))
    updates = ", ".join(f"{c} = excluded.{c}" for c in _UPDATED.split(", "))
    return (
        f"INSERT INTO raw_statements ({_FIELDS}) VALUES ({values}) "  # noqa: S608
        f"ON CONFLICT (account_id, issuer_txn_id) DO UPDATE SET {updates}"
    )


_SELECT_SQLITE = f"SELECT {_FIELDS} FROM statements WHERE account_id = ?"  # noqa: S608
_SELECT_POSTGRES = f"SELECT {_FIELDS} FROM statements WHERE account_id = %s"  # noqa: S608


async def renkei_ingest(database_url: str, data_dir: Path, statements: int) -> tuple[float, str]:
    """Statements/s of one first sync; returns it with the account's id."""
    async with embedded_renkei(database_url, data_dir) as renkei:
        account_id = await renkei.link_card(CARD, statements)
        started = time.perf_counter()
        result = await sync_account(renkei.services, account_id)
        elapsed = time.perf_counter() - started
        stored = await renkei.statement_count(account_id)
    if result.status != "succeeded" or stored != statements:
        raise RuntimeError(f"first sync: {result.status}, {stored} of {statements} rows stored")
    return statements / elapsed, account_id


def _pages(rows: Sequence[Any]) -> list[Sequence[Any]]:
    return [rows[i : i + PAGE_SIZE] for i in range(0, len(rows), PAGE_SIZE)]


def sqlite_baseline(database_url: str, account_id: str, repeats: int) -> float:
    """Best rows/s of an ``executemany`` upsert of the account's rows, raw sqlite3."""
    connection = sqlite3.connect(sqlite_path(database_url), timeout=30)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA foreign_keys=ON")
        rows = connection.execute(_SELECT_SQLITE, (account_id,)).fetchall()
        ddl = [
            str(sql).replace("statements", "raw_statements", 1)
            for (sql,) in connection.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'statements' AND sql IS NOT NULL "
                "ORDER BY type DESC"
            )
        ]
        upsert = _upsert("?")

        def run() -> float:
            connection.execute("DROP TABLE IF EXISTS raw_statements")
            for statement in ddl:
                connection.execute(_index_renamed(statement))
            connection.commit()
            started = time.perf_counter()
            for page in _pages(rows):
                connection.executemany(upsert, page)
                connection.commit()
            return time.perf_counter() - started

        return max(len(rows) / run() for _ in range(repeats))
    finally:
        connection.close()


def _index_renamed(statement: str) -> str:
    # Index names are global in SQLite: the copy's indexes need names of their own.
    return statement.replace("INDEX ix_statements_", "INDEX raw_ix_statements_").replace(
        " ON statements ", " ON raw_statements "
    )


def postgres_baseline(database_url: str, account_id: str, repeats: int) -> float:
    """Best rows/s of an ``executemany`` upsert of the account's rows, raw psycopg."""
    with psycopg.connect(psycopg_url(database_url)) as connection:
        rows = connection.execute(_SELECT_POSTGRES, (account_id,)).fetchall()
        upsert = _upsert("%s")

        def run() -> float:
            connection.execute("DROP TABLE IF EXISTS raw_statements")
            connection.execute("CREATE TABLE raw_statements (LIKE statements INCLUDING ALL)")
            connection.execute(
                "ALTER TABLE raw_statements ADD FOREIGN KEY (account_id) REFERENCES accounts (id)"
            )
            connection.execute(
                "ALTER TABLE raw_statements ADD FOREIGN KEY (card_id) REFERENCES cards (id)"
            )
            connection.commit()
            started = time.perf_counter()
            with connection.cursor() as cursor:
                for page in _pages(rows):
                    cursor.executemany(upsert, page)
                    connection.commit()
            return time.perf_counter() - started

        best = max(len(rows) / run() for _ in range(repeats))
        connection.execute("DROP TABLE IF EXISTS raw_statements")
        connection.commit()
        return best


def ingest_row(figure: str, value: float, baseline: float, goal: bool) -> Row:
    return Row(
        figure,
        "statements/s",
        value,
        baseline,
        goal=f"≥ {GOAL}× baseline" if goal else "reported",
        goal_bound=GOAL if goal else None,
        chart="throughput",
    )


def run(quick: bool) -> FigureResult:
    """The figure on SQLite."""
    statements, repeats = (5_000, 2) if quick else (200_000, 3)
    with tempfile.TemporaryDirectory(prefix="renkei-bench-") as folder:
        url = sqlite_url(Path(folder) / "ingest.sqlite3")
        value, account_id = asyncio.run(renkei_ingest(url, Path(folder) / "data", statements))
        baseline = sqlite_baseline(url, account_id, repeats)
    result = FigureResult(NAME, [ingest_row(f"{NAME}, SQLite", value, baseline, goal=True)])
    result.notes.append(
        f"{statements:,} statements of one Amex card, one first sync; the baseline upserts "
        f"the same rows in transactions of {PAGE_SIZE}, best of {repeats}."
    )
    return result
