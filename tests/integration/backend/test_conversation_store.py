"""The conversation store on SQLite and PostgreSQL: transcript lines appended in order,
compare-and-set turns, batched step counts, and transcripts stored before revision
0013_transcript_lines moved to lines."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.db import tables as t
from backend.db.conversation_store import PRUNE_EVERY, SqlConversationStore
from backend.db.engine import make_engine, migrate
from statemachine.handoff import HandoffMessage, MessageKind
from statemachine.store import TRANSCRIPT_KEPT, ConversationRecord, Handoff, StepField
from tests.support.databases import downgrade_to

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
STALE = NOW - dt.timedelta(minutes=2)


@pytest.fixture
async def engine(url: str) -> AsyncIterator[AsyncEngine]:
    made = make_engine(url)
    await migrate(made)
    try:
        yield made
    finally:
        await made.dispose()


def _line(number: int) -> dict[str, object]:
    return {"from": "user", "text": f"line {number}"}


async def _new(store: SqlConversationStore, conversation_id: str = "c1") -> None:
    await store.create(
        ConversationRecord(
            id=conversation_id, user="a@example.com", locale="ja", created_at=NOW, updated_at=NOW
        )
    )


async def _turn(
    store: SqlConversationStore,
    conversation_id: str,
    lines: list[dict[str, object]],
    steps: list[tuple[str, str, StepField]] | None = None,
) -> bool:
    record = await store.take(conversation_id, NOW, STALE)
    assert record is not None
    assert record.transcript == []  # a turn never reads the earlier lines
    expected = record.version
    for line in lines:
        record.log(line)
    record.version = expected + 1
    return await store.save(record, expected, steps or [])


async def _stored_lines(engine: AsyncEngine, conversation_id: str) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(
            sa.select(sa.func.count()).where(
                t.conversation_transcript.c.conversation_id == conversation_id
            )
        )
    return int(count or 0)


async def test_turns_append_their_lines_and_readers_get_them_whole_in_order(
    engine: AsyncEngine,
) -> None:
    store = SqlConversationStore(engine)
    await _new(store)
    for number in range(0, 10, 2):
        assert await _turn(store, "c1", [_line(number), _line(number + 1)])
    loaded = await store.load("c1")
    assert loaded is not None
    assert loaded.transcript == [_line(n) for n in range(10)]
    assert await store.transcript("c1") == loaded.transcript
    assert loaded.version == 10 and loaded.logged == []


async def test_a_long_conversation_keeps_its_latest_lines(engine: AsyncEngine) -> None:
    store = SqlConversationStore(engine)
    await _new(store)
    total = TRANSCRIPT_KEPT + 2 * PRUNE_EVERY + 7
    for number in range(0, total, 2):
        assert await _turn(store, "c1", [_line(number), _line(number + 1)])
    kept = await store.transcript("c1")
    assert kept == [_line(n) for n in range(total + 1 - TRANSCRIPT_KEPT, total + 1)]
    # Old lines are deleted in batches: the table never holds much more than is kept.
    assert TRANSCRIPT_KEPT <= await _stored_lines(engine, "c1") <= TRANSCRIPT_KEPT + PRUNE_EVERY


async def test_of_two_turns_saving_from_one_version_only_the_first_is_kept(
    engine: AsyncEngine,
) -> None:
    store = SqlConversationStore(engine)
    await _new(store)
    first = await store.take("c1", NOW, STALE)
    assert first is not None
    assert await store.take("c1", NOW, STALE) is None  # a live turn holds it
    expected = first.version
    second = ConversationRecord(**{**first.__dict__, "transcript": [], "logged": []})
    first.log(_line(1))
    second.log(_line(2))
    first.version = second.version = expected + 1
    results = await asyncio.gather(
        store.save(first, expected, [("status", "a", "entered")]),
        store.save(second, expected, [("status", "b", "entered")]),
    )
    assert sorted(results) == [False, True]
    winner = _line(1) if results[0] else _line(2)
    assert await store.transcript("c1") == [winner]
    counts = await store.step_counts(NOW - dt.timedelta(days=7))
    assert [(c.step, c.entered) for c in counts] == [("a" if results[0] else "b", 1)]
    # The next turn numbers its lines after the winner's, whoever lost.
    assert await _turn(store, "c1", [_line(3)])
    assert await store.transcript("c1") == [winner, _line(3)]


async def test_concurrent_turns_on_many_conversations_lose_no_line(engine: AsyncEngine) -> None:
    store = SqlConversationStore(engine)
    ids = [f"c{n}" for n in range(6)]
    for conversation_id in ids:
        await _new(store, conversation_id)

    async def talk(conversation_id: str) -> None:
        for number in range(8):
            assert await _turn(store, conversation_id, [_line(number)], [("f", "s", "entered")])

    await asyncio.gather(*(talk(conversation_id) for conversation_id in ids))
    for conversation_id in ids:
        assert await store.transcript(conversation_id) == [_line(n) for n in range(8)]
    counts = await store.step_counts(NOW - dt.timedelta(days=7))
    assert [(c.flow, c.step, c.entered) for c in counts] == [("f", "s", 6 * 8)]


async def test_step_counts_are_folded_in_batches_without_changing_them(
    engine: AsyncEngine,
) -> None:
    store = SqlConversationStore(engine, fold_every=3)
    await _new(store)
    idle_before = NOW - dt.timedelta(days=7)
    steps: list[tuple[str, str, StepField]] = [("f", "a", "completed"), ("f", "b", "entered")]
    for _ in range(4):
        assert await _turn(store, "c1", [], steps)
    counts = await store.step_counts(idle_before)
    assert [(c.step, c.entered, c.completed) for c in counts] == [("a", 0, 4), ("b", 4, 0)]
    async with engine.connect() as connection:
        logged = await connection.scalar(sa.select(sa.func.count()).select_from(t.flow_step_log))
        folded = (await connection.execute(sa.select(t.flow_step_counts))).all()
    assert logged == 2  # the fourth turn's steps wait for the next batch
    assert sorted((r.step, r.entered, r.completed) for r in folded) == [("a", 0, 3), ("b", 3, 0)]
    await store.fold_steps()
    assert await store.step_counts(idle_before) == counts


async def test_a_transcript_stored_whole_moves_to_lines_in_order(url: str) -> None:
    old = [{"from": "user", "choice": f"pick:{n}", "text": "山田"} for n in range(150)]
    engine = make_engine(url)
    try:
        await migrate(engine)
        async with engine.begin() as connection:
            await connection.run_sync(downgrade_to, "0009")
            for conversation_id, transcript in (("old", old), ("empty", [])):
                await connection.execute(
                    sa.text(
                        "INSERT INTO conversations (id, user_email, locale, state, slots,"
                        " history, replies, transcript, version, created_at, updated_at)"
                        " VALUES (:id, 'a@example.com', 'ja', 'menu', '{}', '[]', '[]', :tr, 2,"
                        " :now, :now)"
                    ),
                    {"id": conversation_id, "tr": json.dumps(transcript), "now": NOW},
                )
        await migrate(engine)
        store = SqlConversationStore(engine)
        assert await store.transcript("old") == old
        assert await store.transcript("empty") == []
        assert await _turn(store, "old", [_line(1)])
        assert await store.transcript("old") == [*old, _line(1)]
        # Back down, the conversation holds its transcript whole again.
        async with engine.begin() as connection:
            await connection.run_sync(downgrade_to, "0009")
            stored = await connection.scalar(
                sa.text("SELECT transcript FROM conversations WHERE id = 'old'")
            )
        assert (json.loads(stored) if isinstance(stored, str) else stored) == [*old, _line(1)]
    finally:
        await engine.dispose()


async def test_a_handoff_is_kept_when_its_routing_cannot_be_queued(engine: AsyncEngine) -> None:
    """The routing is queued after the write: if that fails, the person's turn does not
    (the minute's upkeep queues it instead)."""
    store = SqlConversationStore(engine)
    await _new(store)

    async def refused() -> None:
        raise RuntimeError("database is locked")

    store.on_handoff = refused
    handoff = Handoff("h1", "c1", "a@example.com", None, [], None, NOW)
    await store.add_handoff(handoff)
    said = HandoffMessage("h1", "c1", MessageKind.PERSON, "help", "a@example.com", "chat", NOW)
    await store.add_handoff_message(said)
    assert [h.id for h in await store.unrouted_handoffs()] == ["h1"]
    assert [m.text for m in await store.unrouted_handoff_messages()] == ["help"]
