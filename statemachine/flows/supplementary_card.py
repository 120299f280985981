"""supplementary_card: an Amex supplementary card synced into an account of its own (R15, R13).

choose_basic → choose_card → (asked at Amex) registered | not_registered → (member site:
カードの追加登録, then checked again) registered | cannot_check → consent (issuer pages, this
card only) → linked → done (first sync reported). No supplementary card known for the
basic card → none_known. A consent Amex gives for another card, or for several, is refused
by the back end (R15, R13) → failed: explained, with the member-site path to stop the
permission Amex keeps (R16), and tried again on the same account.
"""

from __future__ import annotations

from typing import Any

from backend.domain.vocabulary import (
    AccountStatus,
    CardRole,
    Issuer,
    LinkStatus,
    RefusalCode,
    SyncMethod,
)
from statemachine.flow import (
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
    LINKING_EVENTS,
    STARTED,
    SYNCED,
    authorize_again,
    begin_consent,
    consent_part,
)
from statemachine.port import AccountInfo, AuthorizationStart, BackendRefusal, CardInfo
from statemachine.replies import Link

ID = "supplementary_card"

# Refusals this flow explains in its own words: the person ticked the wrong card (R15).
OWN_WORDS = {
    RefusalCode.SUPPLEMENTARY_NOT_REGISTERED: f"{ID}.wrong_card",
    RefusalCode.CARD_MISMATCH: f"{ID}.wrong_card",
}


def _basic_candidate(account: AccountInfo) -> bool:
    """An Amex account of a basic card: the account a supplementary card is issued on."""
    return (
        account.issuer == Issuer.AMEX
        and account.status not in (AccountStatus.DELETED, AccountStatus.DISABLED)
        and account.card is not None
        and account.card.role != CardRole.SUPPLEMENTARY
    )


def _card_slot(card: CardInfo) -> dict[str, Any]:
    return {
        "id": card.id,
        "masked_number": card.masked_number,
        "holder_name": card.holder_name,
        "product": card.product,
    }


async def start(turn: Turn) -> None:
    assert turn.office_id is not None
    accounts = [a for a in await turn.backend.accounts(turn.office_id) if _basic_candidate(a)]
    turn.slots["accounts"] = [account_slot(a) for a in accounts]
    amex = (await turn.backend.issuer_sites()).get(Issuer.AMEX)
    member_site = amex.member_site_url if amex else ""
    turn.slots["sites"] = {
        "card_registration_url": (amex.card_registration_url if amex else None) or member_site,
        "external_services_url": (amex.external_services_url if amex else None) or member_site,
    }
    if not accounts:
        turn.state = "no_amex"


# ----------------------------------------------------------------------- steps
async def _load_supplementaries(turn: Turn) -> bool:
    """R15: the office's cards issued on the basic card; False when none is known."""
    assert turn.office_id is not None
    basic_card_id = turn.slots["basic"]["card_id"]
    cards = await turn.backend.office_cards(turn.office_id)
    found = [_card_slot(c) for c in cards if c.basic_card_id == basic_card_id]
    turn.slots["supplementaries"] = found
    turn.slots["found"] = bool(found)
    return bool(found)


async def pick_basic(turn: Turn, given: Given) -> str:
    chosen = next((a for a in turn.slots.get("accounts", []) if a["id"] == given.value), None)
    turn.slots.pop("found", None)
    if chosen is None:
        return STAY
    turn.slots.pop("looked_again", None)
    turn.slots["basic_account_id"] = chosen["id"]
    turn.slots["basic"] = chosen
    return "found" if await _load_supplementaries(turn) else "none_known"


async def look_again(turn: Turn, given: Given) -> str:
    """Ask Amex with the basic account's login which cards the ID holds (the back end
    learns cards it sees), then list the office's supplementary cards again."""
    try:
        await turn.backend.registered_cards(str(turn.slots["basic_account_id"]))
    except BackendRefusal as refusal:
        if refusal.code != RefusalCode.INVALID_STATE:
            raise
        # An API basic account cannot be asked (R2): the list still answers.
    turn.slots["looked_again"] = True
    return "found" if await _load_supplementaries(turn) else STAY


async def _ask_amex(turn: Turn) -> str:
    """R15: is the supplementary card registered to the online-service ID? Asked at Amex."""
    card_id = turn.slots["card"]["id"]
    turn.slots.pop("registration", None)
    try:
        cards = await turn.backend.registered_cards(str(turn.slots["basic_account_id"]))
    except BackendRefusal as refusal:
        if refusal.code == RefusalCode.INVALID_STATE and refusal.details.get("reason") == (
            "no_legacy_credentials"
        ):
            # R2: the basic account is on API, its issuer login is gone: nobody can ask.
            turn.slots["registration"] = "unknown"
            return "unknown"
        raise
    registered = any(c.id == card_id for c in cards)
    turn.slots["registration"] = "registered" if registered else "not_registered"
    return str(turn.slots["registration"])


async def pick_card(turn: Turn, given: Given) -> str:
    chosen = next(
        (c for c in turn.slots.get("supplementaries", []) if c["id"] == given.value), None
    )
    if chosen is None:
        turn.slots.pop("registration", None)
        return STAY
    turn.slots["card"] = chosen
    turn.slots.pop("rechecked", None)
    return await _ask_amex(turn)


async def check_again(turn: Turn, given: Given) -> str:
    """The person says the card is registered now: Amex is asked again, not believed."""
    turn.slots["rechecked"] = True
    answer = await _ask_amex(turn)
    return STAY if answer == "not_registered" else answer


def _new_account_name(turn: Turn) -> str:
    basic = turn.slots.get("basic", {})
    card = turn.slots.get("card", {})
    return f"{basic.get('name', '')} {card.get('holder_name', '')}".strip()


async def _resume_existing(turn: Turn, card_id: str) -> AuthorizationStart | None:
    """R12: the card already has its account here (e.g. created before going back):
    authorize that one instead of a second account for the same card."""
    assert turn.office_id is not None
    accounts = await turn.backend.accounts(turn.office_id)
    existing = next(
        (
            a
            for a in accounts
            if a.card is not None and a.card.id == card_id and a.status != AccountStatus.DELETED
        ),
        None,
    )
    if existing is None or existing.link_status == LinkStatus.ACTIVE:
        return None
    turn.slots["account_id"] = existing.id
    if existing.sync_method == SyncMethod.API:
        return await turn.backend.reauthorize(existing.id, return_url=turn.return_url)
    return await turn.backend.switch_to_api(existing.id, return_url=turn.return_url)


async def create_account(turn: Turn, given: Given) -> str:
    """R15: one account per card; R13: its authorization covers this card only."""
    assert turn.office_id is not None
    card_id = str(turn.slots["card"]["id"])
    try:
        start = await turn.backend.register_api_account(
            turn.office_id,
            Issuer.AMEX,
            _new_account_name(turn),
            card_id=card_id,
            return_url=turn.return_url,
        )
    except BackendRefusal as refusal:
        if refusal.code != RefusalCode.ACCOUNT_EXISTS_FOR_CARD:
            raise
        resumed = await _resume_existing(turn, card_id)
        if resumed is None:
            raise
        start = resumed
    turn.slots["account_id"] = start.account_id
    turn.slots["account_name"] = _new_account_name(turn)
    return await begin_consent(turn, start)


# ----------------------------------------------------------------------- prompts
def _card_words(turn: Turn) -> str:
    card = turn.slots.get("card", {})
    return f"{card.get('masked_number', '')} {card.get('holder_name', '')}".strip()


def _registration_link(turn: Turn) -> Link:
    url = str(turn.slots.get("sites", {}).get("card_registration_url") or "")
    return Link(url=url, label=f"{ID}.open_registration")


def prompt_choose_basic(turn: Turn) -> None:
    accounts: list[dict[str, Any]] = turn.slots.get("accounts", [])
    turn.say(f"{ID}.one_account_per_card")
    turn.say(
        f"{ID}.choose_basic",
        *[data_choice(f"pick:{a['id']}", account_label(a)) for a in accounts],
    )


def prompt_none_known(turn: Turn) -> None:
    if turn.slots.get("looked_again"):
        turn.say(f"{ID}.still_none")
    turn.say(
        f"{ID}.none_known",
        choice("look_again", f"{ID}.look_again"),
        choice("other", f"{ID}.other_account"),
        link=_registration_link(turn),
        account=turn.slots.get("basic", {}).get("name", ""),
    )


def prompt_choose_card(turn: Turn) -> None:
    cards: list[dict[str, Any]] = turn.slots.get("supplementaries", [])
    buttons = [
        data_choice(f"card:{c['id']}", f"{c['masked_number']} {c['holder_name']}".strip())
        for c in cards
    ]
    turn.say(f"{ID}.choose_card", *buttons, account=turn.slots.get("basic", {}).get("name", ""))


def prompt_not_registered(turn: Turn) -> None:
    if turn.slots.get("rechecked"):
        turn.say(f"{ID}.still_not_registered", card=_card_words(turn))
    turn.say(
        f"{ID}.not_registered",
        choice("recheck", f"{ID}.registered_it"),
        link=_registration_link(turn),
        card=_card_words(turn),
    )


def prompt_cannot_check(turn: Turn) -> None:
    turn.say(
        f"{ID}.cannot_check",
        choice("create", f"{ID}.create"),
        link=_registration_link(turn),
        card=_card_words(turn),
        account=turn.slots.get("basic", {}).get("name", ""),
    )


def prompt_registered(turn: Turn) -> None:
    turn.say(
        f"{ID}.registered",
        choice("create", f"{ID}.create"),
        card=_card_words(turn),
        name=_new_account_name(turn),
    )


def prompt_consent(turn: Turn) -> None:
    turn.say(
        f"{ID}.consent",
        choice("check", "common_flow.check"),
        link=consent_link(turn),
        card=turn.slots.get("card", {}).get("masked_number", ""),
    )


def prompt_failed(turn: Turn) -> None:
    code = str(turn.slots.get("error_code") or "unknown")
    card = turn.slots.get("card", {}).get("masked_number", "")
    turn.say_refusal(
        code, fallback="common_flow.authorization_failed", own_words=OWN_WORDS, card=card
    )
    if turn.slots.get("stop_at_member_site"):
        # R10/R16: the refused permission still holds a card at Amex until stopped there.
        url = str(turn.slots.get("sites", {}).get("external_services_url") or "")
        turn.say(f"{ID}.stop_leftover", link=Link(url=url, label=f"{ID}.open_services"))
    turn.say(f"{ID}.try_again", choice("again", "common_flow.try_again"), card=card)


def prompt_done(turn: Turn) -> None:
    turn.say(
        f"{ID}.done",
        added=turn.slots.get("added", 0),
        account=turn.slots.get("account_name", ""),
        card=turn.slots.get("card", {}).get("masked_number", ""),
    )


def prompt_no_amex(turn: Turn) -> None:
    turn.say(f"{ID}.no_amex")


FLOW = FlowDefinition(
    id=ID,
    initial="choose_basic",
    start=start,
    menu_position=40,
    keywords=("supplementary", "additional card", "family card", "追加カード", "家族カード"),
    keyword_rank=30,
    command="supplementary",
    states=[
        State("choose_basic", prompt_choose_basic),
        State("none_known", prompt_none_known),
        State("choose_card", prompt_choose_card),
        State("not_registered", prompt_not_registered),
        State("cannot_check", prompt_cannot_check),
        State("registered", prompt_registered),
        State("done", prompt_done, final=True),
        State("no_amex", prompt_no_amex, final=True),
    ],
    steps=[
        Step(
            "pick", "choose_basic", {"found": "choose_card", "none_known": "none_known"}, pick_basic
        ),
        Step("look_again", "none_known", {"found": "choose_card"}, look_again),
        go("other", "none_known", "choose_basic"),
        Step(
            "card",
            "choose_card",
            {
                "registered": "registered",
                "not_registered": "not_registered",
                "unknown": "cannot_check",
            },
            pick_card,
        ),
        Step(
            "recheck",
            "not_registered",
            {"registered": "registered", "unknown": "cannot_check"},
            check_again,
        ),
        Step("create", ("registered", "cannot_check"), {STARTED: "consent"}, create_account),
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
    },
)
