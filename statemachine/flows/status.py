"""status: why statements are missing — last sync, link state, JCB's delay (R9), re-sync now."""

from __future__ import annotations

from typing import Any

from backend.domain.vocabulary import AccountStatus, EventType, Issuer, SyncMethod, SyncStatus
from i18n import values
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
from statemachine.flows.common import account_label, account_slot, consent_link
from statemachine.flows.consent import (
    STARTED,
    Names,
    authorize_again,
    consent_part,
    say_failure,
)
from statemachine.port import BackendError

ID = "status"


async def start(turn: Turn) -> None:
    assert turn.office_id is not None
    accounts = await turn.backend.accounts(turn.office_id)
    turn.slots["accounts"] = [account_slot(a) for a in accounts]
    if not accounts:
        turn.state = "no_accounts"


async def load_status(turn: Turn, given: Given) -> str:
    account_id = given.value or str(turn.slots.get("account_id") or "")
    if not account_id:
        return STAY
    account = await turn.backend.account(account_id)
    turn.slots["account_id"] = account_id
    turn.slots["account"] = account_slot(account)
    await _note_issuer_health(turn)
    return NEXT


async def _note_issuer_health(turn: Turn) -> None:
    """Keep how the account's issuer answers everyone: an outage is nobody's to fix."""
    issuer = str(turn.slots.get("account", {}).get("issuer") or "")
    try:
        health = (await turn.backend.issuer_health()).get(issuer)
    except BackendError:
        health = None  # the account's own status still stands on its own
    turn.slots["issuer_state"] = health.state if health else None


async def resync(turn: Turn, given: Given) -> str:
    result = await turn.backend.sync_now(str(turn.slots["account_id"]))
    turn.slots["sync"] = {
        "status": result.status,
        "added": result.added,
        "modified": result.modified,
        "error_code": result.error_code,
    }
    account = await turn.backend.account(str(turn.slots["account_id"]))
    turn.slots["account"] = account_slot(account)
    await _note_issuer_health(turn)
    return NEXT


def prompt_choose(turn: Turn) -> None:
    accounts: list[dict[str, Any]] = turn.slots.get("accounts", [])
    turn.say(
        f"{ID}.choose_account",
        *[data_choice(f"pick:{a['id']}", account_label(a)) for a in accounts],
    )


def _issuer_trouble(turn: Turn, account: dict[str, Any]) -> None:
    state = turn.slots.get("issuer_state")
    if state in ("down", "degraded"):
        turn.say(f"{ID}.issuer_{state}.{account.get('issuer', '')}")


def _explain(turn: Turn, account: dict[str, Any]) -> None:
    turn.say(
        f"{ID}.summary",
        account=account.get("name", ""),
        method=values.word("words.sync_method", account.get("sync_method")),
        status=values.word("words.account_status", account.get("status")),
        synced=values.moment(account.get("last_synced_at")),
    )
    if account.get("last_error"):
        turn.say(f"{ID}.last_error", error=values.word("refusal", account["last_error"]))
    _issuer_trouble(turn, account)
    if account.get("status") == AccountStatus.NEEDS_REAUTH:
        turn.say(f"{ID}.needs_reauth")
    if account.get("consent_ends_on") and account.get("status") != AccountStatus.NEEDS_REAUTH:
        turn.say(f"{ID}.consent_ends", date=account["consent_ends_on"])
    if account.get("issuer") == Issuer.JCB and account.get("sync_method") == SyncMethod.API:
        turn.say(f"{ID}.jcb_delay")  # R9
    if account.get("sync_method") == SyncMethod.LEGACY:
        turn.say(f"{ID}.legacy_hint")


def _actions(account: dict[str, Any]) -> list[Any]:
    actions = [choice("resync", f"{ID}.resync")]
    renew = account.get("status") == AccountStatus.NEEDS_REAUTH or account.get("consent_expiring")
    if renew and account.get("sync_method") == SyncMethod.API:  # near its end: renew in place
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
    if sync.get("status") == SyncStatus.SUCCEEDED:
        turn.say(f"{ID}.resync_done", added=sync.get("added", 0), modified=sync.get("modified", 0))
    elif sync.get("status") == SyncStatus.ALREADY_RUNNING:
        turn.say(f"{ID}.resync_running")
    elif sync.get("status") == SyncStatus.SKIPPED:
        turn.say(f"{ID}.resync_skipped")
    else:
        turn.say(f"{ID}.resync_failed", error=values.word("refusal", sync.get("error_code")))
    _issuer_trouble(turn, account)
    if account.get("status") == AccountStatus.NEEDS_REAUTH:
        turn.say(f"{ID}.needs_reauth")
    if account.get("issuer") == Issuer.JCB and account.get("sync_method") == SyncMethod.API:
        turn.say(f"{ID}.jcb_delay")  # R9
    turn.say(f"{ID}.what_next", *_actions(account))


HELD = "held"


async def reauth(turn: Turn, given: Given) -> str:
    """R10/R16: an Amex grant whose tokens died may still hold the card at Amex, and
    then the issuer's card page greys the card out: the person is sent to the member site
    to stop the old link first, and to the issuer only once it is stopped.

    A consent renewed near its end is given again in place (nothing to stop), so only an
    account that needs re-authentication is asked about."""
    account: dict[str, Any] = turn.slots.get("account", {})
    needs_reauth = account.get("status") == AccountStatus.NEEDS_REAUTH
    if (
        account.get("issuer") == Issuer.AMEX
        and needs_reauth
        and await turn.backend.check_link(str(turn.slots["account_id"])) == "active"
    ):
        if turn.state == "stop_first":
            turn.say(f"{ID}.still_held")
        return HELD
    return await authorize_again(turn, given)


def prompt_stop_first(turn: Turn) -> None:
    turn.say(f"{ID}.stop_first", choice("stopped", f"{ID}.stopped"))  # R10/R16


def prompt_reauth(turn: Turn) -> None:
    turn.say(f"{ID}.reauth_consent", choice("check", "common_flow.check"), link=consent_link(turn))


def prompt_reauth_failed(turn: Turn) -> None:
    say_failure(turn)
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
    menu_position=70,
    keywords=(
        "status",
        "missing",
        "not arriving",
        "not synced",
        "late",
        "届かない",
        "反映されない",
        "明細がない",
        "明細が来",
        "遅れ",
        "状況",
        "同期されない",
    ),
    keyword_rank=50,
    command="status",
    states=[
        State("choose_account", prompt_choose),
        State("show_status", prompt_show),
        State("resynced", prompt_resynced),
        State("stop_first", prompt_stop_first),
        State("finished", prompt_finished, final=True),
        State("no_accounts", prompt_no_accounts, final=True),
    ],
    steps=[
        Step("pick", "choose_account", {NEXT: "show_status"}, load_status),
        Step("resync", ("show_status", "resynced"), {NEXT: "resynced"}, resync),
        Step(
            "reauth",
            ("show_status", "resynced"),
            {STARTED: "reauth_consent", HELD: "stop_first"},  # R10/R16
            reauth,
        ),
        Step("stopped", "stop_first", {STARTED: "reauth_consent", HELD: SAME}, reauth),
        go("other", ("show_status", "resynced"), "choose_account"),
        go("done", ("show_status", "resynced"), "finished"),
    ],
    parts=[
        # Re-authentication: the shared consent, ending once the link is back.
        consent_part(
            ID,
            again=authorize_again,
            consent=prompt_reauth,
            failed=prompt_reauth_failed,
            linked=prompt_reauthorized,
            names=Names(consent="reauth_consent", linked="reauthorized", failed="reauth_failed"),
        )
    ],
    event_triggers={
        EventType.LINK_CREATED: "authorized",
        EventType.AUTHORIZATION_FAILED: "authorization_failed",
    },
)
