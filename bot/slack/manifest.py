"""The Slack app manifest: a workspace admin pastes it at api.slack.com/apps and is done."""

from __future__ import annotations

from typing import Any

from i18n import render

BOT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",  # post sync notices in a public office channel without an invite
    "im:history",
    "im:write",
    "users:read",
    "users:read.email",
    "app_mentions:read",
    "files:read",  # a statement file shared in the DM is read with files.info
    "channels:history",  # support's replies in a handoff's thread (a public support channel)
    "groups:history",  # the same in a private support channel
)
# Subscribed for every scope asked (app_mentions:read → app_mention, channels:history →
# message.channels, groups:history → message.groups), and the two events that tell an
# app its tokens are gone.
BOT_EVENTS = (
    "app_home_opened",
    "message.im",
    "message.channels",
    "message.groups",
    "app_mention",
    "app_uninstalled",
    "tokens_revoked",
)
EVENTS_PATH = "/slack/events"
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"


def manifest(url: str, *, socket_mode: bool = False, locale: str = "en") -> dict[str, Any]:
    """The manifest for renkei served at ``url`` (its public https address)."""
    base = url.rstrip("/")
    events = f"{base}{EVENTS_PATH}"
    settings: dict[str, Any] = {
        "event_subscriptions": {"bot_events": list(BOT_EVENTS)},
        "interactivity": {"is_enabled": True},
        "org_deploy_enabled": False,
        "socket_mode_enabled": socket_mode,
        "token_rotation_enabled": False,
    }
    command: dict[str, Any] = {
        "command": "/renkei",
        "description": render("slack.manifest.command", locale),
        "usage_hint": "[help|status|register|switch|offices|supplementary|revoke|cancel|channel]",
        "should_escape": False,
    }
    if not socket_mode:
        # In Socket Mode Slack sends everything over the socket: no request URLs.
        settings["event_subscriptions"]["request_url"] = events
        settings["interactivity"]["request_url"] = events
        command["url"] = events
    return {
        "display_information": {
            "name": "renkei",
            "description": render("slack.manifest.description", locale),
        },
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": False,
            },
            "bot_user": {"display_name": "renkei", "always_online": True},
            "slash_commands": [command],
        },
        "oauth_config": {
            "redirect_urls": [f"{base}{REDIRECT_PATH}"],
            "scopes": {"bot": list(BOT_SCOPES)},
        },
        "settings": settings,
    }
