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

from backend.domain.vocabulary import AccountStatus, EventType, Issuer, RefusalCode, SyncStatus
from statemachine.flow import (
    NEXT,
    SAME,
    STAY,
    FlowDefinition,
    Given,
    State,
    Step,
    Turn,
    choice,
    data_choice,
    go,
)
from statemachine.flows.common import account_label, account_slot
from statemachine.port import AccountInfo, BackendRefusal, EventInfo

ID = "jcb_card_change"
WAYS = ("resync", "new_account")
FILE_REFUSALS = (
    RefusalCode.STATEMENT_FILE_INVALID,
    RefusalCode.CARD_MISMATCH,
    RefusalCode.INVALID_REQUEST,
)
NAME_LIMIT = 100
GONE = (AccountStatus.DELETED, AccountStatus.DISABLED)
# A refused recovery this flow explains in its own words.
RECOVERY_WORDS = {
    RefusalCode.CARD_MISMATCH: f"{ID}.credentials_not_old_card",
    RefusalCode.ACCOUNT_EXISTS_FOR_CARD: f"{ID}.old_card_has_account",
    RefusalCode.INVALID_STATE: f"{ID}.not_changed",
}


def _jcb(account: AccountInfo) -> bool:
    return account.issuer == Issuer.JCB and account.status not in GONE


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
        if event.type == EventType.CARD_CHANGED:
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
async def pick_account(turn: Turn, given: Given) -> str:
    """Load the chosen account and look for its card change (R7)."""
    account_id = given.value
    turn.slots.pop("account_id", None)
    turn.slots.pop("synced", None)
    if not any(a["id"] == account_id for a in turn.slots.get("accounts", [])):
        return STAY
    account = await turn.backend.account(account_id)
    turn.slots["account_id"] = account_id
    turn.slots["account"] = account_slot(account)
    return "changed" if await _look_for_change(turn) else "no_change"


async def sync_and_look(turn: Turn, given: Given) -> str:
    """Sync now, so that the back end sees the replaced card, then look again (R7)."""
    result = await turn.backend.sync_now(str(turn.slots["account_id"]))
    turn.slots["synced"] = {"status": result.status, "error_code": result.error_code or ""}
    await _refresh_account(turn)
    return "changed" if await _look_for_change(turn) else "no_change"


async def change_from_event(turn: Turn, given: Given) -> str:
    """A sync in the background saw the change: its event carries what we need."""
    if given.payload.get("old_card_id"):
        await _refresh_account(turn)
        _keep_change(turn, dict(given.payload))
        return "changed"
    return "changed" if await _look_for_change(turn) else STAY


async def choose_way(turn: Turn, given: Given) -> str:
    if given.value not in WAYS:
        return STAY
    turn.slots["way"] = given.value
    return NEXT


async def upload_file(turn: Turn, given: Given) -> str:
    """R7 (a): the old card's statement file, imported by the back end for the old card;
    a refused file is kept as why (and the line, if the back end named one)."""
    if given.data is None:
        return STAY
    name = given.value or "statements.csv"
    turn.slots.pop("file_error", None)
    try:
        result = await turn.backend.upload_statements(
            str(turn.slots["account_id"]),
            name,
            given.data,
            card_id=str(turn.slots["change"]["old_card_id"]),
        )
    except BackendRefusal as refusal:
        if refusal.code not in FILE_REFUSALS:
            raise
        _keep_file_error(turn, refusal, given.value)
        return "file_refused"
    turn.slots["result"] = {
        "way": "upload",
        "file": name,
        "added": result.added,
        "duplicates": result.duplicates,
        "adjustments": result.adjustments,
    }
    return "uploaded"


def _keep_file_error(turn: Turn, refusal: BackendRefusal, file_name: str) -> None:
    line = refusal.details.get("line")
    rows = refusal.details.get("rows")
    turn.slots["file_error"] = {
        "code": refusal.code,
        # What the back end found: another issuer's file, or another card's rows.
        "reason": str(refusal.details.get("reason") or refusal.details.get("code") or ""),
        "card": str(refusal.details.get("card") or ""),
        "rows": rows if isinstance(rows, int) else 0,
        "line": line if isinstance(line, int) else None,
        "file": file_name,
    }


async def keep_login_id(turn: Turn, given: Given) -> str:
    """The old card's MyJCB ID, kept only until the password step uses it."""
    login_id = given.value.strip()
    if not login_id:
        return STAY
    turn.slots["login_id"] = login_id
    return NEXT


def _new_account_name(turn: Turn) -> str:
    account: dict[str, Any] = turn.slots.get("account", {})
    old_card = str(turn.slots.get("change", {}).get("old_card") or "")
    return f"{account.get('name', '')} {old_card}".strip()[:NAME_LIMIT]


async def recover_with_credentials(turn: Turn, given: Given) -> str:
    """R7 (b) or (c) with the old card's credentials.

    The password lives only in this call: it is never put in slots (which are saved,
    and copied into the step history), and the ID is dropped here whatever happens.
    """
    password = given.value
    login_id = str(turn.slots.pop("login_id", "") or "")
    account_id = str(turn.slots["account_id"])
    if not login_id or not password:
        return STAY
    try:
        if turn.slots.get("way") == "new_account":
            created = await turn.backend.new_account_for_old_card(
                account_id, login_id, password, _new_account_name(turn)
            )
            turn.slots["result"] = {
                "way": "new_account",
                "account": created.name,
                "masked_number": created.card.masked_number if created.card else "",
            }
            return "recovered"
        result = await turn.backend.resync_old_card(account_id, login_id, password)
    except BackendRefusal as refusal:
        if refusal.code == RefusalCode.LEGACY_LOGIN_FAILED:
            raise  # asked again (its outcome)
        turn.slots["refusal"] = {"code": refusal.code}
        return "refused"
    turn.slots["result"] = {
        "way": "resync",
        "added": result.added,
        "duplicates": result.duplicates,
    }
    return "recovered"


async def reload_accounts(turn: Turn, given: Given) -> str:
    turn.slots["accounts"] = await _jcb_accounts(turn)
    return NEXT


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
    elif synced.get("status") == SyncStatus.SUCCEEDED:
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
    if code == RefusalCode.CARD_MISMATCH and reason == "rows_of_another_card":
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
    elif code == RefusalCode.STATEMENT_FILE_INVALID and error.get("line") is not None:
        turn.say(f"{ID}.file_invalid_line", line=error["line"], file=error.get("file", ""))
    elif code == RefusalCode.STATEMENT_FILE_INVALID:
        turn.say(f"{ID}.file_invalid", file=error.get("file", ""))
    elif code == RefusalCode.CARD_MISMATCH:
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
    code = str(turn.slots.get("refusal", {}).get("code") or RefusalCode.UNEXPECTED_ANSWER)
    turn.say_refusal(code, fallback="refusal.unexpected_answer", own_words=RECOVERY_WORDS)
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


FLOW = FlowDefinition(
    id=ID,
    initial="choose_account",
    start=start,
    menu_position=60,
    keywords=(
        "upgrade",
        "downgrade",
        "card change",
        "new card",
        "アップグレード",
        "ダウングレード",
        "カードの切替",
        "カードの切り替え",
        "カード切替",
        "カードが変わ",
        "新しいカード",
        "古いカード",
    ),
    keyword_rank=10,
    command="jcb",
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
    steps=[
        Step(
            "pick", "choose_account", {"changed": "changed", "no_change": "no_change"}, pick_account
        ),
        Step("sync", "no_change", {"changed": "changed", "no_change": SAME}, sync_and_look),
        Step("detected", "no_change", {"changed": "changed"}, change_from_event),
        Step("other", "no_change", {NEXT: "choose_account"}, reload_accounts),
        # (a) statement upload
        go("upload", "changed", "ask_file"),
        Step(
            "file",
            ("ask_file", "file_refused"),
            {"uploaded": "recovered", "file_refused": "file_refused"},
            upload_file,
        ),
        # (b) and (c): the old card's credentials
        Step("way", "changed", {NEXT: "ask_login_id"}, choose_way),
        Step("login_id", ("ask_login_id", "login_refused"), {NEXT: "ask_password"}, keep_login_id),
        Step(
            "password",
            "ask_password",
            {
                "recovered": "recovered",
                RefusalCode.LEGACY_LOGIN_FAILED: "login_refused",
                "refused": "recovery_refused",
            },
            recover_with_credentials,
        ),
        go("more", ("recovered", "recovery_refused"), "changed"),
        go("finish", ("no_change", "changed", "recovered", "recovery_refused"), "finished"),
    ],
    event_triggers={EventType.CARD_CHANGED: "detected"},
)
