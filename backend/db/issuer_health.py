"""Issuer health in the database: the outcome window and the probe claim.

Plain functions on a session, shared by the repository (the use cases) and the job
store (the periodic schedule), so both judge an issuer from the same rows.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db import tables as t
from backend.domain.issuer_health import (
    WINDOW_AGE,
    WINDOW_SIZE,
    HealthState,
    IssuerHealth,
    OutcomeKind,
    SyncOutcome,
    assess,
    should_sync_now,
)

# Rows past the window are kept a while for a person looking into an outage, then pruned.
KEEP_FOR = dt.timedelta(days=1)


async def record_outcome(
    session: AsyncSession,
    issuer: str,
    account_id: str | None,
    kind: OutcomeKind,
    error_code: str | None,
    at: dt.datetime,
) -> None:
    """Add one sync run's outcome and prune the issuer's rows past keeping."""
    await session.execute(
        t.issuer_sync_outcomes.insert().values(
            issuer=issuer, account_id=account_id, kind=kind.value, error_code=error_code, at=at
        )
    )
    await session.execute(
        delete(t.issuer_sync_outcomes).where(
            t.issuer_sync_outcomes.c.issuer == issuer,
            t.issuer_sync_outcomes.c.at < at - KEEP_FOR,
        )
    )


async def health_of(session: AsyncSession, issuer: str, now: dt.datetime) -> IssuerHealth:
    """The issuer's health judged from its window of outcomes."""
    c = t.issuer_sync_outcomes.c
    rows = (
        await session.execute(
            select(c.kind, c.at, c.error_code)
            .where(
                c.issuer == issuer,
                c.kind != OutcomeKind.ACCOUNT_FAILURE.value,
                c.at >= now - WINDOW_AGE,
            )
            .order_by(c.at.desc(), c.id.desc())
            .limit(WINDOW_SIZE)
        )
    ).all()
    claimed = await session.scalar(
        select(t.issuer_probes.c.claimed_until).where(t.issuer_probes.c.issuer == issuer)
    )
    outcomes = [SyncOutcome(OutcomeKind(r.kind), r.at, r.error_code) for r in rows]
    return assess(issuer, outcomes, now, probe_claimed_until=claimed)


async def claim_probe(
    session: AsyncSession, issuer: str, now: dt.datetime, until: dt.datetime
) -> bool:
    """Take the issuer's probe until ``until``; of several takers at once, one wins."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    inserted = await session.scalar(
        insert(t.issuer_probes)
        .values(issuer=issuer, claimed_until=until)
        .on_conflict_do_nothing()
        .returning(t.issuer_probes.c.issuer)
    )
    if inserted is not None:
        return True
    taken = await session.execute(
        update(t.issuer_probes)
        .where(t.issuer_probes.c.issuer == issuer, t.issuer_probes.c.claimed_until <= now)
        .values(claimed_until=until)
    )
    return getattr(taken, "rowcount", 0) == 1


async def without_down_issuers(
    session: AsyncSession, due: list[tuple[str, str]], now: dt.datetime
) -> list[str]:
    """The due accounts a schedule may queue: a down issuer's are held back, but for the
    first of them when its probe is due (``should_sync_now``); the sync itself takes the
    probe, so a second scheduler racing this one gets no second probe through."""
    verdicts: dict[str, bool] = {}
    kept: list[str] = []
    for account_id, issuer in due:
        if issuer not in verdicts:
            health = await health_of(session, issuer, now)
            verdicts[issuer] = should_sync_now(health, now)
            if health.state == HealthState.DOWN and verdicts[issuer]:
                kept.append(account_id)
                verdicts[issuer] = False  # one probe, not every account
                continue
        if verdicts[issuer]:
            kept.append(account_id)
    return kept
