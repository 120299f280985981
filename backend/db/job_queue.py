"""Where a unit of work puts the jobs and outbox deliveries its transaction asks for.

Two implementations, one rule: a job is written in the transaction of its cause, so a
crash between the two loses nothing and a rollback queues nothing.

- renkei's own ``jobs`` table (the default, the embedded SQLite's in-process runner),
  written by ``SqlRepository`` itself;
- a distributed queue (Procrastinate on PostgreSQL, ``backend.jobs.distributed``)
  that writes its jobs on the session's own connection. It is found in the session's
  ``info`` under ``QUEUE_KEY``, put there by the session factory, so every unit of
  work of a process uses the same queue.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

QUEUE_KEY = "renkei_job_queue"


class QueueOnSession(Protocol):
    async def enqueue(
        self,
        session: AsyncSession,
        kind: str,
        payload: dict[str, object],
        *,
        lock_key: str | None,
        run_at: dt.datetime,
        once: bool = True,
    ) -> None:
        """Queue a job in the session's transaction. Jobs of one lock key run one at a
        time, in order; with ``once``, a job already waiting with the same lock key does
        the same work, so a burst queues it once."""

    async def running_lock_keys(self, session: AsyncSession, kind: str) -> set[str]:
        """The lock keys of the jobs of ``kind`` a worker carries out now."""

    async def take_queued(self, session: AsyncSession, kind: str, lock_key: str) -> int | None:
        """Take a due waiting job of ``kind`` for ``lock_key`` away from the workers."""

    async def settle(
        self, session: AsyncSession, job_id: int, *, retry_at: dt.datetime | None
    ) -> None:
        """A taken job was done by its taker, or must run again at ``retry_at``."""


def queue_of(session: AsyncSession) -> QueueOnSession | None:
    queue = session.info.get(QUEUE_KEY)
    return queue if queue is not None else None
