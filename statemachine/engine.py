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
from dataclasses import dataclass
from typing import Any

from transitions import MachineError
from transitions.extensions.asyncio import AsyncMachine

from statemachine import intents
from statemachine.flow import NAVIGATION, FlowDefinition, State, Turn
from statemachine.offices import SHORT_ID, office_choices
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
TRANSCRIPT_LIMIT = 200
IDLE_AFTER = dt.timedelta(days=7)
# A turn makes a few back-end calls, each with its own retries: one not saved after this
# long died with its process, and the conversation is free again.
TURN_LEASE = dt.timedelta(minutes=2)

# The menu offers the six procedures (their ids are the choice values), then status.
MENU_FLOWS = (
    "register",
    "switch_to_api",
    "multi_office",
    "supplementary_card",
    "amex_revoke",
    "jcb_card_change",
)


class ConversationNotFound(Exception):
    pass


class ConversationConflict(Exception):
    """Another turn saved first; the caller reloads the conversation."""


@dataclass(frozen=True)
class Input:
    """What the person sent: a choice value, free text, or a file."""

    choice: str | None = None
    text: str | None = None
    file_name: str | None = None
    file_data: bytes | None = None


LabelRenderer = Callable[[Choice, str], str]
"""Renders a choice's label in a locale (for matching typed text against the buttons)."""


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
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.flows: dict[str, FlowDefinition] = {f.id: f for f in flows}
        self.machines: dict[str, AsyncMachine] = {f.id: self._machine(f) for f in flows}
        self.store = store
        self.backend_for = backend_for
        self.label = label
        self.clock = clock

    @staticmethod
    def _machine(flow: FlowDefinition) -> AsyncMachine:
        # model=None: one machine serves every conversation; each turn passes its model.
        return AsyncMachine(
            model=None,
            states=[s.name for s in flow.states],
            transitions=list(flow.transitions),
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
        record.replies = [r.to_json() for r in self._menu_replies(record, greet=True)]
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
        self._log_input(record, given)
        try:
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
        return record

    async def notify(self, key: str, event_type: str, payload: Mapping[str, Any]) -> list[str]:
        """A back-end event advances every conversation waiting on ``key`` (``account:<id>``
        or ``office:<id>``)."""
        advanced = []
        for conversation_id in await self.store.waiting_for(key):
            for attempt in range(20):  # a turn under way holds it: wait for it, briefly
                record = await self.store.load(conversation_id)
                if record is None or record.flow is None:
                    break
                trigger = self.flows[record.flow].event_triggers.get(event_type, "")
                event = self.machines[record.flow].events.get(trigger)
                if event is None or record.state not in event.transitions:
                    break  # nothing this step does with that event: no need to take it
                try:
                    expected = await self._claim(record)
                except ConversationConflict:
                    await asyncio.sleep(0.05 * (attempt + 1))  # nothing was done yet
                    continue
                steps: list[tuple[str, str, StepField]] = []
                kwargs = {"value": str(payload.get("error_code") or ""), "payload": dict(payload)}
                try:
                    replies = await self._fire(record, trigger, kwargs, steps)
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

    # ------------------------------------------------------------------ one turn
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
        if at_menu and intents.flow_intent(given.text) is not None:
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
            previous = [Reply.from_json(r) for r in record.replies]
            return [Reply("common.language_changed"), *previous]
        if command == "help":
            return [Reply(self._help_key(record)), *self._current_prompt_or_menu(record)]
        if command == "handoff":
            handoffs.append(await self._handoff(record))
            if record.flow is not None:
                steps.append((record.flow, record.state, "abandoned"))
            return [Reply("common.handoff_done"), *self._current_prompt_or_menu(record)]
        if record.flow is None:
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
        if command == "restart":
            office_id = record.office_id
            return await self._start_flow(record, flow, office_id, steps)
        record.flow, record.state, record.slots, record.history = None, MENU, {}, []
        record.waiting_for = None
        return [Reply("common.cancelled"), *self._menu_replies(record)]

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
        choices = [Choice(value=f, label=f"menu.flow.{f}") for f in MENU_FLOWS]
        choices.append(Choice(value="status", label="menu.flow.status"))
        choices.append(Choice(value="handoff", label="nav.handoff"))
        return [Reply("menu.greeting" if greet else "menu.prompt", choices=tuple(choices))]

    async def _menu_input(
        self, record: ConversationRecord, given: Input, steps: list[tuple[str, str, StepField]]
    ) -> list[Reply]:
        if given.choice and given.choice.startswith(INVITATION):
            return await self._answer_invitation(record, given.choice)
        if record.state == CHOOSE_OFFICE and given.choice and given.choice.startswith("office:"):
            office_id = given.choice.split(":", 1)[1]
            pending = str(record.slots.get("_pending_flow") or "")
            if pending in self.flows:
                return await self._start_flow(record, pending, office_id, steps)
        wanted = given.choice
        if wanted is None and given.text is not None:
            wanted = intents.flow_intent(given.text)
        if wanted in self.flows:
            return await self._choose_office_then_start(record, wanted, steps)
        return [Reply("common.not_understood"), *self._menu_replies(record)]

    async def _choose_office_then_start(
        self, record: ConversationRecord, flow_id: str, steps: list[tuple[str, str, StepField]]
    ) -> list[Reply]:
        if record.office_id is not None:
            return await self._start_flow(record, flow_id, record.office_id, steps)
        backend = self.backend_for(record.user)
        try:
            offices = await backend.offices()
        except BackendUnavailable:
            return self._unavailable(record, Input(choice=flow_id))
        if len(offices) == 1:
            return await self._start_flow(record, flow_id, offices[0].id, steps)
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
            return [Reply("common.choice_unavailable"), *self._menu_replies(record)]
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
                return [_refusal_reply(refusal), *self._menu_replies(record)]
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
        trigger, kwargs = self._understand(record, given, state.text_trigger)
        if trigger is None:
            return [Reply("common.not_understood"), *self._prompt(record)]
        try:
            replies = await self._fire(record, trigger, kwargs, steps)
        except BackendUnavailable:
            if state.secret:
                given = Input()  # a password is never kept, not even for a retry
            return self._unavailable(record, given)
        except BackendRefusal as refusal:
            # A refusal the flow did not branch on: said plainly, the step stays.
            return [_refusal_reply(refusal), *self._prompt(record)]
        if replies is None:
            return [Reply("common.choice_unavailable"), *self._prompt(record)]
        return replies

    def _understand(
        self, record: ConversationRecord, given: Input, text_trigger: str | None
    ) -> tuple[str | None, dict[str, Any]]:
        if given.file_data is not None:
            return "file", {"value": given.file_name or "", "data": given.file_data}
        if given.choice is not None:
            trigger, _, value = given.choice.partition(":")
            return trigger, {"value": value}
        text = (given.text or "").strip()
        if not text:
            return None, {}
        if text_trigger is not None:
            return text_trigger, {"value": text}
        # Typed text that names one of the buttons on screen chooses it.
        folded = intents.fold(text)
        shown = [c for r in record.replies for c in Reply.from_json(r).choices]
        for offered in shown:
            label = intents.fold(self.label(offered, record.locale))
            if label and (folded == label or (len(folded) >= 2 and folded in label)):
                trigger, _, value = offered.value.partition(":")
                return trigger, {"value": value}
        answer = intents.yes_no(text)
        if answer is not None:
            return answer, {"value": ""}
        return None, {}

    async def _fire(
        self,
        record: ConversationRecord,
        trigger: str,
        kwargs: dict[str, Any],
        steps: list[tuple[str, str, StepField]],
    ) -> list[Reply] | None:
        """Fire a trigger; None when the step has no such trigger (nothing changes)."""
        assert record.flow is not None
        flow_id = record.flow
        machine = self.machines[flow_id]
        event = machine.events.get(trigger)
        if event is None or record.state not in event.transitions:
            return None
        before_state = record.state
        snapshot = {"state": record.state, "slots": _copy(record.slots)}
        turn = self._turn_model(record, state=record.state, slots=_copy(record.slots))
        try:
            moved = await event.trigger(turn, **kwargs)
        except MachineError:
            return None
        # Only now, with every back-end call done, does the conversation take the result.
        record.slots = turn.slots
        if not moved or turn.state == before_state:
            if turn.refusal is not None and not turn.replies:
                turn.replies.append(_refusal_reply(turn.refusal))
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
            record.flow, record.state, record.history = None, MENU, []
            record.slots = {}
            record.waiting_for = None
            replies.extend(self._menu_replies(record))
        return replies

    def _prompt_of(self, state: State, record: ConversationRecord) -> list[Reply]:
        """The words of a step passed through on the way elsewhere (no buttons)."""
        turn = self._turn_model(record, state=state.name, slots=record.slots)
        state.prompt(turn)
        return [Reply(r.key, r.params, (), r.link) for r in turn.replies]

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
        turn.replies[-1] = Reply(last.key, last.params, (*last.choices, *nav), last.link)
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
            transcript=list(record.transcript),
            account_state=account_state,
            created_at=self.clock(),
        )

    def _log_input(self, record: ConversationRecord, given: Input) -> None:
        secret = False
        if record.flow is not None and given.text is not None:
            secret = self.flows[record.flow].state(record.state).secret
        entry: dict[str, Any] = {"at": self.clock().isoformat(), "from": "user"}
        if given.choice is not None:
            entry["choice"] = given.choice
        if given.text is not None:
            entry["text"] = "●●●" if secret else given.text  # a password is never kept
        if given.file_name is not None:
            entry["file"] = given.file_name
        record.transcript = [*record.transcript, entry][-TRANSCRIPT_LIMIT:]

    def _log_replies(self, record: ConversationRecord, replies: list[Reply]) -> None:
        entry = {
            "at": self.clock().isoformat(),
            "from": "assistant",
            "replies": [r.key for r in replies],
            "state": f"{record.flow or MENU}/{record.state}",
        }
        record.transcript = [*record.transcript, entry][-TRANSCRIPT_LIMIT:]

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


def _refusal_reply(refusal: BackendRefusal) -> Reply:
    """The back end's refusal in words (the catalog falls back for a code it lacks)."""
    params = {k: v for k, v in refusal.details.items() if isinstance(v, str | int)}
    params.setdefault("code", refusal.code)
    return Reply(f"refusal.{refusal.code}", params)
