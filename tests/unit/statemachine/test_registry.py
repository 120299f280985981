"""A flow is found by being a module: one new file, and the menu, words and command follow."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from statemachine import intents
from statemachine.engine import FlowEngine, Input
from statemachine.flows import discover
from statemachine.port import BackendPort
from tests.unit.statemachine.memory import MemoryStore, ScriptedBackend

NEW_FLOW = """
from statemachine.flow import FlowDefinition, State, go


def ask(turn):
    turn.say("renewal.ask")


FLOW = FlowDefinition(
    id="consent_renewal",
    initial="ask",
    menu_position=65,
    keywords=("renew consent", "同意の更新"),
    keyword_rank=5,
    command="renew",
    states=[State("ask", ask), State("done", lambda turn: turn.say("renewal.done"), final=True)],
    steps=[go("yes", "ask", "done")],
)
"""


@pytest.fixture
def package(tmp_path: Path) -> Iterator[str]:
    """A flows package holding one flow module and one shared module without FLOW."""
    root = tmp_path / "more_flows"
    root.mkdir()
    (root / "__init__.py").write_text("", encoding="utf-8")
    (root / "consent_renewal.py").write_text(NEW_FLOW, encoding="utf-8")
    (root / "shared_words.py").write_text("WORDS = 1\n", encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    yield "more_flows"
    sys.path.remove(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("more_flows")]:
        del sys.modules[name]


async def test_one_new_module_is_a_flow_in_the_menu_words_and_command(package: str) -> None:
    flows = discover(package)
    assert [f.id for f in flows] == ["consent_renewal"]
    engine = FlowEngine(
        flows,
        MemoryStore(),
        lambda user: cast(BackendPort, ScriptedBackend()),
        label=lambda choice, locale: choice.label,
    )
    record = await engine.create("owner@example.com", "ja", office_id="o1")
    assert [c["value"] for c in record.replies[0]["choices"]] == ["consent_renewal", "handoff"]
    assert intents.flow_intent("同意の更新をしたい", engine.intents) == "consent_renewal"
    record = await engine.handle(record.id, Input(text="renew consent please"))
    assert (record.flow, record.state) == ("consent_renewal", "ask")
    assert {f.command: f.id for f in flows} == {"renew": "consent_renewal"}


def test_a_module_whose_flow_has_another_id_is_refused(package: str, tmp_path: Path) -> None:
    wrong = NEW_FLOW.replace('id="consent_renewal"', 'id="renewal"')
    (tmp_path / "more_flows" / "consent_renewal.py").write_text(wrong, encoding="utf-8")
    with pytest.raises(ValueError, match="not its module"):
        discover(package)
