"""Reading statements, uploading statement files, and the R7 recovery operations."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field

from backend.domain import errors
from backend.domain.model import (
    Account,
    Card,
    Issuer,
    Role,
    Statement,
    StatementSource,
)
from backend.service import access, events
from backend.service.accounts import create_legacy_account, upsert_card
from backend.service.context import Principal, ServiceContext
from backend.service.ingest import ingest_batch
from backend.service.ports import IssuerStatement, ParsedStatementGroup
from backend.service.uow import Repository


async def list_statements(
    ctx: ServiceContext,
    principal: Principal,
    account_id: str,
    *,
    after: tuple[dt.date, str] | None,
    limit: int,
) -> list[Statement]:
    async with ctx.uow() as uow:
        await access.account_for(uow.repo, principal, account_id, Role.READ_ONLY)
        return await uow.repo.list_statements(account_id, after=after, limit=limit)


async def all_statements(
    ctx: ServiceContext, principal: Principal, account_id: str
) -> list[Statement]:
    """Every statement of an account, oldest first (for an export)."""
    rows: list[Statement] = []
    after: tuple[dt.date, str] | None = None
    async with ctx.uow() as uow:
        await access.account_for(uow.repo, principal, account_id, Role.READ_ONLY)
        while True:
            page = await uow.repo.list_statements(account_id, after=after, limit=1000)
            rows.extend(page)
            if len(page) < 1000:
                break
            after = (page[-1].use_date, page[-1].id)
    rows.reverse()
    return rows


EXPORT_COLUMNS = (
    "use_date",
    "posted_date",
    "merchant",
    "amount_jpy",
    "foreign_amount",
    "foreign_currency",
    "status",
    "source",
    "holder_name",
    "issuer_txn_id",
)


def statements_csv(rows: list[Statement]) -> bytes:
    """UTF-8 with a byte-order mark, so spreadsheet software reads the Japanese right."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow(
            ["" if getattr(row, c) is None else getattr(row, c) for c in EXPORT_COLUMNS]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


@dataclass
class UploadResult:
    added: int
    duplicates: int
    skipped_groups: list[dict[str, object]] = field(default_factory=list)


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _group_card(
    issuer: Issuer, key: str, rows: list[IssuerStatement], candidates: list[Card]
) -> Card | None:
    """The card a group of file rows belongs to, or None when it is not this account's."""
    if issuer == Issuer.AMEX:
        # R15: the suffix of 会員番号 tells basic and supplementary cards apart.
        suffix = _digits(key)[-5:]
        return next((c for c in candidates if _digits(c.masked_number).endswith(suffix)), None)
    # JCB (R9): the account takes every user's card under the MyJCB ID.
    holder = (rows[0].holder_name or key) if rows else key
    squashed = holder.replace(" ", "").replace("\u3000", "")
    for card in candidates:
        if card.holder_name.replace(" ", "").replace("\u3000", "") in squashed:
            return card
    return candidates[0] if candidates else None


async def check_may_upload(ctx: ServiceContext, principal: Principal, account_id: str) -> Issuer:
    """Refuse an upload before its file is read: the caller's role, a live account.

    Returns the issuer whose file format the upload must have.
    """
    async with ctx.uow() as uow:
        account = await access.account_for(uow.repo, principal, account_id, Role.MEMBER)
        if account.is_deleted:
            raise errors.InvalidState("account is deleted")
        return Issuer(account.issuer)


async def upload_statements(
    ctx: ServiceContext,
    principal: Principal,
    account_id: str,
    groups: list[ParsedStatementGroup],
    *,
    card_id: str | None = None,
) -> UploadResult:
    """Import a parsed statement file, all or nothing.

    ``card_id`` names the card the file is for; it may be the account's card or a card
    it replaced (R7: the old card's statements after an upgrade).
    """
    async with ctx.uow() as uow:
        account = await access.account_for(uow.repo, principal, account_id, Role.MEMBER)
        if account.is_deleted:
            raise errors.InvalidState("account is deleted")
        issuer = Issuer(account.issuer)
        candidates: list[Card] = []
        if card_id is not None:
            chosen = await uow.repo.get_card(card_id)
            if chosen is None or not await _belongs_to(uow.repo, account, chosen):
                raise errors.CardMismatch("this card is not this account's card", card_id=card_id)
            candidates = [chosen]
        else:
            current = await uow.repo.get_card(account.card_id) if account.card_id else None
            if current is not None:
                candidates = [current]
                if issuer == Issuer.JCB:
                    candidates += await _family_cards(uow.repo, account)
        lines: list[tuple[str, IssuerStatement]] = []
        skipped: list[dict[str, object]] = []
        for group in groups:
            card = _group_card(issuer, group.key, list(group.rows), candidates)
            if card is None:
                # R15: a supplementary card's rows never land in the basic card's account.
                skipped.append({"card": group.key, "rows": len(group.rows)})
                continue
            lines.extend((card.id, row) for row in group.rows)
        if not lines and skipped:
            raise errors.CardMismatch(
                "no row of this file is for this account's card", skipped=skipped
            )  # R15
        counts = await ingest_batch(uow.repo, account, lines, StatementSource.UPLOAD, ctx.clock())
        await events.record(
            ctx,
            uow.repo,
            events.EventType.STATEMENTS_UPLOADED,
            office_id=account.office_id,
            account_id=account.id,
            added=counts.added,
            skipped=skipped,
        )
        await uow.commit()
        return UploadResult(
            added=counts.added, duplicates=len(lines) - counts.added, skipped_groups=skipped
        )


async def _belongs_to(repo: Repository, account: Account, card: Card) -> bool:
    """The account's card, a card it replaced (R7), or a family card of its MyJCB ID (R9)."""
    if card.id == account.card_id or card.successor_id == account.card_id:
        return True
    if account.issuer == Issuer.JCB:
        return card.id in {c.id for c in await _family_cards(repo, account)}
    # Follow a chain of changes (upgrade, then another change).
    seen = card
    for _ in range(5):
        if seen.successor_id is None:
            return False
        if seen.successor_id == account.card_id:
            return True
        nxt = await repo.get_card(seen.successor_id)
        if nxt is None:
            return False
        seen = nxt
    return False


async def _family_cards(repo: Repository, account: Account) -> list[Card]:
    """The family cards issued on the account's card: one MyJCB ID covers them (R9)."""
    if account.card_id is None:
        return []
    return await repo.cards_with_basic(account.card_id)


async def resync_old_card(
    ctx: ServiceContext,
    principal: Principal,
    account_id: str,
    *,
    login_id: str,
    password: str,
) -> UploadResult:
    """R7 (b): fetch the old card's statements with its own credentials into this account."""
    async with ctx.uow() as uow:
        account = await access.account_for(uow.repo, principal, account_id, Role.MEMBER)
        issuer = Issuer(account.issuer)
        if account.card_id is None:
            raise errors.InvalidState("account has no card yet")
    fetched = await ctx.gateway(issuer).legacy_fetch(login_id, password)
    async with ctx.uow() as uow:
        account = await access.account_for(
            uow.repo, principal, account_id, Role.MEMBER, for_update=True
        )
        predecessors: dict[str, str] = {}
        for seen in fetched.cards:
            card = await upsert_card(uow.repo, issuer, seen)
            if card.successor_id is not None and await _belongs_to(uow.repo, account, card):
                predecessors[card.card_ref] = card.id
        if not predecessors:
            raise errors.CardMismatch(
                "these credentials show no card that this account's card replaced"
            )  # R7
        lines = [
            (predecessors[s.card_ref], s) for s in fetched.statements if s.card_ref in predecessors
        ]
        counts = await ingest_batch(uow.repo, account, lines, StatementSource.LEGACY, ctx.clock())
        await uow.commit()
        return UploadResult(added=counts.added, duplicates=len(lines) - counts.added)


async def create_account_for_old_card(
    ctx: ServiceContext,
    principal: Principal,
    account_id: str,
    *,
    login_id: str,
    password: str,
    name: str,
) -> Account:
    """R7 (c): a new (legacy) account that syncs the old card with its credentials."""
    async with ctx.uow() as uow:
        account = await access.account_for(uow.repo, principal, account_id, Role.MEMBER)
        olds = await _replaced_cards(uow.repo, account)
        if not olds:
            raise errors.InvalidState("this account's card has not changed")  # R7
        office_id, issuer, old_ref = account.office_id, Issuer(account.issuer), olds[0].card_ref
    return await create_legacy_account(
        ctx,
        principal,
        office_id=office_id,
        issuer=issuer,
        name=name,
        login_id=login_id,
        password=password,
        card_ref=old_ref,
    )


async def _replaced_cards(repo: Repository, account: Account) -> list[Card]:
    if account.card_id is None:
        return []
    return await repo.cards_replaced_by(account.card_id)
