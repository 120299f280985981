"""status: why statements are missing — last sync, link state, JCB's delay (R9), re-sync now."""

from __future__ import annotations

from typing import Any

from transitions import EventData

from statemachine.flow import (
    FlowDefinition,
    State,
    Turn,
    choice,
    data_choice,
    turn_of,
    value_of,
)
from statemachine.flows.common import (
    account_label,
    account_slot,
    authorization_failed,
    authorize_again,
    consent_link,
    link_is_active,
)

ID = "status"


async def start(turn: Turn) -> None:
    assert turn.office_id is not None
    accounts = await turn.backend.accounts(turn.office_id)
    turn.slots["accounts"] = [account_slot(a) for a in accounts]
    if not accounts:
        turn.state = "no_accounts"


async def load_status(event: EventData) -> bool:
    turn = turn_of(event)
    account_id = value_of(event) or str(turn.slots.get("account_id") or "")
    if not account_id:
        return False
    account = await turn.attempt(turn.backend.account(account_id))
    if account is None:
        return False
    turn.slots["account_id"] = account_id
    turn.slots["account"] = account_slot(account)
    return True


async def resync(event: EventData) -> bool:
    turn = turn_of(event)
    result = await turn.attempt(turn.backend.sync_now(str(turn.slots["account_id"])))
    if result is None:
        return False
    turn.slots["sync"] = {
        "status": result.status,
        "added": result.added,
        "modified": result.modified,
        "error_code": result.error_code,
    }
    account = await turn.backend.account(str(turn.slots["account_id"]))
    turn.slots["account"] = account_slot(account)
    return True


def prompt_choose(turn: Turn) -> None:
    accounts: list[dict[str, Any]] = turn.slots.get("accounts", [])
    turn.say(
        f"{ID}.choose_account",
        *[data_choice(f"pick:{a['id']}", account_label(a)) for a in accounts],
    )


def _explain(turn: Turn, account: dict[str, Any]) -> None:
    synced = account.get("last_synced_at") or "-"
    turn.say(
        f"{ID}.summary",
        account=account.get("name", ""),
        method=account.get("sync_method", ""),
        status=account.get("status", ""),
        synced=synced,
    )
    if account.get("last_error"):
        turn.say(f"{ID}.last_error", error=account["last_error"])
    if account.get("status") == "needs_reauth":
        turn.say(f"{ID}.needs_reauth")
    if account.get("issuer") == "jcb" and account.get("sync_method") == "api":
        turn.say(f"{ID}.jcb_delay")  # R9
    if account.get("sync_method") == "legacy":
        turn.say(f"{ID}.legacy_hint")


def _actions(account: dict[str, Any]) -> list[Any]:
    actions = [choice("resync", f"{ID}.resync")]
    if account.get("status") == "needs_reauth" and account.get("sync_method") == "api":
        actions.insert(0, choice("reauth", f"{ID}.reauth"))
    actions += [choice("other", f"{ID}.other"), choice("done", f"{ID}.finish")]
    return actions


def prompt_show(turn: Turn) -> None:
    account: dict[str, Any] = turn.slots.get("account", {})
    _explain(turn, account)
    turn.say(f"{ID}.what_next", *_actions(account))


def prompt_resynced(turn: Turn) -> None:
    sync: dict[str, Any] = turn.slots.get("sync", {})
    account: dict[str, Any] = turn.slots.get("account", {})
    if sync.get("status") == "succeeded":
        turn.say(f"{ID}.resync_done", added=sync.get("added", 0), modified=sync.get("modified", 0))
    elif sync.get("status") == "already_running":
        turn.say(f"{ID}.resync_running")
    elif sync.get("status") == "skipped":
        turn.say(f"{ID}.resync_skipped")
    else:
        turn.say(f"{ID}.resync_failed", error=sync.get("error_code") or "")
    if account.get("status") == "needs_reauth":
        turn.say(f"{ID}.needs_reauth")
    if account.get("issuer") == "jcb" and account.get("sync_method") == "api":
        turn.say(f"{ID}.jcb_delay")  # R9
    turn.say(f"{ID}.what_next", *_actions(account))


def prompt_reauth(turn: Turn) -> None:
    turn.say(f"{ID}.reauth_consent", choice("check", "common_flow.check"), link=consent_link(turn))


def prompt_reauth_failed(turn: Turn) -> None:
    code = str(turn.slots.get("error_code") or "unknown")
    turn.say(f"refusal.{code}", code=code)
    if turn.slots.get("stop_at_member_site"):
        turn.say("common_flow.stop_leftover")
    turn.say(f"{ID}.reauth_again", choice("again", "common_flow.try_again"))


def prompt_reauthorized(turn: Turn) -> None:
    turn.say(f"{ID}.reauthorized")


def prompt_finished(turn: Turn) -> None:
    turn.say(f"{ID}.finished")


def prompt_no_accounts(turn: Turn) -> None:
    turn.say(f"{ID}.no_accounts")


FLOW = FlowDefinition(
    id=ID,
    initial="choose_account",
    start=start,
    states=[
        State("choose_account", prompt_choose),
        State("show_status", prompt_show),
        State("resynced", prompt_resynced),
        State("reauth_consent", prompt_reauth, waits_for="account_id"),
        State("reauth_failed", prompt_reauth_failed),
        State("reauthorized", prompt_reauthorized, final=True),
        State("finished", prompt_finished, final=True),
        State("no_accounts", prompt_no_accounts, final=True),
    ],
    transitions=[
        {
            "trigger": "pick",
            "source": "choose_account",
            "dest": "show_status",
            "conditions": [load_status],
        },
        {
            "trigger": "resync",
            "source": ["show_status", "resynced"],
            "dest": "resynced",
            "conditions": [resync],
        },
        {
            "trigger": "reauth",
            "source": ["show_status", "resynced"],
            "dest": "reauth_consent",
            "conditions": [authorize_again],
        },
        {"trigger": "authorized", "source": "reauth_consent", "dest": "reauthorized"},
        {
            "trigger": "check",
            "source": "reauth_consent",
            "dest": "reauthorized",
            "conditions": [link_is_active],
        },
        {
            "trigger": "authorization_failed",
            "source": "reauth_consent",
            "dest": "reauth_failed",
            "conditions": [authorization_failed],
        },
        {
            "trigger": "check",
            "source": "reauth_consent",
            "dest": "reauth_failed",
            "conditions": [authorization_failed],
        },
        {
            "trigger": "again",
            "source": "reauth_failed",
            "dest": "reauth_consent",
            "conditions": [authorize_again],
        },
        {"trigger": "other", "source": ["show_status", "resynced"], "dest": "choose_account"},
        {"trigger": "done", "source": ["show_status", "resynced"], "dest": "finished"},
    ],
    event_triggers={"link.created": "authorized", "authorization.failed": "authorization_failed"},
)
