"""How a guided flow is written: states with prompts, steps with outcomes, a table between.

A flow is one module holding ``FLOW``, a ``FlowDefinition``: its states (each with a
prompt that only reads slots and says catalog keys), and its steps. A ``Step`` is what
one trigger does from its source states: its ``run`` is called once, makes the back-end
calls it needs through the turn's port, and returns an outcome (a short name); the
step's ``outcomes`` table says which state follows each outcome. The engine fires the
trigger on the flow's ``transitions`` machine with that outcome, so the machine, its
diagram and the table are one and the same data.

A refusal of the back end whose code is a key of the step's table is an outcome like
any other (``{RefusalCode.CARD_ALREADY_LINKED: "linked_elsewhere"}``); any other refusal
is said plainly and the step stays. ``STAY`` (or an outcome the table maps to nothing)
keeps the conversation where it is.

``transitions`` changes the state before ``on_enter`` runs, and a back-end failure there
would leave the conversation in a state it never reached: that is why the step runs
before the trigger is fired, and prompts never call anything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from backend.domain.vocabulary import EventType, RefusalCode
from statemachine.port import BackendPort, BackendRefusal
from statemachine.replies import REFUSAL, REFUSAL_FALLBACK, Choice, Link, Reply

Prompt = Callable[["Turn"], None]

# Every step also offers these (values the engine handles itself).
NAVIGATION = ("help", "back", "restart", "cancel", "handoff")

NEXT = "next"
"""The outcome of a step that has nothing to run: it always goes to its one next state."""

STAY = "stay"
"""The outcome of a step that does not move: its prompt is said again."""

SAME = "="
"""A table's next state meaning "this same state again" (its prompt said anew)."""


@dataclass(frozen=True)
class Given:
    """What came with a trigger: a choice's value or typed text, a file, an event."""

    value: str = ""
    data: bytes | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


StepRun = Callable[["Turn", Given], Awaitable[str]]
"""A step's work: calls its port, keeps what it learnt in slots, answers an outcome."""


@dataclass(frozen=True)
class Step:
    """What ``trigger`` does from ``source``: ``run`` once, then the state of its outcome.

    Attributes:
        trigger: The choice value's first part (``pick`` of ``pick:<id>``), a state's
            text trigger, ``file``, or the trigger a back-end event fires.
        source: The states it is offered in.
        outcomes: Outcome → next state (``SAME`` for this state again).
        run: The step's work; None for a step that only moves on (outcome ``NEXT``).
    """

    trigger: str
    source: str | tuple[str, ...]
    outcomes: Mapping[str, str]
    run: StepRun | None = None

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.source,) if isinstance(self.source, str) else self.source

    async def perform(self, turn: Turn, given: Given) -> str:
        """Run the step once and answer its outcome.

        Raises:
            BackendRefusal: a refusal the table does not name (said plainly by the engine).
            UnknownOutcome: the step answered an outcome its table lacks (a bug).
        """
        if self.run is None:
            return NEXT
        turn.refusal = None
        try:
            outcome = await self.run(turn, given)
        except BackendRefusal as refusal:
            if refusal.code not in self.outcomes:
                raise
            turn.refusal = refusal
            return refusal.code
        if outcome != STAY and outcome not in self.outcomes:
            raise UnknownOutcome(f"{self.trigger}: {outcome!r} is not in its table")
        return outcome


def go(trigger: str, source: str | tuple[str, ...], dest: str) -> Step:
    """A step that only moves on: ``trigger`` from ``source`` leads to ``dest``."""
    return Step(trigger, source, {NEXT: dest})


class UnknownOutcome(Exception):
    """A step answered an outcome its table does not hold: a bug of the flow."""


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
class Part:
    """States and steps several flows share (e.g. the consent at the issuer)."""

    states: Sequence[State]
    steps: Sequence[Step]


@dataclass(frozen=True)
class FlowDefinition:
    """A procedure of the seed as a state machine, and how people find it.

    Attributes:
        id: The flow's id: its module's name, its catalog section, its menu choice.
        states: Its states; ``parts`` add shared ones.
        steps: Its steps; ``parts`` add shared ones.
        initial: The first state (``start`` may choose another).
        start: Loads what the first state shows; may move to another state.
        event_triggers: Back-end event type → trigger fired in the waiting conversation.
        menu_position: Its place in the main menu (lower first).
        keywords: Words that ask for it when typed at the menu (Japanese and English).
        keyword_rank: Flows whose keywords are more specific are tried first (lower).
        command: The word that starts it in a channel's command (``/renkei <word>``).
        parts: Shared pieces (``Part``) it is built with.
        abandon: Undoes what the flow left half made when the person cancels or starts
            over (the back end decides what may go; a refusal changes nothing).
    """

    id: str
    states: Sequence[State]
    steps: Sequence[Step]
    initial: str
    start: Callable[[Turn], Awaitable[None]] | None = None
    event_triggers: Mapping[EventType, str] = field(default_factory=dict)
    menu_position: int = 100
    keywords: tuple[str, ...] = ()
    keyword_rank: int = 100
    command: str | None = None
    parts: Sequence[Part] = ()
    abandon: Callable[[Turn], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        names = [s.name for s in self.all_states]
        if len(names) != len(set(names)):
            raise ValueError(f"{self.id}: a state is defined twice")
        known = {*names, SAME}
        for step in self.all_steps:
            unknown = {*step.sources, *step.outcomes.values()} - known
            if unknown:
                raise ValueError(f"{self.id}: {step.trigger} names no state {sorted(unknown)}")
        if self.initial not in names:
            raise ValueError(f"{self.id}: no initial state {self.initial}")

    @property
    def all_states(self) -> tuple[State, ...]:
        return (*self.states, *(s for part in self.parts for s in part.states))

    @property
    def all_steps(self) -> tuple[Step, ...]:
        return (*self.steps, *(s for part in self.parts for s in part.steps))

    def state(self, name: str) -> State:
        for state in self.all_states:
            if state.name == name:
                return state
        raise KeyError(name)

    def step(self, trigger: str, state: str) -> Step | None:
        """The step ``trigger`` fires in ``state``, or None when that state does not take it."""
        for step in self.all_steps:
            if step.trigger == trigger and state in step.sources:
                return step
        return None

    def trigger_for(self, event_type: str) -> str | None:
        """The trigger a back-end event of ``event_type`` fires (types newer than this
        side fire nothing)."""
        return next((t for e, t in self.event_triggers.items() if e == event_type), None)

    def triggers(self, state: str) -> tuple[str, ...]:
        """The triggers ``state`` takes, in the order the steps are written."""
        found = [s.trigger for s in self.all_steps if state in s.sources]
        return tuple(dict.fromkeys(found))


def machine_transitions(flow: FlowDefinition) -> list[dict[str, Any]]:
    """The flow's steps as ``transitions``' dictionaries: one per outcome of each step.

    A step's one outcome ``NEXT`` moves unconditionally; every other outcome is a
    condition that only compares the outcome the step answered (named after it, so the
    diagram shows it).
    """
    drawn: list[dict[str, Any]] = []
    for step in flow.all_steps:
        for outcome, dest in step.outcomes.items():
            transition: dict[str, Any] = {
                "trigger": step.trigger,
                "source": list(step.sources),
                "dest": dest,
            }
            if not (step.run is None and outcome == NEXT):
                transition["conditions"] = [_outcome_is(str(outcome))]
            drawn.append(transition)
    return drawn


def _outcome_is(outcome: str) -> Callable[..., bool]:
    def condition(event: Any) -> bool:
        return bool(event.kwargs.get("outcome") == outcome)

    condition.__name__ = outcome
    return condition


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

    def say_refusal(
        self,
        code: str,
        /,
        *,
        fallback: str = REFUSAL_FALLBACK,
        own_words: Mapping[RefusalCode, str] | None = None,
        **params: Any,
    ) -> None:
        """Say why the back end refused: see ``refusal_reply``."""
        self.replies.append(refusal_reply(code, fallback=fallback, own_words=own_words, **params))


def refusal_reply(
    code: str,
    /,
    *,
    fallback: str = REFUSAL_FALLBACK,
    own_words: Mapping[RefusalCode, str] | None = None,
    **params: Any,
) -> Reply:
    """A refusal in words, the one way every flow and the engine say one.

    The flow's ``own_words`` for the code come first; then the catalog's
    ``refusal.<code>``; a code the catalog does not hold (the back end may refuse with
    a code newer than the catalogs) is said with ``fallback`` instead.
    """
    params.setdefault("code", code)
    for own_code, words in (own_words or {}).items():
        if own_code == code:
            return Reply(words, params)
    # The plain fallback is every refusal's own (``Reply.fallback_key``): not stored twice.
    named = None if fallback == REFUSAL_FALLBACK else fallback
    return Reply(f"{REFUSAL}{code}", params, fallback=named)


def choice(value: str, label: str, **params: Any) -> Choice:
    return Choice(value=value, label=label, params=params)


def data_choice(value: str, text: str) -> Choice:
    """A button whose label is data (an account or office name), shown as it is."""
    return Choice(value=value, text=text)
