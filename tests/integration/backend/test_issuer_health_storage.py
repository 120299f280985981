"""Issuer health in the database, seen by every process (SQLite, PostgreSQL): the
window of outcomes, the periodic schedule that holds a down issuer back, the one probe."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db.repository import SqlUnitOfWork
from backend.domain.issuer_health import PROBE_FIRST, HealthState, OutcomeKind
from backend.domain.model import Account, Card, Issuer, Office, SyncMethod

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
EVERY = dt.timedelta(hours=6)


async def _account(
    sessions: async_sessionmaker[AsyncSession], issuer: Issuer, synced: dt.datetime
) -> str:
    async with SqlUnitOfWork(sessions) as uow:
        office = Office(name="o")
        card = Card(issuer, f"ref-{office.id}", f"{issuer}_card", "XXXX-1", "YAMADA")
        await uow.repo.add(office)
        await uow.repo.add(card)
        await uow.repo.flush()
        account = Account(office.id, "a", issuer, card.id, SyncMethod.API)
        account.last_synced_at = synced
        await uow.repo.add(account)
        await uow.commit()
        return account.id


async def _outcomes(
    sessions: async_sessionmaker[AsyncSession], issuer: str, *kinds: OutcomeKind
) -> None:
    async with SqlUnitOfWork(sessions) as uow:
        for n, kind in enumerate(kinds):
            at = NOW - dt.timedelta(seconds=60 * (len(kinds) - n))
            code = None if kind == OutcomeKind.SUCCESS else "issuer_unavailable"
            await uow.repo.record_sync_outcome(issuer, None, kind, code, at)
        await uow.commit()


async def test_health_is_judged_from_the_stored_window(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    fail, ok = OutcomeKind.ISSUER_FAILURE, OutcomeKind.SUCCESS
    await _outcomes(sessions, "amex", ok, fail, fail, fail)
    await _outcomes(sessions, "jcb", ok, OutcomeKind.ACCOUNT_FAILURE, OutcomeKind.ACCOUNT_FAILURE)
    async with SqlUnitOfWork(sessions) as uow:
        amex = await uow.repo.issuer_health("amex", NOW)
        jcb = await uow.repo.issuer_health("jcb", NOW)
    assert amex.state == HealthState.DOWN and amex.failure_streak == 3 and amex.samples == 4
    assert jcb.state == HealthState.HEALTHY and jcb.samples == 1  # its own failures don't count


async def test_the_schedule_holds_a_down_issuer_back_but_for_one_probe(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    oldest = await _account(sessions, Issuer.AMEX, NOW - dt.timedelta(hours=9))
    others = [await _account(sessions, Issuer.AMEX, NOW - dt.timedelta(hours=7)) for _ in "ab"]
    jcb = await _account(sessions, Issuer.JCB, NOW - dt.timedelta(hours=7))
    fail = OutcomeKind.ISSUER_FAILURE
    await _outcomes(sessions, "amex", fail, fail, fail, fail)  # probe due 2 min after the last
    assert await _due(sessions, NOW) == [jcb]  # not yet: JCB only
    later = NOW + 2 * PROBE_FIRST
    assert await _due(sessions, later) == [oldest, jcb]  # the probe, not every account
    async with SqlUnitOfWork(sessions) as uow:
        await uow.repo.record_sync_outcome("amex", oldest, OutcomeKind.SUCCESS, None, later)
        await uow.commit()
    # The probe went through: the issuer is no longer down and every account follows.
    assert sorted(await _due(sessions, later)) == sorted([jcb, oldest, *others])


async def _due(sessions: async_sessionmaker[AsyncSession], now: dt.datetime) -> list[str]:
    async with SqlUnitOfWork(sessions) as uow:
        return await uow.repo.accounts_due_for_sync(now, EVERY)


async def test_of_two_workers_one_takes_the_probe(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    until = NOW + PROBE_FIRST

    async def claim() -> bool:
        async with SqlUnitOfWork(sessions) as uow:
            taken = await uow.repo.claim_issuer_probe("amex", NOW, until)
            await uow.commit()
            return taken

    assert sorted(await asyncio.gather(claim(), claim())) == [False, True]
    assert not await claim()  # held until ``until``
    async with SqlUnitOfWork(sessions) as uow:
        assert await uow.repo.claim_issuer_probe("amex", until, until + PROBE_FIRST)
