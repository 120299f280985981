"""The rules of domain.md as plain functions. Each raises the error of its rule.

The storage layer backs R5 and R6 with unique indexes as well, so that two
concurrent attempts cannot both pass these checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from backend.domain import errors
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

# R1: the cards the issuers offer API linking for.
API_ELIGIBLE_PRODUCTS: dict[Issuer, frozenset[str]] = {
    Issuer.AMEX: frozenset({"amex_business", "amex_business_gold", "amex_business_platinum"}),
    Issuer.JCB: frozenset({"jcb_general", "jcb_gold", "jcb_platinum", "jcb_corporate"}),
}

_ROLE_RANK = {Role.READ_ONLY: 0, Role.MEMBER: 1, Role.ADMIN: 2}


def require_role(actual: Role | None, needed: Role) -> None:
    """Refuse unless ``actual`` is at least ``needed``."""
    if actual is None or _ROLE_RANK[actual] < _ROLE_RANK[needed]:
        raise errors.Forbidden("role too low", needed=needed.value)


def ensure_card_eligible(card: Card) -> None:
    # R1
    if card.product not in API_ELIGIBLE_PRODUCTS[card.issuer]:
        raise errors.CardNotEligible(
            "card product cannot be API-linked", product=card.product, issuer=card.issuer.value
        )


def ensure_released(released: bool, issuer: Issuer) -> None:
    # R3/R4: no "switch to API" until the issuer's API linking reached this office.
    if not released:
        raise errors.ApiNotReleased("API linking is not released for this office", issuer=issuer)


def ensure_card_free(card: Card, active_links: Iterable[ApiLink], *, account_id: str) -> None:
    """R5/R14: one Amex card, one API-linked account, across every office."""
    if card.issuer != Issuer.AMEX:
        return
    for link in active_links:
        if link.card_id == card.id and link.status == LinkStatus.ACTIVE:
            if link.account_id == account_id:
                continue  # re-authenticating in place replaces its own link
            raise errors.CardAlreadyLinked(
                "this Amex card is already API-linked to another account",
                office_id=link.office_id,
                account_id=link.account_id,
            )


def same_card(a: Card, b: Card) -> bool:
    """One card: the same row, or an office's declaration of a card it also syncs from the
    issuer (the issuer's own id, within one issuer)."""
    return a.id == b.id or (a.issuer == b.issuer and a.card_ref == b.card_ref)


def ensure_no_other_account(
    card: Card, office_accounts: Iterable[tuple[Account, Card | None]], *, account_id: str
) -> None:
    """R11/R12: a card the office already syncs is switched in place, not registered again."""
    for other, other_card in office_accounts:
        if (
            other_card is not None
            and same_card(other_card, card)
            and other.id != account_id
            and not other.is_deleted
        ):
            raise errors.AccountExistsForCard(
                "this office already has an account for this card: switch it to API instead",
                account_id=other.id,
            )


def ensure_switchable(account: Account) -> None:
    if account.is_deleted:
        raise errors.InvalidState("account is deleted")
    if account.sync_method == SyncMethod.API and account.status == AccountStatus.ACTIVE:
        raise errors.InvalidState("account is already API-linked", account_id=account.id)


def ensure_grant_fits_account(
    *,
    issuer: Issuer,
    subject_kind: str,
    granted_card_refs: Sequence[str],
    account_card: Card,
    registered_card_refs: Sequence[str] | None = None,
) -> None:
    """Check what the person consented to against the account it is for."""
    if issuer == Issuer.AMEX:
        # R13: Amex links are set up one card at a time.
        if len(granted_card_refs) != 1:
            raise errors.OneCardPerAuthorization(
                "an Amex authorization must cover exactly one card", count=len(granted_card_refs)
            )
        # R15: the account of a supplementary card takes that card, never the basic one.
        if granted_card_refs[0] != account_card.card_ref:
            raise errors.CardMismatch(
                "the card consented to is not this account's card",
                expected=account_card.masked_number,
            )
        return
    # R6: JCB links per MyJCB ID; combined login cannot merge several IDs.
    if subject_kind == "combined":
        raise errors.CombinedLoginRefused("combined login cannot be API-linked")
    # R6: authenticate with the MyJCB ID of the card this account syncs.
    if account_card.card_ref not in granted_card_refs:
        raise errors.WrongMyJcbId(
            "this MyJCB ID does not hold the account's card",
            expected=account_card.masked_number,
        )


def ensure_myjcb_id_free(subject: str, active_links: Iterable[ApiLink], *, account_id: str) -> None:
    # R6: one account per MyJCB ID.
    for link in active_links:
        if (
            link.issuer == Issuer.JCB
            and link.subject == subject
            and link.status == LinkStatus.ACTIVE
            and link.account_id != account_id
        ):
            raise errors.MyJcbIdAlreadyLinked(
                "this MyJCB ID is already linked to another account",
                office_id=link.office_id,
                account_id=link.account_id,
            )


def ensure_supplementary_registered(card: Card, registered_card_refs: Sequence[str]) -> None:
    # R15: the consent screen lists only cards registered to the online-service ID.
    if card.role == CardRole.SUPPLEMENTARY and card.card_ref not in registered_card_refs:
        raise errors.SupplementaryNotRegistered(
            "register the supplementary card to the online-service ID first",
            card=card.masked_number,
        )


def ensure_deletable(account: Account, link: ApiLink | None, *, stopped_at_issuer: bool) -> None:
    """R10/R16: an Amex API account goes only after the link is stopped on the member site.

    A link whose tokens expired is not a stopped link: the grant may still hold the card
    at Amex, so only a link known to be revoked (or confirmed stopped now) lets it go.
    """
    if account.is_deleted:
        raise errors.InvalidState("account is already deleted")
    if (
        account.issuer == Issuer.AMEX
        and link is not None
        and link.status != LinkStatus.REVOKED
        and not stopped_at_issuer
    ):
        raise errors.RevokeAtIssuerFirst(
            "stop the link on the Amex member site first", link_id=link.id
        )


def statement_belongs(card_id: str, account: Account, covered_card_ids: Iterable[str]) -> bool:
    """R15 (Amex): only the account's own card; R9 (JCB): every card the MyJCB ID covers."""
    if account.issuer == Issuer.AMEX:
        return card_id == account.card_id
    return card_id == account.card_id or card_id in set(covered_card_ids)
