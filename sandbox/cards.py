"""Changes to cards and their statements, shared by the control API, member site and demo seed."""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta

from sandbox.state import (
    PRODUCTS,
    Card,
    CardRole,
    Issuer,
    SandboxState,
)
from sandbox.statements import LedgerError

DAY = 86_400.0


class CardError(ValueError):
    """A card change the issuer would not make; the message says why."""


def default_masked_number(issuer: Issuer, card_id: str) -> str:
    """A masked number in the issuer's style, derived from the card id."""
    digits = str(int(hashlib.sha256(card_id.encode()).hexdigest(), 16))
    trailing = re.findall(r"\d+", card_id)
    if issuer == "amex":
        suffix = (trailing[-1] if trailing else digits)[-4:].rjust(4, "0")
        return f"XXXX-XXXXXX-{digits[0]}{suffix}"
    suffix = (trailing[-1] if trailing else digits)[-4:].rjust(4, "0")
    return f"XXXX-XXXX-XXXX-{suffix}"


def create_card(
    state: SandboxState,
    issuer: Issuer,
    *,
    user_id: str,
    card_id: str,
    product: str,
    holder_name: str,
    masked_number: str | None = None,
    role: CardRole = "basic",
    basic_card_id: str | None = None,
    registered: bool = True,
) -> Card:
    """Issue a card under an ID.

    Raises:
        CardError: Unknown ID or product, duplicate card id, or a bad basic card.
    """
    data = state.issuers[issuer]
    if user_id not in data.users:
        raise CardError(f"unknown user_id {user_id!r}")
    if card_id in data.cards:
        raise CardError(f"card_id {card_id!r} exists")
    if product not in PRODUCTS[issuer]:
        raise CardError(f"product {product!r} is not a {issuer} product")
    if role == "supplementary":
        basic = data.cards.get(basic_card_id or "")
        if basic is None or basic.role != "basic":
            raise CardError("a supplementary card needs the basic_card_id of a basic card")
    elif basic_card_id is not None:
        raise CardError("a basic card has no basic_card_id")
    card = Card(
        card_id=card_id,
        user_id=user_id,
        product=product,
        holder_name=holder_name,
        masked_number=masked_number or default_masked_number(issuer, card_id),
        role=role,
        basic_card_id=basic_card_id,
        registered=registered,
    )
    data.cards[card_id] = card
    return card


def set_statements(
    state: SandboxState,
    issuer: Issuer,
    card: Card,
    *,
    count: int,
    pending: int = 0,
    historical: bool = False,
    first_day: date | None = None,
    last_day: date | None = None,
) -> None:
    """Make the card have ``count`` statements, the last ``pending`` of them pending.

    New statements are used between the last existing use date (or 89 days ago)
    and today. Fewer statements than now cancels the newest ones, which must be
    pending. Confirmed statements never become pending again.

    Args:
        state: The sandbox.
        issuer: The card's issuer.
        card: The card.
        count: The number of statements the card has afterwards.
        pending: How many of the newest are pending afterwards (at most).
        historical: Seed data: the changes happened long ago, so JCB's delay is over.
        first_day: First use date of new statements (default: see above).
        last_day: Last use date of new statements (default: today).

    Raises:
        CardError: ``count`` or ``pending`` is negative, or confirmed statements
            would have to be removed.
    """
    if count < 0 or pending < 0:
        raise CardError("count and pending must not be negative")
    ledger = card.ledger
    now = state.now()
    at = now - 120 * DAY if historical else now
    seq = state.next_seq()
    live = ledger.live_count()
    if count > live:
        today = state.clock.today()
        if first_day is None:
            first_day = (
                ledger.use_date(ledger.total - 1) if ledger.total else today - timedelta(days=89)
            )
        ledger.add(count - live, seq=seq, at=at, first_day=first_day, last_day=last_day or today)
    elif count < live:
        try:
            ledger.remove_last(live - count, seq=seq, at=at)
        except LedgerError as exc:
            raise CardError(str(exc)) from exc
    boundary = ledger.boundary_for_pending(pending)
    ledger.confirm(boundary, seq=seq, at=at, visible_at=at + confirmation_delay(state, issuer))


def confirm_all(state: SandboxState, issuer: Issuer, card: Card) -> int:
    """Confirm every pending statement of the card; returns how many."""
    pending = card.ledger.pending_count()
    now = state.now()
    card.ledger.confirm(
        card.ledger.total,
        seq=state.next_seq(),
        at=now,
        visible_at=now + confirmation_delay(state, issuer),
    )
    return pending


def confirmation_delay(state: SandboxState, issuer: Issuer) -> float:
    """How long a confirmed statement stays invisible to the API (R9: JCB only)."""
    return float(state.settings.jcb_confirmation_delay) if issuer == "jcb" else 0.0


def upgrade_card(
    state: SandboxState, issuer: Issuer, card: Card, *, new_card_id: str, product: str
) -> Card:
    """Replace a card by a new one (upgrade or downgrade, R7).

    Raises:
        CardError: Not a JCB card, already replaced, or the new card is invalid.
    """
    if issuer != "jcb":
        raise CardError("card changes are simulated for JCB only (R7)")
    if card.status != "active":
        raise CardError(f"card {card.card_id!r} was already replaced")
    new_card = create_card(
        state,
        issuer,
        user_id=card.user_id,
        card_id=new_card_id,
        product=product,
        holder_name=card.holder_name,
        role=card.role,
        basic_card_id=card.basic_card_id,
    )
    card.status = "replaced"
    card.replaced_by = new_card_id
    return new_card


def next_card_id(state: SandboxState, issuer: Issuer, product: str) -> str:
    """A fresh card id in the demo's style, e.g. ``jcb-plat-5003``."""
    short = {
        "jcb_general": "jcb-general",
        "jcb_gold": "jcb-gold",
        "jcb_platinum": "jcb-plat",
        "jcb_corporate": "jcb-corp",
        "jcb_excluded": "jcb-other",
    }.get(product, product.replace("_", "-"))
    numbers = [
        int(found[-1]) for cid in state.issuers[issuer].cards if (found := re.findall(r"\d+", cid))
    ]
    return f"{short}-{max(numbers, default=5000) + 1}"
