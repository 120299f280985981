"""Jobs and outbox rows in the database: claimed atomically, so any worker may take one."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db import tables as t
from backend.domain.model import Event, JobKind


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int


class SqlJobStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], lease: float = 300.0) -> None:
        self._sessions = sessions
        self._lease = dt.timedelta(seconds=lease)
        self.worker_id = uuid.uuid4().hex[:12]

    async def claim(self, now: dt.datetime) -> ClaimedJob | None:
        """Take the oldest due job whose lock key no running job holds."""
        async with self._sessions() as session:
            running = select(t.jobs.c.lock_key).where(
                t.jobs.c.status == "running",
                t.jobs.c.locked_until > now,
                t.jobs.c.lock_key.is_not(None),
            )
            candidates = (
                await session.execute(
                    select(t.jobs.c.id, t.jobs.c.kind, t.jobs.c.payload, t.jobs.c.attempts)
                    .where(
                        t.jobs.c.run_at <= now,
                        (t.jobs.c.status == "queued")
                        | and_(t.jobs.c.status == "running", t.jobs.c.locked_until <= now),
                        (t.jobs.c.lock_key.is_(None)) | (t.jobs.c.lock_key.not_in(running)),
                    )
                    .order_by(t.jobs.c.run_at, t.jobs.c.id)
                    .limit(5)
                )
            ).all()
            for row in candidates:
                # Compare-and-set: of two workers racing for one job, one wins.
                result = await session.execute(
                    update(t.jobs)
                    .where(t.jobs.c.id == row.id, t.jobs.c.attempts == row.attempts)
                    .values(
                        status="running",
                        attempts=row.attempts + 1,
                        locked_until=now + self._lease,
                    )
                )
                if getattr(result, "rowcount", 0) == 1:
                    await session.commit()
                    return ClaimedJob(row.id, row.kind, dict(row.payload), row.attempts + 1)
            await session.rollback()
            return None

    async def enqueue_due_syncs(self, now: dt.datetime, interval: dt.timedelta) -> int:
        """Queue a sync for every live account not synced within ``interval``.

        An account that already has a queued or running sync gets none; the sync lease
        keeps a second one harmless if two schedulers race.
        """
        pending = select(t.jobs.c.lock_key).where(
            t.jobs.c.status.in_(["queued", "running"]), t.jobs.c.lock_key.is_not(None)
        )
        async with self._sessions() as session:
            due = (
                await session.execute(
                    select(t.accounts.c.id).where(
                        t.accounts.c.status.in_(["active", "syncing"]),
                        t.accounts.c.sync_method.in_(["api", "legacy"]),
                        (t.accounts.c.last_synced_at.is_(None))
                        | (t.accounts.c.last_synced_at < now - interval),
                        ("account:" + t.accounts.c.id).not_in(pending),
                    )
                )
            ).all()
            for (account_id,) in due:
                await session.execute(
                    t.jobs.insert().values(
                        kind=JobKind.SYNC_ACCOUNT.value,
                        payload={"account_id": account_id},
                        lock_key=f"account:{account_id}",
                        status="queued",
                        attempts=0,
                        run_at=now,
                        created_at=now,
                    )
                )
            await session.commit()
            return len(due)

    async def finish(self, job_id: int) -> None:
        async with self._sessions() as session:
            await session.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(status="done"))
            await session.commit()

    async def retry(self, job_id: int, run_at: dt.datetime, error: str, *, give_up: bool) -> None:
        async with self._sessions() as session:
            await session.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job_id)
                .values(
                    status="failed" if give_up else "queued",
                    run_at=run_at,
                    locked_until=None,
                    last_error=error[:200],
                )
            )
            await session.commit()

    async def pending_count(self) -> int:
        async with self._sessions() as session:
            rows = await session.execute(
                select(t.jobs.c.id).where(t.jobs.c.status.in_(["queued", "running"]))
            )
            return len(rows.all())

    async def due_deliveries(
        self, now: dt.datetime, limit: int = 50, lease: float = 60.0
    ) -> list[tuple[int, str, int, Event]]:
        """Claim the due outbox rows: of several workers, one takes each row.

        A claimed row is not due again until ``lease`` seconds pass, so a worker that
        dies mid-delivery leaves it to the next one.
        """
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(
                        t.webhook_deliveries.c.id,
                        t.webhook_deliveries.c.url,
                        t.webhook_deliveries.c.attempts,
                        t.webhook_deliveries.c.event_id,
                        t.webhook_deliveries.c.next_attempt_at,
                    )
                    .where(
                        t.webhook_deliveries.c.delivered_at.is_(None),
                        t.webhook_deliveries.c.next_attempt_at <= now,
                    )
                    .order_by(t.webhook_deliveries.c.id)
                    .limit(limit)
                )
            ).all()
            result = []
            for row in rows:
                claimed = await session.execute(
                    update(t.webhook_deliveries)
                    .where(
                        t.webhook_deliveries.c.id == row.id,
                        t.webhook_deliveries.c.next_attempt_at == row.next_attempt_at,
                        t.webhook_deliveries.c.delivered_at.is_(None),
                    )
                    .values(next_attempt_at=now + dt.timedelta(seconds=lease))
                )
                if getattr(claimed, "rowcount", 0) != 1:
                    continue  # another worker has it
                event = await session.get(Event, row.event_id)
                if event is not None:
                    result.append((row.id, row.url, row.attempts, event))
            await session.commit()
            return result

    async def mark_delivery(
        self,
        delivery_id: int,
        *,
        delivered_at: dt.datetime | None,
        attempts: int,
        next_attempt_at: dt.datetime,
        error: str | None,
    ) -> None:
        async with self._sessions() as session:
            await session.execute(
                update(t.webhook_deliveries)
                .where(t.webhook_deliveries.c.id == delivery_id)
                .values(
                    delivered_at=delivered_at,
                    attempts=attempts,
                    next_attempt_at=next_attempt_at,
                    last_error=error,
                )
            )
            await session.commit()
