"""register: a new API-linked account (R11).

choose_issuer → (Amex) choose_card → name → consent (issuer pages) → linked → done
(first sync reported). Only issuers released for the office are offered (R3/R4); the
others are explained, with an offer to be told when they are. The back end checks the
card before anyone goes to the issuer: linked elsewhere (R5/R14) hands over to
multi_office, a card this office already syncs (R12) hands over to switch_to_api, a
card that cannot be API-linked ends here (R1). A consent refused at the issuer (R13,
R15, R12...) is explained and can be tried again on the same account.
"""

from __future__ import annotations

import contextlib
from typing import Any

from transitions import EventData

from statemachine.flow import (
    FlowDefinition,
    State,
    Turn,
    choice,
    refused,
    turn_of,
    value_of,
)
from statemachine.flows.common import (
    BINDING_REFUSALS,
    LINKING_EVENTS,
    authorize_again,
    consent_link,
    consent_transitions,
    first_sync_transitions,
    store_authorization,
)
from statemachine.port import AccountInfo, BackendUnavailable, CardInfo

ID = "register"
ISSUERS = ("amex", "jcb")
OTHER_CARD = "other"

# Refusal codes whose words the shared catalog holds (refusal.<code>).
KNOWN_REFUSALS = {
    *BINDING_REFUSALS,
    "card_already_linked",
    "one_card_per_authorization",
    "supplementary_not_registered",
    "card_mismatch",
    "card_not_eligible",
    "account_exists_for_card",
    "combined_login_not_supported",
    "wrong_myjcb_id",
    "myjcb_id_already_linked",
}


async def _load_office(turn: Turn) -> None:
    assert turn.office_id is not None
    office = await turn.backend.office(turn.office_id)
    released = [i for i in ISSUERS if i in office.released_issuers]
    turn.slots["office_name"] = office.name
    turn.slots["released"] = released
    turn.slots["unreleased"] = [i for i in ISSUERS if i not in released]


async def start(turn: Turn) -> None:
    await _load_office(turn)
    if not turn.slots["released"]:
        turn.state = "not_released"  # R3/R4: nothing to register here yet


def _card_slot(card: CardInfo) -> dict[str, Any]:
    return {
        "id": card.id,
        "masked_number": card.masked_number,
        "holder_name": card.holder_name,
        "role": card.role,
    }


# ----------------------------------------------------------------------- steps
async def choose_amex(event: EventData) -> bool:
    """Amex links one card per account (R5, R13): list the office's cards still unsynced."""
    turn = turn_of(event)
    if value_of(event) != "amex" or "amex" not in turn.slots.get("released", []):
        return False
    assert turn.office_id is not None
    synced = {a.card.id for a in await turn.backend.accounts(turn.office_id) if a.card}
    cards = [
        c
        for c in await turn.backend.office_cards(turn.office_id)
        # R1: only eligible cards; R12: a card this office syncs is switched, not added.
        if c.issuer == "amex" and c.api_eligible and c.id not in synced
    ]
    turn.slots["issuer"] = "amex"
    turn.slots["cards"] = [_card_slot(c) for c in cards]
    turn.slots.pop("just_released", None)
    return True


async def choose_jcb(event: EventData) -> bool:
    """JCB: the MyJCB ID chosen at the issuer decides the cards (R6, R9); no card here."""
    turn = turn_of(event)
    if value_of(event) != "jcb" or "jcb" not in turn.slots.get("released", []):
        return False
    turn.slots["issuer"] = "jcb"
    turn.slots["card_id"] = None
    turn.slots.pop("just_released", None)
    return True


async def choose_card(event: EventData) -> bool:
    turn = turn_of(event)
    wanted = value_of(event)
    if wanted == OTHER_CARD:
        turn.slots["card_id"] = None  # chosen on the issuer's card page (R13: one card)
        turn.slots["card"] = None
        return True
    card = next((c for c in turn.slots.get("cards", []) if c["id"] == wanted), None)
    if card is None:
        return False
    turn.slots["card_id"] = wanted
    turn.slots["card"] = card
    return True


async def register_account(event: EventData) -> bool:
    """R11: the back end creates the account and answers the issuer's authorization URL.

    It checks the rollout (R3/R4), the card's eligibility (R1), its links (R5/R14) and
    the office's other accounts (R12) first; a refusal is branched on below.
    """
    turn = turn_of(event)
    assert turn.office_id is not None
    name = value_of(event).strip()  # empty: the back end names it "<issuer> API"
    card_id = turn.slots.get("card_id") or None
    issuer = str(turn.slots.get("issuer") or "")
    draft = await _draft_account(turn, issuer, card_id)
    if draft is not None:
        # A registration begun before (gone back, retried, or cancelled) and never
        # consented: authorize that account again instead of leaving a second one.
        started = await turn.attempt(turn.backend.reauthorize(draft.id, return_url=turn.return_url))
    else:
        started = await turn.attempt(
            turn.backend.register_api_account(
                turn.office_id, issuer, name, card_id=card_id, return_url=turn.return_url
            )
        )
    if started is None:
        details = turn.refusal.details if turn.refusal else {}
        if details.get("account_id"):
            # R12: the existing account of this card, for switch_to_api to take over.
            turn.slots["existing_account_id"] = str(details["account_id"])
        if turn.refusal is not None and turn.refusal.code == "api_not_released":
            turn.slots["unreleased"] = [issuer]  # R3: withdrawn since the issuer was offered
        return False
    turn.slots["account_id"] = started.account_id
    store_authorization(turn, started)
    turn.slots["account_name"] = draft.name if draft is not None else name
    if not turn.slots["account_name"]:
        # The back end chose the name; not knowing it is no reason to lose the account.
        with contextlib.suppress(BackendUnavailable):
            turn.slots["account_name"] = (await turn.backend.account(started.account_id)).name
    return True


async def _draft_account(turn: Turn, issuer: str, card_id: str | None) -> AccountInfo | None:
    """This office's API account of the issuer (and card) that never got its consent."""
    assert turn.office_id is not None
    for account in await turn.backend.accounts(turn.office_id):
        never_linked = (
            account.sync_method == "api"
            and account.status == "needs_reauth"
            and account.link_status is None
        )
        same_card = (account.card.id if account.card else None) == card_id
        if never_linked and account.issuer == issuer and same_card:
            return account
    return None


async def give_up_new_account(event: EventData) -> bool:
    """R12: the card is synced by an account already; the empty new one is removed.

    It never linked (the issuer's consent was refused), so no Amex link holds the card
    (R10). Deleting needs an administrator; a member archives it instead.
    """
    turn = turn_of(event)
    if turn.state == "failed" and turn.slots.get("error_code") != "account_exists_for_card":
        return False  # only offered when the card turned out to be synced here already
    new_account = str(turn.slots.get("account_id") or "")
    if new_account:
        await turn.attempt(turn.backend.delete_account(new_account))
        if turn.refusal is not None:
            await turn.attempt(turn.backend.archive_account(new_account))
        turn.slots["removed_account"] = turn.refusal is None
        turn.refusal = None
    existing = turn.slots.pop("existing_account_id", None)
    if existing:
        turn.slots["account_id"] = existing
    else:
        turn.slots.pop("account_id", None)
    return True


async def keep_office_key(event: EventData) -> bool:
    turn = turn_of(event)
    turn.slots["release_key"] = f"office:{turn.office_id}"
    return True


async def reload_office(event: EventData) -> bool:
    turn = turn_of(event)
    await _load_office(turn)
    turn.slots["just_released"] = True
    return bool(turn.slots["released"])


# ----------------------------------------------------------------------- prompts
def prompt_choose_issuer(turn: Turn) -> None:
    if turn.slots.get("just_released"):
        turn.say(f"{ID}.released")  # R4
    for issuer in turn.slots.get("unreleased", []):
        turn.say(f"{ID}.not_released.{issuer}")  # R3/R4
    buttons = [choice(f"issuer:{i}", f"{ID}.issuer.{i}") for i in turn.slots.get("released", [])]
    if turn.slots.get("unreleased"):
        buttons.append(choice("notify", "common_flow.notify_me"))
    turn.say(f"{ID}.choose_issuer", *buttons)


def prompt_choose_card(turn: Turn) -> None:
    cards: list[dict[str, Any]] = turn.slots.get("cards", [])
    buttons = [
        choice(
            f"card:{c['id']}",
            f"{ID}.card_{'supplementary' if c['role'] == 'supplementary' else 'basic'}",
            masked=c["masked_number"],
            holder=c["holder_name"],
        )
        for c in cards
    ]
    buttons.append(choice(f"card:{OTHER_CARD}", f"{ID}.card_other"))
    turn.say(f"{ID}.choose_card" if cards else f"{ID}.choose_card_none", *buttons)


def prompt_name(turn: Turn) -> None:
    issuer = str(turn.slots.get("issuer") or "amex")
    turn.say(f"{ID}.ask_name", choice("named:", f"{ID}.default_name.{issuer}"))


def prompt_consent(turn: Turn) -> None:
    if turn.slots.get("issuer") == "jcb":
        turn.say(f"{ID}.jcb_notice")  # R6, R9
        steps = f"{ID}.consent_jcb"
    elif turn.slots.get("card_id"):
        steps = f"{ID}.consent_amex_card"
    else:
        steps = f"{ID}.consent_amex_any"  # R13: one card on the issuer's page
    card = turn.slots.get("card") or {}
    turn.say(
        steps,
        choice("check", "common_flow.check"),
        link=consent_link(turn),
        account=turn.slots.get("account_name", ""),
        masked=card.get("masked_number", ""),
    )


def prompt_linked(turn: Turn) -> None:
    turn.say(f"{ID}.linked", choice("check", "common_flow.check_sync"))


def prompt_failed(turn: Turn) -> None:
    code = str(turn.slots.get("error_code") or "unknown")
    turn.say(f"refusal.{code}" if code in KNOWN_REFUSALS else "common_flow.authorization_failed")
    if turn.slots.get("stop_at_member_site"):
        turn.say("common_flow.stop_leftover")  # R10/R16: Amex still holds the card
    buttons = [choice("again", "common_flow.try_again")]
    if code == "account_exists_for_card":
        buttons.insert(0, choice("switch", f"{ID}.switch_instead"))  # R12
    turn.say(f"{ID}.try_again", *buttons)


def prompt_exists(turn: Turn) -> None:
    turn.say("refusal.account_exists_for_card")
    turn.say(f"{ID}.offer_switch", choice("switch", f"{ID}.switch_instead"))


def prompt_to_switch(turn: Turn) -> None:
    if turn.slots.get("removed_account"):
        turn.say(f"{ID}.removed_unused")
    turn.say(f"{ID}.to_switch")


def prompt_linked_elsewhere(turn: Turn) -> None:
    turn.say("refusal.card_already_linked")
    turn.say(f"{ID}.to_multi_office")


def prompt_not_eligible(turn: Turn) -> None:
    turn.say("refusal.card_not_eligible")


def prompt_not_released(turn: Turn) -> None:
    for issuer in turn.slots.get("unreleased") or ISSUERS:
        turn.say(f"{ID}.not_released.{issuer}")  # R3/R4
    turn.say(f"{ID}.offer_notify", choice("notify", "common_flow.notify_me"))


def prompt_waiting_release(turn: Turn) -> None:
    turn.say(f"{ID}.waiting_release")


def prompt_sync_failed(turn: Turn) -> None:
    turn.say(f"{ID}.sync_failed", choice("check", "common_flow.check_sync"))


def prompt_done(turn: Turn) -> None:
    turn.say(
        f"{ID}.done", account=turn.slots.get("account_name", ""), added=turn.slots.get("added", 0)
    )


FLOW = FlowDefinition(
    id=ID,
    initial="choose_issuer",
    start=start,
    states=[
        State("choose_issuer", prompt_choose_issuer),
        State("choose_card", prompt_choose_card),
        State("name", prompt_name, text_trigger="named"),
        State("consent", prompt_consent, waits_for="account_id"),
        State("linked", prompt_linked, waits_for="account_id"),
        State("failed", prompt_failed),
        State("sync_failed", prompt_sync_failed, waits_for="account_id"),
        State("exists", prompt_exists),
        State("to_switch", prompt_to_switch, handover="switch_to_api"),
        State("linked_elsewhere", prompt_linked_elsewhere, handover="multi_office"),
        State("not_released", prompt_not_released),
        State("waiting_release", prompt_waiting_release, waits_for="release_key"),
        State("not_eligible", prompt_not_eligible, final=True),
        State("done", prompt_done, final=True),
    ],
    transitions=[
        {
            "trigger": "issuer",
            "source": "choose_issuer",
            "dest": "choose_card",
            "conditions": [choose_amex],
        },
        {
            "trigger": "issuer",
            "source": "choose_issuer",
            "dest": "name",
            "conditions": [choose_jcb],
        },
        {"trigger": "card", "source": "choose_card", "dest": "name", "conditions": [choose_card]},
        {"trigger": "named", "source": "name", "dest": "consent", "conditions": [register_account]},
        {
            "trigger": "named",
            "source": "name",
            "dest": "linked_elsewhere",
            "conditions": [refused("card_already_linked")],  # R5/R14
        },
        {
            "trigger": "named",
            "source": "name",
            "dest": "exists",
            "conditions": [refused("account_exists_for_card")],  # R12
        },
        {
            "trigger": "named",
            "source": "name",
            "dest": "not_eligible",
            "conditions": [refused("card_not_eligible")],  # R1
        },
        {
            "trigger": "named",
            "source": "name",
            "dest": "not_released",
            "conditions": [refused("api_not_released")],  # R3/R4
        },
        *consent_transitions(authorize_again),
        {
            "trigger": "switch",
            "source": ["failed", "exists"],
            "dest": "to_switch",
            "conditions": [give_up_new_account],
        },
        *first_sync_transitions(),
        {
            "trigger": "notify",
            "source": ["not_released", "choose_issuer"],
            "dest": "waiting_release",
            "conditions": [keep_office_key],
        },
        {
            "trigger": "released",
            "source": "waiting_release",
            "dest": "choose_issuer",
            "conditions": [reload_office],
        },
    ],
    event_triggers={
        **LINKING_EVENTS,
        "office.api_released": "released",
    },
)
