"""What the Slack front end needs kept and looked up, as ports it owns.

The front end keeps its members, office channels, seen requests and outgoing messages
through ``SlackStore``, and reads the names a notice shows through ``Directory``. Their
SQL adapters live beside the other tables (``backend/db/slack_store.py``); the
composition root hands them in. Everything lives in the database, not in the process:
a retried request, a button clicked on another process, a notification retried after
a restart all find it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class SlackMember:
    team_id: str
    user_id: str
    email: str | None
    locale: str
    dm_channel_id: str | None
    conversation_id: str | None
    updated_at: dt.datetime


@dataclass(frozen=True)
class OfficeChannel:
    office_id: str
    team_id: str
    channel_id: str


PostingStatus = Literal["pending", "sending", "sent", "failed"]


@dataclass(frozen=True)
class Posting:
    """Where one queued message stands: ``pending``, ``sending``, ``sent`` (with the
    ``ts`` Slack gave it) or ``failed`` (for good)."""

    status: PostingStatus
    message_ts: str | None


@dataclass(frozen=True)
class Notification:
    id: int
    event_id: str
    team_id: str | None
    channel_id: str
    text: str
    blocks: list[dict[str, Any]]
    attempts: int
    thread_ts: str | None = None  # a reply in the thread of that message
    due_at: dt.datetime | None = None  # Slack turned it away: not to be tried before


class SlackStore(Protocol):
    """The Slack front end's own rows."""

    clock: Callable[[], dt.datetime]

    async def first_time(self, key: str) -> bool:
        """True once per key, whichever process asks first."""
        ...

    async def forget_seen_before(self, before: dt.datetime) -> None: ...

    async def member(self, team_id: str, user_id: str) -> SlackMember | None: ...

    async def save_member(
        self, team_id: str, user_id: str, email: str | None, locale: str
    ) -> SlackMember: ...

    async def set_dm(self, team_id: str, user_id: str, channel_id: str) -> None: ...

    async def set_conversation(self, team_id: str, user_id: str, conversation_id: str) -> None: ...

    async def members_of_conversation(self, conversation_id: str) -> list[SlackMember]: ...

    async def members_by_email(self, email: str) -> list[SlackMember]:
        """The Slack users (one per workspace) known with this renkei email."""
        ...

    async def set_office_channel(
        self, office_id: str, team_id: str, channel_id: str, set_by: str
    ) -> None: ...

    async def office_channel(self, office_id: str) -> OfficeChannel | None: ...

    async def channel_setters(self, team_id: str, channel_id: str) -> list[SlackMember]:
        """The members who made the channel an office's notice channel (its admins)."""
        ...

    async def enqueue(
        self,
        event_id: str,
        team_id: str | None,
        channel_id: str,
        text: str,
        blocks: list[dict[str, Any]],
        thread_ts: str | None = None,
    ) -> bool:
        """Queue a message once per (event, channel), with the channel's ``slack_notice``
        job that posts it; False when it was queued before."""
        ...

    async def posting(self, event_id: str, channel_id: str) -> Posting | None:
        """Where the message of an event in a channel stands; None if none was queued."""
        ...

    async def event_of_message(self, channel_id: str, message_ts: str) -> str | None:
        """The event id of the message renkei posted as ``message_ts`` in a channel."""
        ...

    async def waiting_messages(self, channel_id: str, limit: int = 20) -> list[Notification]:
        """A channel's messages still to be posted, the oldest first."""
        ...

    async def queue_channel(self, channel_id: str) -> None:
        """Queue the channel's ``slack_notice`` job (one waits at most)."""
        ...

    async def overdue_channels(self, due_before: dt.datetime) -> list[str]:
        """Channels with a message still to be posted that was due before ``due_before``."""
        ...

    async def queue_handoff_routing(self) -> None:
        """Queue a ``slack_handoffs`` job (one waits at most): handoffs to pass on."""
        ...

    async def mark_sent(self, notification_id: int, message_ts: str | None) -> None: ...

    async def mark_retry(self, notification_id: int, delay: float, error: str) -> None: ...

    async def mark_failed(self, notification_id: int, error: str) -> None: ...


@dataclass(frozen=True)
class AccountNames:
    """What an office channel's notice says of an account."""

    name: str
    issuer: str
    sync_method: str


@dataclass(frozen=True)
class SlackRequest:
    """A Slack request acked by a web process, for a worker to carry out.

    ``body`` is the request's payload as bolt read it (its signature was checked at the
    edge, or it came over Socket Mode); ``carried`` is what the acking process already
    did that cannot be done twice (the modal it opened: its trigger lived three seconds).
    """

    body: dict[str, Any]
    carried: dict[str, Any]


class DeferredRequests(Protocol):
    """The work after an ack, as a job any worker runs: durable before the ack leaves."""

    async def defer(self, key: str | None, request: SlackRequest) -> bool:
        """Queue ``request``; False (nothing queued) when its ``key`` was seen before."""
        ...

    def opened(self, payload: dict[str, Any]) -> SlackRequest | None:
        """The request a job carries; None when it cannot be read any more."""
        ...


class Directory(Protocol):
    """The names a notice shows. An event names its office and account by id only, and a
    notice has no member to ask the back end as, so the names are read here."""

    async def office_name(self, office_id: str) -> str | None: ...

    async def account_names(self, account_id: str) -> AccountNames | None: ...

    async def member_emails(self, office_id: str) -> list[str]:
        """The emails of the office's members (a warning that needs one of them to act
        reaches each in their own DM)."""
        ...
