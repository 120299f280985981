"""The flow engine: one shared machine per flow, conversations restored and saved each turn.

A turn: load the conversation, read the input (a choice, or free text understood by
keywords), fire the flow's trigger on the flow's shared machine with a ``Turn`` as the
model, render the prompt of the state reached, save with optimistic locking. A
back-end call that fails leaves the conversation where it was, with a retry.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from transitions import MachineError
from transitions.extensions.asyncio import AsyncMachine

from statemachine import handoff as desk
from statemachine import intents
from statemachine.flow import (
    NAVIGATION,
    FlowDefinition,
    Given,
    State,
    Turn,
    machine_transitions,
    refusal_reply,
)
from statemachine.offices import SHORT_ID, named_offices, office_choices, office_stated
from statemachine.port import BackendPort, BackendRefusal, BackendUnavailable
from statemachine.replies import Choice, Reply
from statemachine.store import (
    ConversationRecord,
    ConversationStore,
    Handoff,
    StepField,
    claimed_version,
)

MENU = "menu"
CHOOSE_OFFICE = "choose_office"
INVITATION = "invitation:"
ROLES = ("admin", "member", "read_only")
LOCALES = ("ja", "en")
IDLE_AFTER = dt.timedelta(days=7)
# A turn makes a few back-end calls, each with its own retries: one not saved after this
# long died with its process, and the conversation is free again.
TURN_LEASE = dt.timedelta(minutes=2)


class ConversationNotFound(Exception):
    pass


class ConversationConflict(Exception):
    """Another turn saved first; the caller reloads the conversation."""


@dataclass(frozen=True)
class Input:
    """What the person sent: a choice value, free text, or a file.

    ``shown_at`` is the conversation's ``lines`` when the chosen button was drawn, where
    the channel knows it: a button of an earlier step is then answered as such, not
    carried out in the step the conversation has reached since.
    """

    choice: str | None = None
    text: str | None = None
    file_name: str | None = None
    file_data: bytes | None = None
    shown_at: int | None = None


@dataclass(frozen=True)
class Accepts:
    """What a conversation's current step takes, for a channel to offer the right input.

    Attributes:
        triggers: The choice triggers the step takes (a choice value's part before ``:``),
            navigation included.
        text: Typed text is this step's answer (a name, an ID), not a command.
        secret: Typed text here is a password: shown masked, never echoed.
        file: The step takes a file.
    """

    triggers: tuple[str, ...]
    text: bool = False
    secret: bool = False
    file: bool = False


LabelRenderer = Callable[[Choice, str], str]
"""Renders a choice's label in a locale (for matching typed text against the buttons)."""

ReplyRenderer = Callable[[Reply, str], str]
"""Renders a reply's words in a locale: kept in the transcript as the person read them."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class FlowEngine:
    def __init__(
        self,
        flows: Sequence[FlowDefinition],
        store: ConversationStore,
        backend_for: Callable[[str], BackendPort],
        *,
        label: LabelRenderer,
        say: ReplyRenderer | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
        handoffs: desk.HandoffStore | None = None,
        support_route: desk.SupportRoute = lambda: False,
    ) -> None:
        # The menu shows the flows in their menu order (their ids are the choice values).
        ordered = sorted(flows, key=lambda f: f.menu_position)
        self.flows: dict[str, FlowDefinition] = {f.id: f for f in ordered}
        self.machines: dict[str, AsyncMachine] = {f.id: self._machine(f) for f in ordered}
        self.intents = intents.flow_table(ordered)
        self.store = store
        self.backend_for = backend_for
        self.label = label
        self.say = say
        self.clock = clock
        # Where handed-over conversations go; without a route nobody is promised a person.
        self.handoffs = handoffs
        self.support_route = support_route

    @staticmethod
    def _machine(flow: FlowDefinition) -> AsyncMachine:
        # model=None: one machine serves every conversation; each turn passes its model.
        return AsyncMachine(
            model=None,
            states=[s.name for s in flow.all_states],
            transitions=machine_transitions(flow),
            initial=flow.initial,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )

    # ------------------------------------------------------------------ lifecycle
    async def create(
        self, user: str, locale: str = "ja", office_id: str | None = None
    ) -> ConversationRecord:
        record = ConversationRecord(
            id=uuid.uuid4().hex,
            user=user.strip().lower(),
            locale=locale if locale in LOCALES else "ja",
            office_id=office_id,
            created_at=self.clock(),
            updated_at=self.clock(),
        )
        if office_id is not None:
            backend = self.backend_for(record.user)
            await backend.office(office_id)  # the member must belong to it
        greeting = self._menu_replies(record, greet=True)
        record.replies = [r.to_json() for r in greeting]
        self._log_replies(record, greeting)  # the history starts with the greeting
        await self.store.create(record)
        return record

    async def get(self, conversation_id: str) -> ConversationRecord:
        record = await self.store.load(conversation_id)
        if record is None:
            raise ConversationNotFound(conversation_id)
        return record

    async def _claim(self, record: ConversationRecord) -> int:
        """Take the turn before any back-end call: while one turn is under way (odd
        version) another input is refused here, before it could do anything twice.
        Answers the claimed version."""
        now = self.clock()
        if not await self.store.claim(record.id, record.version, now, now - TURN_LEASE):
            raise ConversationConflict(record.id)
        record.version = claimed_version(record.version)
        return record.version

    async def handle(self, conversation_id: str, given: Input) -> ConversationRecord:
        # Taken before any back-end call: while one turn is under way (odd version)
        # another input is refused here, before it could do anything twice.
        now = self.clock()
        taken = await self.store.take(conversation_id, now, now - TURN_LEASE)
        if taken is None:
            await self.get(conversation_id)  # ConversationNotFound when there is none
            raise ConversationConflict(conversation_id)
        record = taken
        expected = record.version
        steps: list[tuple[str, str, StepField]] = []
        handoffs: list[Handoff] = []
        said: list[desk.HandoffMessage] = []
        self._log_input(record, given)
        try:
            if desk.owner(record) is not None:
                replies = self._handed_off_turn(record, given, said)
            elif _stale(record, given):
                replies = self._stale_answer(record)
            else:
                replies = await self._turn(record, given, steps, handoffs)
        except BaseException:
            # Whatever went wrong, the conversation must not stay held by a dead turn.
            await self.store.release(conversation_id, expected)
            raise
        record.replies = [r.to_json() for r in replies]
        self._log_replies(record, replies)
        record.version = expected + 1  # even again: the turn is over
        record.updated_at = self.clock()
        if not await self.store.save(record, expected, steps):
            raise ConversationConflict(conversation_id)
        for handoff in handoffs:
            await self.store.add_handoff(handoff)  # only once the turn is saved
        await self._keep_for_support(said)
        return record

    async def notify(self, key: str, event_type: str, payload: Mapping[str, Any]) -> list[str]:
        """A back-end event advances every conversation waiting on ``key`` (``account:<id>``
        or ``office:<id>``)."""
        advanced = []
        for conversation_id in await self.store.waiting_for(key):
            for attempt in range(20):  # a turn under way holds it: wait for it, briefly
                record = await self.store.load(conversation_id)
                if record is None or record.flow is None or desk.owner(record) is not None:
                    break  # a person owning the conversation is not talked over
                trigger = self.flows[record.flow].trigger_for(event_type) or ""
                if self.flows[record.flow].step(trigger, record.state) is None:
                    break  # nothing this step does with that event: no need to take it
                try:
                    expected = await self._claim(record)
                except ConversationConflict:
                    await asyncio.sleep(0.05 * (attempt + 1))  # nothing was done yet
                    continue
                steps: list[tuple[str, str, StepField]] = []
                given = Given(value=str(payload.get("error_code") or ""), payload=dict(payload))
                try:
                    replies = await self._fire(record, trigger, given, steps)
                except (BackendUnavailable, BackendRefusal):
                    # The person's next input finds out; the conversation is let go.
                    await self.store.release(record.id, expected)
                    break
                except BaseException:
                    await self.store.release(record.id, expected)
                    raise
                if replies is None:
                    await self.store.release(record.id, expected)
                    break
                record.replies = [r.to_json() for r in replies]
                self._log_replies(record, replies)
                record.version = expected + 1
                record.updated_at = self.clock()
                if await self.store.save(record, expected, steps):
                    advanced.append(conversation_id)
                    break
        return advanced

    def accepts(self, record: ConversationRecord) -> Accepts:
        """What the conversation's current step takes: its choice triggers, and whether
        typed text is its answer (masked when a password), or a file."""
        if desk.owner(record) is not None:
            return Accepts(triggers=(desk.END,))
        if record.flow is None or record.flow not in self.flows:
            if record.state == CHOOSE_OFFICE:
                return Accepts(triggers=("office", "help", "cancel", "handoff"))
            return Accepts(triggers=(*self.flows, "handoff"))
        flow = self.flows[record.flow]
        state = flow.state(record.state)
        taken = flow.triggers(record.state)
        return Accepts(
            triggers=(*taken, *NAVIGATION) if not state.final else taken,
            text=state.text_trigger is not None,
            secret=state.secret,
            file="file" in taken,
        )

    # ------------------------------------------------------------------ one turn
    def _stale_answer(self, record: ConversationRecord) -> list[Reply]:
        """A button of an earlier step (pressed in another tab, or before the back end moved
        the conversation on): said so, with the step as it stands; nothing is carried out."""
        if record.flow is None and record.state == CHOOSE_OFFICE:
            current = [Reply.from_json(r) for r in record.replies]
        else:
            current = self._current_prompt_or_menu(record)
        return [Reply("common.choice_stale"), *current]

    async def _turn(
        self,
        record: ConversationRecord,
        given: Input,
        steps: list[tuple[str, str, StepField]],
        handoffs: list[Handoff],
    ) -> list[Reply]:
        if given.choice == "retry" and "_retry" in record.slots:
            retry = record.slots.pop("_retry")
            given = Input(choice=retry.get("choice"), text=retry.get("text"))
        command = self._command(record, given)
        if command is not None:
            return await self._navigate(record, command, steps, handoffs)
        if record.flow is None:
            return await self._menu_input(record, given, steps)
        return await self._flow_input(record, given, steps)

    def _command(self, record: ConversationRecord, given: Input) -> str | None:
        if given.choice is not None:
            if (
                given.choice in NAVIGATION
                or given.choice == MENU
                or given.choice.startswith("lang:")
            ):
                return given.choice
            return None
        if given.text is None:
            return None
        if record.flow is not None:
            state = self.flows[record.flow].state(record.state)
            if state.text_trigger is not None:
                # Typed text is the answer here (an ID, a name): only a bare command word
                # ("戻る", "cancel") still navigates.
                return intents.exact_global_intent(given.text)
        command = intents.global_intent(given.text)
        at_menu = record.flow is None and command not in (None, "handoff", "cancel")
        if at_menu and intents.flow_intent(given.text, self.intents) is not None:
            return None  # at the menu a question naming a procedure starts it
        return command

    async def _navigate(
        self,
        record: ConversationRecord,
        command: str,
        steps: list[tuple[str, str, StepField]],
        handoffs: list[Handoff],
    ) -> list[Reply]:
        if command.startswith("lang:"):
            record.locale = command.split(":", 1)[1] if command[5:] in LOCALES else record.locale
            # The step is said again in the new language; the confirmation of an earlier
            # toggle is not (toggling back and forth would pile them up).
            previous = [Reply.from_json(r) for r in record.replies]
            kept = [r for r in previous if r.key != "common.language_changed"]
            return [Reply("common.language_changed"), *kept]
        if command == "help":
            return [Reply(self._help_key(record)), *self._current_prompt_or_menu(record)]
        if command == "handoff":
            if self.handoffs is None or not self.support_route():
                # Nobody would read it: said so, with what the assistant itself can do.
                return [Reply("handoff.no_route"), *self._current_prompt_or_menu(record)]
            handoff = await self._handoff(record)
            handoffs.append(handoff)
            record.slots[desk.HANDED_OFF] = handoff.id
            if record.flow is not None:
                steps.append((record.flow, record.state, "abandoned"))
            return [Reply("common.handoff_done", choices=(Choice(desk.END, "nav.handoff_end"),))]
        if record.flow is None:
            if command in ("restart", "cancel"):
                # Also out of the office question: the procedure it was for is dropped.
                record.state, record.slots = MENU, {}
            if command == "restart":
                record.office_id = None
                return [Reply("common.restarted"), *self._menu_replies(record)]
            return self._menu_replies(record)
        flow, state = record.flow, record.state
        if command == "back":
            if record.history:
                snapshot = record.history.pop()
                record.state = snapshot["state"]
                record.slots = snapshot["slots"]
                record.waiting_for = self._waiting_key(record)
                return self._prompt(record)
            command = "cancel"  # back from a flow's first step leads to the menu
        steps.append((flow, state, "abandoned"))
        await self._abandon(record)
        # Starting over forgets the procedure and its office alike; so does cancelling:
        # the next procedure asks (or says) which office it is for.
        self._end_procedure(record)
        said = "common.restarted" if command == "restart" else "common.cancelled"
        return [Reply(said), *self._menu_replies(record)]

    async def _abandon(self, record: ConversationRecord) -> None:
        """The flow undoes what it left half made (a new account never consented)."""
        assert record.flow is not None
        abandon = self.flows[record.flow].abandon
        if abandon is None:
            return
        turn = self._turn_model(record, state=record.state, slots=_copy(record.slots))
        try:
            await abandon(turn)
        except (BackendUnavailable, BackendRefusal):
            # The person cancelled all the same; a draft left behind is taken up again by
            # the next registration of that card rather than doubled.
            return

    @staticmethod
    def _end_procedure(record: ConversationRecord) -> None:
        """Back at the menu: the office was the procedure's, not the conversation's."""
        record.flow, record.state, record.slots, record.history = None, MENU, {}, []
        record.waiting_for = None
        record.office_id = None

    def _help_key(self, record: ConversationRecord) -> str:
        if record.flow is None:
            return "menu.help"
        return f"{record.flow}.help"

    def _current_prompt_or_menu(self, record: ConversationRecord) -> list[Reply]:
        if record.flow is None:
            return self._menu_replies(record)
        return self._prompt(record)

    # ------------------------------------------------------------------ the menu
    def _menu_replies(self, record: ConversationRecord, greet: bool = False) -> list[Reply]:
        choices = [Choice(value=f, label=f"menu.flow.{f}") for f in self.flows]
        choices.append(Choice(value="handoff", label="nav.handoff"))
        return [Reply("menu.greeting" if greet else "menu.prompt", choices=tuple(choices))]

    async def _menu_input(
        self, record: ConversationRecord, given: Input, steps: list[tuple[str, str, StepField]]
    ) -> list[Reply]:
        if given.choice and given.choice.startswith(INVITATION):
            return await self._answer_invitation(record, given.choice)
        pending = str(record.slots.get("_pending_flow") or "")
        if record.state == CHOOSE_OFFICE and given.choice and given.choice.startswith("office:"):
            office_id = given.choice.split(":", 1)[1]
            if pending in self.flows:
                return await self._start_flow(record, pending, office_id, steps)
        wanted = given.choice
        if wanted is None and given.text is not None:
            wanted = intents.flow_intent(given.text, self.intents)
        if wanted in self.flows:
            return await self._choose_office_then_start(record, wanted, steps, given.text)
        if record.state == CHOOSE_OFFICE and pending in self.flows:
            # Not another procedure: the office question answered in words (「山田商店です」),
            # or not read at all; the procedure chosen stays, and the question is asked again.
            asked = await self._choose_office_then_start(record, pending, steps, given.text)
            if asked and asked[-1].key == "menu.choose_office":
                return [_not_taken(given), *asked]
            return asked
        return [_not_taken(given), *self._menu_replies(record)]

    async def _choose_office_then_start(
        self,
        record: ConversationRecord,
        flow_id: str,
        steps: list[tuple[str, str, StepField]],
        text: str | None = None,
    ) -> list[Reply]:
        """Each procedure is for one office: the one named in the person's words, else
        the one the conversation was opened for, else the only one, else asked. Where the
        person has more than one office, the office not asked for is said."""
        backend = self.backend_for(record.user)
        try:
            offices = await backend.offices()
        except BackendUnavailable:
            return self._unavailable(record, Input(choice=flow_id))
        named = named_offices(text, offices) if text else []
        chosen = next((o for o in offices if o.id == record.office_id), None)
        if len({o.id for o in named}) == 1:
            chosen = named[0]
        elif len(named) > 1:
            chosen = None  # two offices of that name: which one is asked
        elif len(offices) == 1:
            chosen = offices[0]
        elif chosen is None and record.office_id is not None:
            # Opened for an office not among the person's own (a support administrator):
            # the back end decides whether they may act there.
            return await self._start_flow(record, flow_id, record.office_id, steps)
        if chosen is not None:
            started = await self._start_flow(record, flow_id, chosen.id, steps)
            if len(offices) == 1 or record.flow != flow_id:
                return started
            key, params = office_stated(chosen, offices)
            return [Reply(key, params), *started]
        if not offices:
            return [*await self._invitations(record), *self._menu_replies(record)]
        record.state = CHOOSE_OFFICE
        record.slots = {"_pending_flow": flow_id}
        choices = office_choices(offices)
        nav = tuple(Choice(v, f"nav.{v}") for v in ("help", "cancel", "handoff"))
        return [Reply("menu.choose_office", choices=(*choices, *nav))]

    # ------------------------------------------------------------------ invitations
    async def _invitations(self, record: ConversationRecord) -> list[Reply]:
        """A person in no office yet: the invitations waiting for them, or how to get one."""
        try:
            waiting = await self.backend_for(record.user).invitations()
        except (BackendUnavailable, BackendRefusal):
            waiting = []
        if not waiting:
            return [Reply("common.no_office")]
        replies = [Reply("menu.invitations")]
        for invitation in waiting:
            # Who invites, and the start of the office's id: a look-alike name is not enough.
            params = {
                "office": invitation.office_name,
                "inviter": invitation.invited_by,
                "ref": invitation.office_id[:SHORT_ID],
            }
            choices = (
                Choice(f"{INVITATION}accept:{invitation.id}", "menu.invitation_accept"),
                Choice(f"{INVITATION}decline:{invitation.id}", "menu.invitation_decline"),
            )
            role = invitation.role if invitation.role in ROLES else "member"
            replies.append(Reply(f"menu.invitation.{role}", params, choices))
        return replies

    async def _answer_invitation(self, record: ConversationRecord, choice: str) -> list[Reply]:
        answer, _, invitation_id = choice.removeprefix(INVITATION).partition(":")
        if answer not in ("accept", "decline") or not invitation_id:
            return [Reply("common.choice_stale"), *self._menu_replies(record)]
        try:
            await self.backend_for(record.user).answer_invitation(
                invitation_id, accept=answer == "accept"
            )
        except BackendUnavailable:
            return [Reply("common.backend_unavailable"), *self._menu_replies(record)]
        except BackendRefusal:
            return [Reply("menu.invitation_gone"), *self._menu_replies(record)]
        key = "menu.invitation_accepted" if answer == "accept" else "menu.invitation_declined"
        return [Reply(key), *self._menu_replies(record)]

    async def _start_flow(
        self,
        record: ConversationRecord,
        flow_id: str,
        office_id: str | None,
        steps: list[tuple[str, str, StepField]],
        slots: dict[str, Any] | None = None,
    ) -> list[Reply]:
        flow = self.flows[flow_id]
        turn = self._turn_model(record, state=flow.initial, slots=dict(slots or {}))
        turn.office_id = office_id
        if flow.start is not None:
            try:
                await flow.start(turn)
            except BackendUnavailable:
                return self._unavailable(record, Input(choice=flow_id))
            except BackendRefusal as refusal:
                return [_said(refusal), *self._menu_replies(record)]
        record.flow, record.state, record.slots = flow_id, turn.state, turn.slots
        record.office_id = office_id
        record.history = []
        steps.append((flow_id, turn.state, "entered"))
        record.waiting_for = self._waiting_key(record)
        return [*turn.replies, *self._prompt(record)]

    # ------------------------------------------------------------------ inside a flow
    async def _flow_input(
        self, record: ConversationRecord, given: Input, steps: list[tuple[str, str, StepField]]
    ) -> list[Reply]:
        assert record.flow is not None
        flow = self.flows[record.flow]
        state = flow.state(record.state)
        trigger, what = self._understand(record, given, state.text_trigger)
        if trigger is None:
            return [Reply("common.not_understood"), *self._prompt(record)]
        try:
            replies = await self._fire(record, trigger, what, steps)
        except BackendUnavailable:
            if state.secret:
                given = Input()  # a password is never kept, not even for a retry
            return self._unavailable(record, given)
        except BackendRefusal as refusal:
            # A refusal the flow did not branch on: said plainly, the step stays.
            return [_said(refusal), *self._prompt(record)]
        if replies is None:
            return [_not_taken(given), *self._prompt(record)]
        return replies

    def _understand(
        self, record: ConversationRecord, given: Input, text_trigger: str | None
    ) -> tuple[str | None, Given]:
        if given.file_data is not None:
            return "file", Given(value=given.file_name or "", data=given.file_data)
        if given.choice is not None:
            trigger, _, value = given.choice.partition(":")
            return trigger, Given(value=value)
        text = (given.text or "").strip()
        if not text:
            return None, Given()
        if text_trigger is not None:
            return text_trigger, Given(value=text)
        # Typed text that names one of the buttons on screen chooses it.
        folded = intents.fold(text)
        shown = [c for r in record.replies for c in Reply.from_json(r).choices]
        for offered in shown:
            label = intents.fold(self.label(offered, record.locale))
            if label and (folded == label or (len(folded) >= 2 and folded in label)):
                trigger, _, value = offered.value.partition(":")
                return trigger, Given(value=value)
        answer = intents.yes_no(text)
        if answer is not None:
            return answer, Given()
        return None, Given()

    async def _fire(
        self,
        record: ConversationRecord,
        trigger: str,
        given: Given,
        steps: list[tuple[str, str, StepField]],
    ) -> list[Reply] | None:
        """Run the step of a trigger once, then move as its outcome says; None when the
        current state has no such trigger (nothing changes)."""
        assert record.flow is not None
        flow_id = record.flow
        step = self.flows[flow_id].step(trigger, record.state)
        if step is None:
            return None
        before_state = record.state
        snapshot = {"state": record.state, "slots": _copy(record.slots)}
        turn = self._turn_model(record, state=record.state, slots=_copy(record.slots))
        outcome = await step.perform(turn, given)
        try:
            # The machine moves by the outcome alone: its conditions only read it.
            moved = await self.machines[flow_id].events[trigger].trigger(turn, outcome=outcome)
        except MachineError:
            return None
        # Only now, with every back-end call done, does the conversation take the result.
        record.slots = turn.slots
        if not moved or turn.state == before_state:
            if turn.refusal is not None and not turn.replies:
                turn.replies.append(_said(turn.refusal))
            elif not moved and not turn.replies:
                turn.say("common.nothing_new")  # e.g. "I have finished" before the issuer answered
            return [*turn.replies, *self._prompt(record)]
        record.history.append(snapshot)
        record.state = turn.state
        record.waiting_for = self._waiting_key(record)
        steps.append((flow_id, before_state, "completed"))
        steps.append((flow_id, record.state, "entered"))
        reached = self.flows[flow_id].state(record.state)
        if reached.handover is not None and reached.handover in self.flows:
            # Another procedure takes over (e.g. a card held elsewhere → multi_office).
            steps.append((flow_id, record.state, "completed"))
            passing = self._prompt_of(reached, record)
            carried = {k: v for k, v in record.slots.items() if not k.startswith("_")}
            started = await self._start_flow(
                record, reached.handover, record.office_id, steps, carried
            )
            return [*turn.replies, *passing, *started]
        replies = [*turn.replies, *self._prompt(record)]
        if self.flows[flow_id].state(record.state).final:
            self._end_procedure(record)
            replies.extend(self._menu_replies(record))
        return replies

    def _prompt_of(self, state: State, record: ConversationRecord) -> list[Reply]:
        """The words of a step passed through on the way elsewhere (no buttons)."""
        turn = self._turn_model(record, state=state.name, slots=record.slots)
        state.prompt(turn)
        return [replace(r, choices=()) for r in turn.replies]

    def _prompt(self, record: ConversationRecord) -> list[Reply]:
        assert record.flow is not None
        state = self.flows[record.flow].state(record.state)
        turn = self._turn_model(record, state=record.state, slots=record.slots)
        state.prompt(turn)
        if state.final:
            return turn.replies
        nav = tuple(Choice(value=v, label=f"nav.{v}") for v in NAVIGATION)
        if not turn.replies:
            return [Reply("common.next", choices=nav)]
        last = turn.replies[-1]
        turn.replies[-1] = replace(last, choices=(*last.choices, *nav))
        return turn.replies

    def _waiting_key(self, record: ConversationRecord) -> str | None:
        if record.flow is None:
            return None
        slot = self.flows[record.flow].state(record.state).waits_for
        waited = str(record.slots.get(slot) or "") if slot else ""
        if not waited:
            return None
        return waited if ":" in waited else f"account:{waited}"

    def _turn_model(self, record: ConversationRecord, *, state: str, slots: dict[str, Any]) -> Turn:
        return Turn(
            conversation_id=record.id,
            user=record.user,
            locale=record.locale,
            office_id=record.office_id,
            state=state,
            slots=slots,
            backend=self.backend_for(record.user),
        )

    def _unavailable(self, record: ConversationRecord, given: Input) -> list[Reply]:
        if given.choice is not None or given.text is not None:
            record.slots["_retry"] = {"choice": given.choice, "text": given.text}
        choices = (
            Choice("retry", "nav.retry"),
            *(Choice(v, f"nav.{v}") for v in ("help", "cancel", "handoff")),
        )
        return [Reply("common.backend_unavailable", choices=choices)]

    # ------------------------------------------------------------------ handoff, transcript
    async def _handoff(self, record: ConversationRecord) -> Handoff:
        account_state: dict[str, Any] | None = None
        account_id = record.slots.get("account_id")
        if account_id:
            try:
                account = await self.backend_for(record.user).account(str(account_id))
                account_state = {
                    "id": account.id,
                    "name": account.name,
                    "issuer": account.issuer,
                    "sync_method": account.sync_method,
                    "status": account.status,
                    "last_error": account.last_error,
                    "last_synced_at": account.last_synced_at,
                    "link_status": account.link_status,
                }
            except Exception:
                account_state = {"id": account_id, "unavailable": True}
        return Handoff(
            id=uuid.uuid4().hex,
            conversation_id=record.id,
            user=record.user,
            office_id=record.office_id,
            # A turn holds only its own lines; the earlier ones are in the store.
            transcript=[*await self.store.transcript(record.id), *record.logged],
            account_state=account_state,
            created_at=self.clock(),
        )

    def _handed_off_turn(
        self, record: ConversationRecord, given: Input, said: list[desk.HandoffMessage]
    ) -> list[Reply]:
        """A person owns the conversation: what the person writes is kept for them, and
        the flow does not answer it; "back to the assistant" ends the handoff."""
        handoff_id = desk.owner(record)
        assert handoff_id is not None
        via = "chat"
        if given.choice is not None and given.choice.startswith("lang:"):
            # The page switched language: nothing for support to read.
            wanted = given.choice.split(":", 1)[1]
            record.locale = wanted if wanted in LOCALES else record.locale
            return []
        if desk.ends_handoff(given.choice, given.text):
            said.append(self._handoff_message(record, handoff_id, desk.MessageKind.RESOLVED))
            record.slots.pop(desk.HANDED_OFF, None)
            return [Reply("handoff.resumed"), *self._current_prompt_or_menu(record)]
        text = given.text or given.file_name or given.choice or ""
        if record.flow is not None and self.flows[record.flow].state(record.state).secret:
            text = "●●●"  # a password is never passed on, not even to support
        said.append(
            self._handoff_message(record, handoff_id, desk.MessageKind.PERSON, text, via=via)
        )
        return []  # quiet: the person who owns the conversation answers

    def _handoff_message(
        self,
        record: ConversationRecord,
        handoff_id: str,
        kind: desk.MessageKind,
        text: str = "",
        *,
        author: str | None = None,
        via: str = "chat",
    ) -> desk.HandoffMessage:
        return desk.HandoffMessage(
            handoff_id=handoff_id,
            conversation_id=record.id,
            kind=kind,
            text=text,
            author=author or record.user,
            via=via,
            at=self.clock(),
        )

    async def _keep_for_support(self, said: list[desk.HandoffMessage]) -> None:
        """Once the turn is saved: the person's messages for support, and an end."""
        if self.handoffs is None:
            return
        for message in said:
            await self.handoffs.add_handoff_message(message)
            if message.kind == desk.MessageKind.RESOLVED:
                await self.handoffs.set_handoff_status(
                    message.handoff_id, desk.HandoffStatus.RESOLVED, message.at
                )

    async def support_answer(self, handoff_id: str, text: str, author: str, via: str) -> bool:
        """Support's answer to an open handoff, for the person's channel; False when the
        handoff is unknown or already resolved."""
        if self.handoffs is None:
            return False
        handoff = await self.handoffs.handoff(handoff_id)
        if handoff is None or handoff.status == desk.HandoffStatus.RESOLVED:
            return False
        answered = desk.HandoffStatus.ANSWERED
        if not await self.handoffs.set_handoff_status(handoff_id, answered, self.clock()):
            return False
        await self.handoffs.add_handoff_message(
            desk.HandoffMessage(
                handoff_id=handoff_id,
                conversation_id=handoff.conversation_id,
                kind=desk.MessageKind.SUPPORT,
                text=text,
                author=author,
                via=via,
                at=self.clock(),
            )
        )
        return True

    async def resolve_handoff(self, handoff_id: str, author: str, via: str) -> bool:
        """Support ends a handoff: the assistant takes the conversation back, where the
        flow was. False when the handoff is unknown or already resolved."""
        if self.handoffs is None:
            return False
        handoff = await self.handoffs.handoff(handoff_id)
        if handoff is None or handoff.status == desk.HandoffStatus.RESOLVED:
            return False
        for attempt in range(40):  # a turn of the person's under way holds it: wait for it
            record = await self.store.load(handoff.conversation_id)
            if record is None or desk.owner(record) != handoff_id:
                break  # the person already went back to the assistant
            try:
                expected = await self._claim(record)
            except ConversationConflict:
                await asyncio.sleep(0.05 * (attempt + 1))
                continue
            record.slots.pop(desk.HANDED_OFF, None)
            replies = [Reply("handoff.resolved"), *self._current_prompt_or_menu(record)]
            record.replies = [r.to_json() for r in replies]
            self._log_replies(record, replies)
            record.version = expected + 1
            record.updated_at = self.clock()
            if await self.store.save(record, expected, []):
                break
        else:
            raise ConversationConflict(handoff.conversation_id)
        if not await self.handoffs.set_handoff_status(
            handoff_id, desk.HandoffStatus.RESOLVED, self.clock()
        ):
            return False
        await self.handoffs.add_handoff_message(
            desk.HandoffMessage(
                handoff_id=handoff_id,
                conversation_id=handoff.conversation_id,
                kind=desk.MessageKind.RESOLVED,
                text="",
                author=author,
                via=via,
                at=self.clock(),
            )
        )
        return True

    async def support_answers(self, conversation_id: str) -> list[desk.HandoffMessage]:
        """What support said in the conversation, over all its handoffs, in order."""
        if self.handoffs is None:
            return []
        return await self.handoffs.support_answers(conversation_id)

    async def handoff_of(
        self, record: ConversationRecord
    ) -> tuple[Handoff, list[desk.HandoffMessage]] | None:
        """The handoff owning the conversation and its messages, or None."""
        handoff_id = desk.owner(record)
        if handoff_id is None or self.handoffs is None:
            return None
        handoff = await self.handoffs.handoff(handoff_id)
        if handoff is None:
            return None
        return handoff, await self.handoffs.handoff_messages(handoff_id)

    def _log_input(self, record: ConversationRecord, given: Input) -> None:
        secret = False
        if record.flow is not None and given.text is not None:
            secret = self.flows[record.flow].state(record.state).secret
        entry: dict[str, Any] = {"at": self.clock().isoformat(), "from": "user"}
        if given.choice is not None:
            entry["choice"] = given.choice
            label = self._shown_label(record, given.choice)
            if label is not None:
                entry["label"] = label  # what the person read on the button
        if given.text is not None:
            entry["text"] = "●●●" if secret else given.text  # a password is never kept
        if given.file_name is not None:
            entry["file"] = given.file_name
        record.log(entry)

    def _shown_label(self, record: ConversationRecord, value: str) -> str | None:
        """The label of the button on screen that sent ``value`` (None: none shows it)."""
        for reply in record.replies:
            for offered in Reply.from_json(reply).choices:
                if offered.value == value:
                    return self.label(offered, record.locale)
        return None

    def _log_replies(self, record: ConversationRecord, replies: list[Reply]) -> None:
        entry: dict[str, Any] = {
            "at": self.clock().isoformat(),
            "from": "assistant",
            "replies": [r.key for r in replies],
            "state": f"{record.flow or MENU}/{record.state}",
        }
        if self.say is not None:
            # The words as the person read them, in the language of the moment: a history
            # drawn later shows them unchanged. A link's address and one-time code are not
            # kept (they are the person's alone, and spent).
            entry["locale"] = record.locale
            entry["said"] = [self._said_line(r, record.locale, self.say) for r in replies]
        record.log(entry)

    def _said_line(self, reply: Reply, locale: str, say: ReplyRenderer) -> dict[str, Any]:
        said: dict[str, Any] = {
            "text": say(reply, locale),
            "choices": [{"value": c.value, "label": self.label(c, locale)} for c in reply.choices],
        }
        if reply.link is not None:
            said["link"] = say(Reply(reply.link.label), locale)
        return said

    async def analytics(self) -> list[dict[str, Any]]:
        counts = await self.store.step_counts(self.clock() - IDLE_AFTER)
        return [
            {
                "flow": c.flow,
                "step": c.step,
                "entered": c.entered,
                "completed": c.completed,
                "abandoned": c.abandoned,
            }
            for c in counts
        ]


def _copy(slots: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
        for k, v in slots.items()
    }


def _stale(record: ConversationRecord, given: Input) -> bool:
    """A button drawn before the conversation's latest line: of an earlier step."""
    return (
        given.choice is not None and given.shown_at is not None and given.shown_at != record.lines
    )


def _not_taken(given: Input) -> Reply:
    """Why an input does nothing here, said for what it was: a file where none is asked
    for, a button of an earlier step, or words not understood."""
    if given.file_data is not None or given.file_name is not None:
        return Reply("common.file_unexpected")
    if given.choice is not None:
        return Reply("common.choice_stale")
    return Reply("common.not_understood")


def _said(refusal: BackendRefusal) -> Reply:
    """The back end's refusal in words, with its details as the words' parameters."""
    params: dict[str, Any] = {k: v for k, v in refusal.details.items() if isinstance(v, str | int)}
    params.setdefault("code", refusal.code)  # a detail named code is what the words show
    return refusal_reply(refusal.code, **params)
