"""Background work on Procrastinate (PostgreSQL): queued in the cause's transaction,
one waiting sync per account, outbox rows as tasks, one retry policy, dead workers'
jobs put back."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from procrastinate import RetryDecision
from procrastinate import exceptions as pexc
from procrastinate import jobs as pjobs
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db.engine import make_engine, make_sessions, migrate
from backend.db.job_store import Retention, SqlJobStore
from backend.db.repository import SqlUnitOfWork
from backend.db.slack_store import SqlSlackStore
from backend.domain.model import Event
from backend.jobs import distributed
from backend.jobs.deliveries import DeliveryFailed
from backend.jobs.distributed import ProcrastinateJobs, RenkeiRetry, Timing, Work
from backend.jobs.policy import MAX_JOB_ATTEMPTS
from backend.service.jobs import DELIVER_WEBHOOK
from backend.service.sync import RetryLater
from bot.slack.notifications import NoticeNotSent
from tests.support.databases import fresh_postgres_database

NOW = dt.datetime.now(dt.UTC)


class Queue:
    def __init__(self, jobs: ProcrastinateJobs, sessions: async_sessionmaker[AsyncSession]):
        self.jobs = jobs
        self.sessions = sessions

    async def listed(self, **filters: Any) -> list[pjobs.Job]:
        return list(await self.jobs.app.job_manager.list_jobs_async(**filters))


@pytest.fixture
async def queue() -> AsyncIterator[Queue]:
    with fresh_postgres_database() as url:
        engine = make_engine(url)
        await migrate(engine)
        jobs = ProcrastinateJobs(url, Timing(heartbeat=0.2, stalled_after=1.0))
        sessions = make_sessions(engine, jobs)
        await jobs.open()
        try:
            yield Queue(jobs, sessions)
        finally:
            await jobs.close()
            await engine.dispose()


async def _enqueue(queue: Queue, lock_key: str, *, commit: bool = True) -> None:
    async with SqlUnitOfWork(queue.sessions) as uow:
        await uow.repo.enqueue_job(
            "sync_account", {"account_id": lock_key}, lock_key=lock_key, run_at=NOW
        )
        if commit:
            await uow.commit()


async def test_a_job_lives_and_dies_with_the_transaction_of_its_cause(queue: Queue) -> None:
    await _enqueue(queue, "account:a", commit=False)
    assert await queue.listed() == []
    await _enqueue(queue, "account:a")
    [job] = await queue.listed()
    assert (job.task_name, job.lock, job.queueing_lock) == (
        "sync_account",
        "account:a",
        "account:a",
    )
    assert job.task_kwargs == {"account_id": "account:a"}


async def test_a_burst_of_webhooks_for_one_account_queues_one_sync(queue: Queue) -> None:
    async with SqlUnitOfWork(queue.sessions) as uow:
        for _ in range(3):  # in one transaction: the savepoint keeps it alive
            await uow.repo.enqueue_job(
                "sync_account", {"account_id": "b"}, lock_key="account:b", run_at=NOW
            )
        await uow.commit()
    for _ in range(3):
        await _enqueue(queue, "account:b")
    await _enqueue(queue, "account:c")
    assert sorted(j.lock or "" for j in await queue.listed(status="todo")) == [
        "account:b",
        "account:c",
    ]


async def test_sync_now_takes_the_waiting_sync_away_from_the_workers(queue: Queue) -> None:
    await _enqueue(queue, "account:d")
    async with SqlUnitOfWork(queue.sessions) as uow:
        taken = await uow.repo.take_queued_job("sync_account", "account:d", NOW, NOW)
        await uow.commit()
    assert taken is not None
    assert await queue.listed(status="todo") == []
    async with SqlUnitOfWork(queue.sessions) as uow:
        assert await uow.repo.take_queued_job("sync_account", "account:d", NOW, NOW) is None
        # The issuer was busy: the sync is queued again for later.
        await uow.repo.settle_job(taken, retry_at=NOW + dt.timedelta(minutes=5))
        await uow.commit()
    [again] = await queue.listed(status="todo")
    assert again.queueing_lock == "account:d" and again.scheduled_at is not None
    assert again.scheduled_at > NOW + dt.timedelta(minutes=4)


async def test_the_syncs_workers_run_now_are_known_to_the_schedule(queue: Queue) -> None:
    manager = queue.jobs.app.job_manager
    await _enqueue(queue, "account:running")
    job = await manager.fetch_job(["renkei"], await manager.register_worker())
    assert job is not None and job.lock == "account:running"
    await _enqueue(queue, "account:waiting")
    async with SqlUnitOfWork(queue.sessions) as uow:
        assert await uow.repo.running_lock_keys("sync_account") == {"account:running"}
        assert await uow.repo.running_lock_keys("deliver_webhook") == set()


async def test_each_outbox_row_is_a_task_ordered_per_account(queue: Queue) -> None:
    async with SqlUnitOfWork(queue.sessions) as uow:
        event = Event(type="sync.completed", payload={}, account_id="acc1")
        await uow.repo.add_event(event, ["http://h/1", "http://h/2"], NOW)
        await uow.commit()
    jobs = await queue.listed(task=DELIVER_WEBHOOK)
    assert len(jobs) == 2
    assert {j.lock for j in jobs} == {"outbox:http://h/1|acc1", "outbox:http://h/2|acc1"}


async def test_a_slack_channel_has_one_task_posting_its_messages_in_order(
    queue: Queue,
) -> None:
    store = SqlSlackStore(queue.sessions, lambda: NOW)
    for n in range(3):
        assert await store.enqueue(f"evt-{n}", "T1", "C1", f"message {n}", [])
    assert not await store.enqueue("evt-0", "T1", "C1", "again", [])  # delivered twice
    assert await store.enqueue("evt-0", "T1", "C2", "elsewhere", [])
    jobs = sorted(await queue.listed(task="slack_notice"), key=lambda job: job.id or 0)
    # One waiting task per channel, whatever the burst: it posts all that waits there.
    assert [(j.lock, j.queueing_lock, j.task_kwargs) for j in jobs] == [
        ("slack:C1", "slack:C1", {"channel_id": "C1"}),
        ("slack:C2", "slack:C2", {"channel_id": "C2"}),
    ]
    waiting = await store.waiting_messages("C1")
    assert [m.text for m in waiting] == ["message 0", "message 1", "message 2"]
    await store.mark_sent(waiting[0].id, "1.0001")
    assert [m.text for m in await store.waiting_messages("C1")] == ["message 1", "message 2"]


def test_one_retry_policy_honours_the_issuers_retry_after() -> None:
    strategy = RenkeiRetry()
    job = pjobs.Job(id=1, queue="renkei", lock=None, queueing_lock=None, task_name="t", attempts=0)
    decision = strategy.get_retry_decision(exception=RetryLater(120, "rate_limited"), job=job)
    assert isinstance(decision, RetryDecision) and decision.retry_at is not None
    wait = (decision.retry_at - dt.datetime.now(dt.UTC)).total_seconds()
    assert 119 <= wait <= 152  # Retry-After, and at most a quarter of jitter
    failed = strategy.get_retry_decision(exception=DeliveryFailed("HTTP 500", 4.0), job=job)
    assert failed is not None and failed.retry_at is not None
    assert (failed.retry_at - dt.datetime.now(dt.UTC)).total_seconds() <= 6
    last = job.evolve(attempts=MAX_JOB_ATTEMPTS - 1)
    assert strategy.get_retry_decision(exception=RuntimeError("x"), job=last) is None
    # A Slack message or an outbox row counts its own attempts: it is not cut short here.
    slack = strategy.get_retry_decision(exception=NoticeNotSent("ratelimited", 30.0), job=last)
    assert slack is not None and slack.retry_at is not None
    assert 29 <= (slack.retry_at - dt.datetime.now(dt.UTC)).total_seconds() <= 32


async def test_a_dead_workers_sync_runs_again_elsewhere(queue: Queue) -> None:
    """A worker that died holding a sync: its job, and the account's lock, go to another."""
    runs: list[str] = []

    async def sync(account_id: str) -> None:
        runs.append(account_id)

    async def nothing() -> None:
        return None

    queue.jobs.bind(
        Work(sync, nothing, SqlJobStore(queue.sessions), None, None, lambda: NOW, Retention())
    )
    manager = queue.jobs.app.job_manager

    async def taken_by_a_dying_worker(lock_key: str) -> pjobs.Job:
        await _enqueue(queue, lock_key)
        # A worker takes the job and dies at once (SIGKILL): no heartbeat, no goodbye.
        job = await manager.fetch_job(["renkei"], await manager.register_worker())
        assert job is not None and job.lock == lock_key
        return job

    lone = await taken_by_a_dying_worker("account:e")
    covered = await taken_by_a_dying_worker("account:f")
    await _enqueue(queue, "account:f")  # a webhook meanwhile: waits behind the lock
    assert await queue.jobs.recover_stalled() == 0  # not silent long enough yet
    await asyncio.sleep(1.2)  # past stalled_after
    assert await queue.jobs.recover_stalled() == 2
    waiting = await queue.listed(status="todo", task="sync_account")
    assert lone.id in {j.id for j in waiting}  # back in the queue, with its lock
    # The waiting sync does the dead one's work: that one ends instead of blocking it.
    assert [j.id for j in await queue.listed(lock="account:f", status="failed")] == [covered.id]
    assert len(waiting) == 2
    survivor = asyncio.create_task(queue.jobs.run_worker(name="survivor"))
    try:
        for _ in range(300):
            if len(runs) == 2 and not await queue.listed(status="doing", task="sync_account"):
                break
            await asyncio.sleep(0.1)
    finally:
        survivor.cancel()
        await asyncio.gather(survivor, return_exceptions=True)
    assert sorted(runs) == ["account:e", "account:f"]  # each account synced, once
    assert await queue.listed(status="doing", task="sync_account") == []
    assert await queue.listed(status="todo", task="sync_account") == []


async def test_a_reply_someone_waits_on_is_taken_before_background_work(queue: Queue) -> None:
    await _enqueue(queue, "account:p")
    async with SqlUnitOfWork(queue.sessions) as uow:
        await uow.repo.enqueue_job("slack_request", {"sealed": "x"}, lock_key=None, run_at=NOW)
        await uow.commit()
    # Procrastinate's workers fetch the highest priority first.
    priority = {job.task_name: job.priority for job in await queue.listed()}
    assert priority["slack_request"] > priority["sync_account"], priority


async def test_a_worker_that_lost_the_database_starts_again(
    queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cut connection ends Procrastinate's worker; the process must not end with it."""
    runs: list[str] = []

    async def run_worker_async(**options: Any) -> None:
        runs.append(str(options["name"]))
        if len(runs) == 1:
            raise pexc.ConnectorException("server closed the connection unexpectedly")

    monkeypatch.setattr(queue.jobs.app, "run_worker_async", run_worker_async)
    monkeypatch.setattr(distributed, "WORKER_RESTART_SECONDS", 0.0)
    await queue.jobs.run_worker(name="w1")
    assert runs == ["w1", "w1"]
