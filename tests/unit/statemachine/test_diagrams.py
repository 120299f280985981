"""The committed flow diagrams are the machines as they are: a stale one fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from statemachine.diagrams import document
from statemachine.flows import ALL_FLOWS, FLOW_IDS

DOCS = Path(__file__).resolve().parents[3] / "docs" / "flows"


def test_every_flow_is_built() -> None:
    assert [flow.id for flow in ALL_FLOWS] == list(FLOW_IDS)


@pytest.mark.parametrize("flow", ALL_FLOWS, ids=lambda flow: flow.id)
def test_diagram_is_fresh(flow: object) -> None:
    from statemachine.flow import FlowDefinition

    assert isinstance(flow, FlowDefinition)
    committed = DOCS / f"{flow.id}.md"
    assert committed.exists(), f"run `renkei diagrams` and commit {committed.name}"
    assert committed.read_text(encoding="utf-8") == document(flow), (
        f"docs/flows/{flow.id}.md is stale: run `renkei diagrams` and commit it"
    )


def test_each_state_appears_in_its_diagram() -> None:
    for flow in ALL_FLOWS:
        drawn = document(flow)
        for state in flow.states:
            assert f'state "{state.name}"' in drawn
