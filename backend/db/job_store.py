"""Jobs and outbox rows in the database: claimed atomically, so any worker may take one."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from backend.db import tables as t
from backend.domain.model import Event
from backend.service.jobs import PERSON_WAITING


@dataclass(frozen=True)
class Retention:
    """How long finished work is kept before pruning."""

    jobs: dt.timedelta = dt.timedelta(days=3)
    deliveries: dt.timedelta = dt.timedelta(days=7)
    receipts: dt.timedelta = dt.timedelta(days=1)
    # A Slack message's ``ts`` finds the handoff a support answer in its thread belongs
    # to: kept as long as a support desk may still answer there.
    slack_messages: dt.timedelta = dt.timedelta(days=30)


@dataclass(frozen=True)
class JobRow:
    """A job as an operator sees it (``renkei jobs list``), whichever runner holds it."""

    id: int
    kind: str
    status: str
    lock: str | None
    attempts: int
    run_at: dt.datetime | None
    args: dict[str, Any]


# The operator's words for job states, the same for both runners.
STATUSES = ("queued", "running", "done", "failed", "cancelled")


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    run_at: dt.datetime  # when it became due: its wait is measured from here


class SqlJobStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], lease: float = 300.0) -> None:
        self._sessions = sessions
        self._lease = dt.timedelta(seconds=lease)
        self.worker_id = uuid.uuid4().hex[:12]

    async def claim(self, now: dt.datetime) -> ClaimedJob | None:
        """Take the oldest due job whose lock key no running job holds, and no job
        queued before it: one lock key's jobs run in the order queued (as Procrastinate's
        locks do), so a message waiting to be sent again keeps the later ones behind it."""
        async with self._sessions() as session:
            running = select(t.jobs.c.lock_key).where(
                t.jobs.c.status == "running",
                t.jobs.c.locked_until > now,
                t.jobs.c.lock_key.is_not(None),
            )
            earlier = aliased(t.jobs)
            waits_behind = (
                select(earlier.c.id)
                .where(
                    earlier.c.lock_key == t.jobs.c.lock_key,
                    earlier.c.id < t.jobs.c.id,
                    earlier.c.status.in_(["queued", "running"]),
                )
                .exists()
            )
            candidates = (
                await session.execute(
                    select(
                        t.jobs.c.id,
                        t.jobs.c.kind,
                        t.jobs.c.payload,
                        t.jobs.c.attempts,
                        t.jobs.c.run_at,
                    )
                    .where(
                        t.jobs.c.run_at <= now,
                        (t.jobs.c.status == "queued")
                        | and_(t.jobs.c.status == "running", t.jobs.c.locked_until <= now),
                        (t.jobs.c.lock_key.is_(None))
                        | (t.jobs.c.lock_key.not_in(running) & ~waits_behind),
                    )
                    .order_by(
                        case((t.jobs.c.kind.in_(PERSON_WAITING), 0), else_=1),
                        t.jobs.c.run_at,
                        t.jobs.c.id,
                    )
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
                    return ClaimedJob(
                        row.id, row.kind, dict(row.payload), row.attempts + 1, row.run_at
                    )
            await session.rollback()
            return None

    async def list_jobs(self, status: str | None, limit: int) -> list[JobRow]:
        query = select(t.jobs).order_by(t.jobs.c.id.desc()).limit(limit)
        if status == "cancelled":
            query = query.where(t.jobs.c.status == "failed", t.jobs.c.last_error == "cancelled")
        elif status is not None:
            query = query.where(t.jobs.c.status == status)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [
            JobRow(
                r.id,
                r.kind,
                "cancelled" if r.status == "failed" and r.last_error == "cancelled" else r.status,
                r.lock_key,
                r.attempts,
                r.run_at,
                dict(r.payload),
            )
            for r in rows
        ]

    async def requeue(self, job_id: int, now: dt.datetime) -> bool:
        """A failed or cancelled job runs again, now."""
        async with self._sessions() as session:
            result = await session.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job_id, t.jobs.c.status == "failed")
                .values(status="queued", run_at=now, locked_until=None, last_error=None)
            )
            await session.commit()
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def cancel(self, job_id: int) -> bool:
        """A queued job will not run (a running one finishes first)."""
        async with self._sessions() as session:
            result = await session.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job_id, t.jobs.c.status == "queued")
                .values(status="failed", last_error="cancelled")
            )
            await session.commit()
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def depths(self) -> dict[tuple[str, str], int]:
        """Jobs per (kind, status), in the operator's words."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(t.jobs.c.kind, t.jobs.c.status, func.count()).group_by(
                    t.jobs.c.kind, t.jobs.c.status
                )
            )
            return {(str(kind), str(status)): int(n) for kind, status, n in rows.all()}

    async def outbox_backlog(self) -> int:
        """Outbox rows not delivered yet (nor given up)."""
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count()).where(t.webhook_deliveries.c.delivered_at.is_(None))
            )
            return int(count or 0)

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

    async def delivery(self, delivery_id: int) -> tuple[int, str, int, Event] | None:
        """An outbox row still to deliver, with its event; None once delivered (or gone)."""
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(
                        t.webhook_deliveries.c.id,
                        t.webhook_deliveries.c.url,
                        t.webhook_deliveries.c.attempts,
                        t.webhook_deliveries.c.event_id,
                    ).where(
                        t.webhook_deliveries.c.id == delivery_id,
                        t.webhook_deliveries.c.delivered_at.is_(None),
                    )
                )
            ).first()
            if row is None:
                return None
            event = await session.get(Event, row.event_id)
            return None if event is None else (row.id, row.url, row.attempts, event)

    async def prune(self, now: dt.datetime, keep: Retention) -> dict[str, int]:
        """Forget finished jobs, delivered outbox rows, old issuer event receipts and
        Slack messages posted (or given up) long ago.

        A receipt only has to outlive the issuers' signature tolerance (a replay older
        than that is refused by its timestamp), so a day is plenty by default.
        """
        counts: dict[str, int] = {}
        async with self._sessions() as session:
            for name, statement in (
                (
                    "jobs",
                    delete(t.jobs).where(
                        t.jobs.c.status.in_(["done", "failed"]),
                        t.jobs.c.run_at < now - keep.jobs,
                    ),
                ),
                (
                    "deliveries",
                    delete(t.webhook_deliveries).where(
                        t.webhook_deliveries.c.delivered_at < now - keep.deliveries
                    ),
                ),
                (
                    "slack_messages",
                    delete(t.slack_notifications).where(
                        t.slack_notifications.c.status.in_(["sent", "failed"]),
                        t.slack_notifications.c.created_at < now - keep.slack_messages,
                    ),
                ),
                (
                    "receipts",
                    delete(t.issuer_webhook_receipts).where(
                        t.issuer_webhook_receipts.c.received_at < now - keep.receipts
                    ),
                ),
            ):
                result = await session.execute(statement)
                counts[name] = int(getattr(result, "rowcount", 0) or 0)
            await session.commit()
        return counts

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
