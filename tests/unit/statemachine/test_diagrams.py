"""The committed flow diagrams are the machines as they are: a stale one fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from statemachine.diagrams import document
from statemachine.flows import ALL_FLOWS

DOCS = Path(__file__).resolve().parents[3] / "docs" / "flows"
FLOW_IDS = (
    "register",
    "switch_to_api",
    "multi_office",
    "supplementary_card",
    "amex_revoke",
    "jcb_card_change",
    "status",
)


def test_every_flow_is_found_in_menu_order() -> None:
    assert [flow.id for flow in ALL_FLOWS] == list(FLOW_IDS)


def test_every_committed_page_has_its_flow() -> None:
    """A page left behind by a flow that is gone (or renamed) fails too."""
    assert sorted(p.stem for p in DOCS.glob("*.md")) == sorted(FLOW_IDS)


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
        for state in flow.all_states:
            assert f'state "{state.name}"' in drawn
