"""The registry of guided flows: every module of this package that defines ``FLOW``.

A flow is found by being here: its module holds its states, steps and outcome table,
its place in the menu, the words that ask for it and its channel command. Modules
without ``FLOW`` (shared parts such as ``consent``) are not flows.
"""

from __future__ import annotations

import importlib
import pkgutil

from statemachine.flow import FlowDefinition


def discover(package: str) -> tuple[FlowDefinition, ...]:
    """Every ``FLOW`` of the modules of ``package``, in menu order.

    Raises:
        ValueError: a module's flow has an id other than the module's name (the id
            names its catalog section and its page, so they must not drift apart).
    """
    flows = []
    for module_info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        module = importlib.import_module(f"{package}.{module_info.name}")
        flow = getattr(module, "FLOW", None)
        if isinstance(flow, FlowDefinition):
            if flow.id != module_info.name:
                raise ValueError(f"{module_info.name}: FLOW.id is {flow.id!r}, not its module's")
            flows.append(flow)
    return tuple(sorted(flows, key=lambda f: (f.menu_position, f.id)))


ALL_FLOWS: tuple[FlowDefinition, ...] = discover(__name__)
"""Every flow, in the order the main menu shows them."""

FLOW_COMMANDS: dict[str, str] = {f.command: f.id for f in ALL_FLOWS if f.command}
"""A channel command's word → the flow it starts (``/renkei jcb``)."""
