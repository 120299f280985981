"""The Slack front end's ports (``bot.slack.ports``) on renkei's database.

``SqlSlackStore`` keeps the ``slack_*`` tables; ``SqlDirectory`` reads the office and
account names a notice shows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import and_, delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db import tables as t
from backend.db.repository import SqlUnitOfWork
from backend.domain.model import JobKind
from backend.secrets import SecretError
from backend.service.context import SecretBox
from bot.slack.ports import (
    AccountNames,
    Notification,
    OfficeChannel,
    Posting,
    PostingStatus,
    SlackMember,
    SlackRequest,
)

log = logging.getLogger(__name__)

SEEN_KEPT = dt.timedelta(days=1)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def slack_channel_lock(channel_id: str) -> str:
    """One job posts to a channel at a time, and one waits: a burst queues it once."""
    return f"slack:{channel_id}"


class SqlSlackStore:
    """``bot.slack.ports.SlackStore`` on the ``slack_*`` tables."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], dt.datetime] = _utcnow,
        on_new_work: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self.clock = clock
        self._on_new_work = on_new_work  # this process's runner starts on a queued job

    def _uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions, self._on_new_work)

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

    async def members_by_email(self, email: str) -> list[SlackMember]:
        u = t.slack_users
        async with self._sessions() as session:
            rows = (await session.execute(select(u).where(u.c.email == email))).all()
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

    async def channel_setters(self, team_id: str, channel_id: str) -> list[SlackMember]:
        """The Slack members who made this channel an office's notice channel."""
        c, u = t.slack_office_channels, t.slack_users
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(u)
                    .join(c, and_(c.c.team_id == u.c.team_id, c.c.set_by == u.c.email))
                    .where(c.c.team_id == team_id, c.c.channel_id == channel_id)
                    .distinct()
                )
            ).all()
        return [_member(row) for row in rows]

    # ------------------------------------------------------------------ outgoing messages
    async def enqueue(
        self,
        event_id: str,
        team_id: str | None,
        channel_id: str,
        text: str,
        blocks: list[dict[str, Any]],
        thread_ts: str | None = None,
    ) -> bool:
        """Queue a message once per (event, channel), and in the same transaction the
        channel's ``slack_notice`` job (one waits per channel at most): it posts the
        channel's messages in the order queued, a message Slack turned away keeping the
        later ones behind it."""
        n = t.slack_notifications
        now = self.clock()
        async with self._uow() as uow:
            insert = self._insert(uow.session)
            notification_id = await uow.session.scalar(
                insert(n)
                .values(
                    event_id=event_id[:120],
                    team_id=team_id,
                    channel_id=channel_id,
                    text=text,
                    blocks=blocks,
                    thread_ts=thread_ts,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=[n.c.event_id, n.c.channel_id])
                .returning(n.c.id)
            )
            if notification_id is None:
                return False  # queued before (a webhook delivered twice)
            await self._queue_channel(uow, channel_id, now)
            await uow.commit()
        return True

    async def _queue_channel(self, uow: SqlUnitOfWork, channel_id: str, now: dt.datetime) -> None:
        await uow.repo.enqueue_job(
            JobKind.SLACK_NOTICE.value,
            {"channel_id": channel_id},
            lock_key=slack_channel_lock(channel_id),
            run_at=now,
        )

    async def queue_channel(self, channel_id: str) -> None:
        async with self._uow() as uow:
            await self._queue_channel(uow, channel_id, self.clock())
            await uow.commit()

    async def overdue_channels(self, due_before: dt.datetime) -> list[str]:
        n = t.slack_notifications
        async with self._sessions() as session:
            rows = await session.execute(
                select(n.c.channel_id)
                .where(n.c.status.in_(["pending", "sending"]), n.c.next_attempt_at < due_before)
                .distinct()
            )
            return [str(channel_id) for channel_id in rows.scalars()]

    async def waiting_messages(self, channel_id: str, limit: int = 20) -> list[Notification]:
        n = t.slack_notifications
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(n)
                    .where(n.c.channel_id == channel_id, n.c.status.in_(["pending", "sending"]))
                    .order_by(n.c.id)
                    .limit(limit)
                )
            ).all()
        return [
            Notification(
                row.id,
                row.event_id,
                row.team_id,
                row.channel_id,
                row.text,
                list(row.blocks),
                row.attempts,
                row.thread_ts,
                row.next_attempt_at,
            )
            for row in rows
        ]

    async def queue_handoff_routing(self) -> None:
        async with self._uow() as uow:
            await uow.repo.enqueue_job(
                JobKind.SLACK_HANDOFFS.value, {}, lock_key="slack:handoffs", run_at=self.clock()
            )
            await uow.commit()

    async def posting(self, event_id: str, channel_id: str) -> Posting | None:
        n = t.slack_notifications
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(n.c.status, n.c.message_ts).where(
                        n.c.event_id == event_id[:120], n.c.channel_id == channel_id
                    )
                )
            ).first()
        if found is None:
            return None
        status = cast(PostingStatus, str(found.status))
        return Posting(status, str(found.message_ts) if found.message_ts else None)

    async def event_of_message(self, channel_id: str, message_ts: str) -> str | None:
        n = t.slack_notifications
        async with self._sessions() as session:
            found = await session.scalar(
                select(n.c.event_id)
                .where(n.c.channel_id == channel_id, n.c.message_ts == message_ts)
                .limit(1)
            )
        return str(found) if found else None

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


class SqlDirectory:
    """``bot.slack.ports.Directory`` on the offices and accounts tables."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def office_name(self, office_id: str) -> str | None:
        async with self._sessions() as session:
            name = await session.scalar(select(t.offices.c.name).where(t.offices.c.id == office_id))
        return None if name is None else str(name)

    async def member_emails(self, office_id: str) -> list[str]:
        m = t.memberships
        async with self._sessions() as session:
            rows = await session.scalars(
                select(m.c.email).where(m.c.office_id == office_id).order_by(m.c.email)
            )
        return [str(email) for email in rows]

    async def account_names(self, account_id: str) -> AccountNames | None:
        a = t.accounts
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(a.c.name, a.c.issuer, a.c.sync_method).where(a.c.id == account_id)
                )
            ).first()
        if row is None:
            return None
        return AccountNames(
            name=str(row.name),
            issuer=str(getattr(row.issuer, "value", row.issuer)),
            sync_method=str(getattr(row.sync_method, "value", row.sync_method)),
        )


class SqlDeferredRequests:
    """``bot.slack.ports.DeferredRequests``: a Slack request becomes a ``slack_request``
    job in the same transaction that notes its key as seen, so a retry of the request
    queues nothing and an ack never leaves before its work is safe.

    The request is sealed with renkei's secret keys: a modal's answer may be a
    password, and the job table is no place for one in the clear.
    """

    def __init__(
        self,
        uow: Callable[[], SqlUnitOfWork],
        secrets: SecretBox,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self._uow = uow
        self._secrets = secrets
        self._clock = clock

    async def defer(self, key: str | None, request: SlackRequest) -> bool:
        sealed = self._secrets.encrypt(json.dumps(dataclasses.asdict(request))).decode()
        async with self._uow() as uow:
            if key is not None:
                try:
                    async with uow.session.begin_nested():
                        await uow.session.execute(
                            t.slack_requests_seen.insert().values(
                                key=key[:200], seen_at=self._clock()
                            )
                        )
                except IntegrityError:
                    return False
            await uow.repo.enqueue_job(
                JobKind.SLACK_REQUEST.value, {"sealed": sealed}, lock_key=None, run_at=self._clock()
            )
            await uow.commit()
        return True

    def opened(self, payload: dict[str, Any]) -> SlackRequest | None:
        try:
            fields = json.loads(self._secrets.decrypt(str(payload["sealed"]).encode()))
            return SlackRequest(body=dict(fields["body"]), carried=dict(fields["carried"]))
        except (KeyError, TypeError, ValueError, SecretError) as exc:
            # Sealed with a key since dropped, or not ours: nothing to carry out.
            log.warning("a deferred Slack request could not be read: %s", type(exc).__name__)
            return None
