"""multi_office: one Amex card synced in several offices, API-linked in one only (R14, R5).

choose_card (skipped when a handover carries the card) → choose_office (the offices
that use the card, from the back end) → [stop_at_amex: another office holds the link;
it is stopped on the Amex member site first (R16, R10)] → consent (issuer pages) →
linked → others (each other office's account: stay on legacy sync, or archive) → done.
"""

from __future__ import annotations

from collections import Counter
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
    consent_link,
    consent_transitions,
    first_sync_result,
    store_authorization,
    store_sync_result,
    switch_again,
)
from statemachine.offices import SHORT_ID, TOLD_APART_BY_ID
from statemachine.port import BackendRefusal, CardUseInfo
from statemachine.replies import Link

ID = "multi_office"

KNOWN_REFUSALS = {
    *BINDING_REFUSALS,
    "card_already_linked",
    "one_card_per_authorization",
    "supplementary_not_registered",
    "card_mismatch",
    "card_not_eligible",
}


def _use_slot(use: CardUseInfo) -> dict[str, Any]:
    return {
        "account_id": use.account_id,
        "office_id": use.office_id,
        "office_name": use.office_name,
        "sync_method": use.sync_method,
        "api_linked": use.api_linked,
    }


async def _uses(turn: Turn, card_id: str) -> list[CardUseInfo] | None:
    """R14: every office that syncs the card, asked of this office or, when it has no
    account of the card (a card met in another flow), of the member's other offices."""
    assert turn.office_id is not None
    try:
        return await turn.backend.card_uses(turn.office_id, card_id)
    except BackendRefusal:
        pass
    for office in await turn.backend.offices():
        if office.id == turn.office_id:
            continue
        try:
            return await turn.backend.card_uses(office.id, card_id)
        except BackendRefusal:
            continue
    return None


async def _masked(turn: Turn, card_id: str, uses: list[CardUseInfo]) -> str:
    assert turn.office_id is not None
    for card in await turn.backend.office_cards(turn.office_id):
        if card.id == card_id:
            return card.masked_number
    for use in uses:
        if use.account_id:
            account = await turn.backend.account(use.account_id)
            if account.card is not None:
                return account.card.masked_number
    return ""


async def _select_card(turn: Turn, card_id: str) -> bool:
    uses = await _uses(turn, card_id)
    if not uses:
        return False
    turn.slots["card_id"] = card_id
    turn.slots["masked_number"] = await _masked(turn, card_id, uses)
    turn.slots["uses"] = [_use_slot(u) for u in uses]
    return True


def _carried_card(slots: dict[str, Any]) -> str:
    """The card a handover brings (register: card_id; switch_to_api: its account)."""
    if slots.get("card_id"):
        return str(slots["card_id"])
    account = slots.get("account")
    if isinstance(account, dict) and account.get("card_id"):
        return str(account["card_id"])
    return ""


async def start(turn: Turn) -> None:
    assert turn.office_id is not None
    carried = turn.slots
    card_id = _carried_card(carried)
    if not card_id and carried.get("account_id"):
        account = await turn.backend.account(str(carried["account_id"]))
        card_id = account.card.id if account.card else ""
    turn.slots = {}  # what another flow left behind has no meaning here
    if card_id and await _select_card(turn, card_id):
        turn.slots["from_handover"] = True
        turn.state = "choose_office"
        return
    shared = []
    for card in await turn.backend.office_cards(turn.office_id):
        if card.issuer != "amex":
            continue  # R14 is an Amex rule: a JCB link follows the MyJCB ID (R6)
        try:
            uses = await turn.backend.card_uses(turn.office_id, card.id)
        except BackendRefusal:
            continue  # e.g. a supplementary card no account of this office syncs
        if len(uses) >= 2:
            shared.append({"id": card.id, "masked_number": card.masked_number})
    turn.slots["cards"] = shared
    if not shared:
        turn.state = "no_shared_card"


# ----------------------------------------------------------------------- steps
async def pick_card(event: EventData) -> bool:
    turn = turn_of(event)
    wanted = value_of(event)
    if not any(c["id"] == wanted for c in turn.slots.get("cards", [])):
        return False
    return await _select_card(turn, wanted)


async def keep_here(event: EventData) -> bool:
    """The chosen office keeps the link: route the request, and start the switch if free.

    Sets ``route`` for the transitions after this one: ``already`` (it holds the link),
    ``stop`` (another office holds it: R14 → stop at Amex first, R16).
    """
    turn = turn_of(event)
    turn.slots["route"] = ""
    account_id = value_of(event) or str(turn.slots.get("account_id") or "")
    card_id = str(turn.slots.get("card_id") or "")
    uses = await _uses(turn, card_id) or []  # fresh: a link may have moved meanwhile
    chosen = next((u for u in uses if u.account_id and u.account_id == account_id), None)
    if chosen is None:
        return False
    turn.slots["uses"] = [_use_slot(u) for u in uses]
    turn.slots["account_id"] = account_id
    turn.slots["keep_office_name"] = chosen.office_name or ""
    if chosen.api_linked:
        turn.slots["route"] = "already"
        return False
    holder = next((u for u in uses if u.api_linked), None)
    if holder is not None:
        await _prepare_stop(turn, holder)
        return False
    started = await turn.attempt(turn.backend.switch_to_api(account_id, return_url=turn.return_url))
    if started is None:
        if turn.refusal is not None and turn.refusal.code == "card_already_linked":
            # R5: linked meanwhile, or by an office this member cannot see.
            await _prepare_stop(turn, None)
        return False
    store_authorization(turn, started)
    return True


async def _prepare_stop(turn: Turn, holder: CardUseInfo | None) -> None:
    """R16: the Amex member-site page where the holding link is stopped."""
    sites = await turn.backend.issuer_sites()
    amex = sites.get("amex")
    url = (amex.external_services_url or amex.member_site_url) if amex else ""
    turn.slots["route"] = "stop"
    turn.slots["external_services_url"] = url or ""
    turn.slots["holder_account_id"] = holder.account_id if holder else None
    turn.slots["holder_office_name"] = holder.office_name if holder else None
    turn.slots.pop("still_linked", None)


async def switch_after_stop(event: EventData) -> bool:
    """The holding link is stopped (the member site's webhook, or the person says so):
    the back end frees the card only once it knows (R5), so it decides here."""
    turn = turn_of(event)
    holder = turn.slots.get("holder_account_id")
    if holder:
        account = await turn.attempt(turn.backend.account(str(holder)))
        turn.slots["holder_link_status"] = account.link_status if account else None
    started = await turn.attempt(
        turn.backend.switch_to_api(str(turn.slots["account_id"]), return_url=turn.return_url)
    )
    if started is None:
        turn.slots["still_linked"] = bool(
            turn.refusal is not None and turn.refusal.code == "card_already_linked"
        )
        return False
    turn.slots.pop("still_linked", None)
    store_authorization(turn, started)
    return True


def _queue_others(turn: Turn) -> None:
    """The other offices' accounts of the card, to keep on legacy sync or archive (R14)."""
    keep = turn.slots.get("account_id")
    uses: list[dict[str, Any]] = turn.slots.get("uses", [])
    turn.slots["others"] = [u for u in uses if u["account_id"] and u["account_id"] != keep]
    turn.slots["hidden_others"] = sum(1 for u in uses if not u["account_id"])
    turn.slots["outcomes"] = []
    turn.slots.pop("last_outcome", None)


async def synced_with_others(event: EventData) -> bool:
    """The first sync finished (its event); other offices' accounts wait for a decision."""
    await store_sync_result(event)
    return _others_wait(turn_of(event))


async def checked_with_others(event: EventData) -> bool:
    """The person asks: the first sync finished, and other offices' accounts wait."""
    return await first_sync_result(event) and _others_wait(turn_of(event))


async def others_wait(event: EventData) -> bool:
    return _others_wait(turn_of(event))


def _others_wait(turn: Turn) -> bool:
    _queue_others(turn)
    return bool(turn.slots["others"])


async def _settle(event: EventData, action: str) -> bool:
    """Carry out the person's choice for the first queued account; True while more wait."""
    turn = turn_of(event)
    others: list[dict[str, Any]] = turn.slots.get("others", [])
    if not others:
        return False
    current = others[0]
    if action == "archive":
        # The back end refuses while an unstopped link remains (R10/R16).
        archived = await turn.attempt(turn.backend.archive_account(str(current["account_id"])))
        if archived is None:
            return False
    if action == "legacy" and current.get("sync_method") == "api":
        action = "kept"
    outcome = {"office_name": current["office_name"], "action": action}
    turn.slots["others"] = others[1:]
    turn.slots["outcomes"] = [*turn.slots.get("outcomes", []), outcome]
    turn.slots["last_outcome"] = outcome
    return bool(turn.slots["others"])


async def archive_other(event: EventData) -> bool:
    return await _settle(event, "archive")


async def leave_other(event: EventData) -> bool:
    return await _settle(event, "legacy")


async def all_settled(event: EventData) -> bool:
    """Runs after archive_other/leave_other: the last account was just settled."""
    turn = turn_of(event)
    return turn.refusal is None and not turn.slots.get("others")


# ----------------------------------------------------------------------- prompts
def prompt_choose_card(turn: Turn) -> None:
    cards: list[dict[str, Any]] = turn.slots.get("cards", [])
    turn.say(
        f"{ID}.choose_card", *[data_choice(f"pick:{c['id']}", c["masked_number"]) for c in cards]
    )


def _use_key(use: dict[str, Any]) -> str:
    kind = "holder" if use["api_linked"] else "api" if use["sync_method"] == "api" else "legacy"
    if use["sync_method"] == "upload":
        kind = "upload"
    return f"{ID}.use{'' if use['office_name'] else '_hidden'}.{kind}"


def _say_uses(turn: Turn) -> None:
    turn.say(f"{ID}.uses", masked=turn.slots.get("masked_number", ""))
    for use in turn.slots.get("uses", []):
        turn.say(_use_key(use), office=use["office_name"] or "")


def prompt_choose_office(turn: Turn) -> None:
    if turn.slots.get("from_handover"):
        turn.say(f"{ID}.from_handover")
    _say_uses(turn)
    uses: list[dict[str, Any]] = [u for u in turn.slots.get("uses", []) if u["account_id"]]
    names = Counter(str(u["office_name"] or "").strip().casefold() for u in uses)
    buttons = [
        # Two offices of one name: the start of each office's id tells them apart.
        choice(
            f"keep:{u['account_id']}",
            TOLD_APART_BY_ID,
            name=u["office_name"],
            ref=str(u["office_id"] or "")[:SHORT_ID],
        )
        if names[str(u["office_name"] or "").strip().casefold()] > 1
        else data_choice(f"keep:{u['account_id']}", u["office_name"])
        for u in uses
    ]
    turn.say(f"{ID}.choose_office", *buttons)


def prompt_stop_at_amex(turn: Turn) -> None:
    if turn.slots.get("still_linked"):
        turn.say(f"{ID}.still_linked")
    holder = turn.slots.get("holder_office_name")
    if holder:
        turn.say(f"{ID}.held_by", office=holder)
    else:
        turn.say(f"{ID}.held_elsewhere")
    link_url = str(turn.slots.get("external_services_url") or "")
    turn.say(
        f"{ID}.stop_steps",
        choice("stopped", f"{ID}.stopped"),
        link=Link(url=link_url, label=f"{ID}.open_member_site") if link_url else None,
        office=turn.slots.get("keep_office_name", ""),
    )


def prompt_consent(turn: Turn) -> None:
    turn.say(
        f"{ID}.consent",
        choice("check", "common_flow.check"),
        link=consent_link(turn),
        office=turn.slots.get("keep_office_name", ""),
        masked=turn.slots.get("masked_number", ""),
    )


def prompt_already(turn: Turn) -> None:
    turn.say(
        f"{ID}.already_kept",
        choice("next", f"{ID}.next"),
        office=turn.slots.get("keep_office_name", ""),
    )


def prompt_linked(turn: Turn) -> None:
    turn.say(
        f"{ID}.linked",
        choice("check", "common_flow.check_sync"),
        office=turn.slots.get("keep_office_name", ""),
    )


def prompt_sync_failed(turn: Turn) -> None:
    turn.say(
        f"{ID}.sync_failed", choice("check", "common_flow.check_sync"), choice("next", f"{ID}.next")
    )


def prompt_failed(turn: Turn) -> None:
    code = str(turn.slots.get("error_code") or "unknown")
    turn.say(f"refusal.{code}" if code in KNOWN_REFUSALS else "common_flow.authorization_failed")
    if turn.slots.get("stop_at_member_site"):
        turn.say("common_flow.stop_leftover")  # R10/R16
    turn.say(f"{ID}.try_again", choice("again", "common_flow.try_again"))


def _say_outcome(turn: Turn, outcome: dict[str, Any]) -> None:
    action = outcome["action"]
    key = f"{ID}.more.kept" if action == "kept" else f"{ID}.outcome.{action}"
    turn.say(key, office=outcome["office_name"])


def prompt_others(turn: Turn) -> None:
    last = turn.slots.get("last_outcome")
    if last:
        _say_outcome(turn, last)
    current = (turn.slots.get("others") or [{}])[0]
    # A former holder is an API account whose link was stopped: it has no ID/password
    # left to sync with (R2), so it can only stay as it is or be archived.
    stopped = current.get("sync_method") == "api"
    turn.say(
        f"{ID}.more.other_account_stopped" if stopped else f"{ID}.other_account",
        choice("leave", f"{ID}.more.leave_as_is" if stopped else f"{ID}.leave"),
        choice("archive", f"{ID}.archive"),
        office=current.get("office_name", ""),
    )


def prompt_not_released(turn: Turn) -> None:
    turn.say("refusal.api_not_released", issuer="amex")
    turn.say(f"{ID}.pick_another", choice("other_office", f"{ID}.other_office"))


def prompt_not_eligible(turn: Turn) -> None:
    turn.say("refusal.card_not_eligible")


def prompt_no_shared_card(turn: Turn) -> None:
    turn.say(f"{ID}.no_shared_card")


def prompt_done(turn: Turn) -> None:
    if "added" in turn.slots:
        turn.say(
            f"{ID}.done",
            office=turn.slots.get("keep_office_name", ""),
            added=turn.slots.get("added", 0),
        )
    else:
        turn.say(f"{ID}.done_already", office=turn.slots.get("keep_office_name", ""))
    for outcome in turn.slots.get("outcomes", []):
        _say_outcome(turn, outcome)
    if turn.slots.get("hidden_others"):
        turn.say(f"{ID}.hidden_others")


FLOW = FlowDefinition(
    id=ID,
    initial="choose_card",
    start=start,
    states=[
        State("choose_card", prompt_choose_card),
        State("choose_office", prompt_choose_office),
        State("stop_at_amex", prompt_stop_at_amex, waits_for="holder_account_id"),
        State("consent", prompt_consent, waits_for="account_id"),
        State("linked", prompt_linked, waits_for="account_id"),
        State("sync_failed", prompt_sync_failed, waits_for="account_id"),
        State("failed", prompt_failed),
        State("already_kept", prompt_already),
        State("others", prompt_others),
        State("not_released", prompt_not_released),
        State("not_eligible", prompt_not_eligible, final=True),
        State("no_shared_card", prompt_no_shared_card, final=True),
        State("done", prompt_done, final=True),
    ],
    transitions=[
        {
            "trigger": "pick",
            "source": "choose_card",
            "dest": "choose_office",
            "conditions": [pick_card],
        },
        # keep_here runs first and routes; the transitions after it only read its result.
        {
            "trigger": "keep",
            "source": "choose_office",
            "dest": "consent",
            "conditions": [keep_here],
        },
        {
            "trigger": "keep",
            "source": "choose_office",
            "dest": "already_kept",
            "conditions": [slot_is("route", "already")],
        },
        {
            "trigger": "keep",
            "source": "choose_office",
            "dest": "stop_at_amex",
            "conditions": [slot_is("route", "stop")],  # R14 → R16
        },
        {
            "trigger": "keep",
            "source": "choose_office",
            "dest": "not_released",
            "conditions": [refused("api_not_released")],  # R3/R4
        },
        {
            "trigger": "keep",
            "source": "choose_office",
            "dest": "not_eligible",
            "conditions": [refused("card_not_eligible")],  # R1
        },
        {"trigger": "other_office", "source": "not_released", "dest": "choose_office"},
        # R16: the member site's stop reaches the back end as link.revoked of the holder.
        {
            "trigger": "holder_stopped",
            "source": "stop_at_amex",
            "dest": "consent",
            "conditions": [switch_after_stop],
        },
        {
            "trigger": "stopped",
            "source": "stop_at_amex",
            "dest": "consent",
            "conditions": [switch_after_stop],
        },
        *consent_transitions(switch_again),
        {
            "trigger": "synced",
            "source": ["linked", "sync_failed"],
            "dest": "others",
            "conditions": [synced_with_others],
        },
        {
            "trigger": "synced",
            "source": ["linked", "sync_failed"],
            "dest": "done",
            "conditions": [store_sync_result],
        },
        {
            "trigger": "check",
            "source": ["linked", "sync_failed"],
            "dest": "others",
            "conditions": [checked_with_others],
        },
        {
            "trigger": "check",
            "source": ["linked", "sync_failed"],
            "dest": "done",
            "conditions": [first_sync_result],
        },
        {"trigger": "sync_failed", "source": "linked", "dest": "sync_failed"},
        {
            "trigger": "next",
            "source": ["already_kept", "sync_failed"],
            "dest": "others",
            "conditions": [others_wait],
        },
        {"trigger": "next", "source": ["already_kept", "sync_failed"], "dest": "done"},
        # Each settles the first queued account; the second transition ends after the last.
        {"trigger": "archive", "source": "others", "dest": "others", "conditions": [archive_other]},
        {"trigger": "archive", "source": "others", "dest": "done", "conditions": [all_settled]},
        {"trigger": "leave", "source": "others", "dest": "others", "conditions": [leave_other]},
        {"trigger": "leave", "source": "others", "dest": "done", "conditions": [all_settled]},
    ],
    event_triggers={
        "link.revoked": "holder_stopped",
        **LINKING_EVENTS,
    },
)
