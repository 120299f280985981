"""The engine on its own: locking, failures, navigation, secrets, events, analytics."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, cast

import pytest

from backend.domain.vocabulary import EventType
from statemachine.engine import ConversationConflict, FlowEngine, Input
from statemachine.flow import NEXT, FlowDefinition, Given, State, Step, Turn, choice, go
from statemachine.port import BackendPort
from statemachine.replies import Choice
from tests.unit.statemachine.memory import MemoryStore, ScriptedBackend


async def load(turn: Turn, given: Given) -> str:
    account = await turn.backend.account(given.value)
    turn.slots["account_id"] = account.id
    return NEXT


def ask(turn: Turn) -> None:
    turn.say("t.ask", choice("pick:a1", "t.a1"))


def password(turn: Turn) -> None:
    turn.say("t.password")


def waiting(turn: Turn) -> None:
    turn.say("t.waiting")


def done(turn: Turn) -> None:
    turn.say("t.done")


def refused_prompt(turn: Turn) -> None:
    turn.say("t.refused")


async def keep(turn: Turn, given: Given) -> str:
    turn.slots["typed"] = len(given.value)
    return NEXT


FLOW = FlowDefinition(
    id="register",
    initial="ask",
    states=[
        State("ask", ask),
        State("password", password, text_trigger="enter", secret=True),
        State("waiting", waiting, waits_for="account_id"),
        State("refused", refused_prompt),
        State("done", done, final=True),
    ],
    steps=[
        Step("pick", "ask", {NEXT: "password", "card_already_linked": "refused"}, load),
        Step("enter", "password", {NEXT: "waiting"}, keep),
        go("authorized", "waiting", "done"),
    ],
    event_triggers={EventType.LINK_CREATED: "authorized"},
)


def label(choice_: Choice, locale: str) -> str:
    return choice_.text or {"t.a1": "ビジネス"}.get(choice_.label, choice_.label)


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def engine(store: MemoryStore, backend: ScriptedBackend) -> FlowEngine:
    return FlowEngine([FLOW], store, lambda user: cast(BackendPort, backend), label=label)


async def started(engine: FlowEngine) -> str:
    record = await engine.create("owner@example.com", "ja", office_id="o1")
    record = await engine.handle(record.id, Input(choice="register"))
    assert (record.flow, record.state) == ("register", "ask")
    return record.id


def keys(record: Any) -> list[str]:
    return [r["key"] for r in record.replies]


async def test_two_simultaneous_inputs_one_wins_the_other_is_refused(
    engine: FlowEngine, backend: ScriptedBackend, store: MemoryStore
) -> None:
    conversation = await started(engine)
    backend.gate = asyncio.Event()
    first = asyncio.create_task(engine.handle(conversation, Input(choice="pick:a1")))
    second = asyncio.create_task(engine.handle(conversation, Input(choice="pick:a1")))
    await asyncio.sleep(0.01)
    backend.gate.set()
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert sum(isinstance(r, ConversationConflict) for r in results) == 1
    saved = store.rows[conversation]
    assert saved.state == "password" and len(saved.history) == 1  # applied once, not twice
    # the second input was refused before it reached the back end at all
    assert [call for call in backend.calls if call[0] == "account"] == [("account", "a1")]


async def test_back_end_down_keeps_the_step_and_retries(
    engine: FlowEngine, backend: ScriptedBackend
) -> None:
    conversation = await started(engine)
    backend.down = True
    record = await engine.handle(conversation, Input(choice="pick:a1"))
    assert record.state == "ask" and keys(record) == ["common.backend_unavailable"]
    assert record.replies[0]["choices"][0]["value"] == "retry"
    backend.down = False
    record = await engine.handle(conversation, Input(choice="retry"))
    assert record.state == "password"


async def test_a_refusal_branches_by_its_code(engine: FlowEngine, backend: ScriptedBackend) -> None:
    conversation = await started(engine)
    backend.refuse = "card_already_linked"
    record = await engine.handle(conversation, Input(choice="pick:a1"))
    assert record.state == "refused"
    backend.refuse = "api_not_released"  # no branch for it: explained, the step stays
    record = await engine.handle(conversation, Input(choice="back"))
    record = await engine.handle(conversation, Input(choice="pick:a1"))
    assert record.state == "ask" and keys(record)[0] == "refusal.api_not_released"


async def test_typed_text_naming_a_button_chooses_it(engine: FlowEngine) -> None:
    conversation = await started(engine)
    record = await engine.handle(conversation, Input(text="ビジネス"))
    assert record.state == "password"


async def test_a_password_never_reaches_the_transcript(
    engine: FlowEngine, store: MemoryStore
) -> None:
    conversation = await started(engine)
    await engine.handle(conversation, Input(choice="pick:a1"))
    await engine.handle(conversation, Input(text="hunter2-secret"))
    saved = store.rows[conversation]
    transcript = str(await store.transcript(conversation))
    assert "●●●" in transcript  # the step is in the transcript, masked
    assert "hunter2-secret" not in transcript and "hunter2-secret" not in str(saved.slots)
    assert saved.state == "waiting" and saved.waiting_for == "account:a1"


async def test_navigation_back_restart_cancel_help(engine: FlowEngine) -> None:
    conversation = await started(engine)
    record = await engine.handle(conversation, Input(choice="pick:a1"))
    record = await engine.handle(conversation, Input(text="戻る"))
    assert record.state == "ask" and "account_id" not in record.slots
    record = await engine.handle(conversation, Input(choice="help"))
    assert keys(record)[0] == "register.help" and record.state == "ask"
    record = await engine.handle(conversation, Input(choice="pick:a1"))
    record = await engine.handle(conversation, Input(choice="restart"))
    # Starting over forgets the procedure and its office.
    assert (record.flow, record.state, record.slots) == (None, "menu", {})
    assert record.office_id is None and keys(record)[0] == "common.restarted"
    record = await engine.handle(conversation, Input(choice="register"))
    record = await engine.handle(conversation, Input(text="キャンセル"))
    assert (record.flow, record.state) == (None, "menu")


async def test_an_event_moves_the_waiting_conversation_and_counts_steps(
    engine: FlowEngine, store: MemoryStore
) -> None:
    conversation = await started(engine)
    await engine.handle(conversation, Input(choice="pick:a1"))
    await engine.handle(conversation, Input(text="x"))
    assert await engine.notify("account:other", "link.created", {}) == []
    assert await engine.notify("account:a1", "link.created", {}) == [conversation]
    saved = store.rows[conversation]
    assert saved.flow is None and "t.done" in [r["key"] for r in saved.replies]
    counts = {(c["flow"], c["step"]): c for c in await engine.analytics()}
    assert counts[("register", "ask")]["completed"] == 1
    assert counts[("register", "done")]["entered"] == 1


@pytest.fixture
def staffed(store: MemoryStore, backend: ScriptedBackend) -> FlowEngine:
    """An engine whose handoffs reach a person (a support channel or page is set)."""
    return FlowEngine(
        [FLOW],
        store,
        lambda user: cast(BackendPort, backend),
        label=label,
        handoffs=store,
        support_route=lambda: True,
    )


async def test_handoff_keeps_the_transcript(staffed: FlowEngine, store: MemoryStore) -> None:
    conversation = await started(staffed)
    record = await staffed.handle(conversation, Input(text="担当者と話したい"))
    assert keys(record) == ["common.handoff_done"]
    assert store.handoffs and store.handoffs[0].conversation_id == conversation
    assert any(e.get("choice") == "register" for e in store.handoffs[0].transcript)


async def test_with_no_one_to_hand_over_to_the_assistant_says_so(
    engine: FlowEngine, store: MemoryStore
) -> None:
    conversation = await started(engine)
    record = await engine.handle(conversation, Input(text="担当者と話したい"))
    assert keys(record)[0] == "handoff.no_route" and "common.handoff_done" not in keys(record)
    assert store.handoffs == []  # nothing queued that nobody reads
    record = await engine.handle(conversation, Input(choice="pick:a1"))
    assert record.state == "password"  # the assistant goes on helping


async def test_a_handed_over_conversation_is_quiet_until_resolved(
    staffed: FlowEngine, store: MemoryStore
) -> None:
    conversation = await started(staffed)
    await staffed.handle(conversation, Input(choice="handoff"))
    record = await staffed.handle(conversation, Input(text="カードが見つかりません"))
    assert record.replies == [] and record.state == "ask"  # no flow reply, no refusal
    record = await staffed.handle(conversation, Input(choice="pick:a1"))
    assert record.replies == [] and record.state == "ask"
    record = await staffed.handle(conversation, Input(choice="lang:en"))
    assert record.replies == [] and record.locale == "en"  # nothing passed on to support
    assert staffed.accepts(record).triggers == ("handoff_end",)
    handoff = store.handoffs[0]
    said = [m.text for m in store.messages if m.kind == "person"]
    assert said == ["カードが見つかりません", "pick:a1"]
    assert await staffed.support_answer(handoff.id, "確認します", "U0SUPPORT", "slack")
    assert store.handoffs[0].status == "answered"
    assert await staffed.resolve_handoff(handoff.id, "U0SUPPORT", "slack")
    record = await staffed.get(conversation)
    assert keys(record)[0] == "handoff.resolved" and record.state == "ask"
    assert "t.ask" in keys(record)  # where the flow was
    record = await staffed.handle(conversation, Input(choice="pick:a1"))
    assert record.state == "password"
    assert not await staffed.support_answer(handoff.id, "遅れて", "U0SUPPORT", "slack")


async def test_the_person_goes_back_to_the_assistant(
    staffed: FlowEngine, store: MemoryStore
) -> None:
    conversation = await started(staffed)
    await staffed.handle(conversation, Input(choice="handoff"))
    record = await staffed.handle(conversation, Input(text="アシスタントに戻る"))
    assert keys(record)[:2] == ["handoff.resumed", "t.ask"]
    assert store.handoffs[0].status == "resolved"
    assert not await staffed.resolve_handoff(store.handoffs[0].id, "U0SUPPORT", "slack")


async def test_an_input_arriving_mid_turn_is_refused_before_the_back_end(
    engine: FlowEngine, backend: ScriptedBackend, store: MemoryStore
) -> None:
    conversation = await started(engine)
    backend.gate = asyncio.Event()
    first = asyncio.create_task(engine.handle(conversation, Input(choice="pick:a1")))
    await asyncio.sleep(0.01)  # the first turn holds the conversation (an odd version)
    with pytest.raises(ConversationConflict):
        await engine.handle(conversation, Input(choice="pick:a1"))
    backend.gate.set()
    await first
    assert len([call for call in backend.calls if call[0] == "account"]) == 1


async def test_a_turn_whose_process_died_frees_the_conversation_later(
    engine: FlowEngine, store: MemoryStore
) -> None:
    conversation = await started(engine)
    row = store.rows[conversation]
    row.version += 1  # claimed by a process that then died
    row.updated_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    record = await engine.handle(conversation, Input(choice="pick:a1"))
    assert record.state == "password" and record.version % 2 == 0


async def test_a_turn_that_fails_lets_the_conversation_go(
    engine: FlowEngine, backend: ScriptedBackend, store: MemoryStore
) -> None:
    conversation = await started(engine)

    async def broken(account_id: str) -> Any:
        raise RuntimeError("a bug")

    healthy = backend.account
    backend.account = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await engine.handle(conversation, Input(choice="pick:a1"))
    assert store.rows[conversation].version % 2 == 0  # not held by the dead turn
    backend.account = healthy  # type: ignore[method-assign]
    record = await engine.handle(conversation, Input(choice="pick:a1"))
    assert record.state == "password"


async def test_a_button_of_an_earlier_step_is_answered_as_such_and_not_carried_out(
    engine: FlowEngine,
) -> None:
    conversation = await started(engine)
    shown = (await engine.get(conversation)).lines
    record = await engine.handle(conversation, Input(choice="pick:a1", shown_at=shown))
    assert record.state == "password"
    # "Back" as drawn with the first step (another tab): the step it meant is gone.
    record = await engine.handle(conversation, Input(choice="back", shown_at=shown))
    assert keys(record)[0] == "common.choice_stale"
    assert record.state == "password" and keys(record)[1:] == ["t.password"]
    record = await engine.handle(conversation, Input(choice="back", shown_at=record.lines))
    assert record.state == "ask"
    # A channel that does not say when its button was drawn is taken at its word.
    record = await engine.handle(conversation, Input(choice="pick:a1"))
    assert record.state == "password"


async def test_the_transcript_keeps_the_words_and_buttons_as_read(
    store: MemoryStore, backend: ScriptedBackend
) -> None:
    engine = FlowEngine(
        [FLOW],
        store,
        lambda user: cast(BackendPort, backend),
        label=label,
        say=lambda reply, locale: f"{locale}:{reply.key}",
    )
    conversation = await started(engine)
    await engine.handle(conversation, Input(choice="pick:a1"))
    await engine.handle(conversation, Input(text="hunter2-secret"))
    lines = await store.transcript(conversation)
    greeting = lines[0]
    assert greeting["from"] == "assistant" and greeting["said"][0]["text"] == "ja:menu.greeting"
    assert {"value": "register", "label": "menu.flow.register"} in greeting["said"][0]["choices"]
    picked = next(line for line in lines if line.get("choice") == "pick:a1")
    assert picked["label"] == "ビジネス"  # the button's words, not its value
    assert "hunter2-secret" not in str(lines) and lines[-2]["text"] == "●●●"
    assert lines[-1]["said"][0]["text"] == "ja:t.waiting"
    assert (await engine.get(conversation)).lines == len(lines)
