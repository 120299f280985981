"""A Slack channel's job posts its messages in order, and nothing holds a channel for
good: a message Slack refuses for itself, a job lost, a round that runs long."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db import tables as t
from backend.db.conversation_store import SqlConversationStore
from backend.db.engine import make_engine, make_sessions, migrate
from backend.db.slack_store import SqlSlackStore
from bot.slack import notifications
from bot.slack.listeners import HANDOFF_EVENT
from bot.slack.notifications import Notifier, WorkspaceClients
from statemachine.handoff import HandoffMessage, MessageKind
from statemachine.store import Handoff
from tests.support.databases import database_url
from tests.support.fake_slack import FakeSlack, fake_slack
from tests.unit.statemachine.memory import MemoryStore

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
CHANNEL = "C0OFFICE"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with fake_slack() as running:
        yield running


class Sender:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], fake: FakeSlack) -> None:
        self.now = NOW
        self.sessions = sessions
        self.store = SqlSlackStore(sessions, lambda: self.now)
        self.fake = fake

    def notifier(self, handoffs: SqlConversationStore) -> Notifier:
        clients = WorkspaceClients(self.fake.api_url, "xoxb-test-token", None)
        # Posting needs no directory nor conversations: only events are turned into words.
        return Notifier(
            self.store,
            cast(Any, None),
            cast(Any, None),
            handoffs,
            clients,
            public_url="http://renkei.test",
        )

    async def queue(self, *texts: str) -> None:
        for text in texts:
            assert await self.store.enqueue(f"evt-{text}", "T0RENKEI", CHANNEL, text, [])

    async def channel_jobs(self) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(t.jobs.c.payload).where(
                    t.jobs.c.kind == "slack_notice", t.jobs.c.status == "queued"
                )
            )
            return [dict(payload) for payload in rows.scalars()]

    async def forget_jobs(self) -> None:
        async with self.sessions() as session:
            await session.execute(delete(t.jobs))
            await session.commit()

    def posted(self) -> list[str]:
        return [str(c.args.get("text")) for c in self.fake.posts(CHANNEL)]


@pytest.fixture
async def sender(fake: FakeSlack, tmp_path: Path) -> AsyncIterator[tuple[Sender, Notifier]]:
    with database_url("sqlite", tmp_path) as url:
        engine = make_engine(url)
        await migrate(engine)
        try:
            made = Sender(make_sessions(engine), fake)
            yield made, made.notifier(SqlConversationStore(engine))
        finally:
            await engine.dispose()


async def test_a_message_slack_refuses_for_itself_does_not_hold_up_its_channel(
    sender: tuple[Sender, Notifier],
) -> None:
    made, notifier = sender
    made.fake.fail("chat.postMessage", "msg_too_long", when=lambda a: a.get("text") == "first")
    await made.queue("first", "second")
    await notifier.send({"channel_id": CHANNEL})
    assert made.posted() == ["second"]
    rows = await made.store.notifications()
    assert [(r["text"], r["status"], r["last_error"]) for r in rows] == [
        ("first", "failed", "msg_too_long"),
        ("second", "sent", None),
    ]


async def test_a_channel_whose_job_was_lost_gets_one_from_the_upkeep(
    sender: tuple[Sender, Notifier],
) -> None:
    made, notifier = sender
    await made.queue("waiting")
    await made.forget_jobs()  # cancelled by an operator, or given up on an error
    await notifier.upkeep()
    assert await made.channel_jobs() == []  # not overdue yet: its job may be running
    made.now = NOW + dt.timedelta(minutes=3)
    await notifier.upkeep()
    assert await made.channel_jobs() == [{"channel_id": CHANNEL}]


async def test_a_long_round_hands_the_channel_to_a_new_job(
    sender: tuple[Sender, Notifier], monkeypatch: pytest.MonkeyPatch
) -> None:
    made, notifier = sender
    monkeypatch.setattr(notifications, "ROUND_MESSAGES", 2)
    await made.queue("one", "two", "three")
    await made.forget_jobs()
    await notifier.send({"channel_id": CHANNEL})
    assert made.posted() == ["one", "two"]
    # The rest goes to the channel's next job, in order, and the lease is never outrun.
    assert await made.channel_jobs() == [{"channel_id": CHANNEL}]
    await notifier.send({"channel_id": CHANNEL})
    assert made.posted() == ["one", "two", "three"]


SUPPORT = "C0SUPPORT"


def _handoff(handoff_id: str, *, routed: bool) -> Handoff:
    return Handoff(
        id=handoff_id,
        conversation_id=f"conv-{handoff_id}",
        user="person@example.com",
        office_id=None,
        transcript=[],
        account_state=None,
        created_at=NOW,
        routed_at=NOW if routed else None,
    )


async def test_what_is_said_in_a_handoff_waits_for_its_thread_only_while_it_may_come(
    sender: tuple[Sender, Notifier],
) -> None:
    made, _ = sender
    handoffs = MemoryStore()
    clients = WorkspaceClients(made.fake.api_url, "xoxb-test-token", None)
    notifier = Notifier(
        made.store,
        cast(Any, None),
        cast(Any, None),
        handoffs,
        clients,
        public_url="http://renkei.test",
        support_channel=f"T0RENKEI:{SUPPORT}",
    )
    # "gone": routed long ago, its first message since pruned (or the support channel
    # changed). "coming": its first message is queued, not posted yet.
    await handoffs.add_handoff(_handoff("gone", routed=True))
    await handoffs.add_handoff(_handoff("coming", routed=True))
    assert await made.store.enqueue(f"{HANDOFF_EVENT}coming", "T0RENKEI", SUPPORT, "head", [])
    for handoff_id in ("gone", "coming"):
        await handoffs.add_handoff_message(
            HandoffMessage(
                handoff_id,
                f"conv-{handoff_id}",
                MessageKind.PERSON,
                f"words of {handoff_id}",
                "person@example.com",
                "slack",
                NOW,
            )
        )
    assert await notifier.route_handoff_messages() == 1  # "gone" alone: nothing to wait for
    assert [r["text"] for r in await made.store.notifications()] == ["head"]
    await notifier.send({"channel_id": SUPPORT})  # the thread of "coming" is posted
    assert await notifier.route_handoff_messages() == 2
    [head, words] = await made.store.notifications()
    assert head["message_ts"] and words["thread_ts"] == head["message_ts"]
    assert "words of coming" in words["text"]
