"""What /metrics reports of syncs per issuer, read from the shared database at scrape
time so every process reports the same figures."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db import tables as t
from backend.domain.model import AccountStatus

# Accounts renkei keeps syncing: their lag is what an operator watches.
_LIVE = (AccountStatus.ACTIVE, AccountStatus.SYNCING)


async def outcome_counts(sessions: async_sessionmaker[AsyncSession]) -> dict[tuple[str, str], int]:
    """Sync runs per (issuer, outcome kind) in the kept health window."""
    outcomes = t.issuer_sync_outcomes
    async with sessions() as session:
        rows = await session.execute(
            select(outcomes.c.issuer, outcomes.c.kind, func.count()).group_by(
                outcomes.c.issuer, outcomes.c.kind
            )
        )
        return {(str(issuer), str(kind)): int(n) for issuer, kind, n in rows.all()}


async def lag_seconds(
    sessions: async_sessionmaker[AsyncSession], now: dt.datetime
) -> dict[str, float]:
    """Per issuer: seconds since the live account synced longest ago (never synced:
    since it was created)."""
    accounts = t.accounts
    since = func.coalesce(accounts.c.last_synced_at, accounts.c.created_at)
    async with sessions() as session:
        rows = await session.execute(
            select(accounts.c.issuer, func.min(since))
            .where(accounts.c.status.in_(_LIVE), accounts.c.deleted_at.is_(None))
            .group_by(accounts.c.issuer)
        )
        found: dict[str, float] = {}
        for issuer, oldest in rows.all():
            if oldest is None:
                continue
            found[str(issuer)] = max((now - oldest).total_seconds(), 0.0)
        return found
