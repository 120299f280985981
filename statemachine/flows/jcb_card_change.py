"""jcb_card_change: after a JCB upgrade or downgrade, the old card's statements (R7, R9).

choose_account → changed (the back end's ``card.changed`` event; if none yet:
no_change → sync now → look again, or the event arrives by itself) → one of the
three ways of R7, each carried out by the back end:

- (a) ask_file → the old card's MyJCB CSV uploaded → recovered
  (an unreadable file, another issuer's, or the new card's file → file_refused,
  saying which, and asked again; nothing of a refused file is stored);
- (b) ask_login_id → ask_password → the old card's credentials and a resync → recovered;
- (c) ask_login_id → ask_password → a new account for the old card → recovered.

A wrong ID or password → login_refused (asked again); another refusal →
recovery_refused. From recovered the person may take another way, or finish.
The password is typed in a secret step and used in that same transition: it is
never kept in slots, history or transcript; the ID is dropped once used.
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
    refused,
    turn_of,
    value_of,
)
from statemachine.flows.common import account_label, account_slot
from statemachine.port import AccountInfo, BackendRefusal, EventInfo

ID = "jcb_card_change"
WAYS = ("resync", "new_account")
FILE_REFUSALS = ("statement_file_invalid", "card_mismatch", "invalid_request")
NAME_LIMIT = 100


def _jcb(account: AccountInfo) -> bool:
    return account.issuer == "jcb" and account.status not in ("deleted", "disabled")


async def _jcb_accounts(turn: Turn) -> list[dict[str, Any]]:
    assert turn.office_id is not None
    return [account_slot(a) for a in await turn.backend.accounts(turn.office_id) if _jcb(a)]


async def start(turn: Turn) -> None:
    turn.slots["accounts"] = await _jcb_accounts(turn)
    if not turn.slots["accounts"]:
        turn.state = "no_jcb_accounts"


def _keep_change(turn: Turn, event: EventInfo | dict[str, Any]) -> None:
    payload = event.payload if isinstance(event, EventInfo) else event
    account: dict[str, Any] = turn.slots.get("account", {})
    turn.slots["change"] = {
        "old_card_id": str(payload.get("old_card_id") or ""),
        "new_card_id": str(payload.get("new_card_id") or ""),
        "old_card": str(payload.get("old_card") or ""),
        "new_card": str(account.get("masked_number") or ""),
    }


async def _look_for_change(turn: Turn) -> bool:
    """R7: the back end records ``card.changed`` when a sync sees the card replaced."""
    turn.slots.pop("change", None)
    account_id = str(turn.slots.get("account_id") or "")
    for event in await turn.backend.events(account_id, limit=50):  # newest first
        if event.type == "card.changed":
            _keep_change(turn, event)
            return True
    return False


async def _refresh_account(turn: Turn) -> None:
    """The account now follows the new card (R7): show its number, when it can be read."""
    try:
        account = await turn.backend.account(str(turn.slots["account_id"]))
    except BackendRefusal:
        return  # the account as it was loaded still names it
    turn.slots["account"] = account_slot(account)


# ----------------------------------------------------------------------- steps
async def pick_account(event: EventData) -> bool:
    """Load the chosen account and look for its card change; True when one is recorded."""
    turn = turn_of(event)
    account_id = value_of(event)
    turn.slots.pop("account_id", None)
    turn.slots.pop("synced", None)
    if not any(a["id"] == account_id for a in turn.slots.get("accounts", [])):
        return False
    account = await turn.attempt(turn.backend.account(account_id))
    if account is None:
        return False
    turn.slots["account_id"] = account_id
    turn.slots["account"] = account_slot(account)
    return await _look_for_change(turn)


async def account_picked(event: EventData) -> bool:
    """The account was loaded this turn, but no card change is recorded for it yet."""
    turn = turn_of(event)
    return turn.refusal is None and turn.slots.get("account_id") == value_of(event)


async def sync_and_look(event: EventData) -> bool:
    """Sync now, so that the back end sees the replaced card, then look again (R7)."""
    turn = turn_of(event)
    account_id = str(turn.slots["account_id"])
    result = await turn.attempt(turn.backend.sync_now(account_id))
    if result is None:
        return False
    turn.slots["synced"] = {"status": result.status, "error_code": result.error_code or ""}
    await _refresh_account(turn)
    return await _look_for_change(turn)


async def synced_without_change(event: EventData) -> bool:
    turn = turn_of(event)
    return turn.refusal is None and "synced" in turn.slots


async def change_from_event(event: EventData) -> bool:
    """A sync in the background saw the change: its event carries what we need."""
    turn = turn_of(event)
    payload = event.kwargs.get("payload")
    if isinstance(payload, dict) and payload.get("old_card_id"):
        await _refresh_account(turn)
        _keep_change(turn, payload)
        return True
    return await _look_for_change(turn)


async def choose_way(event: EventData) -> bool:
    turn = turn_of(event)
    way = value_of(event)
    if way not in WAYS:
        return False
    turn.slots["way"] = way
    return True


async def upload_file(event: EventData) -> bool:
    """R7 (a): the old card's statement file, imported by the back end for the old card."""
    turn = turn_of(event)
    data = event.kwargs.get("data")
    if not isinstance(data, bytes):
        return False
    name = value_of(event) or "statements.csv"
    result = await turn.attempt(
        turn.backend.upload_statements(
            str(turn.slots["account_id"]),
            name,
            data,
            card_id=str(turn.slots["change"]["old_card_id"]),
        )
    )
    turn.slots.pop("file_error", None)
    if result is None:
        return False
    turn.slots["result"] = {
        "way": "upload",
        "file": name,
        "added": result.added,
        "duplicates": result.duplicates,
        "adjustments": result.adjustments,
    }
    return True


async def file_refused(event: EventData) -> bool:
    """The file was refused: keep why (and the line, if the back end named one)."""
    turn = turn_of(event)
    refusal = turn.refusal
    if refusal is None or refusal.code not in FILE_REFUSALS:
        return False
    line = refusal.details.get("line")
    rows = refusal.details.get("rows")
    turn.slots["file_error"] = {
        "code": refusal.code,
        # What the back end found: another issuer's file, or another card's rows.
        "reason": str(refusal.details.get("reason") or refusal.details.get("code") or ""),
        "card": str(refusal.details.get("card") or ""),
        "rows": rows if isinstance(rows, int) else 0,
        "line": line if isinstance(line, int) else None,
        "file": value_of(event),
    }
    return True


async def keep_login_id(event: EventData) -> bool:
    """The old card's MyJCB ID, kept only until the password step uses it."""
    turn = turn_of(event)
    login_id = value_of(event).strip()
    if not login_id:
        return False
    turn.slots["login_id"] = login_id
    return True


def _new_account_name(turn: Turn) -> str:
    account: dict[str, Any] = turn.slots.get("account", {})
    old_card = str(turn.slots.get("change", {}).get("old_card") or "")
    return f"{account.get('name', '')} {old_card}".strip()[:NAME_LIMIT]


async def recover_with_credentials(event: EventData) -> bool:
    """R7 (b) or (c) with the old card's credentials.

    The password lives only in this call: it is never put in slots (which are saved,
    and copied into the step history), and the ID is dropped here whatever happens.
    """
    turn = turn_of(event)
    password = value_of(event)
    login_id = str(turn.slots.pop("login_id", "") or "")
    account_id = str(turn.slots["account_id"])
    if not login_id or not password:
        return False
    if turn.slots.get("way") == "new_account":
        created = await turn.attempt(
            turn.backend.new_account_for_old_card(
                account_id, login_id, password, _new_account_name(turn)
            )
        )
        if created is None:
            return False
        turn.slots["result"] = {
            "way": "new_account",
            "account": created.name,
            "masked_number": created.card.masked_number if created.card else "",
        }
        return True
    result = await turn.attempt(turn.backend.resync_old_card(account_id, login_id, password))
    if result is None:
        return False
    turn.slots["result"] = {
        "way": "resync",
        "added": result.added,
        "duplicates": result.duplicates,
    }
    return True


async def keep_refusal(event: EventData) -> bool:
    turn = turn_of(event)
    if turn.refusal is None:
        return False
    turn.slots["refusal"] = {"code": turn.refusal.code}
    return True


async def reload_accounts(event: EventData) -> bool:
    turn = turn_of(event)
    turn.slots["accounts"] = await _jcb_accounts(turn)
    return True


# ----------------------------------------------------------------------- prompts
def prompt_choose_account(turn: Turn) -> None:
    accounts: list[dict[str, Any]] = turn.slots.get("accounts", [])
    buttons = [data_choice(f"pick:{a['id']}", account_label(a)) for a in accounts]
    turn.say(f"{ID}.choose_account", *buttons)


def prompt_no_change(turn: Turn) -> None:
    account: dict[str, Any] = turn.slots.get("account", {})
    synced: dict[str, Any] | None = turn.slots.get("synced")
    if synced is None:
        turn.say(f"{ID}.no_change", account=account.get("name", ""))
    elif synced.get("status") == "succeeded":
        turn.say(f"{ID}.synced_no_change", account=account.get("name", ""))
    else:
        turn.say(f"{ID}.sync_not_done", error=synced.get("error_code") or synced.get("status"))
    turn.say(
        f"{ID}.offer_sync",
        choice("sync", f"{ID}.sync_now"),
        choice("other", f"{ID}.other_account"),
        choice("finish", f"{ID}.finish"),
    )


def _ways() -> list[Any]:
    return [
        choice("upload", f"{ID}.way_upload"),
        choice("way:resync", f"{ID}.way_resync"),
        choice("way:new_account", f"{ID}.way_new_account"),
        choice("finish", f"{ID}.finish"),
    ]


def prompt_changed(turn: Turn) -> None:
    change: dict[str, Any] = turn.slots.get("change", {})
    account: dict[str, Any] = turn.slots.get("account", {})
    turn.say(
        f"{ID}.changed",
        account=account.get("name", ""),
        old_card=change.get("old_card", ""),
        new_card=change.get("new_card", ""),
    )
    turn.say(f"{ID}.only_new_card")  # R7
    turn.say(f"{ID}.api_delay")  # R9
    turn.say(f"{ID}.choose_way", *_ways())


def prompt_ask_file(turn: Turn) -> None:
    change: dict[str, Any] = turn.slots.get("change", {})
    turn.say(f"{ID}.ask_file", old_card=change.get("old_card", ""))


def prompt_file_refused(turn: Turn) -> None:
    error: dict[str, Any] = turn.slots.get("file_error", {})
    change: dict[str, Any] = turn.slots.get("change", {})
    code, reason = error.get("code"), error.get("reason")
    if code == "card_mismatch" and reason == "rows_of_another_card":
        # The new card's file in the old card's step: its rows are already here on the
        # other card, and storing them again would double each one (R7).
        turn.say(
            f"{ID}.file_of_other_card",
            file=error.get("file", ""),
            card=error.get("card", ""),
            rows=error.get("rows", 0),
            old_card=change.get("old_card", ""),
        )
    elif reason == "statement_file_wrong_issuer":
        turn.say(f"{ID}.file_other_issuer", file=error.get("file", ""))
    elif reason == "statement_file_empty":
        turn.say(f"{ID}.file_empty", file=error.get("file", ""))
    elif code == "statement_file_invalid" and error.get("line") is not None:
        turn.say(f"{ID}.file_invalid_line", line=error["line"], file=error.get("file", ""))
    elif code == "statement_file_invalid":
        turn.say(f"{ID}.file_invalid", file=error.get("file", ""))
    elif code == "card_mismatch":
        turn.say(f"{ID}.file_not_old_card", file=error.get("file", ""))
    else:
        turn.say(f"{ID}.file_not_taken", file=error.get("file", ""))
    turn.say(f"{ID}.ask_file_again", old_card=change.get("old_card", ""))


def prompt_ask_login_id(turn: Turn) -> None:
    change: dict[str, Any] = turn.slots.get("change", {})
    if turn.slots.get("way") == "new_account":
        turn.say(f"{ID}.explain_new_account", old_card=change.get("old_card", ""))
    else:
        turn.say(f"{ID}.explain_resync", old_card=change.get("old_card", ""))
    turn.say(f"{ID}.ask_login_id", old_card=change.get("old_card", ""))


def prompt_ask_password(turn: Turn) -> None:
    turn.say(f"{ID}.ask_password", login_id=turn.slots.get("login_id", ""))


def prompt_login_refused(turn: Turn) -> None:
    turn.say("refusal.legacy_login_failed")
    turn.say(f"{ID}.ask_login_id_again")


def prompt_recovery_refused(turn: Turn) -> None:
    code = str(turn.slots.get("refusal", {}).get("code") or "unexpected_answer")
    if code == "card_mismatch":
        turn.say(f"{ID}.credentials_not_old_card")
    elif code == "account_exists_for_card":
        turn.say(f"{ID}.old_card_has_account")
    elif code == "invalid_state":
        turn.say(f"{ID}.not_changed")
    else:
        turn.say(f"refusal.{code}" if code in KNOWN_REFUSALS else "refusal.unexpected_answer")
    turn.say(
        f"{ID}.what_next",
        choice("more", f"{ID}.other_way"),
        choice("finish", f"{ID}.finish"),
    )


def prompt_recovered(turn: Turn) -> None:
    result: dict[str, Any] = turn.slots.get("result", {})
    change: dict[str, Any] = turn.slots.get("change", {})
    way = result.get("way")
    if way == "new_account":
        turn.say(
            f"{ID}.new_account_done",
            account=result.get("account", ""),
            old_card=result.get("masked_number") or change.get("old_card", ""),
        )
    elif way == "upload":
        turn.say(
            f"{ID}.upload_done",
            file=result.get("file", ""),
            added=result.get("added", 0),
            duplicates=result.get("duplicates", 0),
        )
        if result.get("adjustments"):
            turn.say(f"{ID}.upload_adjustments", adjustments=result["adjustments"])
    else:
        turn.say(
            f"{ID}.resync_done",
            old_card=change.get("old_card", ""),
            added=result.get("added", 0),
            duplicates=result.get("duplicates", 0),
        )
    turn.say(
        f"{ID}.what_next",
        choice("more", f"{ID}.other_way"),
        choice("finish", f"{ID}.finish"),
    )


def prompt_finished(turn: Turn) -> None:
    turn.say(f"{ID}.finished")


def prompt_no_jcb_accounts(turn: Turn) -> None:
    turn.say(f"{ID}.no_jcb_accounts")


KNOWN_REFUSALS = {
    "legacy_login_failed",
    "invalid_state",
    "card_mismatch",
    "account_exists_for_card",
    "forbidden",
    "not_found",
    "issuer_unavailable",
    "rate_limited",
}

FLOW = FlowDefinition(
    id=ID,
    initial="choose_account",
    start=start,
    states=[
        State("choose_account", prompt_choose_account),
        # R7: waits for the back end's card.changed event of the chosen account.
        State("no_change", prompt_no_change, waits_for="account_id"),
        State("changed", prompt_changed),
        State("ask_file", prompt_ask_file),
        State("file_refused", prompt_file_refused),
        State("ask_login_id", prompt_ask_login_id, text_trigger="login_id"),
        State("ask_password", prompt_ask_password, text_trigger="password", secret=True),
        State("login_refused", prompt_login_refused, text_trigger="login_id"),
        State("recovery_refused", prompt_recovery_refused),
        State("recovered", prompt_recovered),
        State("finished", prompt_finished, final=True),
        State("no_jcb_accounts", prompt_no_jcb_accounts, final=True),
    ],
    transitions=[
        {
            "trigger": "pick",
            "source": "choose_account",
            "dest": "changed",
            "conditions": [pick_account],
        },
        {
            "trigger": "pick",
            "source": "choose_account",
            "dest": "no_change",
            "conditions": [account_picked],
        },
        {
            "trigger": "sync",
            "source": "no_change",
            "dest": "changed",
            "conditions": [sync_and_look],
        },
        {
            "trigger": "sync",
            "source": "no_change",
            "dest": "no_change",
            "conditions": [synced_without_change],
        },
        {
            "trigger": "detected",
            "source": "no_change",
            "dest": "changed",
            "conditions": [change_from_event],
        },
        {
            "trigger": "other",
            "source": "no_change",
            "dest": "choose_account",
            "conditions": [reload_accounts],
        },
        # (a) statement upload
        {"trigger": "upload", "source": "changed", "dest": "ask_file"},
        {
            "trigger": "file",
            "source": ["ask_file", "file_refused"],
            "dest": "recovered",
            "conditions": [upload_file],
        },
        {
            "trigger": "file",
            "source": ["ask_file", "file_refused"],
            "dest": "file_refused",
            "conditions": [file_refused],
        },
        # (b) and (c): the old card's credentials
        {
            "trigger": "way",
            "source": "changed",
            "dest": "ask_login_id",
            "conditions": [choose_way],
        },
        {
            "trigger": "login_id",
            "source": ["ask_login_id", "login_refused"],
            "dest": "ask_password",
            "conditions": [keep_login_id],
        },
        {
            "trigger": "password",
            "source": "ask_password",
            "dest": "recovered",
            "conditions": [recover_with_credentials],
        },
        {
            "trigger": "password",
            "source": "ask_password",
            "dest": "login_refused",
            "conditions": [refused("legacy_login_failed")],
        },
        {
            "trigger": "password",
            "source": "ask_password",
            "dest": "recovery_refused",
            "conditions": [keep_refusal],
        },
        {"trigger": "more", "source": ["recovered", "recovery_refused"], "dest": "changed"},
        {
            "trigger": "finish",
            "source": ["no_change", "changed", "recovered", "recovery_refused"],
            "dest": "finished",
        },
    ],
    event_triggers={"card.changed": "detected"},
)
