"""The consent rules of the card page and the lifecycle of grants.

Used by the consent pages and by `POST /control/authorize`, so both follow the
same rules (R1, R5, R13, R15 for Amex; R6, R9 for JCB).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sandbox.state import (
    AMEX_API_PRODUCTS,
    AUTHORIZATION_CODE_TTL,
    DAY_SECONDS,
    AuthorizationCode,
    Card,
    Grant,
    Issuer,
    IssuerData,
    SandboxState,
    new_id,
)

GRANTED_SCOPE = "statements:read"
# RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is always 43 characters.
S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")


class ConsentError(Exception):
    """The card page refuses a choice; ``message`` is shown to the person."""

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message)
        self.message = message
        self.rule = rule


@dataclass(frozen=True)
class CardChoice:
    """A card as the card page shows it."""

    card: Card
    selectable: bool
    reason: str | None = None


def card_choices(
    state: SandboxState, issuer: Issuer, client_id: str, user_id: str
) -> list[CardChoice]:
    """The cards the card page lists for a login, and which can be chosen.

    Args:
        state: The sandbox.
        issuer: The issuer whose page this is.
        client_id: The client asking for consent.
        user_id: The logged-in ID.

    Returns:
        One choice per card registered to the ID (R15): an Amex card is
        selectable unless it is not API-eligible (R1) or already linked to this
        client by an active grant (R5); JCB cards are informational (R9).
    """
    data = state.issuers[issuer]
    choices: list[CardChoice] = []
    # R15: only cards registered to the logged-in ID are listed at all.
    for card in data.login_cards(user_id):
        if issuer == "amex":
            choices.append(_amex_choice(state, data, client_id, card))
        elif card.product == "jcb_excluded":
            # R1: MyJCB cannot take this card, so the link cannot cover it.
            choices.append(CardChoice(card, False, "このカードは API 連携の対象外です。"))
        elif card.status != "active":
            choices.append(
                CardChoice(card, False, "切替済みのカードです。明細は新しいカードで連携されます。")
            )
        else:
            choices.append(CardChoice(card, True))
    return choices


def _amex_choice(state: SandboxState, data: IssuerData, client_id: str, card: Card) -> CardChoice:
    if card.product not in AMEX_API_PRODUCTS:
        # R1: only the business cards can be API-linked.
        return CardChoice(card, False, "このカードは API 連携の対象外です。")
    holder = data.active_grant_holding(client_id, card.card_id)
    notice_days = state.settings.of("amex").expiring_notice_days
    if holder is not None and holder.in_renewal_window(state.now(), notice_days):
        # A consent near its end is given again in place: the new grant takes over
        # the card when its code is exchanged (`supersede`), nothing to stop first.
        return CardChoice(card, True)
    if holder is not None:
        # R5/R10: the existing link must be stopped on the member site first.
        client = state.clients.get(client_id)
        name = client.name if client else client_id
        return CardChoice(
            card,
            False,
            f"このカードはすでに {name} と連携しています。"
            "会員サイトの「登録情報の変更」→「外部サービスとの連携」で連携を停止してから、"
            "もう一度お試しください。",
        )
    return CardChoice(card, True)


def select_cards(
    state: SandboxState, issuer: Issuer, client_id: str, user_id: str, posted: list[str]
) -> list[str]:
    """Check the cards posted on the card page; returns the grant's card ids.

    Raises:
        ConsentError: The choice breaks R13, R15, R1 or R5.
    """
    if issuer == "jcb":
        # R9: the JCB grant follows every card of the ID; there is nothing to choose.
        return []
    chosen = sorted(set(posted))
    if len(chosen) != 1:
        # R13: one Amex card per procedure.
        raise ConsentError(
            "連携するカードを 1 枚だけ選んでください。"
            "複数のカードを連携するには、カードごとに手続きしてください。",
            rule="R13",
        )
    choices = {c.card.card_id: c for c in card_choices(state, issuer, client_id, user_id)}
    choice = choices.get(chosen[0])
    if choice is None:
        raise ConsentError(
            "このカードはこの ID に登録されていません。"
            "追加カードは先にオンライン・サービスの ID に登録してください。",
            rule="R15",
        )
    if not choice.selectable:
        raise ConsentError(choice.reason or "このカードは選べません。", rule="R5")
    return chosen


def issue_code(
    state: SandboxState,
    issuer: Issuer,
    *,
    client_id: str,
    redirect_uri: str,
    code_challenge: str,
    user_id: str,
    card_ids: list[str],
    lifetime_days: int | None = None,
) -> str:
    """Record the consent as a pending grant and issue a 60-second code for it.

    ``lifetime_days`` overrides the issuer's consent lifetime for this grant alone.
    """
    data = state.issuers[issuer]
    combined = issuer == "jcb" and bool(data.users[user_id].combined_of)
    lifetime = (
        state.settings.of(issuer).consent_lifetime_days if lifetime_days is None else lifetime_days
    )
    grant = Grant(
        grant_id=new_id("grant"),
        issuer=issuer,
        client_id=client_id,
        subject=user_id,
        # R6: reported as combined; the client decides whether it accepts that.
        subject_kind="combined" if combined else "single",
        card_ids=list(card_ids),
        scope=GRANTED_SCOPE,
        user_ids=data.login_user_ids(user_id) if issuer == "jcb" else [],
        created_at=state.now(),
        expires_at=state.now() + lifetime * DAY_SECONDS if lifetime > 0 else None,
    )
    data.grants[grant.grant_id] = grant
    code = new_id("code", 24)
    data.codes[code] = AuthorizationCode(
        code=code,
        client_id=client_id,
        redirect_uri=redirect_uri,
        code_challenge=code_challenge,
        grant_id=grant.grant_id,
        expires_at=state.now() + AUTHORIZATION_CODE_TTL,
    )
    return code


def renewed_grants(state: SandboxState, issuer: Issuer, grant: Grant) -> list[Grant]:
    """The active grants a new consent renews: same client and ID, near their end.

    For Amex they also share the card; a JCB grant follows the ID (R9).
    """
    notice_days = state.settings.of(issuer).expiring_notice_days
    return [
        other
        for other in state.issuers[issuer].grants.values()
        if other.grant_id != grant.grant_id
        and other.status == "active"
        and other.client_id == grant.client_id
        and other.subject == grant.subject
        and (issuer == "jcb" or set(other.card_ids) == set(grant.card_ids))
        and other.in_renewal_window(state.now(), notice_days)
    ]


def stop_grant(state: SandboxState, issuer: Issuer, grant: Grant, *, by: str) -> bool:
    """Stop a grant and revoke its tokens; returns whether it was running.

    Args:
        state: The sandbox.
        issuer: The grant's issuer.
        grant: The grant.
        by: Who stopped it: ``member_site``, ``control``, ``revocation``, ``expired``
            (its consent ended) or ``renewed`` (a new consent took its place).
    """
    if grant.status == "stopped":
        return False
    grant.status = "stopped"
    grant.stopped_at = state.now()
    grant.stopped_by = by
    revoke_grant_tokens(state.issuers[issuer], grant.grant_id)
    return True


def revoke_grant_tokens(data: IssuerData, grant_id: str) -> None:
    """Revoke every token issued under a grant (the grant itself stays as it is)."""
    for access in data.access_tokens.values():
        if access.grant_id == grant_id:
            access.revoked = True
    for refresh in data.refresh_tokens.values():
        if refresh.grant_id == grant_id:
            refresh.revoked = True
