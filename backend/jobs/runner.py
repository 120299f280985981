"""The in-process job runner of the embedded default (SQLite, no process to start).

It polls renkei's ``jobs`` table, claiming rows by compare-and-set, so it keeps nothing
that only one process knows; an outbox row is a ``deliver_webhook`` job there, as on
Procrastinate. On PostgreSQL, Procrastinate takes its
place (``backend.jobs.distributed``); both follow ``backend.jobs.policy``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from backend.db.job_store import ClaimedJob, Retention, SqlJobStore
from backend.jobs.deliveries import deliver_one
from backend.jobs.policy import PRUNE_EVERY, SCHEDULE_EVERY, job_retry_delay
from backend.service import outbox
from backend.service.jobs import DELIVER_WEBHOOK

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[object]]
Periodic = Callable[[], Awaitable[object]]
# (task, seconds from due to started, seconds it ran): what /metrics reports of a job.
Observer = Callable[[str, float, float], None]


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
        schedule: Periodic | None = None,
        retention: Retention | None = None,
        workers: int = 4,
        wake: asyncio.Event | None = None,
        observe: Observer | None = None,
    ) -> None:
        self._store = store
        self._handlers = dict(handlers)
        self._clock = clock
        if sender is not None and webhook_secret:
            self._handlers[DELIVER_WEBHOOK] = self._delivery(sender, webhook_secret)
        self._poll = poll_interval
        self._schedule = schedule
        self._retention = retention or Retention()
        self._next_schedule: dt.datetime | None = None
        self._upkeep: list[Periodic] = []
        self._next_prune: dt.datetime | None = None
        self._workers = workers
        self._observe = observe
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        # Set when this process queued a job or an outbox row (see SqlUnitOfWork): idle
        # loops start on it at once; work queued by other processes waits for a poll.
        self._wake = wake or asyncio.Event()

    def add_handler(self, kind: str, handler: Handler) -> None:
        """A job kind whose handler is built after the runner (the Slack front end's)."""
        self._handlers[kind] = handler

    def add_upkeep(self, upkeep: Periodic) -> None:
        """Work run every minute beside the scheduled syncs."""
        self._upkeep.append(upkeep)

    def _delivery(self, sender: outbox.Sender, secret: str) -> Handler:
        async def deliver(payload: dict[str, Any]) -> None:
            row = await self._store.delivery(int(payload["delivery_id"]))
            if row is None:
                return  # delivered already (a job whose lease lapsed, run again) or pruned
            await deliver_one(self._store, sender, secret, self._clock, row)

        return deliver

    async def run_once(self) -> bool:
        """Run one due job (after the upkeep, when due); True if one ran."""
        await self._schedule_periodic_syncs()
        job = await self._store.claim(self._clock())
        if job is None:
            return False
        await self._run(job)
        return True

    async def _schedule_periodic_syncs(self) -> None:
        """Scheduled syncs every minute, pruning every hour: this process's upkeep."""
        now = self._clock()
        if self._schedule is not None and (
            self._next_schedule is None or now >= self._next_schedule
        ):
            self._next_schedule = now + SCHEDULE_EVERY
            await self._schedule()
            for upkeep in self._upkeep:
                await upkeep()
        if self._next_prune is None or now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY
            await self._store.prune(now, self._retention)

    async def drain(self, max_rounds: int = 200) -> None:
        """Run until nothing is due (tests and CLI one-shots)."""
        for _ in range(max_rounds):
            if not await self.run_once():
                return

    async def _run(self, job: ClaimedJob) -> None:
        started = self._clock()
        begun = time.perf_counter()
        try:
            await self._run_handler(job.id, job.kind, job.payload, job.attempts)
        finally:
            if self._observe is not None:
                wait = max((started - job.run_at).total_seconds(), 0.0)
                self._observe(job.kind, wait, time.perf_counter() - begun)

    async def _run_handler(
        self, job_id: int, kind: str, payload: dict[str, Any], attempts: int
    ) -> None:
        handler = self._handlers.get(kind)
        if handler is None:
            await self._store.retry(job_id, self._clock(), f"no handler for {kind}", give_up=True)
            return
        try:
            await handler(payload)
        except Exception as exc:
            delay = job_retry_delay(exc, attempts)
            # A failure that says when to come back (an issuer's or Slack's) is no bug.
            if delay is None or not (hasattr(exc, "delay") or hasattr(exc, "retry_in")):
                log.exception("job %s (%s) failed", job_id, kind)
            error = getattr(exc, "code", None) or type(exc).__name__
            await self._store.retry(
                job_id,
                self._clock() + dt.timedelta(seconds=delay or 0),
                str(error),
                give_up=delay is None,
            )
            return
        await self._store.finish(job_id)

    def start(self) -> None:
        """Job workers side by side (one job per lock key at a time, in order), and the
        upkeep; all poll the database, so other processes may run them too."""
        self._stopping.clear()
        self._tasks = [
            asyncio.create_task(self._loop(self._job_round), name=f"renkei-jobs-{n}")
            for n in range(self._workers)
        ]
        self._tasks.append(
            asyncio.create_task(self._loop(self._upkeep_round), name="renkei-upkeep")
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
        await self._run(job)
        return True

    async def _upkeep_round(self) -> bool:
        await self._schedule_periodic_syncs()
        return False

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
