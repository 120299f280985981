"""Steps and outcome tables: a step runs once, its outcome picks the next state, shared parts."""

from __future__ import annotations

from typing import cast

import pytest

from backend.domain.vocabulary import RefusalCode
from bot.conversations import reply_text
from statemachine.engine import FlowEngine, Input
from statemachine.flow import (
    NEXT,
    STAY,
    FlowDefinition,
    Given,
    State,
    Step,
    Turn,
    UnknownOutcome,
    choice,
    go,
    refusal_reply,
)
from statemachine.flows import ALL_FLOWS, FLOW_COMMANDS
from statemachine.flows.consent import Names
from statemachine.port import BackendPort
from statemachine.replies import Choice
from tests.unit.statemachine.memory import MemoryStore, ScriptedBackend

RUNS: list[str] = []


async def route(turn: Turn, given: Given) -> str:
    """Three outcomes from one call: the call is made once whatever the outcome."""
    RUNS.append(given.value)
    account = await turn.backend.account(given.value)
    turn.slots["account"] = account.id
    return {"a": "first", "b": "second"}.get(given.value, STAY)


async def wrong(turn: Turn, given: Given) -> str:
    return "nowhere"


def say(key: str) -> State:
    def prompt(turn: Turn) -> None:
        turn.say(key, choice("pick:a", "t.a"))

    return State(key.removeprefix("t."), prompt)


FLOW = FlowDefinition(
    id="register",
    initial="ask",
    states=[
        say("t.ask"),
        say("t.first"),
        say("t.second"),
        say("t.linked_elsewhere"),
        State("name", lambda turn: turn.say("t.name"), text_trigger="named", secret=True),
        State("upload", lambda turn: turn.say("t.upload")),
        State("done", lambda turn: turn.say("t.done"), final=True),
    ],
    steps=[
        Step(
            "pick",
            "ask",
            {"first": "first", "second": "second", "card_already_linked": "linked_elsewhere"},
            route,
        ),
        Step("bad", "ask", {NEXT: "done"}, wrong),
        go("next", "first", "name"),
        go("named", "name", "upload"),
        go("file", "upload", "done"),
    ],
)


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture
def engine(backend: ScriptedBackend) -> FlowEngine:
    RUNS.clear()
    return FlowEngine([FLOW], MemoryStore(), lambda user: cast(BackendPort, backend), label=_label)


def _label(choice_: Choice, locale: str) -> str:
    return choice_.text or choice_.label


async def _started(engine: FlowEngine) -> str:
    record = await engine.create("owner@example.com", "ja", office_id="o1")
    record = await engine.handle(record.id, Input(choice="register"))
    return record.id


async def test_a_step_runs_once_and_its_outcome_picks_the_state(
    engine: FlowEngine, backend: ScriptedBackend
) -> None:
    conversation = await _started(engine)
    record = await engine.handle(conversation, Input(choice="pick:b"))
    assert record.state == "second" and record.slots["account"] == "b"
    assert RUNS == ["b"] and backend.calls == [("account", "b")]


async def test_a_stay_outcome_keeps_the_step(engine: FlowEngine, backend: ScriptedBackend) -> None:
    conversation = await _started(engine)
    record = await engine.handle(conversation, Input(choice="pick:z"))
    assert record.state == "ask" and record.replies[0]["key"] == "common.nothing_new"
    assert RUNS == ["z"]


async def test_a_refusal_named_by_the_table_is_an_outcome(
    engine: FlowEngine, backend: ScriptedBackend
) -> None:
    conversation = await _started(engine)
    backend.refuse = "card_already_linked"
    record = await engine.handle(conversation, Input(choice="pick:a"))
    assert record.state == "linked_elsewhere"
    assert len([c for c in backend.calls if c[0] == "account"]) == 1


async def test_an_outcome_outside_the_table_is_a_bug_not_a_silent_stay(
    engine: FlowEngine,
) -> None:
    conversation = await _started(engine)
    with pytest.raises(UnknownOutcome):
        await engine.handle(conversation, Input(choice="bad"))


def test_a_table_naming_no_state_is_refused_when_the_flow_is_built() -> None:
    with pytest.raises(ValueError, match="nowhere"):
        FlowDefinition(
            id="x",
            initial="a",
            states=[State("a", lambda turn: None)],
            steps=[go("next", "a", "nowhere")],
        )


async def test_the_engine_says_what_a_step_accepts(engine: FlowEngine) -> None:
    conversation = await _started(engine)
    record = await engine.get(conversation)
    accepts = engine.accepts(record)
    assert accepts.triggers[:2] == ("pick", "bad") and "back" in accepts.triggers
    assert not (accepts.text or accepts.secret or accepts.file)
    record = await engine.handle(conversation, Input(choice="pick:a"))
    record = await engine.handle(conversation, Input(choice="next"))
    accepts = engine.accepts(record)
    assert accepts.text and accepts.secret and not accepts.file
    record = await engine.handle(conversation, Input(text="hunter2"))
    assert record.state == "upload" and engine.accepts(record).file
    menu = engine.accepts(await engine.handle(conversation, Input(choice="cancel")))
    assert menu.triggers == ("register", "handoff") and not menu.text


def test_the_registry_finds_every_flow_with_its_menu_words_and_command() -> None:
    assert {f.id for f in ALL_FLOWS} == set(FLOW_COMMANDS.values())
    positions = [f.menu_position for f in ALL_FLOWS]
    assert positions == sorted(positions)
    assert all(f.keywords for f in ALL_FLOWS)
    assert FLOW_COMMANDS["jcb"] == "jcb_card_change"


def test_the_consent_part_is_shared_never_copied() -> None:
    """Every flow that asks for consent gets its consent states from the shared part."""
    shared = {"consent", "linked", "failed", "sync_failed", "reauth_consent", "reauth_failed"}
    consenting = set()
    for flow in ALL_FLOWS:
        assert not {s.name for s in flow.states} & shared, flow.id
        for part in flow.parts:
            names = {s.name for s in part.states}
            if names & {Names().consent, "reauth_consent"}:
                consenting.add(flow.id)
    assert consenting == {
        "register",
        "switch_to_api",
        "multi_office",
        "supplementary_card",
        "status",
    }


def test_refusal_words_come_from_one_mechanism() -> None:
    own = refusal_reply("card_mismatch", own_words={RefusalCode.CARD_MISMATCH: "x.wrong_card"})
    assert own.key == "x.wrong_card"
    known = refusal_reply("card_already_linked", fallback="common_flow.authorization_failed")
    assert reply_text(known, "en") == reply_text(refusal_reply("card_already_linked"), "en")
    unknown = refusal_reply("brand_new_code", fallback="common_flow.authorization_failed")
    failed = reply_text(refusal_reply("x", fallback="common_flow.authorization_failed"), "en")
    assert reply_text(unknown, "en") == failed
    assert "brand_new_code" in reply_text(refusal_reply("brand_new_code"), "en")
