"""Cards that appear: a card the issuer reports for an account's ID after the account's
first sync or consent is offered to the office, never set up by itself.

An Amex supplementary card registered to the online-service ID after the first link
(R15: it needs an account of its own), or a new family card under a MyJCB ID (R9), shows
up in what the issuer answers a legacy login, a grant or a consent. The first time an
account reports its cards they are only noted (they were there before the link); any
card reported later that no account of the office has seen becomes a ``card.discovered``
event, in the outbox with the sync or consent that found it. Nothing else happens: no
account is created and nothing is linked until the person chooses to.
"""

from __future__ import annotations

from collections.abc import Sequence

from backend.domain import errors, rules
from backend.domain.model import Account, Card, CardRole, Issuer, SyncMethod
from backend.service import events
from backend.service.context import ServiceContext
from backend.service.ports import IssuerCard
from backend.service.uow import Repository


async def note_reported_cards(
    ctx: ServiceContext,
    repo: Repository,
    account: Account,
    issuer: Issuer,
    reported: Sequence[IssuerCard],
    cards: dict[str, str],
) -> list[str]:
    """Note the cards the issuer reported for ``account``; offer the ones that appeared.

    Args:
        ctx: The service context.
        repo: The repository of the sync's or consent's transaction.
        account: The account whose ID the issuer answered for.
        issuer: Its issuer.
        reported: The cards as the issuer reported them.
        cards: Card ref → id of the issuer's card rows for ``reported`` (already upserted).

    Returns:
        The ids of the cards offered (a ``card.discovered`` event each).
    """
    seen_before = await repo.cards_seen_by_account(account.id)
    first_report = not seen_before
    # R7: an upgrade's successor is the same card changing, told by ``card.changed``.
    changing = {c.card_ref for c in reported if c.status == "replaced" or c.replaced_by}
    changing |= {c.replaced_by for c in reported if c.replaced_by}
    offered: list[str] = []
    for seen in reported:
        card_id = cards.get(seen.card_ref)
        if card_id is None or card_id in seen_before:
            continue
        known_to_office = await repo.card_seen_in_office(account.office_id, card_id)
        await repo.note_card_seen(account.id, account.office_id, card_id, ctx.clock())
        if (
            first_report
            or known_to_office
            or card_id == account.card_id
            or seen.card_ref in changing
        ):
            continue
        card = await repo.get_card(card_id)
        if card is None:
            continue
        await _offer(ctx, repo, account, issuer, card)
        offered.append(card_id)
    return offered


async def _offer(
    ctx: ServiceContext, repo: Repository, account: Account, issuer: Issuer, card: Card
) -> None:
    try:
        rules.ensure_card_eligible(card)  # R1
        eligible = True
    except errors.CardNotEligible:
        eligible = False
    supplementary = card.role == CardRole.SUPPLEMENTARY
    # The office's account of the basic card: where the supplementary-card flow starts.
    basic_account_id = next(
        (
            a.id
            for a in await repo.list_accounts(account.office_id)
            if card.basic_card_id and a.card_id == card.basic_card_id
        ),
        None,
    )
    await events.record(
        ctx,
        repo,
        events.EventType.CARD_DISCOVERED,
        office_id=account.office_id,
        account_id=account.id,
        issuer=issuer.value,
        card_id=card.id,
        card_ref=card.card_ref,
        masked_number=card.masked_number,
        holder_name=card.holder_name,
        product=card.product,
        role=card.role.value,
        basic_card_id=card.basic_card_id,
        basic_account_id=basic_account_id,
        api_eligible=eligible,
        # R15: an Amex supplementary card needs an account of its own, set up by the
        # supplementary-card procedure; any other card by registering an account.
        offer="supplementary_card" if supplementary and issuer == Issuer.AMEX else "register",
        # R9: a JCB API link already brings every card of the MyJCB ID into the account.
        statements_in_account=issuer == Issuer.JCB and account.sync_method == SyncMethod.API,
    )
