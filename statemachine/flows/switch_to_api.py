"""switch_to_api: an existing (legacy) account switched to API in place (R12, R2).

choose_account → consent (issuer pages) → linked → done (first sync reported).
Refusals branch: not released (R3/R4, with an offer to be told when it is), card
linked elsewhere (R5/R14, handed over to multi_office), card not eligible (R1).
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
    slot_is,
    turn_of,
    value_of,
)
from statemachine.flows.common import (
    BINDING_REFUSALS,
    LINKING_EVENTS,
    account_label,
    account_slot,
    consent_link,
    consent_transitions,
    first_sync_transitions,
    store_authorization,
    switch_again,
)
from statemachine.port import AccountInfo
from statemachine.replies import Choice

ID = "switch_to_api"


def _switchable(account: AccountInfo) -> bool:
    return account.sync_method != "api" and account.status not in ("deleted", "disabled")


async def start(turn: Turn) -> None:
    assert turn.office_id is not None
    accounts = [a for a in await turn.backend.accounts(turn.office_id) if _switchable(a)]
    turn.slots["accounts"] = [account_slot(a) for a in accounts]
    if not accounts:
        turn.state = "nothing_to_switch"


# ----------------------------------------------------------------------- steps
async def start_switch(event: EventData) -> bool:
    """R12: ask the back end to start the switch; it checks R1, R3/R4 and R5/R14."""
    turn = turn_of(event)
    account_id = value_of(event) or str(turn.slots.get("account_id") or "")
    chosen = next((a for a in turn.slots.get("accounts", []) if a["id"] == account_id), None)
    if chosen is None:
        return False
    turn.slots["account_id"] = account_id
    turn.slots["account"] = chosen
    if chosen["issuer"] == "amex" and chosen.get("card_id") and turn.office_id:
        # R14: a card synced in several offices is switched in the one that keeps it.
        uses = await turn.backend.card_uses(turn.office_id, str(chosen["card_id"]))
        if len(uses) >= 2:
            turn.slots["card_id"] = chosen["card_id"]
            turn.slots["several_offices"] = True
            return False
    start = await turn.attempt(turn.backend.switch_to_api(account_id, return_url=turn.return_url))
    if start is None:
        turn.slots["issuer"] = chosen["issuer"]
        return False
    store_authorization(turn, start)
    return True


async def keep_office_key(event: EventData) -> bool:
    turn = turn_of(event)
    turn.slots["release_key"] = f"office:{turn.office_id}"
    return True


async def reload_accounts(event: EventData) -> bool:
    turn = turn_of(event)
    assert turn.office_id is not None
    accounts = [a for a in await turn.backend.accounts(turn.office_id) if _switchable(a)]
    turn.slots["accounts"] = [account_slot(a) for a in accounts]
    return True


# ----------------------------------------------------------------------- prompts
def prompt_choose_account(turn: Turn) -> None:
    accounts: list[dict[str, Any]] = turn.slots.get("accounts", [])
    buttons = [data_choice(f"pick:{a['id']}", account_label(a)) for a in accounts]
    turn.say(f"{ID}.choose_account", *buttons)


def prompt_consent(turn: Turn) -> None:
    account = turn.slots.get("account", {})
    if account.get("issuer") == "jcb":
        # R6: the MyJCB ID of this card, not a combined login; R9: JCB statements lag.
        turn.say(f"{ID}.jcb_notice")
    turn.say(
        f"{ID}.consent",
        choice("check", "common_flow.check"),
        link=consent_link(turn),
        account=account.get("name", ""),
    )


def prompt_linked(turn: Turn) -> None:
    turn.say(f"{ID}.linked", choice("check", "common_flow.check_sync"))


def prompt_failed(turn: Turn) -> None:
    code = str(turn.slots.get("error_code") or "unknown")
    turn.say(f"refusal.{code}" if code in KNOWN_REFUSALS else "common_flow.authorization_failed")
    if turn.slots.get("stop_at_member_site"):
        turn.say("common_flow.stop_leftover")
    turn.say(f"{ID}.try_again", choice("again", "common_flow.try_again"))


def prompt_not_released(turn: Turn) -> None:
    turn.say("refusal.api_not_released", issuer=turn.slots.get("issuer", ""))
    turn.say(f"{ID}.offer_notify", choice("notify", "common_flow.notify_me"))


def prompt_waiting_release(turn: Turn) -> None:
    turn.say(f"{ID}.waiting_release")


def prompt_released(turn: Turn) -> None:
    accounts: list[dict[str, Any]] = turn.slots.get("accounts", [])
    buttons = [data_choice(f"pick:{a['id']}", account_label(a)) for a in accounts]
    turn.say(f"{ID}.released", *buttons)


def prompt_linked_elsewhere(turn: Turn) -> None:
    turn.say("refusal.card_already_linked")
    turn.say(f"{ID}.to_multi_office")


def prompt_several_offices(turn: Turn) -> None:
    turn.say(f"{ID}.several_offices")  # R14


def prompt_not_eligible(turn: Turn) -> None:
    turn.say("refusal.card_not_eligible")


def prompt_nothing(turn: Turn) -> None:
    turn.say(f"{ID}.nothing_to_switch")


def prompt_done(turn: Turn) -> None:
    turn.say(
        f"{ID}.done",
        added=turn.slots.get("added", 0),
        account=turn.slots.get("account", {}).get("name", ""),
    )


def prompt_sync_failed(turn: Turn) -> None:
    turn.say(f"{ID}.sync_failed", Choice("check", "common_flow.check_sync"))


KNOWN_REFUSALS = {
    *BINDING_REFUSALS,
    "combined_login_not_supported",
    "wrong_myjcb_id",
    "myjcb_id_already_linked",
    "card_already_linked",
    "one_card_per_authorization",
    "supplementary_not_registered",
    "card_mismatch",
    "card_not_eligible",
    "account_exists_for_card",
}

FLOW = FlowDefinition(
    id=ID,
    initial="choose_account",
    start=start,
    states=[
        State("choose_account", prompt_choose_account),
        State("consent", prompt_consent, waits_for="account_id"),
        State("linked", prompt_linked, waits_for="account_id"),
        State("failed", prompt_failed),
        State("sync_failed", prompt_sync_failed, waits_for="account_id"),
        State("not_released", prompt_not_released),
        State("waiting_release", prompt_waiting_release, waits_for="release_key"),
        State("released", prompt_released),
        State("linked_elsewhere", prompt_linked_elsewhere, handover="multi_office"),
        State("several_offices", prompt_several_offices, handover="multi_office"),
        State("not_eligible", prompt_not_eligible, final=True),
        State("nothing_to_switch", prompt_nothing, final=True),
        State("done", prompt_done, final=True),
    ],
    transitions=[
        {
            "trigger": "pick",
            "source": ["choose_account", "released"],
            "dest": "consent",
            "conditions": [start_switch],
        },
        {
            "trigger": "pick",
            "source": ["choose_account", "released"],
            "dest": "several_offices",
            "conditions": [slot_is("several_offices", True)],
        },
        {
            "trigger": "pick",
            "source": ["choose_account", "released"],
            "dest": "not_released",
            "conditions": [refused("api_not_released")],
        },
        {
            "trigger": "pick",
            "source": ["choose_account", "released"],
            "dest": "linked_elsewhere",
            "conditions": [refused("card_already_linked")],
        },
        {
            "trigger": "pick",
            "source": ["choose_account", "released"],
            "dest": "not_eligible",
            "conditions": [refused("card_not_eligible")],
        },
        *consent_transitions(switch_again),
        *first_sync_transitions(),
        {
            "trigger": "notify",
            "source": "not_released",
            "dest": "waiting_release",
            "conditions": [keep_office_key],
        },
        {
            "trigger": "released",
            "source": "waiting_release",
            "dest": "released",
            "conditions": [reload_accounts],
        },
    ],
    event_triggers={
        **LINKING_EVENTS,
        "office.api_released": "released",
    },
)
