"""The Slack app (slack-bolt ``AsyncApp``) on the conversation engine."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import FastAPI

if TYPE_CHECKING:
    from renkei.bootstrap import Runtime

log = logging.getLogger(__name__)


def install(app: FastAPI, runtime: Runtime) -> None:
    """Mount Slack when its tokens are configured; say once that it is off otherwise."""
    settings = runtime.settings
    if settings.slack_signing_secret is None:
        log.info("Slack is off: set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN to switch it on")
        return
    from bot.slack.app import mount

    mount(app, runtime)
