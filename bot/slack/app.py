"""The Slack app proper (filled in by the Slack work)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

if TYPE_CHECKING:
    from renkei.bootstrap import Runtime


def mount(app: FastAPI, runtime: Runtime) -> None:
    """Mount ``/slack/events`` and start what Slack needs."""
    raise NotImplementedError("the Slack app is not built yet")
