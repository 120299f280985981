"""Jobs, outbox rows and webhook receipts shared by several workers (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db import tables as t
from backend.db.job_store import SqlJobStore
from backend.db.repository import SqlUnitOfWork
from backend.domain.model import Account, Card, Event, Issuer, Office, SyncMethod
from backend.jobs.runner import InProcessRunner

NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)


async def _account(sessions: async_sessionmaker[AsyncSession], synced: dt.datetime | None) -> str:
    async with SqlUnitOfWork(sessions) as uow:
        office = Office(name="o")
        card = Card(Issuer.AMEX, f"ref-{id(office)}", "amex_business", "XXXX-1", "YAMADA")
        await uow.repo.add(office)
        await uow.repo.add(card)
        await uow.repo.flush()
        account = Account(office.id, "a", Issuer.AMEX, card.id, SyncMethod.LEGACY)
        account.last_synced_at = synced
        await uow.repo.add(account)
        await uow.commit()
        return account.id


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


async def test_an_outbox_row_is_delivered_by_one_worker(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with SqlUnitOfWork(sessions) as uow:
        await uow.repo.add_event(Event(type="sync.completed", payload={}), ["http://h/1"], NOW)
        await uow.commit()
    stores = [SqlJobStore(sessions) for _ in range(3)]
    claims = await asyncio.gather(*(s.due_deliveries(NOW) for s in stores))
    assert sum(len(c) for c in claims) == 1
    # a claimed row comes back only after its lease, for a worker that died mid-way
    assert await stores[0].due_deliveries(NOW + dt.timedelta(seconds=30)) == []
    assert len(await stores[0].due_deliveries(NOW + dt.timedelta(seconds=61))) == 1


async def test_periodic_syncs_for_stale_accounts_only_and_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    stale = await _account(sessions, NOW - dt.timedelta(hours=7))
    fresh = await _account(sessions, NOW - dt.timedelta(minutes=5))
    store = SqlJobStore(sessions)
    assert await store.enqueue_due_syncs(NOW, dt.timedelta(hours=6)) == 1
    assert await store.enqueue_due_syncs(NOW, dt.timedelta(hours=6)) == 0  # already queued
    async with sessions() as session:
        keys = (await session.execute(select(t.jobs.c.lock_key))).scalars().all()
    assert keys == [f"account:{stale}"]
    assert f"account:{fresh}" not in keys


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
