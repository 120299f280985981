"""multi_office: one Amex card synced in several offices, API-linked in one only (R14, R5).

choose_card (skipped when a handover carries the card) → choose_office (the offices
that use the card, from the back end) → [stop_at_amex: another office holds the link;
it is stopped on the Amex member site first (R16, R10)] → consent (issuer pages) →
linked → others (each other office's account: stay on legacy sync, or archive) → done.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from backend.domain.vocabulary import EventType, Issuer, RefusalCode, SyncMethod
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
from statemachine.flows.common import consent_link
from statemachine.flows.consent import (
    LINKING_EVENTS,
    STARTED,
    SYNCED,
    begin_consent,
    consent_part,
    switch_again,
)
from statemachine.offices import SHORT_ID, TOLD_APART_BY_ID
from statemachine.port import BackendRefusal, CardUseInfo
from statemachine.replies import Link

ID = "multi_office"
OTHERS_WAIT = "others_wait"


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
        if card.issuer != Issuer.AMEX:
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
async def pick_card(turn: Turn, given: Given) -> str:
    wanted = given.value
    if not any(c["id"] == wanted for c in turn.slots.get("cards", [])):
        return STAY
    return NEXT if await _select_card(turn, wanted) else STAY


async def keep_here(turn: Turn, given: Given) -> str:
    """The chosen office keeps the link: it holds it already, another office holds it
    (R14: stopped at Amex first, R16), or the switch starts here."""
    account_id = given.value or str(turn.slots.get("account_id") or "")
    card_id = str(turn.slots.get("card_id") or "")
    uses = await _uses(turn, card_id) or []  # fresh: a link may have moved meanwhile
    chosen = next((u for u in uses if u.account_id and u.account_id == account_id), None)
    if chosen is None:
        return STAY
    turn.slots["uses"] = [_use_slot(u) for u in uses]
    turn.slots["account_id"] = account_id
    turn.slots["keep_office_name"] = chosen.office_name or ""
    if chosen.api_linked:
        return "already"
    holder = next((u for u in uses if u.api_linked), None)
    if holder is not None:
        await _prepare_stop(turn, holder)
        return "stop"
    try:
        started = await turn.backend.switch_to_api(account_id, return_url=turn.return_url)
    except BackendRefusal as refusal:
        if refusal.code != RefusalCode.CARD_ALREADY_LINKED:
            raise
        # R5: linked meanwhile, or by an office this member cannot see.
        await _prepare_stop(turn, None)
        return "stop"
    return await begin_consent(turn, started)


async def _prepare_stop(turn: Turn, holder: CardUseInfo | None) -> None:
    """R16: the Amex member-site page where the holding link is stopped."""
    sites = await turn.backend.issuer_sites()
    amex = sites.get(Issuer.AMEX)
    url = (amex.external_services_url or amex.member_site_url) if amex else ""
    turn.slots["external_services_url"] = url or ""
    turn.slots["holder_account_id"] = holder.account_id if holder else None
    turn.slots["holder_office_name"] = holder.office_name if holder else None
    turn.slots.pop("still_linked", None)


async def switch_after_stop(turn: Turn, given: Given) -> str:
    """The holding link is stopped (the member site's webhook, or the person says so):
    the back end frees the card only once it knows (R5), so it decides here."""
    holder = turn.slots.get("holder_account_id")
    if holder:
        try:
            account = await turn.backend.account(str(holder))
            turn.slots["holder_link_status"] = account.link_status
        except BackendRefusal:
            turn.slots["holder_link_status"] = None  # not this member's to see
    try:
        started = await turn.backend.switch_to_api(
            str(turn.slots["account_id"]), return_url=turn.return_url
        )
    except BackendRefusal as refusal:
        # Said with the step again; still linked: the stop has not reached the back end.
        turn.slots["still_linked"] = refusal.code == RefusalCode.CARD_ALREADY_LINKED
        turn.refusal = refusal
        return STAY
    turn.slots.pop("still_linked", None)
    return await begin_consent(turn, started)


def _queue_others(turn: Turn) -> None:
    """The other offices' accounts of the card, to keep on legacy sync or archive (R14)."""
    keep = turn.slots.get("account_id")
    uses: list[dict[str, Any]] = turn.slots.get("uses", [])
    turn.slots["others"] = [u for u in uses if u["account_id"] and u["account_id"] != keep]
    turn.slots["hidden_others"] = sum(1 for u in uses if not u["account_id"])
    turn.slots["outcomes"] = []
    turn.slots.pop("last_outcome", None)


def after_sync(turn: Turn) -> str:
    """The first sync finished: other offices' accounts of the card wait for a decision."""
    _queue_others(turn)
    return OTHERS_WAIT if turn.slots["others"] else SYNCED


async def next_after_link(turn: Turn, given: Given) -> str:
    _queue_others(turn)
    return OTHERS_WAIT if turn.slots["others"] else NEXT


async def _settle(turn: Turn, action: str) -> str:
    """Carry out the person's choice for the first queued account."""
    others: list[dict[str, Any]] = turn.slots.get("others", [])
    if not others:
        return "settled"
    current = others[0]
    if action == "archive":
        # The back end refuses while an unstopped link remains (R10/R16).
        await turn.backend.archive_account(str(current["account_id"]))
    if action == "legacy" and current.get("sync_method") == SyncMethod.API:
        action = "kept"
    outcome = {"office_name": current["office_name"], "action": action}
    turn.slots["others"] = others[1:]
    turn.slots["outcomes"] = [*turn.slots.get("outcomes", []), outcome]
    turn.slots["last_outcome"] = outcome
    return "more" if turn.slots["others"] else "settled"


async def archive_other(turn: Turn, given: Given) -> str:
    return await _settle(turn, "archive")


async def leave_other(turn: Turn, given: Given) -> str:
    return await _settle(turn, "legacy")


# ----------------------------------------------------------------------- prompts
def prompt_choose_card(turn: Turn) -> None:
    cards: list[dict[str, Any]] = turn.slots.get("cards", [])
    turn.say(
        f"{ID}.choose_card", *[data_choice(f"pick:{c['id']}", c["masked_number"]) for c in cards]
    )


def _use_key(use: dict[str, Any]) -> str:
    kind = (
        "holder"
        if use["api_linked"]
        else "api"
        if use["sync_method"] == SyncMethod.API
        else "legacy"
    )
    if use["sync_method"] == SyncMethod.UPLOAD:
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
    stopped = current.get("sync_method") == SyncMethod.API
    turn.say(
        f"{ID}.more.other_account_stopped" if stopped else f"{ID}.other_account",
        choice("leave", f"{ID}.more.leave_as_is" if stopped else f"{ID}.leave"),
        choice("archive", f"{ID}.archive"),
        office=current.get("office_name", ""),
    )


def prompt_not_released(turn: Turn) -> None:
    turn.say_refusal(RefusalCode.API_NOT_RELEASED, issuer=Issuer.AMEX)
    turn.say(f"{ID}.pick_another", choice("other_office", f"{ID}.other_office"))


def prompt_not_eligible(turn: Turn) -> None:
    turn.say_refusal(RefusalCode.CARD_NOT_ELIGIBLE)


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
    menu_position=30,
    keywords=(
        "several offices",
        "multiple offices",
        "two offices",
        "other office",
        "複数の事業所",
        "別の事業所",
        "二つの事業所",
        "2つの事業所",
    ),
    keyword_rank=40,
    command="multi",
    states=[
        State("choose_card", prompt_choose_card),
        State("choose_office", prompt_choose_office),
        State("stop_at_amex", prompt_stop_at_amex, waits_for="holder_account_id"),
        State("already_kept", prompt_already),
        State("others", prompt_others),
        State("not_released", prompt_not_released),
        State("not_eligible", prompt_not_eligible, final=True),
        State("no_shared_card", prompt_no_shared_card, final=True),
        State("done", prompt_done, final=True),
    ],
    steps=[
        Step("pick", "choose_card", {NEXT: "choose_office"}, pick_card),
        Step(
            "keep",
            "choose_office",
            {
                STARTED: "consent",
                "already": "already_kept",
                "stop": "stop_at_amex",  # R14 → R16
                RefusalCode.API_NOT_RELEASED: "not_released",  # R3/R4
                RefusalCode.CARD_NOT_ELIGIBLE: "not_eligible",  # R1
            },
            keep_here,
        ),
        go("other_office", "not_released", "choose_office"),
        # R16: the member site's stop reaches the back end as link.revoked of the holder.
        Step("holder_stopped", "stop_at_amex", {STARTED: "consent"}, switch_after_stop),
        Step("stopped", "stop_at_amex", {STARTED: "consent"}, switch_after_stop),
        Step(
            "next",
            ("already_kept", "sync_failed"),
            {OTHERS_WAIT: "others", NEXT: "done"},
            next_after_link,
        ),
        # Each settles the first queued account; after the last, the flow is done.
        Step("archive", "others", {"more": SAME, "settled": "done"}, archive_other),
        Step("leave", "others", {"more": SAME, "settled": "done"}, leave_other),
    ],
    parts=[
        consent_part(
            ID,
            again=switch_again,
            consent=prompt_consent,
            linked=prompt_linked,
            sync_failed=prompt_sync_failed,
            first_sync={SYNCED: "done", OTHERS_WAIT: "others"},
            after_sync=after_sync,
        )
    ],
    event_triggers={
        EventType.LINK_REVOKED: "holder_stopped",
        **LINKING_EVENTS,
    },
)
