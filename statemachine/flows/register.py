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
)
from statemachine.flows.common import consent_link, store_authorization
from statemachine.flows.consent import (
    LINKING_EVENTS,
    STARTED,
    SYNCED,
    authorize_again,
    consent_part,
    say_failure,
)
from statemachine.port import AccountInfo, BackendRefusal, BackendUnavailable, CardInfo

ID = "register"
ISSUERS = (Issuer.AMEX, Issuer.JCB)
OTHER_CARD = "other"


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
async def choose_issuer(turn: Turn, given: Given) -> str:
    """Only a released issuer (R3/R4). Amex links one card per account (R5, R13): the
    office's cards still unsynced are listed; for JCB the MyJCB ID chosen at the issuer
    decides the cards (R6, R9), so none is chosen here."""
    if given.value not in ISSUERS or given.value not in turn.slots.get("released", []):
        return STAY
    issuer = Issuer(given.value)
    turn.slots["issuer"] = issuer
    turn.slots.pop("just_released", None)
    if issuer == Issuer.JCB:
        turn.slots["card_id"] = None
        return issuer
    assert turn.office_id is not None
    synced = {a.card.id for a in await turn.backend.accounts(turn.office_id) if a.card}
    cards = [
        c
        for c in await turn.backend.office_cards(turn.office_id)
        # R1: only eligible cards; R12: a card this office syncs is switched, not added.
        if c.issuer == Issuer.AMEX and c.api_eligible and c.id not in synced
    ]
    turn.slots["cards"] = [_card_slot(c) for c in cards]
    return issuer


async def choose_card(turn: Turn, given: Given) -> str:
    wanted = given.value
    if wanted == OTHER_CARD:
        turn.slots["card_id"] = None  # chosen on the issuer's card page (R13: one card)
        turn.slots["card"] = None
        return NEXT
    card = next((c for c in turn.slots.get("cards", []) if c["id"] == wanted), None)
    if card is None:
        return STAY
    turn.slots["card_id"] = wanted
    turn.slots["card"] = card
    return NEXT


async def register_account(turn: Turn, given: Given) -> str:
    """R11: the back end creates the account and answers the issuer's authorization URL.

    It checks the rollout (R3/R4), the card's eligibility (R1), its links (R5/R14) and
    the office's other accounts (R12) first; its refusals are outcomes of this step.
    """
    assert turn.office_id is not None
    name = given.value.strip()  # empty: the back end names it "<issuer> API"
    card_id = turn.slots.get("card_id") or None
    issuer = Issuer(turn.slots["issuer"])
    draft = await _draft_account(turn, issuer, card_id)
    try:
        if draft is not None:
            # A registration begun before (gone back, retried, or cancelled) and never
            # consented: authorize that account again instead of leaving a second one.
            started = await turn.backend.reauthorize(draft.id, return_url=turn.return_url)
        else:
            started = await turn.backend.register_api_account(
                turn.office_id, issuer, name, card_id=card_id, return_url=turn.return_url
            )
    except BackendRefusal as refusal:
        if refusal.details.get("account_id"):
            # R12: the existing account of this card, for switch_to_api to take over.
            turn.slots["existing_account_id"] = str(refusal.details["account_id"])
        if refusal.code == RefusalCode.API_NOT_RELEASED:
            turn.slots["unreleased"] = [issuer]  # R3: withdrawn since the issuer was offered
        raise
    turn.slots["account_id"] = started.account_id
    store_authorization(turn, started)
    turn.slots["account_name"] = draft.name if draft is not None else name
    if not turn.slots["account_name"]:
        # The back end chose the name; not knowing it is no reason to lose the account.
        with contextlib.suppress(BackendUnavailable):
            turn.slots["account_name"] = (await turn.backend.account(started.account_id)).name
    return STARTED


async def _draft_account(turn: Turn, issuer: str, card_id: str | None) -> AccountInfo | None:
    """This office's API account of the issuer (and card) that never got its consent."""
    assert turn.office_id is not None
    for account in await turn.backend.accounts(turn.office_id):
        never_linked = (
            account.sync_method == SyncMethod.API
            and account.status == AccountStatus.NEEDS_REAUTH
            and account.link_status is None
        )
        same_card = (account.card.id if account.card else None) == card_id
        if never_linked and account.issuer == issuer and same_card:
            return account
    return None


async def give_up_new_account(turn: Turn, given: Given) -> str:
    """R12: the card is synced by an account already; the empty new one is removed.

    It never linked (the issuer's consent was refused), so no Amex link holds the card
    (R10). Deleting needs an administrator; a member archives it instead.
    """
    if (
        turn.state == "failed"
        and turn.slots.get("error_code") != RefusalCode.ACCOUNT_EXISTS_FOR_CARD
    ):
        return STAY  # only offered when the card turned out to be synced here already
    new_account = str(turn.slots.get("account_id") or "")
    if new_account:
        removed = True
        try:
            await turn.backend.delete_account(new_account)
        except BackendRefusal:
            try:
                await turn.backend.archive_account(new_account)
            except BackendRefusal:
                removed = False
        turn.slots["removed_account"] = removed
    existing = turn.slots.pop("existing_account_id", None)
    if existing:
        turn.slots["account_id"] = existing
    else:
        turn.slots.pop("account_id", None)
    return NEXT


async def abandon(turn: Turn) -> None:
    """R11: cancelled before the issuer's consent, the new account goes with it.

    The back end removes only an account that never had a link, so one linked already
    (consented, waiting for its first sync) stays, and so does an existing account of the
    card (R12)."""
    account_id = str(turn.slots.get("account_id") or "")
    if account_id and turn.state in ("consent", "failed"):
        await turn.backend.abandon_registration(account_id)


async def wait_for_release(turn: Turn, given: Given) -> str:
    turn.slots["release_key"] = f"office:{turn.office_id}"
    return NEXT


async def reload_office(turn: Turn, given: Given) -> str:
    await _load_office(turn)
    turn.slots["just_released"] = True
    return "released" if turn.slots["released"] else STAY


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
    issuer = str(turn.slots.get("issuer") or Issuer.AMEX)
    turn.say(f"{ID}.ask_name", choice("named:", f"{ID}.default_name.{issuer}"))


def prompt_consent(turn: Turn) -> None:
    if turn.slots.get("issuer") == Issuer.JCB:
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


def prompt_failed(turn: Turn) -> None:
    say_failure(turn)
    code = turn.slots.get("error_code")
    buttons = [choice("again", "common_flow.try_again")]
    if code == RefusalCode.ACCOUNT_EXISTS_FOR_CARD:
        buttons.insert(0, choice("switch", f"{ID}.switch_instead"))  # R12
    turn.say(f"{ID}.try_again", *buttons)


def prompt_exists(turn: Turn) -> None:
    turn.say_refusal(RefusalCode.ACCOUNT_EXISTS_FOR_CARD)
    turn.say(f"{ID}.offer_switch", choice("switch", f"{ID}.switch_instead"))


def prompt_to_switch(turn: Turn) -> None:
    if turn.slots.get("removed_account"):
        turn.say(f"{ID}.removed_unused")
    turn.say(f"{ID}.to_switch")


def prompt_linked_elsewhere(turn: Turn) -> None:
    turn.say_refusal(RefusalCode.CARD_ALREADY_LINKED)
    turn.say(f"{ID}.to_multi_office")


def prompt_not_eligible(turn: Turn) -> None:
    turn.say_refusal(RefusalCode.CARD_NOT_ELIGIBLE)


def prompt_not_released(turn: Turn) -> None:
    for issuer in turn.slots.get("unreleased") or ISSUERS:
        turn.say(f"{ID}.not_released.{issuer}")  # R3/R4
    turn.say(f"{ID}.offer_notify", choice("notify", "common_flow.notify_me"))


def prompt_waiting_release(turn: Turn) -> None:
    turn.say(f"{ID}.waiting_release")


def prompt_done(turn: Turn) -> None:
    turn.say(
        f"{ID}.done", account=turn.slots.get("account_name", ""), added=turn.slots.get("added", 0)
    )


FLOW = FlowDefinition(
    id=ID,
    initial="choose_issuer",
    start=start,
    menu_position=10,
    keywords=("register", "new account", "add a card", "新規", "登録", "口座を作", "カードを追加"),
    keyword_rank=70,
    command="register",
    states=[
        State("choose_issuer", prompt_choose_issuer),
        State("choose_card", prompt_choose_card),
        State("name", prompt_name, text_trigger="named"),
        State("exists", prompt_exists),
        State("to_switch", prompt_to_switch, handover="switch_to_api"),
        State("linked_elsewhere", prompt_linked_elsewhere, handover="multi_office"),
        State("not_released", prompt_not_released),
        State("waiting_release", prompt_waiting_release, waits_for="release_key"),
        State("not_eligible", prompt_not_eligible, final=True),
        State("done", prompt_done, final=True),
    ],
    steps=[
        Step(
            "issuer",
            "choose_issuer",
            {Issuer.AMEX: "choose_card", Issuer.JCB: "name"},
            choose_issuer,
        ),
        Step("card", "choose_card", {NEXT: "name"}, choose_card),
        Step(
            "named",
            "name",
            {
                STARTED: "consent",
                RefusalCode.CARD_ALREADY_LINKED: "linked_elsewhere",  # R5/R14
                RefusalCode.ACCOUNT_EXISTS_FOR_CARD: "exists",  # R12
                RefusalCode.CARD_NOT_ELIGIBLE: "not_eligible",  # R1
                RefusalCode.API_NOT_RELEASED: "not_released",  # R3/R4
            },
            register_account,
        ),
        Step("switch", ("failed", "exists"), {NEXT: "to_switch"}, give_up_new_account),
        Step(
            "notify", ("not_released", "choose_issuer"), {NEXT: "waiting_release"}, wait_for_release
        ),
        Step("released", "waiting_release", {"released": "choose_issuer"}, reload_office),
    ],
    parts=[
        consent_part(
            ID,
            again=authorize_again,
            consent=prompt_consent,
            failed=prompt_failed,
            first_sync={SYNCED: "done"},
        )
    ],
    event_triggers={
        **LINKING_EVENTS,
        EventType.API_RELEASED: "released",
    },
    abandon=abandon,
)
