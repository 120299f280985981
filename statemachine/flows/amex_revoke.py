"""amex_revoke: deleting an Amex account, the API link stopped at Amex first (R10, R16).

choose_account → (API link held at Amex) stop_at_amex: the warning (R10) and the member-site
path 登録情報の変更 → 外部サービスとの連携 → renkei → 停止する (R16) → ready, once the back end
knows the link is stopped: the issuer's link.revoked webhook moves the step by itself, or the
person says they stopped it and the back end asks Amex while deleting (refused with
revoke_at_issuer_first while the link is still active: the step stays) → deleted (the card is
free to link elsewhere, R16). A legacy account (R10 is about API links) → legacy → deleted at
once. The statements export is offered at every step before the delete.
"""

from __future__ import annotations

from typing import Any

from transitions import EventData

from statemachine.flow import (
    FlowDefinition,
    State,
    Turn,
    choice,
    data_choice,
    slot_is,
    turn_of,
    value_of,
)
from statemachine.flows.common import account_label, account_slot
from statemachine.port import AccountInfo
from statemachine.replies import Link

ID = "amex_revoke"

# Link states after which Amex no longer holds the card for this account (R16).
LINK_GONE = (None, "revoked")


def _deletable(account: AccountInfo) -> bool:
    return account.issuer == "amex" and account.status != "deleted"


async def start(turn: Turn) -> None:
    assert turn.office_id is not None
    accounts = [a for a in await turn.backend.accounts(turn.office_id) if _deletable(a)]
    turn.slots["accounts"] = [account_slot(a) for a in accounts]
    amex = (await turn.backend.issuer_sites()).get("amex")
    member_site = amex.member_site_url if amex else ""
    turn.slots["services_url"] = (amex.external_services_url if amex else None) or member_site
    if not accounts:
        turn.state = "no_accounts"


def _route(account: dict[str, Any]) -> str:
    if account["sync_method"] != "api":
        return "legacy"  # R10 is about API links: an ID/password account holds nothing at Amex
    if account.get("link_status") in LINK_GONE:
        return "ready"
    return "stop"  # active, or expired tokens whose grant may still hold the card (R10)


# ----------------------------------------------------------------------- steps
async def pick_account(event: EventData) -> bool:
    """The account as the back end has it now (its link may have changed since listed)."""
    turn = turn_of(event)
    turn.slots.pop("route", None)
    account_id = value_of(event)
    if not any(a["id"] == account_id for a in turn.slots.get("accounts", [])):
        return False
    account = await turn.attempt(turn.backend.account(account_id))
    if account is None:
        return False
    turn.slots["account_id"] = account_id
    turn.slots["account"] = account_slot(account)
    for stale in ("export_url", "still_active", "deleted"):
        turn.slots.pop(stale, None)
    turn.slots["route"] = _route(turn.slots["account"])
    return bool(turn.slots["route"] == "stop")


async def link_revoked(event: EventData) -> bool:
    """Amex's link.revoked webhook reached the back end: the stop is verified."""
    turn = turn_of(event)
    account = await turn.backend.account(str(turn.slots["account_id"]))
    turn.slots["account"] = account_slot(account)
    turn.slots.pop("export_url", None)  # it may have expired while waiting: a fresh one on request
    return account.link_status in LINK_GONE


async def stopped_by_person(event: EventData) -> bool:
    """The person says they stopped it: the back end asks Amex now (R16). Only a link
    Amex no longer holds lets the flow go on; nothing is deleted before they confirm."""
    turn = turn_of(event)
    account_id = str(turn.slots["account_id"])
    status = await turn.attempt(turn.backend.check_link(account_id))
    if status is None:
        return False
    if status == "active":
        turn.slots["still_active"] = True  # R10: still registered at Amex
        turn.say("refusal.revoke_at_issuer_first")
        return False
    account = await turn.backend.account(account_id)
    turn.slots["account"] = account_slot(account)
    turn.slots.pop("still_active", None)
    turn.slots.pop("export_url", None)
    return True


async def export(event: EventData) -> bool:
    """A short-lived download link of the account's statements, before they are needed."""
    turn = turn_of(event)
    url = await turn.attempt(turn.backend.export_link(str(turn.slots["account_id"])))
    if url is None:
        return False
    turn.slots["export_url"] = str(url)
    return True


async def delete(event: EventData) -> bool:
    turn = turn_of(event)
    await turn.attempt(turn.backend.delete_account(str(turn.slots["account_id"])))
    if turn.refusal is not None:
        return False
    turn.slots["deleted"] = True
    return True


# ----------------------------------------------------------------------- prompts
def _name(turn: Turn) -> str:
    return str(turn.slots.get("account", {}).get("name", ""))


def _export_reply(turn: Turn) -> None:
    url = turn.slots.get("export_url")
    if url:
        turn.say(f"{ID}.export_ready", link=Link(url=str(url), label=f"{ID}.download"))


def prompt_choose_account(turn: Turn) -> None:
    accounts: list[dict[str, Any]] = turn.slots.get("accounts", [])
    turn.say(
        f"{ID}.choose_account",
        *[data_choice(f"pick:{a['id']}", account_label(a)) for a in accounts],
    )


def prompt_stop_at_amex(turn: Turn) -> None:
    if not turn.slots.get("still_active"):
        turn.say(f"{ID}.warning", account=_name(turn))  # R10
    services = Link(url=str(turn.slots.get("services_url") or ""), label=f"{ID}.open_services")
    turn.say(
        f"{ID}.member_site_path",
        link=services,
        card=turn.slots.get("account", {}).get("masked_number", ""),
    )  # R16
    _export_reply(turn)
    turn.say(
        f"{ID}.waiting",
        choice("stopped", f"{ID}.stopped"),
        choice("export", f"{ID}.export"),
    )


def prompt_legacy(turn: Turn) -> None:
    turn.say(f"{ID}.legacy", account=_name(turn))
    _export_reply(turn)
    turn.say(
        f"{ID}.confirm_delete",
        choice("export", f"{ID}.export"),
        choice("delete", f"{ID}.delete"),
        account=_name(turn),
    )


def prompt_ready(turn: Turn) -> None:
    linked = turn.slots.get("account", {}).get("link_status") == "revoked"
    turn.say(f"{ID}.verified" if linked else f"{ID}.no_link", account=_name(turn))
    _export_reply(turn)
    turn.say(
        f"{ID}.confirm_delete",
        choice("export", f"{ID}.export"),
        choice("delete", f"{ID}.delete"),
        account=_name(turn),
    )


def prompt_deleted(turn: Turn) -> None:
    account = turn.slots.get("account", {})
    if account.get("sync_method") == "api":
        turn.say(f"{ID}.deleted_api", account=_name(turn), card=account.get("masked_number", ""))
    else:
        turn.say(f"{ID}.deleted_legacy", account=_name(turn))


def prompt_no_accounts(turn: Turn) -> None:
    turn.say(f"{ID}.no_accounts")


FLOW = FlowDefinition(
    id=ID,
    initial="choose_account",
    start=start,
    states=[
        State("choose_account", prompt_choose_account),
        State("stop_at_amex", prompt_stop_at_amex, waits_for="account_id"),
        State("legacy", prompt_legacy),
        State("ready", prompt_ready),
        State("deleted", prompt_deleted, final=True),
        State("no_accounts", prompt_no_accounts, final=True),
    ],
    transitions=[
        # One back-end call per trigger, in the first transition; the others read its result.
        {
            "trigger": "pick",
            "source": "choose_account",
            "dest": "stop_at_amex",
            "conditions": [pick_account],
        },
        {
            "trigger": "pick",
            "source": "choose_account",
            "dest": "legacy",
            "conditions": [slot_is("route", "legacy")],
        },
        {
            "trigger": "pick",
            "source": "choose_account",
            "dest": "ready",
            "conditions": [slot_is("route", "ready")],
        },
        {
            "trigger": "revoked",
            "source": "stop_at_amex",
            "dest": "ready",
            "conditions": [link_revoked],
        },
        {
            "trigger": "stopped",
            "source": "stop_at_amex",
            "dest": "ready",
            "conditions": [stopped_by_person],
        },
        {
            "trigger": "export",
            "source": ["stop_at_amex", "legacy", "ready"],
            "dest": "=",
            "conditions": [export],
        },
        {
            "trigger": "delete",
            "source": ["legacy", "ready"],
            "dest": "deleted",
            "conditions": [delete],
        },
    ],
    event_triggers={"link.revoked": "revoked"},
)
