"""Figure: conversation turns per second through the flow engine with persistence.

renkei: the real ``FlowEngine`` over the real ``SqlConversationStore`` and the real
``status`` flow; each turn loads the conversation, fires the trigger on the flow's
shared machine, renders the prompt and saves with optimistic locking. The back end
answers from memory, so the figure is the engine and its storage, not HTTP.

Baseline: the same row read and written back by the raw driver (``sqlite3`` or
``psycopg``): one ``SELECT`` and one ``UPDATE … WHERE version = ?`` committed per turn,
on SQLite with renkei's durability (WAL, ``synchronous=NORMAL``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import psycopg

from backend.db.conversation_store import SqlConversationStore
from backend.db.engine import make_engine, migrate
from backend.domain.vocabulary import AccountStatus, Issuer, LinkStatus, Role, SyncMethod
from bench.databases import psycopg_url, sqlite_path, sqlite_url
from bench.result import FigureResult, Row
from bench.timing import best_rate
from bot.conversations import choice_label, reply_text
from statemachine.engine import FlowEngine, Input
from statemachine.flows import ALL_FLOWS
from statemachine.port import (
    AccountInfo,
    BackendPort,
    CardInfo,
    InvitationInfo,
    IssuerHealthInfo,
    OfficeInfo,
)

NAME = "conversation turn"
GOAL = 0.1
OFFICE = OfficeInfo(
    id="office-1", name="山田商店", role=Role.ADMIN, released_issuers=(Issuer.AMEX,)
)
CARD = CardInfo(
    id="card-1",
    issuer=Issuer.AMEX,
    masked_number="XXXX-XXXXXX-11001",
    product="amex_business",
    holder_name="YAMADA TARO",
)
ACCOUNT = AccountInfo(
    id="account-1",
    office_id=OFFICE.id,
    name="アメックス ビジネス",
    issuer=Issuer.AMEX,
    sync_method=SyncMethod.API,
    status=AccountStatus.ACTIVE,
    card=CARD,
    last_synced_at="2025-01-31T09:00:00+00:00",
    link_status=LinkStatus.ACTIVE,
)
# Two turns a cycle: pick the account (show_status), then back (choose_account).
CYCLE = (f"pick:{ACCOUNT.id}", "back")
WARM_UP_TURNS = 120  # the transcript reaches its limit: a long-lived conversation


class MemoryBackend:
    """The flows' port of the back end, answering from memory (only what ``status`` asks)."""

    async def offices(self) -> list[OfficeInfo]:
        return [OFFICE]

    async def office(self, office_id: str) -> OfficeInfo:
        return OFFICE

    async def invitations(self) -> list[InvitationInfo]:
        return []

    async def answer_invitation(self, invitation_id: str, accept: bool) -> None:
        raise AssertionError("the benchmark never answers an invitation")

    async def accounts(self, office_id: str) -> list[AccountInfo]:
        return [ACCOUNT]

    async def account(self, account_id: str) -> AccountInfo:
        return ACCOUNT

    async def issuer_health(self) -> dict[str, IssuerHealthInfo]:
        return {issuer: IssuerHealthInfo(issuer, "healthy") for issuer in ("amex", "jcb")}


async def renkei_turns(database_url: str, turns: int, repeats: int) -> tuple[float, str]:
    """Best turns/s of the engine; returns it with the id of the conversation used."""
    engine = make_engine(database_url)
    try:
        await migrate(engine)
        backend = cast(BackendPort, MemoryBackend())
        flows = FlowEngine(
            ALL_FLOWS,
            SqlConversationStore(engine),
            lambda user: backend,
            label=choice_label,
            say=reply_text,
        )
        record = await flows.create("owner@example.com", "ja")
        record = await flows.handle(record.id, Input(choice="status"))
        if (record.flow, record.state) != ("status", "choose_account"):
            raise RuntimeError(f"the status flow did not start: {record.flow}/{record.state}")
        conversation = record.id

        async def run(count: int) -> float:
            started = time.perf_counter()
            for index in range(count):
                await flows.handle(conversation, Input(choice=CYCLE[index % 2]))
            return time.perf_counter() - started

        await run(WARM_UP_TURNS)
        best = 0.0
        for _ in range(repeats):
            best = max(best, turns / await run(turns))
        return best, conversation
    finally:
        await engine.dispose()


# Built from constants only (no input reaches them).
_COLUMNS = "state, slots, history, replies, waiting_for, version, updated_at"
# The row's columns but its id, for the baseline's copy of the conversation's row.
_COPIED = (
    "user_email, locale, office_id, flow, state, slots, history, replies, transcript_lines, "
    "waiting_for, version, created_at, updated_at"
)
_SELECT_SQLITE = f"SELECT {_COLUMNS} FROM conversations WHERE id = ?"  # noqa: S608
_SELECT_POSTGRES = f"SELECT {_COLUMNS} FROM conversations WHERE id = %s"  # noqa: S608


def sqlite_baseline(database_url: str, source_id: str, turns: int, repeats: int) -> float:
    """Best select + update per second of a copy of the conversation's row, raw sqlite3."""
    connection = sqlite3.connect(sqlite_path(database_url), timeout=30)
    try:
        # The durability renkei's own connections run with (backend.db.engine): with the
        # default (FULL) every commit waits for the disk, and the baseline measures that.
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
        copy = "raw-" + source_id[:28]
        connection.execute("DELETE FROM conversations WHERE id = ?", (copy,))
        connection.execute(
            f"INSERT INTO conversations (id, {_COPIED}) "  # noqa: S608 (constants only)
            f"SELECT ?, {_COPIED} FROM conversations WHERE id = ?",
            (copy, source_id),
        )
        connection.commit()

        def run() -> float:
            started = time.perf_counter()
            for _ in range(turns):
                row = connection.execute(_SELECT_SQLITE, (copy,)).fetchone()
                state, slots, history, replies, waiting, version, updated = row
                connection.execute(
                    "UPDATE conversations SET state = ?, slots = ?, history = ?, replies = ?, "
                    "waiting_for = ?, version = ?, updated_at = ? "
                    "WHERE id = ? AND version = ?",
                    (
                        state,
                        slots,
                        history,
                        replies,
                        waiting,
                        version + 1,
                        updated,
                        copy,
                        version,
                    ),
                )
                connection.commit()
            return time.perf_counter() - started

        return best_rate(repeats, turns, run)
    finally:
        connection.close()


def postgres_baseline(database_url: str, source_id: str, turns: int, repeats: int) -> float:
    """Best select + update per second of a copy of the conversation's row, raw psycopg."""
    with psycopg.connect(psycopg_url(database_url)) as connection:
        copy = "raw-" + source_id[:28]
        connection.execute("DELETE FROM conversations WHERE id = %s", (copy,))
        connection.execute(
            f"INSERT INTO conversations (id, {_COPIED}) "  # noqa: S608 (constants only)
            f"SELECT %s, {_COPIED} FROM conversations WHERE id = %s",
            (copy, source_id),
        )
        connection.commit()

        def run() -> float:
            started = time.perf_counter()
            for _ in range(turns):
                row: Any = connection.execute(_SELECT_POSTGRES, (copy,)).fetchone()
                state, slots, history, replies, waiting, version, updated = row
                connection.execute(
                    "UPDATE conversations SET state = %s, slots = %s::json, history = %s::json, "
                    "replies = %s::json, waiting_for = %s, version = %s, "
                    "updated_at = %s WHERE id = %s AND version = %s",
                    (
                        state,
                        psycopg.types.json.Json(slots),
                        psycopg.types.json.Json(history),
                        psycopg.types.json.Json(replies),
                        waiting,
                        version + 1,
                        updated,
                        copy,
                        version,
                    ),
                )
                connection.commit()
            return time.perf_counter() - started

        return best_rate(repeats, turns, run)


def turn_row(figure: str, value: float, baseline: float, goal: bool) -> Row:
    return Row(
        figure,
        "turns/s",
        value,
        baseline,
        goal=f"≥ {GOAL}× baseline" if goal else "reported",
        goal_bound=GOAL if goal else None,
        chart="throughput",
    )


def run(quick: bool) -> FigureResult:
    """The figure on SQLite."""
    turns, repeats = (200, 2) if quick else (2000, 3)
    with tempfile.TemporaryDirectory(prefix="renkei-bench-") as folder:
        url = sqlite_url(Path(folder) / "turns.sqlite3")
        value, conversation = asyncio.run(renkei_turns(url, turns, repeats))
        baseline = sqlite_baseline(url, conversation, turns * 5, repeats)
    result = FigureResult(NAME, [turn_row(f"{NAME}, SQLite", value, baseline, goal=True)])
    result.notes.append(
        f"{turns:,} turns (pick an account, back) on one conversation after {WARM_UP_TURNS} "
        "warm-up turns, best of "
        f"{repeats}; the baseline reads and writes back the same row (its transcript is in "
        f"lines of their own), {turns * 5:,} times."
    )
    return result
