"""What the Slack front end keeps in renkei's database (tables ``slack_*``).

Everything lives in the database, not in the process: a retried request, a button
clicked on another process, a notification retried after a restart all find it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db import tables as t

# A claimed notification is someone's for this long; a crashed sender's claim lapses.
CLAIM_LEASE = dt.timedelta(seconds=60)
SEEN_KEPT = dt.timedelta(days=1)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class SlackMember:
    team_id: str
    user_id: str
    email: str | None
    locale: str
    dm_channel_id: str | None
    conversation_id: str | None
    updated_at: dt.datetime


@dataclass(frozen=True)
class OfficeChannel:
    office_id: str
    team_id: str
    channel_id: str


@dataclass(frozen=True)
class Notification:
    id: int
    event_id: str
    team_id: str | None
    channel_id: str
    text: str
    blocks: list[dict[str, Any]]
    attempts: int


class SlackStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self._sessions = sessions
        self.clock = clock

    def _insert(self, session: AsyncSession) -> Any:
        dialect = session.get_bind().dialect.name
        return postgresql_insert if dialect == "postgresql" else sqlite_insert

    # ------------------------------------------------------------------ requests seen
    async def first_time(self, key: str) -> bool:
        """True once per key, whichever process asks first (the primary key decides)."""
        async with self._sessions() as session:
            try:
                await session.execute(
                    t.slack_requests_seen.insert().values(key=key[:200], seen_at=self.clock())
                )
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return False
        return True

    async def forget_seen_before(self, before: dt.datetime) -> None:
        async with self._sessions() as session:
            await session.execute(
                delete(t.slack_requests_seen).where(t.slack_requests_seen.c.seen_at < before)
            )
            await session.commit()

    # ------------------------------------------------------------------ members
    async def member(self, team_id: str, user_id: str) -> SlackMember | None:
        u = t.slack_users
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(u).where(u.c.team_id == team_id, u.c.user_id == user_id)
                )
            ).first()
        return _member(row) if row is not None else None

    async def save_member(
        self, team_id: str, user_id: str, email: str | None, locale: str
    ) -> SlackMember:
        u = t.slack_users
        now = self.clock()
        async with self._sessions() as session:
            insert = self._insert(session)
            statement = insert(u).values(
                team_id=team_id, user_id=user_id, email=email, locale=locale, updated_at=now
            )
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=[u.c.team_id, u.c.user_id],
                    set_={"email": email, "locale": locale, "updated_at": now},
                )
            )
            await session.commit()
        found = await self.member(team_id, user_id)
        assert found is not None
        return found

    async def set_dm(self, team_id: str, user_id: str, channel_id: str) -> None:
        await self._update_member(team_id, user_id, dm_channel_id=channel_id)

    async def set_conversation(self, team_id: str, user_id: str, conversation_id: str) -> None:
        await self._update_member(team_id, user_id, conversation_id=conversation_id)

    async def _update_member(self, team_id: str, user_id: str, **values: Any) -> None:
        u = t.slack_users
        async with self._sessions() as session:
            await session.execute(
                update(u).where(u.c.team_id == team_id, u.c.user_id == user_id).values(**values)
            )
            await session.commit()

    async def members_of_conversation(self, conversation_id: str) -> list[SlackMember]:
        u = t.slack_users
        async with self._sessions() as session:
            rows = (
                await session.execute(select(u).where(u.c.conversation_id == conversation_id))
            ).all()
        return [_member(row) for row in rows]

    # ------------------------------------------------------------------ office channels
    async def set_office_channel(
        self, office_id: str, team_id: str, channel_id: str, set_by: str
    ) -> None:
        c = t.slack_office_channels
        now = self.clock()
        values = {"team_id": team_id, "channel_id": channel_id, "set_by": set_by, "updated_at": now}
        async with self._sessions() as session:
            insert = self._insert(session)
            await session.execute(
                insert(c)
                .values(office_id=office_id, **values)
                .on_conflict_do_update(index_elements=[c.c.office_id], set_=values)
            )
            await session.commit()

    async def office_channel(self, office_id: str) -> OfficeChannel | None:
        c = t.slack_office_channels
        async with self._sessions() as session:
            row = (await session.execute(select(c).where(c.c.office_id == office_id))).first()
        if row is None:
            return None
        return OfficeChannel(row.office_id, row.team_id, row.channel_id)

    # ------------------------------------------------------------------ outgoing messages
    async def enqueue(
        self,
        event_id: str,
        team_id: str | None,
        channel_id: str,
        text: str,
        blocks: list[dict[str, Any]],
    ) -> bool:
        """Queue a message once per (event, channel); False when it was queued before."""
        n = t.slack_notifications
        now = self.clock()
        async with self._sessions() as session:
            insert = self._insert(session)
            result = await session.execute(
                insert(n)
                .values(
                    event_id=event_id[:120],
                    team_id=team_id,
                    channel_id=channel_id,
                    text=text,
                    blocks=blocks,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=[n.c.event_id, n.c.channel_id])
            )
            await session.commit()
        return bool(getattr(result, "rowcount", 0))

    async def claim_due(self, limit: int = 20) -> list[Notification]:
        """Messages due now, each claimed by this process alone (compare-and-set)."""
        n = t.slack_notifications
        now = self.clock()
        due = and_(
            or_(n.c.status == "pending", n.c.status == "sending"), n.c.next_attempt_at <= now
        )
        claimed: list[Notification] = []
        async with self._sessions() as session:
            rows = (await session.execute(select(n).where(due).order_by(n.c.id).limit(limit))).all()
            for row in rows:
                result = await session.execute(
                    update(n)
                    # Whoever updates first moves next_attempt_at past now: the other finds none.
                    .where(n.c.id == row.id, due)
                    .values(status="sending", next_attempt_at=now + CLAIM_LEASE)
                )
                if getattr(result, "rowcount", 0) == 1:
                    claimed.append(
                        Notification(
                            row.id,
                            row.event_id,
                            row.team_id,
                            row.channel_id,
                            row.text,
                            list(row.blocks),
                            row.attempts,
                        )
                    )
            await session.commit()
        return claimed

    async def mark_sent(self, notification_id: int, message_ts: str | None) -> None:
        await self._update_notification(
            notification_id,
            status="sent",
            message_ts=message_ts,
            sent_at=self.clock(),
            attempts=t.slack_notifications.c.attempts + 1,
            last_error=None,
        )

    async def mark_retry(self, notification_id: int, delay: float, error: str) -> None:
        await self._update_notification(
            notification_id,
            status="pending",
            next_attempt_at=self.clock() + dt.timedelta(seconds=delay),
            attempts=t.slack_notifications.c.attempts + 1,
            last_error=error[:200],
        )

    async def mark_failed(self, notification_id: int, error: str) -> None:
        await self._update_notification(
            notification_id,
            status="failed",
            attempts=t.slack_notifications.c.attempts + 1,
            last_error=error[:200],
        )

    async def _update_notification(self, notification_id: int, **values: Any) -> None:
        n = t.slack_notifications
        async with self._sessions() as session:
            await session.execute(update(n).where(n.c.id == notification_id).values(**values))
            await session.commit()

    async def notifications(self, event_prefix: str = "") -> list[dict[str, Any]]:
        """Rows for operators and tests: status, attempts and last error of each message."""
        n = t.slack_notifications
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(n).where(n.c.event_id.startswith(event_prefix)).order_by(n.c.id)
                )
            ).all()
        return [dict(row._mapping) for row in rows]


def _member(row: Any) -> SlackMember:
    return SlackMember(
        team_id=row.team_id,
        user_id=row.user_id,
        email=row.email,
        locale=row.locale,
        dm_channel_id=row.dm_channel_id,
        conversation_id=row.conversation_id,
        updated_at=row.updated_at,
    )
