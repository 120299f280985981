"""Mermaid diagrams of the flows, drawn from the very machine definitions the engine runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transitions.extensions.diagrams import GraphMachine

from statemachine.flow import FlowDefinition


class _Model:
    """GraphMachine draws for a model; the flows' machines have none of their own."""


def mermaid(flow: FlowDefinition) -> str:
    model = _Model()
    transitions: list[dict[str, Any]] = []
    for transition in flow.transitions:
        drawn = dict(transition)
        drawn.pop("before", None)
        drawn.pop("after", None)
        transitions.append(drawn)
    GraphMachine(
        model=model,
        states=[s.name for s in flow.states],
        transitions=transitions,
        initial=flow.initial,
        auto_transitions=False,
        graph_engine="mermaid",
        show_conditions=True,
        title=flow.id,
    )
    graph = model.get_graph()  # type: ignore[attr-defined]
    source: str = graph.draw(None)
    lines = [line.rstrip() for line in source.splitlines()]
    # The drawing marks the model's current state; a document shows no current state.
    lines = [line for line in lines if not line.strip().startswith("Class ")]
    lines += [f"  {state.name} --> [*]" for state in flow.states if state.final]
    return "\n".join(lines).strip() + "\n"


def document(flow: FlowDefinition) -> str:
    finals = ", ".join(s.name for s in flow.states if s.final)
    waits = ", ".join(s.name for s in flow.states if s.waits_for)
    return (
        f"# Flow `{flow.id}`\n\n"
        "Generated from the machine definition by `renkei diagrams`; do not edit.\n\n"
        f"- first step: `{flow.initial}`\n"
        f"- ends: {finals or '-'}\n"
        f"- steps moved on by back-end events: {waits or '-'}\n\n"
        "```mermaid\n"
        f"{mermaid(flow)}"
        "```\n"
    )


def write_all(flows: tuple[FlowDefinition, ...], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for flow in flows:
        path = folder / f"{flow.id}.md"
        path.write_text(document(flow), encoding="utf-8")
        written.append(path)
    return written
