"""Reading the event log: what happened in the offices the caller belongs to."""

from __future__ import annotations

from backend.domain import errors
from backend.domain.model import Event, Role
from backend.service import access
from backend.service.context import Principal, ServiceContext

MAX_EVENTS = 200


async def list_events(
    ctx: ServiceContext,
    principal: Principal,
    *,
    office_id: str | None = None,
    account_id: str | None = None,
    limit: int = 50,
) -> list[Event]:
    """Newest first, only from offices the caller may see (all of them for support).

    Raises:
        NotFound: ``office_id`` or ``account_id`` is not visible to the caller, or the
            account is not in the office given.
    """
    limit = max(1, min(limit, MAX_EVENTS))
    async with ctx.uow() as uow:
        office_ids: list[str] | None
        if account_id is not None:
            account = await access.account_for(uow.repo, principal, account_id, Role.READ_ONLY)
            if office_id is not None and account.office_id != office_id:
                raise errors.NotFound("account not found", account_id=account_id)
        if office_id is not None:
            await access.role_in_office(uow.repo, principal, office_id)
            office_ids = [office_id]
        else:
            office_ids = await access.visible_office_ids(uow.repo, principal)
        return await uow.repo.list_events(office_ids, account_id=account_id, limit=limit)
