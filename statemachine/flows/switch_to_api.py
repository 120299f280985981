"""switch_to_api: an existing (legacy) account switched to API in place (R12, R2).

choose_account → consent (issuer pages) → linked → done (first sync reported).
Refusals branch: not released (R3/R4, with an offer to be told when it is), card
linked elsewhere (R5/R14, handed over to multi_office), card not eligible (R1).
"""

from __future__ import annotations

from typing import Any

from backend.domain.vocabulary import AccountStatus, EventType, Issuer, RefusalCode, SyncMethod
from statemachine.flow import (
    NEXT,
    STAY,
    FlowDefinition,
    Given,
    State,
    Step,
    Turn,
    choice,
    data_choice,
)
from statemachine.flows.common import account_label, account_slot, consent_link
from statemachine.flows.consent import (
    LINKING_EVENTS,
    STARTED,
    SYNCED,
    begin_consent,
    consent_part,
    switch_again,
)
from statemachine.port import AccountInfo, BackendRefusal

ID = "switch_to_api"


def _switchable(account: AccountInfo) -> bool:
    return account.sync_method != SyncMethod.API and account.status not in (
        AccountStatus.DELETED,
        AccountStatus.DISABLED,
    )


def _eligible(account: AccountInfo) -> bool:
    # R1: a card the issuers' API does not cover is not offered (the back end refuses it too).
    return account.card is None or account.card.api_eligible


async def start(turn: Turn) -> None:
    assert turn.office_id is not None
    candidates = [a for a in await turn.backend.accounts(turn.office_id) if _switchable(a)]
    accounts = [a for a in candidates if _eligible(a)]
    turn.slots["accounts"] = [account_slot(a) for a in accounts]
    turn.slots["not_eligible"] = [a.name for a in candidates if not _eligible(a)]
    if not accounts:
        turn.state = "nothing_to_switch"


def _say_left_out(turn: Turn) -> None:
    """Why an account the person may look for is not in the list (R1)."""
    for name in turn.slots.get("not_eligible", []):
        turn.say(f"{ID}.not_eligible_left_out", account=name)


# ----------------------------------------------------------------------- steps
async def start_switch(turn: Turn, given: Given) -> str:
    """R12: ask the back end to start the switch; it checks R1, R3/R4 and R5/R14."""
    account_id = given.value or str(turn.slots.get("account_id") or "")
    chosen = next((a for a in turn.slots.get("accounts", []) if a["id"] == account_id), None)
    if chosen is None:
        return STAY
    turn.slots["account_id"] = account_id
    turn.slots["account"] = chosen
    if chosen["issuer"] == Issuer.AMEX and chosen.get("card_id") and turn.office_id:
        # R14: a card synced in several offices is switched in the one that keeps it.
        uses = await turn.backend.card_uses(turn.office_id, str(chosen["card_id"]))
        if len(uses) >= 2:
            turn.slots["card_id"] = chosen["card_id"]
            turn.slots["several_offices"] = True
            return "several_offices"
    try:
        started = await turn.backend.switch_to_api(account_id, return_url=turn.return_url)
    except BackendRefusal:
        turn.slots["issuer"] = chosen["issuer"]  # named by the refusal's words
        raise
    return await begin_consent(turn, started)


async def wait_for_release(turn: Turn, given: Given) -> str:
    turn.slots["release_key"] = f"office:{turn.office_id}"
    return NEXT


async def reload_accounts(turn: Turn, given: Given) -> str:
    assert turn.office_id is not None
    accounts = [
        a for a in await turn.backend.accounts(turn.office_id) if _switchable(a) and _eligible(a)
    ]
    turn.slots["accounts"] = [account_slot(a) for a in accounts]
    return NEXT


# ----------------------------------------------------------------------- prompts
def prompt_choose_account(turn: Turn) -> None:
    accounts: list[dict[str, Any]] = turn.slots.get("accounts", [])
    buttons = [data_choice(f"pick:{a['id']}", account_label(a)) for a in accounts]
    _say_left_out(turn)
    turn.say(f"{ID}.choose_account", *buttons)


def prompt_consent(turn: Turn) -> None:
    account = turn.slots.get("account", {})
    if account.get("issuer") == Issuer.JCB:
        # R6: the MyJCB ID of this card, not a combined login; R9: JCB statements lag.
        turn.say(f"{ID}.jcb_notice")
    turn.say(
        # JCB's consent page lists no cards to tick: the MyJCB ID decides them (R6).
        f"{ID}.consent_jcb" if account.get("issuer") == "jcb" else f"{ID}.consent",
        choice("check", "common_flow.check"),
        link=consent_link(turn),
        account=account.get("name", ""),
    )


def prompt_not_released(turn: Turn) -> None:
    turn.say_refusal(RefusalCode.API_NOT_RELEASED, issuer=turn.slots.get("issuer", ""))
    turn.say(f"{ID}.offer_notify", choice("notify", "common_flow.notify_me"))


def prompt_waiting_release(turn: Turn) -> None:
    turn.say(f"{ID}.waiting_release")


def prompt_released(turn: Turn) -> None:
    accounts: list[dict[str, Any]] = turn.slots.get("accounts", [])
    buttons = [data_choice(f"pick:{a['id']}", account_label(a)) for a in accounts]
    turn.say(f"{ID}.released", *buttons)


def prompt_linked_elsewhere(turn: Turn) -> None:
    turn.say_refusal(RefusalCode.CARD_ALREADY_LINKED)
    turn.say(f"{ID}.to_multi_office")


def prompt_several_offices(turn: Turn) -> None:
    turn.say(f"{ID}.several_offices")  # R14


def prompt_not_eligible(turn: Turn) -> None:
    turn.say_refusal(RefusalCode.CARD_NOT_ELIGIBLE)


def prompt_nothing(turn: Turn) -> None:
    _say_left_out(turn)
    turn.say(f"{ID}.nothing_to_switch")


def prompt_done(turn: Turn) -> None:
    turn.say(
        f"{ID}.done",
        added=turn.slots.get("added", 0),
        account=turn.slots.get("account", {}).get("name", ""),
    )


FLOW = FlowDefinition(
    id=ID,
    initial="choose_account",
    start=start,
    menu_position=20,
    keywords=("switch", "api", "切り替え", "切替", "切りかえ"),
    keyword_rank=60,
    command="switch",
    states=[
        State("choose_account", prompt_choose_account),
        State("not_released", prompt_not_released),
        State("waiting_release", prompt_waiting_release, waits_for="release_key"),
        State("released", prompt_released),
        State("linked_elsewhere", prompt_linked_elsewhere, handover="multi_office"),
        State("several_offices", prompt_several_offices, handover="multi_office"),
        State("not_eligible", prompt_not_eligible, final=True),
        State("nothing_to_switch", prompt_nothing, final=True),
        State("done", prompt_done, final=True),
    ],
    steps=[
        Step(
            "pick",
            ("choose_account", "released"),
            {
                STARTED: "consent",
                "several_offices": "several_offices",  # R14
                RefusalCode.API_NOT_RELEASED: "not_released",  # R3/R4
                RefusalCode.CARD_ALREADY_LINKED: "linked_elsewhere",  # R5/R14
                RefusalCode.CARD_NOT_ELIGIBLE: "not_eligible",  # R1
            },
            start_switch,
        ),
        Step("notify", "not_released", {NEXT: "waiting_release"}, wait_for_release),
        Step("released", "waiting_release", {NEXT: "released"}, reload_accounts),
    ],
    parts=[
        consent_part(ID, again=switch_again, consent=prompt_consent, first_sync={SYNCED: "done"})
    ],
    event_triggers={
        **LINKING_EVENTS,
        EventType.API_RELEASED: "released",
    },
)
