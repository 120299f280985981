"""Accounts: create (legacy, upload, API), list, delete (R10/R16), offices using a card."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from backend.domain import errors, rules
from backend.domain.model import (
    Account,
    AccountStatus,
    ApiLink,
    Card,
    CardRole,
    Issuer,
    LinkStatus,
    Role,
    SyncMethod,
)
from backend.service import access, events, jobs
from backend.service.context import Principal, ServiceContext
from backend.service.ports import IssuerCard, IssuerError, ReauthRequired
from backend.service.tokens import load_tokens, saver_for
from backend.service.uow import Repository


@dataclass(frozen=True)
class AccountDetail:
    account: Account
    card: Card | None
    link: ApiLink | None


async def list_accounts(
    ctx: ServiceContext, principal: Principal, office_id: str
) -> list[AccountDetail]:
    async with ctx.uow() as uow:
        await access.role_in_office(uow.repo, principal, office_id)
        return [await _detail(uow.repo, a) for a in await uow.repo.list_accounts(office_id)]


async def get_account(ctx: ServiceContext, principal: Principal, account_id: str) -> AccountDetail:
    async with ctx.uow() as uow:
        account = await access.account_for(uow.repo, principal, account_id, Role.READ_ONLY)
        return await _detail(uow.repo, account)


async def _detail(repo: Repository, account: Account) -> AccountDetail:
    card = await repo.get_card(account.card_id) if account.card_id else None
    link = await repo.latest_link_of_account(account.id)
    return AccountDetail(account=account, card=card, link=link)


async def upsert_card(repo: Repository, issuer: Issuer, seen: IssuerCard) -> Card:
    """The issuer's card as the issuer reports it, created once and kept current.

    Only what an issuer answered (consent, grant info, a legacy login) comes here: this
    row is shared by every office that syncs the card (R14), so nothing a caller sends
    may reach it (see ``declare_card``).
    """
    card = await repo.card_by_ref(issuer, seen.card_ref)
    basic_id = None
    if seen.basic_card_ref:
        basic = await repo.card_by_ref(issuer, seen.basic_card_ref)
        basic_id = basic.id if basic else None
    if card is None:
        card = Card(
            issuer=issuer,
            card_ref=seen.card_ref,
            product=seen.product,
            masked_number=seen.masked_number,
            holder_name=seen.holder_name,
            role=CardRole(seen.role),
            basic_card_id=basic_id,
        )
        await repo.add(card)
        await repo.flush()
    else:
        card.product = seen.product
        card.masked_number = seen.masked_number
        card.holder_name = seen.holder_name
        card.role = CardRole(seen.role)
        card.basic_card_id = basic_id or card.basic_card_id
    return card


async def declare_card(
    repo: Repository, office_id: str, issuer: Issuer, declared: IssuerCard
) -> Card:
    """The card of a new upload account, as the caller described it: the office's own record.

    A card the office already syncs from the issuer is taken as the issuer reported it
    (the office knows it, and R12 then refuses a second account). Anything else becomes
    or updates this office's declaration, which no other office sees: the issuer's card
    of the same id, wherever it is synced, stays exactly as the issuer reported it.
    """
    for known in await office_cards(repo, office_id):
        if not known.declared and known.issuer == issuer and known.card_ref == declared.card_ref:
            return known
    card = await repo.declared_card(office_id, issuer, declared.card_ref)
    if card is None:
        card = Card(
            issuer=issuer,
            card_ref=declared.card_ref,
            product=declared.product,
            masked_number=declared.masked_number,
            holder_name=declared.holder_name,
            role=CardRole(declared.role),
            office_id=office_id,
        )
        await repo.add(card)
        await repo.flush()
    else:
        card.product = declared.product
        card.masked_number = declared.masked_number
        card.holder_name = declared.holder_name
        card.role = CardRole(declared.role)
    return card


async def accounts_with_cards(
    repo: Repository, office_id: str
) -> list[tuple[Account, Card | None]]:
    return [
        (a, await repo.get_card(a.card_id) if a.card_id else None)
        for a in await repo.list_accounts(office_id)
    ]


async def add_account(ctx: ServiceContext, repo: Repository, account: Account) -> None:
    """Store a new account, unless the office already syncs its card (R12: switch instead)."""
    if account.card_id is not None:
        card = await repo.get_card(account.card_id)
        assert card is not None
        rules.ensure_no_other_account(
            card, await accounts_with_cards(repo, account.office_id), account_id=account.id
        )  # R12
    await repo.add(account)
    await repo.flush()
    await events.record(
        ctx,
        repo,
        events.EventType.ACCOUNT_CREATED,
        office_id=account.office_id,
        account_id=account.id,
        sync_method=str(account.sync_method),
    )


async def create_legacy_account(
    ctx: ServiceContext,
    principal: Principal,
    *,
    office_id: str,
    issuer: Issuer,
    name: str,
    login_id: str,
    password: str,
    card_ref: str | None,
) -> Account:
    """The old ID/password method: the login is checked at the issuer before anything is kept.

    The login may show several cards (Amex basic and supplementary); one account takes one
    card (R15), so with more than one card on the login the caller must say which.
    """
    async with ctx.uow() as uow:
        await access.require_office(uow.repo, principal, office_id, Role.MEMBER)
    legacy = await ctx.gateway(issuer).legacy_fetch(login_id, password)
    active_cards = [c for c in legacy.cards if c.status == "active"] or legacy.cards
    if card_ref is None:
        if len(active_cards) != 1:
            raise errors.InvalidRequest(
                "this login shows several cards: choose one (one account per card)",
                cards=[
                    {"card_ref": c.card_ref, "masked_number": c.masked_number} for c in active_cards
                ],
            )
        card_ref = active_cards[0].card_ref
    chosen = next((c for c in legacy.cards if c.card_ref == card_ref), None)
    if chosen is None:
        raise errors.CardMismatch("the login does not show this card", card_ref=card_ref)
    async with ctx.uow() as uow:
        await access.require_office(uow.repo, principal, office_id, Role.MEMBER)
        for seen in legacy.cards:
            if seen.basic_card_ref is None:
                await upsert_card(uow.repo, issuer, seen)
        card = await upsert_card(uow.repo, issuer, chosen)
        account = Account(
            office_id=office_id,
            name=name.strip() or card.masked_number,
            issuer=issuer,
            card_id=card.id,
            sync_method=SyncMethod.LEGACY,
            legacy_login_id=ctx.secrets.encrypt(login_id),
            legacy_password=ctx.secrets.encrypt(password),
            created_at=ctx.clock(),
        )
        await add_account(ctx, uow.repo, account)
        await jobs.enqueue_sync(ctx, uow.repo, account.id)
        await uow.commit()
        return account


async def create_upload_account(
    ctx: ServiceContext,
    principal: Principal,
    *,
    office_id: str,
    issuer: Issuer,
    name: str,
    card: IssuerCard,
) -> Account:
    """An account fed only by statement files; its card is what the caller declares (R1, R15
    included), kept as this office's own record until an issuer reports the card."""
    async with ctx.uow() as uow:
        await access.require_office(uow.repo, principal, office_id, Role.MEMBER)
        stored = await declare_card(uow.repo, office_id, issuer, card)
        account = Account(
            office_id=office_id,
            name=name.strip() or stored.masked_number,
            issuer=issuer,
            card_id=stored.id,
            sync_method=SyncMethod.UPLOAD,
            created_at=ctx.clock(),
        )
        await add_account(ctx, uow.repo, account)
        await uow.commit()
        return account


async def set_archived(
    ctx: ServiceContext, principal: Principal, account_id: str, *, archived: bool
) -> AccountDetail:
    """Archive (stop syncing, keep everything) or bring back an account."""
    async with ctx.uow() as uow:
        account = await access.account_for(
            uow.repo, principal, account_id, Role.MEMBER, for_update=True
        )
        if account.is_deleted:
            raise errors.InvalidState("account is deleted")
        if archived:
            if await _unrevoked_link(uow.repo, account_id) is not None:
                # R10/R16: an archived account would still hold the card's only link.
                raise errors.InvalidState("stop the API link before archiving this account")
            account.status = AccountStatus.DISABLED
        elif account.status == AccountStatus.DISABLED:
            account.status = (
                AccountStatus.NEEDS_REAUTH
                if account.sync_method == SyncMethod.API
                else AccountStatus.ACTIVE
            )
        await uow.commit()
        return await _detail(uow.repo, account)


async def registered_cards(
    ctx: ServiceContext, principal: Principal, account_id: str
) -> list[Card]:
    """R15: the cards the issuer shows for the account's ID, asked with its stored login."""
    async with ctx.uow() as uow:
        account = await access.account_for(uow.repo, principal, account_id, Role.MEMBER)
        if not account.has_legacy_credentials:
            raise errors.InvalidState(
                "no stored issuer login to ask with (erased by a switch to API, R2)",
                reason="no_legacy_credentials",
            )
        assert account.legacy_login_id is not None and account.legacy_password is not None
        login_id = ctx.secrets.decrypt(account.legacy_login_id)
        password = ctx.secrets.decrypt(account.legacy_password)
        issuer = Issuer(account.issuer)
    fetched = await ctx.gateway(issuer).legacy_fetch(login_id, password)
    async with ctx.uow() as uow:
        cards = [await upsert_card(uow.repo, issuer, seen) for seen in fetched.cards]
        await uow.commit()
        return cards


async def cards_of_office(ctx: ServiceContext, principal: Principal, office_id: str) -> list[Card]:
    """The office's cards, their supplementary cards (R15) and the cards they replaced (R7)."""
    async with ctx.uow() as uow:
        await access.role_in_office(uow.repo, principal, office_id)
        return await office_cards(uow.repo, office_id)


async def office_cards(repo: Repository, office_id: str) -> list[Card]:
    """The cards of the office's live accounts, with their supplementary and replaced cards:
    the only cards the office may name (R11 ``card_id``) or see."""
    found: dict[str, Card] = {}
    for account in await repo.list_accounts(office_id):
        card = await repo.get_card(account.card_id) if account.card_id else None
        if card is None:
            continue
        found[card.id] = card
        for related in [
            *await repo.cards_with_basic(card.id),
            *await repo.cards_replaced_by(card.id),
        ]:
            found.setdefault(related.id, related)
    return list(found.values())


@dataclass(frozen=True)
class CardUse:
    """One account that syncs a card; office name only where the caller may see it (R14)."""

    account_id: str | None
    office_id: str | None
    office_name: str | None
    sync_method: SyncMethod
    api_linked: bool


async def offices_using_card(
    ctx: ServiceContext, principal: Principal, office_id: str, card_id: str
) -> tuple[Card, list[CardUse]]:
    """R14: which offices sync this card, and which one holds its API link."""
    async with ctx.uow() as uow:
        await access.role_in_office(uow.repo, principal, office_id)
        card = await uow.repo.get_card(card_id)
        accounts = await uow.repo.accounts_using_card(card_id) if card else []
        if card is None or not any(a.office_id == office_id for a in accounts):
            raise errors.NotFound("card not found in this office", card_id=card_id)
        uses = []
        for account in accounts:
            visible = await access.may_see_office(uow.repo, principal, account.office_id)
            office = await uow.repo.get_office(account.office_id) if visible else None
            link = await uow.repo.active_link_of_account(account.id)
            uses.append(
                CardUse(
                    account_id=account.id if visible else None,
                    office_id=account.office_id if visible else None,
                    office_name=office.name if office else None,
                    sync_method=SyncMethod(account.sync_method),
                    api_linked=link is not None,
                )
            )
        return card, uses


async def delete_account(ctx: ServiceContext, principal: Principal, account_id: str) -> Account:
    """Delete an account; an Amex API account only once its link is stopped at Amex (R10/R16).

    The statements stay (they are the office's books); the credentials and tokens go.
    """
    async with ctx.uow() as uow:
        account = await access.account_for(uow.repo, principal, account_id, Role.ADMIN)
        link = await _unrevoked_link(uow.repo, account_id)
    stopped = False
    if link is not None:
        stopped = await stopped_at_issuer(ctx, link)
    async with ctx.uow() as uow:
        account = await access.account_for(
            uow.repo, principal, account_id, Role.ADMIN, for_update=True
        )
        link = await _unrevoked_link(uow.repo, account_id)
        rules.ensure_deletable(account, link, stopped_at_issuer=stopped)  # R10/R16
        if link is not None:
            if account.issuer == Issuer.JCB and not stopped:
                await _revoke_quietly(ctx, link)  # JCB: RFC 7009 revocation ends the grant
            link.status = LinkStatus.REVOKED
            link.revoked_at = ctx.clock()
        account.status = AccountStatus.DELETED
        account.deleted_at = ctx.clock()
        account.legacy_login_id = None
        account.legacy_password = None
        await events.record(
            ctx,
            uow.repo,
            events.EventType.ACCOUNT_DELETED,
            office_id=account.office_id,
            account_id=account.id,
        )
        await uow.commit()
        return account


async def check_link(ctx: ServiceContext, principal: Principal, account_id: str) -> str:
    """R16: ask the issuer whether the account's link is still registered there.

    A link found stopped is recorded as revoked (as the issuer's webhook would), so the
    account can then be deleted, or the card linked elsewhere. Answers "active",
    "stopped", or "none" when the account has no link.
    """
    async with ctx.uow() as uow:
        await access.account_for(uow.repo, principal, account_id, Role.MEMBER)
        link = await _unrevoked_link(uow.repo, account_id)
    if link is None:
        return "none"
    if not await stopped_at_issuer(ctx, link):
        return "active"
    async with ctx.uow() as uow:
        account = await access.account_for(
            uow.repo, principal, account_id, Role.MEMBER, for_update=True
        )
        stored = await _unrevoked_link(uow.repo, account_id)
        if stored is not None and stored.id == link.id:
            stored.status = LinkStatus.REVOKED
            stored.revoked_at = ctx.clock()
            account.status = AccountStatus.NEEDS_REAUTH
            await events.record(
                ctx,
                uow.repo,
                events.EventType.LINK_REVOKED,
                office_id=account.office_id,
                account_id=account.id,
                source="check",
            )
        await uow.commit()
    return "stopped"


async def _unrevoked_link(repo: Repository, account_id: str) -> ApiLink | None:
    """The account's newest link unless it is known to be revoked (active or expired)."""
    link = await repo.latest_link_of_account(account_id)
    return link if link is not None and link.status != LinkStatus.REVOKED else None


async def stopped_at_issuer(ctx: ServiceContext, link: ApiLink) -> bool:
    """Ask the issuer whether the grant is still registered (R16).

    Tokens the issuer refuses for any other reason say nothing about the grant: it is
    then not known to be stopped (R10).
    """
    try:
        status = await ctx.gateway(link.issuer).link_status(
            load_tokens(ctx, link), saver_for(ctx, link.id)
        )
    except ReauthRequired:
        return False
    return status.status == "stopped"


async def _revoke_quietly(ctx: ServiceContext, link: ApiLink) -> None:
    # The link is being dropped on our side either way; a JCB grant that outlives
    # it expires at the issuer and blocks nothing (R6 is checked per account here).
    with contextlib.suppress(IssuerError):
        await ctx.gateway(link.issuer).revoke(load_tokens(ctx, link))
