"""Jobs, outbox rows and webhook receipts shared by several workers (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db import tables as t
from backend.db.job_store import Retention, SqlJobStore
from backend.db.repository import SqlUnitOfWork
from backend.db.slack_store import SqlSlackStore
from backend.domain.model import Account, Card, Event, Issuer, Office, SyncMethod
from backend.jobs.runner import InProcessRunner
from backend.secrets import FernetSecretBox
from backend.service.context import ServiceContext
from backend.service.jobs import schedule_periodic_syncs

NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
HOURS_6 = dt.timedelta(hours=6)


async def _account(sessions: async_sessionmaker[AsyncSession], synced: dt.datetime | None) -> str:
    async with SqlUnitOfWork(sessions) as uow:
        office = Office(name="o")
        # A card of its own each: id() of an object already freed comes back.
        card = Card(Issuer.AMEX, f"ref-{uuid.uuid4().hex}", "amex_business", "XXXX-1", "YAMADA")
        await uow.repo.add(office)
        await uow.repo.add(card)
        await uow.repo.flush()
        account = Account(office.id, "a", Issuer.AMEX, card.id, SyncMethod.LEGACY)
        account.last_synced_at = synced
        await uow.repo.add(account)
        await uow.commit()
        return account.id


def _context(sessions: async_sessionmaker[AsyncSession]) -> ServiceContext:
    return ServiceContext(
        uow=lambda: SqlUnitOfWork(sessions),
        gateways={},
        secrets=FernetSecretBox([Fernet.generate_key().decode()]),
        oauth_redirect_uri="http://x/cb",
        clock=lambda: NOW,
    )


async def test_two_workers_never_take_the_same_job(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with SqlUnitOfWork(sessions) as uow:
        for n in range(6):
            await uow.repo.enqueue_job("sync_account", {"n": n}, lock_key=f"k{n}", run_at=NOW)
        await uow.commit()
    workers = [SqlJobStore(sessions), SqlJobStore(sessions)]
    taken: list[int] = []

    async def work(store: SqlJobStore) -> None:
        while (job := await store.claim(NOW)) is not None:
            taken.append(job.id)
            await store.finish(job.id)

    await asyncio.gather(*(work(w) for w in workers))
    assert len(taken) == 6 and len(set(taken)) == 6


async def _enqueue(sessions: async_sessionmaker[AsyncSession], run_at: dt.datetime) -> None:
    async with SqlUnitOfWork(sessions) as uow:
        await uow.repo.enqueue_job("sync_account", {}, lock_key="account:x", run_at=run_at)
        await uow.commit()


async def _jobs(sessions: async_sessionmaker[AsyncSession]) -> list[Any]:
    async with sessions() as session:
        return list((await session.execute(select(t.jobs).order_by(t.jobs.c.id))).all())


async def test_one_running_job_per_lock_key(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _enqueue(sessions, NOW)
    store = SqlJobStore(sessions)
    first = await store.claim(NOW)
    assert first is not None
    await _enqueue(sessions, NOW)  # while it runs: new work may have come, so queued again
    assert await store.claim(NOW) is None  # same account: waits for the first
    await store.finish(first.id)
    assert await store.claim(NOW) is not None


async def test_one_lock_keys_jobs_run_in_the_order_queued(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """One account's events to one subscriber: each its own job, none overtaking an
    earlier one."""
    async with SqlUnitOfWork(sessions) as uow:
        for n in range(2):
            await uow.repo.enqueue_job(
                "deliver_webhook", {"n": n}, lock_key="outbox:h|acc1", run_at=NOW, once=False
            )
        await uow.commit()
    store = SqlJobStore(sessions)
    first = await store.claim(NOW)
    assert first is not None and first.payload == {"n": 0}
    # The subscriber failed: the second waits behind the first's retry, not beside it.
    await store.retry(first.id, NOW + dt.timedelta(seconds=30), "HTTP 503", give_up=False)
    assert await store.claim(NOW) is None
    later = NOW + dt.timedelta(seconds=31)
    again = await store.claim(later)
    assert again is not None and again.id == first.id
    await store.finish(again.id)
    second = await store.claim(later)
    assert second is not None and second.payload == {"n": 1}


async def test_a_burst_of_the_same_sync_queues_it_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    later = NOW + dt.timedelta(minutes=5)
    await _enqueue(sessions, later)
    for _ in range(3):
        await _enqueue(sessions, NOW)  # e.g. three webhooks for one account
    jobs = await _jobs(sessions)
    assert len(jobs) == 1
    assert jobs[0].status == "queued"
    assert jobs[0].run_at.replace(tzinfo=dt.UTC) == NOW  # brought forward, not doubled


async def test_sync_now_carries_out_the_queued_sync_instead_of_a_second_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _enqueue(sessions, NOW)
    async with SqlUnitOfWork(sessions) as uow:
        taken = await uow.repo.take_queued_job(
            "sync_account", "account:x", NOW, NOW + dt.timedelta(minutes=10)
        )
        await uow.commit()
    assert taken is not None
    assert await SqlJobStore(sessions).claim(NOW) is None  # no runner runs it meanwhile
    async with SqlUnitOfWork(sessions) as uow:
        assert await uow.repo.take_queued_job("sync_account", "account:x", NOW, NOW) is None
        await uow.repo.settle_job(taken, retry_at=None)
        await uow.commit()
    assert [j.status for j in await _jobs(sessions)] == ["done"]
    assert await SqlJobStore(sessions).claim(NOW) is None


async def test_an_outbox_row_is_a_job_delivered_by_one_worker(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with SqlUnitOfWork(sessions) as uow:
        event = Event(type="sync.completed", payload={}, account_id="acc1")
        await uow.repo.add_event(event, ["http://h/1", "http://h/2"], NOW)
        await uow.commit()
    jobs = await _jobs(sessions)
    assert [j.kind for j in jobs] == ["deliver_webhook", "deliver_webhook"]
    # Locked per subscriber and account: one account's events reach each in order.
    assert [j.lock_key for j in jobs] == ["outbox:http://h/1|acc1", "outbox:http://h/2|acc1"]
    stores = [SqlJobStore(sessions) for _ in range(3)]
    claims = await asyncio.gather(*(s.claim(NOW) for s in stores))
    taken = [c.payload["delivery_id"] for c in claims if c is not None]
    assert len(taken) == 2 and len(set(taken)) == 2
    # a claimed job comes back only after its lease, for a worker that died mid-way
    assert await stores[0].claim(NOW + dt.timedelta(seconds=30)) is None
    assert await stores[0].claim(NOW + dt.timedelta(seconds=301)) is not None


async def test_periodic_syncs_for_stale_accounts_only_and_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    stale = await _account(sessions, NOW - dt.timedelta(hours=7))
    fresh = await _account(sessions, NOW - dt.timedelta(minutes=5))
    ctx = _context(sessions)
    assert await schedule_periodic_syncs(ctx, dt.timedelta(hours=6)) == 1
    assert await schedule_periodic_syncs(ctx, dt.timedelta(hours=6)) == 1  # asked again…
    async with sessions() as session:
        keys = (await session.execute(select(t.jobs.c.lock_key))).scalars().all()
    assert keys == [f"account:{stale}"]  # …but queued once
    assert f"account:{fresh}" not in keys


async def test_an_account_being_synced_is_not_scheduled_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """At start every account is due; one whose first sync already runs gets no second."""
    running = await _account(sessions, None)
    dead = await _account(sessions, None)
    async with SqlUnitOfWork(sessions) as uow:
        assert await uow.repo.acquire_sync_lease(running, NOW, NOW + dt.timedelta(minutes=5))
        # A process that died mid-sync left its lease: lapsed, it holds nothing.
        assert await uow.repo.acquire_sync_lease(dead, NOW - dt.timedelta(hours=1), NOW)
        await uow.commit()
        due = await uow.repo.accounts_due_for_sync(NOW + dt.timedelta(seconds=1), HOURS_6)
    assert running not in due and dead in due


async def test_an_account_whose_sync_job_was_just_claimed_is_not_scheduled_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Between a runner claiming a sync and the sync taking the account's lease, the
    account still looks due: the running job is the sync the schedule would ask for."""
    claimed = await _account(sessions, None)
    waiting = await _account(sessions, None)
    ctx = _context(sessions)
    async with SqlUnitOfWork(sessions) as uow:
        await uow.repo.enqueue_job(
            "sync_account", {"account_id": claimed}, lock_key=f"account:{claimed}", run_at=NOW
        )
        await uow.commit()
    assert await SqlJobStore(sessions).claim(NOW) is not None  # running, no lease yet
    assert await schedule_periodic_syncs(ctx, HOURS_6) == 1
    queued = [job.lock_key for job in await _jobs(sessions) if job.status == "queued"]
    assert queued == [f"account:{waiting}"]


async def test_pruning_forgets_finished_work_only(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    old = NOW - dt.timedelta(days=10)
    async with SqlUnitOfWork(sessions) as uow:
        await uow.repo.enqueue_job("sync_account", {}, lock_key="account:old", run_at=old)
        await uow.repo.enqueue_job("sync_account", {}, lock_key="account:new", run_at=NOW)
        await uow.repo.add_event(Event(type="sync.completed", payload={}), ["http://h/1"], old)
        await uow.repo.add_event(Event(type="sync.completed", payload={}), ["http://h/2"], old)
        await uow.repo.remember_issuer_event("evt_old", "amex", old)
        await uow.repo.remember_issuer_event("evt_new", "amex", NOW)
        await uow.commit()
    store = SqlJobStore(sessions)
    done = await store.claim(old)
    assert done is not None
    await store.finish(done.id)
    async with sessions() as session:
        first = min((await session.execute(select(t.webhook_deliveries.c.id))).scalars())
    await store.mark_delivery(first, delivered_at=old, attempts=1, next_attempt_at=old, error=None)
    slack = SqlSlackStore(sessions, lambda: NOW - dt.timedelta(days=40))
    for n in range(2):
        await slack.enqueue(f"evt-{n}", "T1", "C1", "message", [])
    posted, _ = await slack.waiting_messages("C1")
    await slack.mark_sent(posted.id, "1.0001")
    counts = await store.prune(NOW, Retention())
    assert counts == {"jobs": 1, "deliveries": 1, "slack_messages": 1, "receipts": 1}
    async with sessions() as session:
        syncs = [j.lock_key for j in await _jobs(sessions) if j.kind == "sync_account"]
        assert syncs == ["account:new"]
        waiting = (await session.execute(select(t.slack_notifications.c.id))).scalars().all()
        assert waiting == [2]  # not posted yet: kept
        left = (await session.execute(select(t.webhook_deliveries.c.url))).scalars().all()
        assert left == ["http://h/2"]  # not delivered yet: kept
        receipts = await session.execute(select(t.issuer_webhook_receipts.c.event_id))
        assert receipts.scalars().all() == ["evt_new"]


async def test_issuer_webhook_ids_are_per_issuer_and_replays_are_seen(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async def remember(issuer: str) -> bool:
        async with SqlUnitOfWork(sessions) as uow:
            first = await uow.repo.remember_issuer_event("evt_1", issuer, NOW)
            await uow.commit()
            return first

    assert await remember("amex") is True
    assert await remember("jcb") is True  # the same id from the other issuer is another event
    assert await remember("amex") is False
    racing = await asyncio.gather(*(remember("jcb") for _ in range(3)))
    assert racing == [False, False, False]


async def test_work_queued_in_this_process_wakes_an_idle_runner_before_its_poll(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    new_work = asyncio.Event()
    ran = asyncio.Event()

    async def handler(payload: dict[str, Any]) -> object:
        ran.set()
        return payload

    runner = InProcessRunner(
        SqlJobStore(sessions),
        {"sync_account": handler},
        sender=None,
        webhook_secret=None,
        clock=lambda: NOW,
        poll_interval=600.0,  # only a wake can start the job within the test
        workers=1,
        wake=new_work,
    )
    runner.start()
    try:
        await asyncio.sleep(0.2)  # the worker found nothing and waits
        async with SqlUnitOfWork(sessions, new_work.set) as uow:
            await uow.repo.enqueue_job("sync_account", {}, lock_key="account:w", run_at=NOW)
            assert not new_work.is_set()  # not before the commit: nothing to claim yet
            await uow.commit()
        await asyncio.wait_for(ran.wait(), timeout=30)
    finally:
        await runner.stop()


async def test_a_reply_someone_waits_on_goes_before_background_work_due_earlier(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with SqlUnitOfWork(sessions) as uow:
        for n in range(3):
            await uow.repo.enqueue_job(
                "sync_account", {"n": n}, lock_key=f"k{n}", run_at=NOW - dt.timedelta(minutes=5)
            )
        await uow.repo.enqueue_job("slack_request", {"sealed": "x"}, lock_key=None, run_at=NOW)
        await uow.commit()
    store = SqlJobStore(sessions)
    first = await store.claim(NOW)
    assert first is not None and first.kind == "slack_request"
    second = await store.claim(NOW)
    assert second is not None and second.kind == "sync_account"
