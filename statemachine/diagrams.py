"""The flows' pages (``docs/flows/<id>.md``), drawn from the very definitions the engine runs.

Each page has a mermaid diagram of the flow's machine (an edge per outcome of each
step, labelled ``trigger [outcome]``) and its outcome table. ``renkei diagrams`` or
``python -m statemachine.diagrams [folder]`` writes them; a unit test fails while a
committed page differs from what its flow draws.
"""

from __future__ import annotations

import sys
from pathlib import Path

from transitions.extensions.diagrams import GraphMachine

from statemachine.flow import NEXT, SAME, STAY, FlowDefinition, machine_transitions


class _Model:
    """GraphMachine draws for a model; the flows' machines have none of their own."""


def mermaid(flow: FlowDefinition) -> str:
    model = _Model()
    GraphMachine(
        model=model,
        states=[s.name for s in flow.all_states],
        transitions=machine_transitions(flow),
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
    lines += [f"  {state.name} --> [*]" for state in flow.all_states if state.final]
    return "\n".join(lines).strip() + "\n"


def outcome_table(flow: FlowDefinition) -> str:
    """Which state follows each outcome of each step, as a markdown table."""
    rows = ["| from | trigger | step | outcome | next |", "|---|---|---|---|---|"]
    for step in flow.all_steps:
        sources = ", ".join(f"`{s}`" for s in step.sources)
        run = f"`{step.run.__name__}`" if step.run is not None else "-"
        for outcome, dest in step.outcomes.items():
            shown = "-" if step.run is None and outcome == NEXT else f"`{outcome}`"
            nxt = "the same step" if dest == SAME else f"`{dest}`"
            rows.append(f"| {sources} | `{step.trigger}` | {run} | {shown} | {nxt} |")
    return "\n".join(rows) + "\n"


def document(flow: FlowDefinition) -> str:
    finals = ", ".join(s.name for s in flow.all_states if s.final)
    waits = ", ".join(s.name for s in flow.all_states if s.waits_for)
    events = ", ".join(f"`{e}` → `{t}`" for e, t in flow.event_triggers.items())
    return (
        f"# Flow `{flow.id}`\n\n"
        "Generated from the flow's module by `renkei diagrams`; do not edit.\n\n"
        f"- first step: `{flow.initial}`\n"
        f"- ends: {finals or '-'}\n"
        f"- steps moved on by back-end events: {waits or '-'}\n"
        f"- back-end events: {events or '-'}\n\n"
        "```mermaid\n"
        f"{mermaid(flow)}"
        "```\n\n"
        "## Outcomes\n\n"
        f"A step runs once and answers an outcome; `{STAY}` (or a refusal the table does "
        "not name, said as it is) keeps the conversation where it is.\n\n"
        f"{outcome_table(flow)}"
    )


def write_all(flows: tuple[FlowDefinition, ...], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for flow in flows:
        path = folder / f"{flow.id}.md"
        path.write_text(document(flow), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    from statemachine.flows import ALL_FLOWS

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/flows")
    for written_path in write_all(ALL_FLOWS, target):
        print(written_path)
