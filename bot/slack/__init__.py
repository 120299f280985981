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
    oauth = settings.slack_client_id is not None and settings.slack_client_secret is not None
    if settings.slack_signing_secret is None or not (settings.slack_bot_token or oauth):
        log.info(
            "Slack is off: set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN "
            "(or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET) to switch it on"
        )
        return
    from bot.slack.app import mount

    mount(app, runtime)
