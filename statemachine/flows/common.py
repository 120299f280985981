"""Steps several flows share: consent at the issuer, its outcome, the first sync."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from typing import Any

from transitions import EventData

from statemachine.flow import Step, Turn, turn_of
from statemachine.port import AccountInfo, AuthorizationStart, EventInfo
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
    }


def account_label(account: dict[str, Any]) -> str:
    masked = account.get("masked_number") or ""
    return f"{account['name']} ({masked})" if masked else str(account["name"])


# The callback refused the consent before anything was exchanged: it was finished in a
# browser that did not start it, or the answer did not come from the issuer it was
# started with. Each flow words these like its own refusals (refusal.<code>).
BINDING_REFUSALS = frozenset({"not_started_here", "issuer_mismatch"})


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


def _after(event: EventInfo, since: str | None) -> bool:
    if not since:
        return True
    try:
        return dt.datetime.fromisoformat(event.created_at) >= dt.datetime.fromisoformat(since)
    except ValueError:
        return True


async def _newest(turn: Turn, types: set[str]) -> EventInfo | None:
    account_id = str(turn.slots.get("account_id") or "")
    since = turn.slots.get("auth_started_at")
    for event in await turn.backend.events(account_id, limit=50):  # newest first
        if event.type in types and _after(event, since):
            return event
    return None


async def link_is_active(event: EventData) -> bool:
    """The person says they finished at the issuer: has the link arrived?"""
    turn = turn_of(event)
    newest = await _newest(turn, {"link.created", "authorization.failed"})
    return newest is not None and newest.type == "link.created"


async def authorization_failed(event: EventData) -> bool:
    """The consent came back refused; keep the reason (an event's, or the newest one's)."""
    turn = turn_of(event)
    payload = event.kwargs.get("payload")
    if isinstance(payload, dict) and payload.get("error_code"):
        turn.slots["error_code"] = str(payload["error_code"])
        turn.slots["stop_at_member_site"] = bool(payload.get("stop_at_member_site"))
        return True
    newest = await _newest(turn, {"link.created", "authorization.failed"})
    if newest is None or newest.type != "authorization.failed":
        return False
    turn.slots["error_code"] = str(newest.payload.get("error_code") or "unknown")
    turn.slots["stop_at_member_site"] = bool(newest.payload.get("stop_at_member_site"))
    return True


async def store_sync_result(event: EventData) -> bool:
    turn = turn_of(event)
    payload = event.kwargs.get("payload")
    turn.slots["added"] = int(payload.get("added", 0)) if isinstance(payload, dict) else 0
    return True


async def first_sync_result(event: EventData) -> bool:
    """The person asks whether the first sync is done: the newest sync event says."""
    turn = turn_of(event)
    newest = await _newest(turn, {"sync.completed"})
    if newest is None:
        return False
    turn.slots["added"] = int(newest.payload.get("added", 0))
    return True


# Back-end events of a card being linked, as every linking flow names its triggers.
LINKING_EVENTS: dict[str, str] = {
    "link.created": "authorized",
    "authorization.failed": "authorization_failed",
    "sync.completed": "synced",
    "sync.failed": "sync_failed",
}


def consent_transitions(again: Step) -> list[dict[str, Any]]:
    """consent → linked, or → failed and ``again`` back to consent (states of those names).

    The issuer's answer arrives as a back-end event; "check" asks for it by hand.
    """
    return [
        {"trigger": "authorized", "source": "consent", "dest": "linked"},
        {"trigger": "check", "source": "consent", "dest": "linked", "conditions": [link_is_active]},
        {
            "trigger": "authorization_failed",
            "source": "consent",
            "dest": "failed",
            "conditions": [authorization_failed],
        },
        {
            "trigger": "check",
            "source": "consent",
            "dest": "failed",
            "conditions": [authorization_failed],
        },
        {"trigger": "again", "source": "failed", "dest": "consent", "conditions": [again]},
    ]


def first_sync_transitions(done: str = "done") -> list[dict[str, Any]]:
    """linked → ``done`` once the first sync reports (by event, or asked by hand)."""
    return [
        {
            "trigger": "synced",
            "source": ["linked", "sync_failed"],
            "dest": done,
            "conditions": [store_sync_result],
        },
        {
            "trigger": "check",
            "source": ["linked", "sync_failed"],
            "dest": done,
            "conditions": [first_sync_result],
        },
        {"trigger": "sync_failed", "source": "linked", "dest": "sync_failed"},
    ]


async def begin_consent(turn: Turn, call: Awaitable[AuthorizationStart]) -> bool:
    """Start an authorization at the issuer; a refusal stays on the turn for the branches."""
    started = await turn.attempt(call)
    if started is None:
        return False
    store_authorization(turn, started)
    return True


async def authorize_again(event: EventData) -> bool:
    """Consent again for the same account (renewed in place, never a second account)."""
    turn = turn_of(event)
    account_id = str(turn.slots["account_id"])
    return await begin_consent(
        turn, turn.backend.reauthorize(account_id, return_url=turn.return_url)
    )


async def switch_again(event: EventData) -> bool:
    """Start the switch of the same account again (R12, in place)."""
    turn = turn_of(event)
    account_id = str(turn.slots["account_id"])
    return await begin_consent(
        turn, turn.backend.switch_to_api(account_id, return_url=turn.return_url)
    )
