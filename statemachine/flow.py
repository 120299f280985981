"""How a guided flow is written: states with prompts, transitions with back-end checks.

A flow's transitions follow ``transitions``' dictionaries. Conditions and ``before``
callbacks are ``async def step(event: EventData) -> bool`` (the machine sends the
event); they make the back-end calls, because ``transitions`` changes the state
before ``on_enter`` runs, and a failure there would leave the conversation in a state
it never reached. Prompts only read slots: they render, and never call anything.

The asynchronous machine runs all conditions of one transition together (gathered),
not one after the other: a guard next to a back-end call does not stop the call. Put at
most one step with side effects in a transition, and order alternatives as separate
transitions of the same trigger (they are tried in order).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from transitions import EventData

from statemachine.port import BackendPort, BackendRefusal
from statemachine.replies import Choice, Link, Reply

Prompt = Callable[["Turn"], None]
Step = Callable[[EventData], Awaitable[bool]]

# Every step also offers these (values the engine handles itself).
NAVIGATION = ("help", "back", "restart", "cancel", "handoff")


@dataclass(frozen=True)
class State:
    """One step of a flow.

    Attributes:
        name: The state's name (also the analytics step).
        prompt: Renders what the assistant says on arriving here.
        final: The flow is complete once here.
        text_trigger: Free text typed in this step fires this trigger (``value=text``).
        secret: Typed text here is a password: never kept in the transcript.
        waits_for: Slot holding what this step waits for: an account id (its back-end
            events advance the step), or a full key such as ``office:<id>``.
        handover: Arriving here starts this other flow, carrying the slots over.
    """

    name: str
    prompt: Prompt
    final: bool = False
    text_trigger: str | None = None
    secret: bool = False
    waits_for: str | None = None
    handover: str | None = None


@dataclass(frozen=True)
class FlowDefinition:
    """A procedure of the seed as a state machine."""

    id: str
    states: Sequence[State]
    transitions: Sequence[dict[str, Any]]
    initial: str
    start: Callable[[Turn], Awaitable[None]] | None = None
    # Back-end event type → trigger fired in the waiting conversation.
    event_triggers: dict[str, str] = field(default_factory=dict)

    def state(self, name: str) -> State:
        for state in self.states:
            if state.name == name:
                return state
        raise KeyError(name)


class Turn:
    """The model a flow's machine acts on for one turn of one conversation."""

    def __init__(
        self,
        *,
        conversation_id: str,
        user: str,
        locale: str,
        office_id: str | None,
        state: str,
        slots: dict[str, Any],
        backend: BackendPort,
    ) -> None:
        self.conversation_id = conversation_id
        self.user = user
        self.locale = locale
        self.office_id = office_id
        self.state = state
        self.slots = slots
        self.backend = backend
        self.replies: list[Reply] = []
        self.refusal: BackendRefusal | None = None

    @property
    def return_url(self) -> str:
        """Where the issuer's callback page sends the person: back into this conversation."""
        return f"/chat?conversation={self.conversation_id}"

    def say(
        self,
        key: str,
        *choices: Choice,
        link: Link | None = None,
        **params: Any,
    ) -> None:
        self.replies.append(Reply(key=key, params=params, choices=tuple(choices), link=link))

    async def attempt(self, call: Awaitable[Any]) -> Any:
        """Run a back-end call; a refusal is kept on the turn and answers None."""
        try:
            self.refusal = None
            return await call
        except BackendRefusal as refusal:
            self.refusal = refusal
            return None


def turn_of(event: EventData) -> Turn:
    model = event.model
    assert isinstance(model, Turn)
    return model


def value_of(event: EventData) -> str:
    return str(event.kwargs.get("value") or "")


def refused(*codes: str) -> Step:
    """A condition: the previous back-end call of this turn was refused with one of ``codes``."""

    async def condition(event: EventData) -> bool:
        refusal = turn_of(event).refusal
        return refusal is not None and refusal.code in codes

    condition.__name__ = "refused_" + "_or_".join(codes)
    return condition


def slot_is(name: str, expected: Any) -> Step:
    async def condition(event: EventData) -> bool:
        return bool(turn_of(event).slots.get(name) == expected)

    condition.__name__ = f"{name}_is_{expected}"
    return condition


def choice(value: str, label: str, **params: Any) -> Choice:
    return Choice(value=value, label=label, params=params)


def data_choice(value: str, text: str) -> Choice:
    """A button whose label is data (an account or office name), shown as it is."""
    return Choice(value=value, text=text)
