"""Errors of the Slack front end, one tree::

SlackError
├── MemberUnknown          the Slack user maps to no renkei member
│   ├── NoEmail            users.info shows no email (scope or profile missing)
│   ├── ProfileUnreadable  users.info itself failed
│   └── NotAMember         the email belongs to no office
└── NoWorkspaceToken       no bot token for the workspace (not installed)
"""

from __future__ import annotations


class SlackError(Exception):
    """Anything the Slack front end itself refuses."""


class MemberUnknown(SlackError):
    """The Slack user is not a renkei member; ``message_key`` says why, for the person."""

    message_key = "slack.not_member"

    def __init__(self, email: str = "") -> None:
        super().__init__(email or "no email")
        self.email = email


class NoEmail(MemberUnknown):
    message_key = "slack.no_email"


class ProfileUnreadable(MemberUnknown):
    message_key = "slack.profile_unreadable"


class NotAMember(MemberUnknown):
    message_key = "slack.not_member"


class NoWorkspaceToken(SlackError):
    """Nothing can be posted to a workspace renkei is not installed in."""
