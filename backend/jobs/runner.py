"""The in-process job runner of the embedded default.

It polls the database, so it keeps nothing that only one process knows: several
processes (or a distributed runner later) can share the same job table.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from backend.db.job_store import SqlJobStore
from backend.domain.model import Event
from backend.service import outbox
from backend.service.sync import RetryLater

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[object]]
MAX_JOB_ATTEMPTS = 8
SCHEDULE_EVERY = dt.timedelta(minutes=1)


class InProcessRunner:
    def __init__(
        self,
        store: SqlJobStore,
        handlers: Mapping[str, Handler],
        *,
        sender: outbox.Sender | None,
        webhook_secret: str | None,
        clock: Callable[[], dt.datetime],
        poll_interval: float = 0.2,
        sync_interval: dt.timedelta | None = None,
        workers: int = 4,
        wake: asyncio.Event | None = None,
    ) -> None:
        self._store = store
        self._handlers = handlers
        self._sender = sender
        self._secret = webhook_secret
        self._clock = clock
        self._poll = poll_interval
        self._sync_interval = sync_interval
        self._next_schedule: dt.datetime | None = None
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        # Set when this process queued a job or an outbox row (see SqlUnitOfWork): idle
        # loops start on it at once; work queued by other processes waits for a poll.
        self._wake = wake or asyncio.Event()

    async def run_once(self) -> bool:
        """Run one due job and one round of webhook deliveries; True if anything ran."""
        did = False
        await self._schedule_periodic_syncs()
        job = await self._store.claim(self._clock())
        if job is not None:
            did = True
            await self._run(job.id, job.kind, job.payload, job.attempts)
        if self._sender is not None and self._secret:
            did = await self._deliver() or did
        return did

    async def _schedule_periodic_syncs(self) -> None:
        """Every account is synced at least every ``sync_interval``, webhook or not:
        JCB statements arrive late by API (R9) and a missed webhook must not leave a gap."""
        if self._sync_interval is None:
            return
        now = self._clock()
        if self._next_schedule is not None and now < self._next_schedule:
            return
        self._next_schedule = now + SCHEDULE_EVERY
        await self._store.enqueue_due_syncs(now, self._sync_interval)

    async def drain(self, max_rounds: int = 200) -> None:
        """Run until nothing is due (tests and CLI one-shots)."""
        for _ in range(max_rounds):
            if not await self.run_once():
                return

    async def _run(self, job_id: int, kind: str, payload: dict[str, Any], attempts: int) -> None:
        handler = self._handlers.get(kind)
        if handler is None:
            await self._store.retry(job_id, self._clock(), f"no handler for {kind}", give_up=True)
            return
        try:
            await handler(payload)
        except RetryLater as exc:
            give_up = attempts >= MAX_JOB_ATTEMPTS
            delay = exc.delay * (1 + random.random() / 4)  # noqa: S311 - jitter, not security
            await self._store.retry(
                job_id, self._clock() + dt.timedelta(seconds=delay), exc.code, give_up=give_up
            )
            return
        except Exception as exc:
            log.exception("job %s (%s) failed", job_id, kind)
            give_up = attempts >= MAX_JOB_ATTEMPTS
            delay = outbox.backoff_seconds(attempts) * 5
            await self._store.retry(
                job_id,
                self._clock() + dt.timedelta(seconds=delay),
                type(exc).__name__,
                give_up=give_up,
            )
            return
        await self._store.finish(job_id)

    async def _deliver(self) -> bool:
        assert self._sender is not None and self._secret is not None
        due = await self._store.due_deliveries(self._clock())
        # Rows are claimed already. Different accounts' events go out side by side; one
        # account's keep their order (a conversation expects "linked" before "synced").
        lanes: dict[tuple[str, str | None], list[tuple[int, str, int, Event]]] = {}
        for row in due:
            lanes.setdefault((row[1], row[3].account_id or row[3].office_id), []).append(row)

        async def in_order(rows: list[tuple[int, str, int, Event]]) -> None:
            for row in rows:
                await self._deliver_one(*row)

        await asyncio.gather(*(in_order(rows) for rows in lanes.values()))
        return bool(due)

    async def _deliver_one(self, delivery_id: int, url: str, attempts: int, event: Event) -> None:
        assert self._sender is not None and self._secret is not None
        body = outbox.event_body(event)
        now = self._clock()
        headers = {
            "Content-Type": "application/json",
            "Renkei-Event-Id": event.id,
            "Renkei-Signature": outbox.sign(self._secret, int(now.timestamp()), body),
        }
        error: str | None = None
        try:
            status = await self._sender(url, body, headers)
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except Exception as exc:  # network errors of any client library
            error = type(exc).__name__
        attempts += 1
        delivered = error is None
        give_up = attempts >= outbox.MAX_ATTEMPTS
        await self._store.mark_delivery(
            delivery_id,
            delivered_at=now if delivered or give_up else None,
            attempts=attempts,
            next_attempt_at=now + dt.timedelta(seconds=outbox.backoff_seconds(attempts)),
            error=error,
        )

    def start(self) -> None:
        """Job workers side by side (one job per account at a time, by lock key), and the
        outbox sender; all poll the database, so other processes may run them too."""
        self._stopping.clear()
        self._tasks = [
            asyncio.create_task(self._loop(self._job_round), name=f"renkei-jobs-{n}")
            for n in range(self._workers)
        ]
        self._tasks.append(
            asyncio.create_task(self._loop(self._outbox_round), name="renkei-outbox")
        )

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        await asyncio.gather(*self._tasks)
        self._tasks = []

    async def _job_round(self) -> bool:
        job = await self._store.claim(self._clock())
        if job is None:
            return False
        await self._run(job.id, job.kind, job.payload, job.attempts)
        return True

    async def _outbox_round(self) -> bool:
        await self._schedule_periodic_syncs()
        if self._sender is None or not self._secret:
            return False
        return await self._deliver()

    async def _loop(self, round_: Callable[[], Awaitable[bool]]) -> None:
        while not self._stopping.is_set():
            # Cleared before the round: work queued while it runs wakes the next wait.
            self._wake.clear()
            try:
                busy = await round_()
            except Exception:
                log.exception("job runner round failed")
                busy = False
            if not busy and not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
