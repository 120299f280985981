"""What several flows keep and show alike: an account in slots, a started consent."""

from __future__ import annotations

import datetime as dt
from typing import Any

from statemachine.flow import Turn
from statemachine.port import AccountInfo, AuthorizationStart
from statemachine.replies import Link


def account_slot(account: AccountInfo) -> dict[str, Any]:
    """What a flow keeps of an account between turns (plain JSON)."""
    card = account.card
    return {
        "id": account.id,
        "name": account.name,
        "issuer": account.issuer,
        "sync_method": account.sync_method,
        "status": account.status,
        "card_id": card.id if card else None,
        "masked_number": card.masked_number if card else "",
        "card_role": card.role if card else None,
        "eligible": card.api_eligible if card else False,
        "link_status": account.link_status,
        "last_synced_at": account.last_synced_at,
        "last_error": account.last_error,
        "consent_ends_on": account.consent_ends_on,
        "consent_expiring": account.consent_expiring,
    }


def account_label(account: dict[str, Any]) -> str:
    masked = account.get("masked_number") or ""
    return f"{account['name']} ({masked})" if masked else str(account["name"])


def store_authorization(turn: Turn, started: AuthorizationStart) -> None:
    turn.slots["authorization_url"] = started.authorization_url
    # Shown in this member's own conversation only; it opens the link in a browser that
    # is not signed in to renkei, once, for a few minutes.
    turn.slots["sign_in_code"] = started.sign_in_code
    turn.slots["auth_started_at"] = dt.datetime.now(dt.UTC).isoformat()
    turn.slots.pop("error_code", None)
    turn.slots.pop("stop_at_member_site", None)


def consent_link(turn: Turn) -> Link:
    return Link(
        url=str(turn.slots.get("authorization_url") or ""),
        label="common_flow.open_consent",
        code=str(turn.slots.get("sign_in_code") or "") or None,
    )
