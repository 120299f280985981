"""Who may do what: every use case checks the caller against the office and role."""

from __future__ import annotations

from backend.domain import errors, rules
from backend.domain.model import Account, Role
from backend.service.context import Principal
from backend.service.uow import Repository


async def role_in_office(repo: Repository, principal: Principal, office_id: str) -> Role:
    """The caller's role; an office the caller does not belong to does not exist for them."""
    if principal.support_admin:
        if await repo.get_office(office_id) is None:
            raise errors.NotFound("office not found", office_id=office_id)
        return Role.ADMIN
    role = await repo.role_in(office_id, principal.email)
    if role is None:
        raise errors.NotFound("office not found", office_id=office_id)
    return role


async def require_office(
    repo: Repository, principal: Principal, office_id: str, needed: Role
) -> Role:
    role = await role_in_office(repo, principal, office_id)
    rules.require_role(role, needed)
    return role


async def visible_office_ids(repo: Repository, principal: Principal) -> list[str] | None:
    """None means every office (support administrator)."""
    if principal.support_admin:
        return None
    return [m.office_id for m in await repo.memberships_of(principal.email)]


async def may_see_office(repo: Repository, principal: Principal, office_id: str) -> bool:
    if principal.support_admin:
        return True
    return await repo.role_in(office_id, principal.email) is not None


async def account_for(
    repo: Repository,
    principal: Principal,
    account_id: str,
    needed: Role,
    *,
    for_update: bool = False,
) -> Account:
    """Load an account the caller may act on with at least ``needed``."""
    account = await repo.get_account(account_id, for_update=for_update)
    if account is None:
        raise errors.NotFound("account not found", account_id=account_id)
    try:
        await require_office(repo, principal, account.office_id, needed)
    except errors.NotFound as exc:
        raise errors.NotFound("account not found", account_id=account_id) from exc
    return account
