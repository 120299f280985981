"""The consent at the issuer, one shared part of every flow that links a card.

::

    consent ──authorized / check[linked]──▶ linked ──synced / check[synced]──▶ (the flow's next)
       │  ▲                                   │
       │  └── again[started] ── failed        └── sync_failed ──▶ sync_failed
       └── authorization_failed / check[failed] ──▶ failed

The issuer's answer arrives as a back-end event (``link.created``,
``authorization.failed``); "check" asks for it by hand. A flow builds the part with
``consent_part``: its own words for the consent page, the step that starts the same
consent again, and where the first sync leads. A flow without a first sync (the
status flow's re-authentication) ends in its linked state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from backend.domain.vocabulary import EventType, RefusalCode
from statemachine.flow import (
    STAY,
    Given,
    Part,
    Prompt,
    State,
    Step,
    StepRun,
    Turn,
    choice,
    go,
)
from statemachine.flows.common import store_authorization
from statemachine.port import AuthorizationStart, EventInfo

STARTED = "started"
LINKED = "linked"
FAILED = "failed"
SYNCED = "synced"

# Back-end events of a card being linked, as the consent part names its triggers.
LINKING_EVENTS: dict[EventType, str] = {
    EventType.LINK_CREATED: "authorized",
    EventType.AUTHORIZATION_FAILED: "authorization_failed",
    EventType.SYNC_COMPLETED: "synced",
    EventType.SYNC_FAILED: "sync_failed",
}


@dataclass(frozen=True)
class Names:
    """The part's state names in a flow (the status flow names its own)."""

    consent: str = "consent"
    linked: str = "linked"
    failed: str = "failed"
    sync_failed: str = "sync_failed"


# ----------------------------------------------------------------------- steps
async def begin_consent(turn: Turn, started: AuthorizationStart) -> str:
    """Keep a started authorization for the consent step's link."""
    store_authorization(turn, started)
    return STARTED


async def authorize_again(turn: Turn, given: Given) -> str:
    """Consent again for the same account (renewed in place, never a second account)."""
    account_id = str(turn.slots["account_id"])
    started = await turn.backend.reauthorize(account_id, return_url=turn.return_url)
    return await begin_consent(turn, started)


async def switch_again(turn: Turn, given: Given) -> str:
    """Start the switch of the same account again (R12, in place)."""
    account_id = str(turn.slots["account_id"])
    started = await turn.backend.switch_to_api(account_id, return_url=turn.return_url)
    return await begin_consent(turn, started)


def _after(event: EventInfo, since: str | None) -> bool:
    if not since:
        return True
    try:
        return dt.datetime.fromisoformat(event.created_at) >= dt.datetime.fromisoformat(since)
    except ValueError:
        return True


async def _newest(turn: Turn, types: set[EventType]) -> EventInfo | None:
    """The newest event of ``types`` of the account since its consent was started."""
    account_id = str(turn.slots.get("account_id") or "")
    since = turn.slots.get("auth_started_at")
    for event in await turn.backend.events(account_id, limit=50):  # newest first
        if event.type in types and _after(event, since):
            return event
    return None


def _keep_failure(turn: Turn, payload: Mapping[str, object]) -> str:
    turn.slots["error_code"] = str(payload.get("error_code") or "unknown")
    turn.slots["stop_at_member_site"] = bool(payload.get("stop_at_member_site"))
    return FAILED


async def issuer_answer(turn: Turn, given: Given) -> str:
    """The person says they finished at the issuer: has the link, or a refusal, arrived?"""
    newest = await _newest(turn, {EventType.LINK_CREATED, EventType.AUTHORIZATION_FAILED})
    if newest is None:
        return STAY
    if newest.type == EventType.LINK_CREATED:
        return LINKED
    return _keep_failure(turn, newest.payload)


async def consent_refused(turn: Turn, given: Given) -> str:
    """The consent came back refused: keep the reason (the event's, or the newest one's)."""
    if given.payload.get("error_code"):
        return _keep_failure(turn, given.payload)
    newest = await _newest(turn, {EventType.LINK_CREATED, EventType.AUTHORIZATION_FAILED})
    if newest is None or newest.type != EventType.AUTHORIZATION_FAILED:
        return STAY
    return _keep_failure(turn, newest.payload)


def _first_sync(after_sync: Callable[[Turn], str] | None) -> tuple[StepRun, StepRun]:
    """The first sync's steps: told by its event, or asked by hand."""

    def decided(turn: Turn) -> str:
        return after_sync(turn) if after_sync is not None else SYNCED

    async def sync_reported(turn: Turn, given: Given) -> str:
        turn.slots["added"] = int(str(given.payload.get("added") or 0))
        return decided(turn)

    async def sync_result(turn: Turn, given: Given) -> str:
        """The person asks whether the first sync is done: the newest sync event says."""
        newest = await _newest(turn, {EventType.SYNC_COMPLETED})
        if newest is None:
            return STAY
        turn.slots["added"] = int(newest.payload.get("added", 0))
        return decided(turn)

    return sync_reported, sync_result


# ----------------------------------------------------------------------- words
def say_failure(turn: Turn, own_words: Mapping[RefusalCode, str] | None = None) -> None:
    """Why the consent failed (the refusal's words), and what Amex may still hold."""
    turn.say_refusal(
        str(turn.slots.get("error_code") or "unknown"),
        fallback="common_flow.authorization_failed",
        own_words=own_words,
    )
    if turn.slots.get("stop_at_member_site"):
        turn.say("common_flow.stop_leftover")  # R10/R16: Amex still holds the card


def _say_linked(flow_id: str) -> Prompt:
    def prompt(turn: Turn) -> None:
        turn.say(f"{flow_id}.linked", choice("check", "common_flow.check_sync"))

    return prompt


def _say_sync_failed(flow_id: str) -> Prompt:
    def prompt(turn: Turn) -> None:
        turn.say(f"{flow_id}.sync_failed", choice("check", "common_flow.check_sync"))

    return prompt


def _say_failed(flow_id: str) -> Prompt:
    def prompt(turn: Turn) -> None:
        say_failure(turn)
        turn.say(f"{flow_id}.try_again", choice("again", "common_flow.try_again"))

    return prompt


# ----------------------------------------------------------------------- the part
def consent_part(
    flow_id: str,
    *,
    again: StepRun,
    consent: Prompt,
    failed: Prompt | None = None,
    linked: Prompt | None = None,
    sync_failed: Prompt | None = None,
    first_sync: Mapping[str, str] | None = None,
    after_sync: Callable[[Turn], str] | None = None,
    names: Names = Names(),
) -> Part:
    """The consent part of flow ``flow_id``.

    Args:
        flow_id: Its words are the flow's (``<flow>.linked``, ``<flow>.try_again``, ...).
        again: Starts the same consent again from the failed state (answers ``started``).
        consent: The flow's words for the issuer's pages.
        failed, linked, sync_failed: The flow's own words for those states, when they
            say more than the shared ones.
        first_sync: Outcome → state once the first sync reports; None: no first sync is
            waited for, and the linked state ends the flow.
        after_sync: Decides the first sync's outcome (``synced`` when not given).
        names: The part's state names.
    """
    states = [
        State(names.consent, consent, waits_for="account_id"),
        State(names.failed, failed or _say_failed(flow_id)),
    ]
    steps = [
        go("authorized", names.consent, names.linked),
        Step("check", names.consent, {LINKED: names.linked, FAILED: names.failed}, issuer_answer),
        Step("authorization_failed", names.consent, {FAILED: names.failed}, consent_refused),
        Step("again", names.failed, {STARTED: names.consent}, again),
    ]
    if first_sync is None:
        states.append(State(names.linked, linked or _say_linked(flow_id), final=True))
        return Part(states=states, steps=steps)
    states += [
        State(names.linked, linked or _say_linked(flow_id), waits_for="account_id"),
        State(names.sync_failed, sync_failed or _say_sync_failed(flow_id), waits_for="account_id"),
    ]
    reported, asked = _first_sync(after_sync)
    waiting = (names.linked, names.sync_failed)
    steps += [
        Step("synced", waiting, first_sync, reported),
        Step("check", waiting, first_sync, asked),
        go("sync_failed", names.linked, names.sync_failed),
    ]
    return Part(states=states, steps=steps)
