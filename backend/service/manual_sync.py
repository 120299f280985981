"""A sync asked for by a person (the API's "sync now"), after the access check."""

from __future__ import annotations

import dataclasses
import datetime as dt

from backend.domain.model import Role
from backend.service import access
from backend.service.context import Principal, ServiceContext
from backend.service.jobs import SYNC_ACCOUNT, sync_lock
from backend.service.sync import RetryLater, SyncResult, sync_account


async def sync_account_as(ctx: ServiceContext, principal: Principal, account_id: str) -> SyncResult:
    """Sync one account now on behalf of a member of its office.

    Raises:
        NotFound: the account does not exist or its office is not the caller's.
        Forbidden: the caller only reads this office.
        RetryLater: the issuer is busy or down (from ``sync_account``).
    """
    async with ctx.uow() as uow:
        # Syncing writes statements into the office's books: a member's act.
        await access.account_for(uow.repo, principal, account_id, Role.MEMBER)
        # A sync already queued for the account (a webhook's, the schedule's) is the same
        # work: this request carries it out now instead of the issuer being asked twice.
        now = ctx.clock()
        job_id = await uow.repo.take_queued_job(
            SYNC_ACCOUNT, sync_lock(account_id), now, now + ctx.sync_lease
        )
        await uow.commit()
    if job_id is None:
        return await sync_account(ctx, account_id, requested=True)
    retry_at: dt.datetime | None = None
    try:
        result = await sync_account(ctx, account_id, requested=True)
    except RetryLater as busy:
        retry_at = ctx.clock() + dt.timedelta(seconds=busy.delay)
        raise
    finally:
        async with ctx.uow() as uow:
            await uow.repo.settle_job(job_id, retry_at=retry_at)
            await uow.commit()
    return dataclasses.replace(result, job_id=job_id)
