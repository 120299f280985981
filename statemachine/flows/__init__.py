"""Every guided flow, one module each, in the order the main menu shows them."""

from __future__ import annotations

import importlib
import importlib.util

from statemachine.flow import FlowDefinition

FLOW_IDS = (
    "register",
    "switch_to_api",
    "multi_office",
    "supplementary_card",
    "amex_revoke",
    "jcb_card_change",
    "status",
)


def _load() -> tuple[FlowDefinition, ...]:
    flows = []
    for flow_id in FLOW_IDS:
        if importlib.util.find_spec(f"statemachine.flows.{flow_id}") is None:
            continue
        module = importlib.import_module(f"statemachine.flows.{flow_id}")
        flows.append(module.FLOW)
    return tuple(flows)


ALL_FLOWS: tuple[FlowDefinition, ...] = _load()
