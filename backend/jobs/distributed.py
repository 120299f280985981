"""Background work on Procrastinate, for PostgreSQL: any number of workers, any machine.

Every kind of background work is a Procrastinate task, and renkei keeps no queue, claim
or lease of its own here:

- ``sync_account``: ``lock`` per account (one sync per account at a time, in any
  process) and ``queueing_lock`` per account (a burst of webhooks queues one sync);
  retried by ``backend.jobs.policy``, which honours an issuer's ``Retry-After``.
- ``slack_notice``: a Slack channel's waiting messages, posted in order (``bot.slack``);
  ``lock`` and ``queueing_lock`` per channel; ``slack_handoffs`` passes handoffs on.
- ``deliver_webhook``: one outbox row; ``lock`` per subscriber and account, so one
  account's events reach a subscriber in order; retried with the outbox's backoff.
- periodic tasks: scheduled syncs (``schedule_syncs``, every minute), stalled jobs of
  dead workers put back (``recover_stalled``), pruning of finished jobs, delivered
  outbox rows and issuer event receipts (``prune``, hourly).

Jobs are deferred on the caller's own connection, inside the transaction of their
cause (see ``docs/architecture.md``): committed together, or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import procrastinate
from procrastinate import exceptions as pexc
from procrastinate import jobs as pjobs
from procrastinate import manager as pmanager
from procrastinate import sql as psql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.job_store import JobRow, Retention, SqlJobStore
from backend.jobs.deliveries import deliver_one
from backend.jobs.policy import job_retry_delay
from backend.service import outbox
from backend.service.jobs import (
    DELIVER_WEBHOOK,
    PERSON_WAITING,
    SLACK_HANDOFFS,
    SLACK_NOTICE,
    SLACK_REQUEST,
    SYNC_ACCOUNT,
)

log = logging.getLogger(__name__)

# Procrastinate takes higher priorities first (its default is 0).
PRIORITY_PERSON_WAITING = 10
QUEUE = "renkei"
# Procrastinate's job states in the operator's words (``backend.db.job_store.STATUSES``).
_STATUS_WORDS = {
    "todo": "queued",
    "doing": "running",
    "succeeded": "done",
    "failed": "failed",
    "cancelled": "cancelled",
    "aborting": "running",
    "aborted": "cancelled",
}


def conninfo(database_url: str) -> str:
    """The libpq address of a SQLAlchemy ``postgresql+psycopg://`` URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


WORKER_RESTART_SECONDS = 1.0  # a database coming back is not asked every instant


class RenkeiRetry(procrastinate.BaseRetryStrategy):
    """Procrastinate's face of ``backend.jobs.policy`` (one policy for both runners)."""

    def get_retry_decision(
        self, *, exception: BaseException, job: pjobs.Job
    ) -> procrastinate.RetryDecision | None:
        attempts = job.attempts + 1  # procrastinate counts the runs before this one
        delay = job_retry_delay(exception, attempts)
        if delay is None:
            return None
        return procrastinate.RetryDecision(retry_in={"seconds": int(delay) + 1})


class JobManager(pmanager.JobManager):
    """Procrastinate's job manager, where a retry meets a job that already waits.

    A sync to be retried (an issuer's ``Retry-After``, or a dead worker's job put back)
    may find another sync of the account waiting under the same queueing lock, queued
    by a webhook meanwhile. Procrastinate would refuse the retry and leave the job
    running for ever, holding the account's lock; the waiting job does the same work,
    so this one ends instead.
    """

    async def retry_job(
        self,
        job: pjobs.Job,
        retry_at: dt.datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
        lock: str | None = None,
    ) -> None:
        try:
            await super().retry_job(job, retry_at, priority, queue, lock)
        except pexc.UniqueViolation as exc:
            if exc.constraint_name != pmanager.QUEUEING_LOCK_CONSTRAINT:
                raise
            log.info("job %s ends: a job with its queueing lock waits already", job.id)
            await self.finish_job(job, status=pjobs.Status.FAILED, delete_job=False)


@dataclass
class Work:
    """What the tasks do, handed in by the composition root."""

    sync: Callable[[str], Awaitable[object]]
    schedule_syncs: Callable[[], Awaitable[object]]
    store: SqlJobStore
    sender: outbox.Sender | None
    webhook_secret: str | None
    clock: Callable[[], dt.datetime]
    retention: Retention


@dataclass(frozen=True)
class Timing:
    """Worker upkeep; tests shorten it so a killed worker's jobs come back quickly."""

    heartbeat: float = 10.0  # seconds between a worker's heartbeats
    stalled_after: float = 30.0  # a worker silent this long is dead: its jobs run again
    recover_cron: str = "* * * * * */15"  # how often stalled jobs are looked for (seconds last)
    concurrency: int = 4  # jobs one worker process runs side by side
    # Besides NOTIFY, how often a worker looks for due jobs. A job that waited behind an
    # earlier one of its lock (the next message of a Slack channel) gets no NOTIFY when
    # that one ends, nor does a job whose time has come: this bounds their wait.
    fetch_poll: float = 0.5
    # A stopping worker waits this long for its jobs, then stops them: a sync stopped
    # mid-way resumes from its last committed page, an outbox row is sent again.
    shutdown_grace: float = 30.0


# Wait: from the job's deferral (or its scheduled time, if later) to its first start;
# run: from its last start to its end. Jobs never started are not counted.
_LATENCIES = """
SELECT j.task_name,
       EXTRACT(EPOCH FROM (e.started - GREATEST(e.deferred, COALESCE(j.scheduled_at, e.deferred))))
         AS wait,
       EXTRACT(EPOCH FROM (e.finished - e.last_started)) AS run
FROM procrastinate_jobs j
JOIN LATERAL (
    SELECT min(at) FILTER (WHERE type = 'deferred') AS deferred,
           min(at) FILTER (WHERE type = 'started') AS started,
           max(at) FILTER (WHERE type = 'started') AS last_started,
           max(at) FILTER (WHERE type IN ('succeeded', 'failed')) AS finished
    FROM procrastinate_events WHERE job_id = j.id
) e ON e.started IS NOT NULL AND e.deferred IS NOT NULL
ORDER BY j.id DESC
LIMIT %(limit)s
"""


class ProcrastinateJobs:
    """The distributed queue (``QueueOnSession``) and the worker, on one ``App``."""

    def __init__(self, database_url: str, timing: Timing | None = None) -> None:
        self.timing = timing or Timing()
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                conninfo=conninfo(database_url), min_size=1, max_size=8
            )
        )
        self.app.job_manager = JobManager(self.app.connector)
        self._work: Work | None = None
        self._handlers: dict[str, Callable[[dict[str, Any]], Awaitable[object]]] = {}
        self._upkeep: list[Callable[[], Awaitable[object]]] = []
        self._worker: asyncio.Task[None] | None = None
        self._opened = False
        self._register()

    # ------------------------------------------------------------------ tasks
    def bind(self, work: Work) -> None:
        self._work = work

    def add_handler(
        self, kind: str, handler: Callable[[dict[str, Any]], Awaitable[object]]
    ) -> None:
        """The handler of a job kind built after the runner (the Slack front end's)."""
        self._handlers[kind] = handler

    def add_upkeep(self, upkeep: Callable[[], Awaitable[object]]) -> None:
        """Work run every minute beside the scheduled syncs, by one worker at a time."""
        self._upkeep.append(upkeep)

    async def _handle(self, kind: str, payload: dict[str, Any]) -> None:
        handler = self._handlers.get(kind)
        if handler is None:
            raise RuntimeError(
                f"a {kind} job reached a worker without Slack's settings: give every "
                "renkei worker the same SLACK_* settings as the web processes"
            )
        await handler(payload)

    @property
    def work(self) -> Work:
        assert self._work is not None, "ProcrastinateJobs.bind was not called"
        return self._work

    def _register(self) -> None:
        app = self.app
        retry = RenkeiRetry()

        @app.task(name=SYNC_ACCOUNT, queue=QUEUE, retry=retry)
        async def sync_account(account_id: str) -> None:
            await self.work.sync(account_id)

        @app.task(name=DELIVER_WEBHOOK, queue=QUEUE, retry=retry)
        async def deliver_webhook(delivery_id: int) -> None:
            work = self.work
            if work.sender is None or not work.webhook_secret:
                return
            row = await work.store.delivery(delivery_id)
            if row is None:
                return  # delivered already (a stalled job run again) or pruned
            await deliver_one(work.store, work.sender, work.webhook_secret, work.clock, row)

        # Not retried: a replay that failed half-way may have answered already; bolt
        # reports a listener's own errors. A worker killed mid-way runs it again.
        @app.task(name=SLACK_REQUEST, queue=QUEUE)
        async def slack_request(sealed: str) -> None:
            await self._handle(SLACK_REQUEST, {"sealed": sealed})

        # A channel's waiting messages, in order (one job per channel at a time, one
        # waiting); each message counts its own tries.
        @app.task(name=SLACK_NOTICE, queue=QUEUE, retry=retry)
        async def slack_notice(channel_id: str) -> None:
            await self._handle(SLACK_NOTICE, {"channel_id": channel_id})

        @app.task(name=SLACK_HANDOFFS, queue=QUEUE, retry=retry)
        async def slack_handoffs() -> None:
            await self._handle(SLACK_HANDOFFS, {})

        @app.periodic(cron="* * * * *", periodic_id="schedule_syncs")
        @app.task(name="schedule_syncs", queue=QUEUE, queueing_lock="schedule_syncs")
        async def schedule_syncs(timestamp: int) -> None:
            await self.work.schedule_syncs()
            for upkeep in self._upkeep:
                await upkeep()

        @app.periodic(cron="17 * * * *", periodic_id="prune")
        @app.task(name="prune", queue=QUEUE, queueing_lock="prune")
        async def prune(timestamp: int) -> None:
            work = self.work
            counts = await work.store.prune(work.clock(), work.retention)
            await app.job_manager.delete_old_jobs(
                nb_hours=int(work.retention.jobs.total_seconds() // 3600),
                include_failed=True,
                include_cancelled=True,
                include_aborted=True,
            )
            log.info("pruned %s", counts)

        @app.periodic(cron=self.timing.recover_cron, periodic_id="recover_stalled")
        @app.task(name="recover_stalled", queue=QUEUE, queueing_lock="recover_stalled")
        async def recover_stalled(timestamp: int) -> None:
            await self.recover_stalled()

    async def recover_stalled(self) -> int:
        """Put the jobs of workers that stopped beating back in the queue; how many.

        Their locks go with them: a sync killed mid-way is run again by another worker
        (it resumes from its last committed page), an outbox row is sent again.
        """
        stalled = await self.app.job_manager.get_stalled_jobs(
            seconds_since_heartbeat=self.timing.stalled_after
        )
        count = 0
        for job in stalled:
            log.warning("job %s (%s) of a dead worker runs again", job.id, job.task_name)
            try:
                await self.app.job_manager.retry_job(job)
            except pexc.ConnectorException:
                log.exception("job %s could not be put back", job.id)
                continue
            count += 1
        return count

    # ------------------------------------------------------------------ queueing
    async def _connection(self, session: AsyncSession) -> Any:
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        return raw.driver_connection

    async def _defer(self, session: AsyncSession, job: pjobs.Job) -> None:
        # A savepoint: a job already waiting under the same queueing lock is refused by
        # a unique index, which must not abort the caller's transaction.
        try:
            async with session.begin_nested():
                await self.app.job_manager.defer_job_async(
                    job, connection=await self._connection(session)
                )
        except pexc.AlreadyEnqueued:
            pass  # the waiting job does the same work

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
        deferrer = self.app.tasks[kind].configure(
            lock=lock_key,
            queueing_lock=lock_key if once else None,
            schedule_at=run_at,
            priority=PRIORITY_PERSON_WAITING if kind in PERSON_WAITING else None,
        )
        await self._defer(session, deferrer.job.evolve(task_kwargs=dict(payload)))

    async def _jobs_on(
        self, connection: Any, kind: str, status: str, queueing_lock: str | None = None
    ) -> list[dict[str, Any]]:
        """Procrastinate's own listing, read on the caller's connection (its transaction)."""
        rows = await self.app.connector.execute_query_all_async_with_connection(
            connection,
            query=psql.queries["list_jobs"],
            id=None,
            queue_name=None,
            task_name=kind,
            status=status,
            lock=None,
            queueing_lock=queueing_lock,
            worker_id=None,
        )
        return list(rows)

    async def running_lock_keys(self, session: AsyncSession, kind: str) -> set[str]:
        rows = await self._jobs_on(await self._connection(session), kind, "doing")
        return {str(row["lock"]) for row in rows if row["lock"] is not None}

    async def take_queued(self, session: AsyncSession, kind: str, lock_key: str) -> int | None:
        connection = await self._connection(session)
        rows = await self._jobs_on(connection, kind, "todo", queueing_lock=lock_key)
        now = dt.datetime.now(dt.UTC)
        for row in rows:
            if row["scheduled_at"] is not None and row["scheduled_at"] > now:
                continue  # an issuer asked to wait: not due
            # Cancelled in the caller's transaction: no worker runs what it carries out.
            if await self.app.job_manager.cancel_job_by_id_async(row["id"], connection=connection):
                return int(row["id"])
        return None

    async def settle(
        self, session: AsyncSession, job_id: int, *, retry_at: dt.datetime | None
    ) -> None:
        if retry_at is None:
            return  # carried out by its taker: it stays cancelled
        job = next(iter(await self.app.job_manager.list_jobs_async(id=job_id)), None)
        if job is None:
            return
        deferrer = self.app.tasks[job.task_name].configure(
            lock=job.lock, queueing_lock=job.queueing_lock, schedule_at=retry_at
        )
        await self._defer(session, deferrer.job.evolve(task_kwargs=dict(job.task_kwargs)))

    # ------------------------------------------------------------------ operators
    async def list_jobs(self, status: str | None, limit: int) -> list[JobRow]:
        listed = sorted(
            await self.app.job_manager.list_jobs_async(),
            key=lambda job: job.id or 0,
            reverse=True,
        )
        rows = [
            JobRow(
                job.id or 0,
                job.task_name,
                _STATUS_WORDS.get(job.status or "", job.status or ""),
                job.lock,
                job.attempts,
                job.scheduled_at,
                dict(job.task_kwargs),
            )
            for job in listed
        ]
        return [row for row in rows if status in (None, row.status)][:limit]

    async def depths(self) -> dict[tuple[str, str], int]:
        """Jobs per (task, status), in the operator's words (Procrastinate's own count)."""
        found: dict[tuple[str, str], int] = {}
        for task in await self.app.job_manager.list_tasks_async():
            for native, word in _STATUS_WORDS.items():
                count = int(task.get(native, 0) or 0)
                if count:
                    key = (str(task["name"]), word)
                    found[key] = found.get(key, 0) + count
        return found

    async def latencies(self, limit: int = 5000) -> list[tuple[str, float, float | None]]:
        """(task, seconds from due to started, seconds it ran or None) of the newest
        started jobs still kept, from Procrastinate's own event rows: any worker's jobs,
        whichever process is asked. Pruned jobs drop out of the figures."""
        rows = await self.app.connector.execute_query_all_async(_LATENCIES, limit=limit)
        return [
            (
                str(row["task_name"]),
                max(float(row["wait"]), 0.0),
                None if row["run"] is None else max(float(row["run"]), 0.0),
            )
            for row in rows
        ]

    async def reachable(self) -> bool:
        try:
            return await self.app.job_manager.check_connection_async()
        except Exception:
            return False

    async def requeue(self, job_id: int, now: dt.datetime) -> bool:
        """A failed job runs again, now (Procrastinate's own retry of a failed job)."""
        found = next(iter(await self.app.job_manager.list_jobs_async(id=job_id)), None)
        if found is None or found.status != pjobs.Status.FAILED.value:
            return False
        await self.app.job_manager.retry_job_by_id_async(job_id, retry_at=now)
        return True

    async def cancel(self, job_id: int) -> bool:
        """A waiting job will not run; a running one is asked to stop."""
        return await self.app.job_manager.cancel_job_by_id_async(job_id, abort=True)

    # ------------------------------------------------------------------ running
    async def open(self) -> None:
        if not self._opened:
            await self.app.open_async()
            self._opened = True

    async def close(self) -> None:
        if self._opened:
            await self.app.close_async()
            self._opened = False

    async def run_worker(self, *, name: str = "renkei", signals: bool = False) -> None:
        """Run a worker until cancelled (inside ``serve``), or until SIGTERM / SIGINT
        with ``signals`` (``renkei worker``).

        A database restarted or a connection cut ends Procrastinate's worker with a
        ``ConnectorException``: the process stays and starts its worker again, and the
        jobs the old one held come back as stalled (``recover_stalled``)."""
        await self.open()
        while True:
            try:
                await self.app.run_worker_async(
                    queues=[QUEUE],
                    name=name,
                    concurrency=self.timing.concurrency,
                    install_signal_handlers=signals,
                    shutdown_graceful_timeout=self.timing.shutdown_grace,
                    update_heartbeat_interval=self.timing.heartbeat,
                    fetch_job_polling_interval=self.timing.fetch_poll,
                    stalled_worker_timeout=self.timing.stalled_after,
                    delete_jobs=pjobs.DeleteJobCondition.NEVER,
                )
                return
            except pexc.ConnectorException as exc:
                log.warning("the worker lost the database (%r): it starts again", exc)
                await asyncio.sleep(WORKER_RESTART_SECONDS)

    def start(self) -> None:
        """A worker inside this process (``serve`` without ``--no-jobs``)."""
        if self._worker is None:
            self._worker = asyncio.create_task(self.run_worker(), name="renkei-worker")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        await self.close()
