"""A sync asked for by a person (the API's "sync now"), after the access check."""

from __future__ import annotations

from backend.domain.model import Role
from backend.service import access
from backend.service.context import Principal, ServiceContext
from backend.service.sync import SyncResult, sync_account


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
    return await sync_account(ctx, account_id)
