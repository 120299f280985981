"""Reading statements, uploading statement files, and the R7 recovery operations."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field, replace

from backend.domain import errors
from backend.domain.model import (
    Account,
    Card,
    Issuer,
    Role,
    Statement,
    StatementSource,
)
from backend.domain.statements import card_the_rows_belong_to, purchase_key
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
    """What an upload did.

    ``duplicates`` are the file's rows the account already held (by upload, legacy
    sync or API): an overlapping period adds each purchase once. ``payments`` are
    rows paying an earlier bill, kept out of the card's statements; ``adjustments``
    (refunds, corrections) are among the stored rows, with their sign.
    """

    added: int
    duplicates: int
    skipped_groups: list[dict[str, object]] = field(default_factory=list)
    payments: int = 0
    adjustments: int = 0
    first_use_date: dt.date | None = None
    last_use_date: dt.date | None = None


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _squashed(name: str | None) -> str:
    return "".join((name or "").split())


def _group_card(
    issuer: Issuer, group: ParsedStatementGroup, basic: Card, family: list[Card]
) -> Card | None:
    """The card a group of file rows belongs to, or None when it is not this account's."""
    if issuer == Issuer.AMEX:
        # R15: the suffix of 会員番号 tells basic and supplementary cards apart, and a
        # supplementary card is never the basic card's account's.
        suffix = _digits(group.key)[-5:]
        return basic if suffix and _digits(basic.masked_number).endswith(suffix) else None
    # JCB (R9): the account takes every user's card under the MyJCB ID, on the card
    # the issuer gives that user, as legacy sync stores them.
    if group.relation == "principal":
        return basic
    name = _squashed(group.holder_name)
    if name:
        named = [c for c in [basic, *family] if _squashed(c.holder_name) == name]
        if len(named) == 1:
            return named[0]
    if group.relation != "family":
        return None
    # 家族N: MyJCB numbers family cards in the order of their card numbers.
    ordered = sorted(family, key=lambda c: (_digits(c.masked_number), c.card_ref))
    if group.family_number is not None:
        index = group.family_number - 1
        return ordered[index] if 0 <= index < len(ordered) else None
    return ordered[0] if len(ordered) == 1 else None


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
    it replaced (R7: the old card's statements after an upgrade). Payments of earlier
    bills are kept out; a file whose rows are another card's of the account is
    refused, so no purchase is ever stored on two cards.
    """
    async with ctx.uow() as uow:
        account = await access.account_for(uow.repo, principal, account_id, Role.MEMBER)
        if account.is_deleted:
            raise errors.InvalidState("account is deleted")
        issuer = Issuer(account.issuer)
        basic: Card | None = None
        if card_id is not None:
            basic = await uow.repo.get_card(card_id)
            if basic is None or not await _belongs_to(uow.repo, account, basic):
                raise errors.CardMismatch("this card is not this account's card", card_id=card_id)
        elif account.card_id is not None:
            basic = await uow.repo.get_card(account.card_id)
        family = await uow.repo.cards_with_basic(basic.id) if basic is not None else []
        lines: list[tuple[str, IssuerStatement]] = []
        placed: list[tuple[Card, ParsedStatementGroup, list[int]]] = []
        skipped: list[dict[str, object]] = []
        payments = adjustments = 0
        for group in groups:
            wanted = [i for i in range(len(group.rows)) if group.kind_of(i) != "payment"]
            payments += len(group.rows) - len(wanted)
            if not wanted:
                continue  # the payment of an earlier bill is no card's use
            card = _group_card(issuer, group, basic, family) if basic is not None else None
            if card is None:
                # R15: a supplementary card's rows never land in the basic card's account;
                # a MyJCB user whose card renkei does not know is left out the same way.
                skipped.append(
                    {"card": group.key, "rows": len(wanted), "line": group.line_of(wanted[0])}
                )
                continue
            placed.append((card, group, wanted))
            for i in wanted:
                row = group.rows[i]
                if issuer == Issuer.JCB or not row.holder_name:
                    # The name the issuer gives the card, as legacy sync stores it.
                    row = replace(row, holder_name=card.holder_name)
                adjustments += group.kind_of(i) == "adjustment"
                lines.append((card.id, row))
        if not lines and skipped:
            raise errors.CardMismatch(
                "no row of this file is for this account's card", skipped=skipped
            )  # R15
        await _refuse_rows_of_another_card(uow.repo, account, basic, placed)
        counts = await ingest_batch(uow.repo, account, lines, StatementSource.UPLOAD, ctx.clock())
        await events.record(
            ctx,
            uow.repo,
            events.EventType.STATEMENTS_UPLOADED,
            office_id=account.office_id,
            account_id=account.id,
            added=counts.added,
            payments=payments,
            skipped=skipped,
        )
        await uow.commit()
        dates = [row.use_date for _, row in lines]
        return UploadResult(
            added=counts.added,
            duplicates=len(lines) - counts.added,
            skipped_groups=skipped,
            payments=payments,
            adjustments=adjustments,
            first_use_date=min(dates, default=None),
            last_use_date=max(dates, default=None),
        )


async def _account_cards(repo: Repository, account: Account, chosen: Card | None) -> list[Card]:
    """Every card whose statements this account may hold: its card and the cards it
    replaced (R7), with their family cards (R9), and the card the file was named for."""
    cards: dict[str, Card] = {}
    current = await repo.get_card(account.card_id) if account.card_id else None
    queue = [c for c in (current, chosen) if c is not None]
    while queue and len(cards) < 50:
        card = queue.pop()
        if card.id in cards:
            continue
        cards[card.id] = card
        queue.extend(await repo.cards_with_basic(card.id))
        queue.extend(await repo.cards_replaced_by(card.id))
    return list(cards.values())


async def _refuse_rows_of_another_card(
    repo: Repository,
    account: Account,
    chosen: Card | None,
    placed: list[tuple[Card, ParsedStatementGroup, list[int]]],
) -> None:
    """A group whose rows are already another card's statements in this account is that
    card's file (a download for another card): refused, nothing stored (R7, R15)."""
    if not placed:
        return
    cards = {c.id: c for c in await _account_cards(repo, account, chosen)}
    dates = [group.rows[i].use_date for _, group, wanted in placed for i in wanted]
    stored = await repo.statements_matching(account.id, sorted(cards), dates)
    held = [(r.card_id, purchase_key(r.use_date, r.amount_jpy, r.merchant)) for r in stored]
    for card, group, wanted in placed:
        keys = [
            purchase_key(group.rows[i].use_date, group.rows[i].amount_jpy, group.rows[i].merchant)
            for i in wanted
        ]
        other_id = card_the_rows_belong_to(card.id, keys, held)
        if other_id is None:
            continue
        other = cards[other_id]
        other_keys = {key for cid, key in held if cid == other_id}
        first = next((i for i, key in zip(wanted, keys, strict=True) if key in other_keys), None)
        raise errors.CardMismatch(
            "the rows of this file are another card's statements, already in this account",
            reason="rows_of_another_card",
            card=other.masked_number,
            file_card=card.masked_number,
            rows=sum(1 for key in keys if key in other_keys),
            line=group.line_of(first) if first is not None else None,
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
