"""The Slack app (slack-bolt ``AsyncApp``) on the conversation engine.

The composition root hands in ``SlackConfig`` (read from the environment) and
``SlackPorts`` (the conversations and the adapters of ``bot.slack.ports``); nothing
here reads settings or builds a store itself. bolt is imported only when Slack is on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

if TYPE_CHECKING:
    import httpx
    from slack_sdk.oauth.installation_store.async_installation_store import (
        AsyncInstallationStore,
    )
    from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

    from bot.conversations import Conversations
    from bot.slack.ports import DeferredRequests, Directory, SlackStore
    from statemachine.handoff import HandoffStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlackConfig:
    """Slack's settings, as the composition root reads them from the environment."""

    signing_secret: str | None
    api_url: str
    public_url: str
    bot_token: str | None = None
    app_token: str | None = None  # Socket Mode
    client_id: str | None = None  # with client_secret: bolt's OAuth flow, many workspaces
    client_secret: str | None = None
    support_channel: str | None = None  # "<team id>:<channel id>" of the support handoffs
    # Per issuer, the member-site page where a person stops an API link (R16): a notice
    # that needs the old link stopped first links it (absolute URLs).
    stop_link_urls: Mapping[str, str] = field(default_factory=dict)

    @property
    def oauth(self) -> bool:
        return bool(self.client_id and self.client_secret)

    @property
    def enabled(self) -> bool:
        client = self.client_id is not None and self.client_secret is not None
        return self.signing_secret is not None and (bool(self.bot_token) or client)


@dataclass(frozen=True)
class SlackPorts:
    """What the Slack front end is handed: the conversations and its stores' adapters."""

    conversations: Conversations
    store: SlackStore
    directory: Directory
    handoffs: HandoffStore
    backend_http: httpx.AsyncClient
    # bolt's OAuth stores, used when SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set.
    installations: AsyncInstallationStore | None = None
    oauth_states: AsyncOAuthStateStore | None = None
    # Told the seconds each request to /slack/events took to be acknowledged (metrics).
    observe_ack: Callable[[float], None] | None = None
    # Where the work after each ack is queued for a worker (None: done in place).
    deferred: DeferredRequests | None = None


def install(app: FastAPI, config: SlackConfig, ports: SlackPorts) -> None:
    """Mount Slack when its tokens are configured; say once that it is off otherwise."""
    if not config.enabled:
        log.info(
            "Slack is off: set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN "
            "(or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET) to switch it on"
        )
        return
    from bot.slack.app import mount

    mount(app, config, ports)


@dataclass(frozen=True)
class SlackWork:
    """What Slack asks of a job runner: a handler per job kind (keyed by the kind's
    name), and an upkeep to run every minute."""

    handlers: Mapping[str, Callable[[dict[str, Any]], Awaitable[object]]]
    upkeep: Callable[[], Awaitable[object]]


def background_work(config: SlackConfig, ports: SlackPorts) -> SlackWork:
    """The job handlers of Slack's work, for every runner of a Slack-enabled renkei."""
    from bot.slack.app import build_background

    return build_background(config, ports)
