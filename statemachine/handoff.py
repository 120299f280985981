"""A conversation handed over to a person: who owns it, what was said, how it ends.

A handoff is ``open`` (nobody answered yet), ``answered`` (support said something) or
``resolved``. While it is open or answered a person owns the conversation: the engine
answers none of the person's messages with a flow's reply, it keeps them for support
(the Slack thread, the support page) instead. It ends when support marks it resolved or
the person goes back to the assistant; the assistant then resumes where the flow was.

The ownership is a slot of the conversation (``HANDED_OFF``, the handoff's id), saved
with the turn that hands over, so it is taken and released under the conversation's
own lock; the handoff's row says where support stands.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from statemachine import intents
from statemachine.store import ConversationRecord, Handoff

HANDED_OFF = "_handoff"
"""Slot holding the id of the open handoff that owns the conversation."""
END = "handoff_end"
"""The person's choice: back to the assistant (ends the handoff)."""

# Typed words that end a handoff from the person's side, besides the button.
END_WORDS = (
    "アシスタントに戻",
    "自動応答に戻",
    "解決しました",
    "解決した",
    "back to the assistant",
    "back to assistant",
    "resolved",
)


class HandoffStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    RESOLVED = "resolved"


class MessageKind(StrEnum):
    PERSON = "person"  # the person wrote while support owns the conversation
    SUPPORT = "support"  # support answered
    RESOLVED = "resolved"  # the handoff ended (by support or by the person)


@dataclass(frozen=True)
class HandoffMessage:
    """One message of a handoff, kept for the support side and the person's channel.

    ``via`` is where it was written (``slack``, ``page``, ``chat``); ``author`` who
    wrote it (an email, a Slack user id, ``support``).
    """

    handoff_id: str
    conversation_id: str
    kind: MessageKind
    text: str
    author: str
    via: str
    at: dt.datetime
    id: int = 0
    routed_at: dt.datetime | None = None


class HandoffStore(Protocol):
    """Where handoffs and their messages live (the conversation store's database)."""

    async def add_handoff(self, handoff: Handoff) -> None: ...

    async def unrouted_handoffs(self, limit: int = 50) -> list[Handoff]:
        """Handoffs not posted to the support channel yet."""
        ...

    async def mark_handoff_routed(self, handoff_id: str, at: dt.datetime) -> None: ...

    async def handoff(self, handoff_id: str) -> Handoff | None: ...

    async def open_handoffs(self, limit: int = 100) -> list[Handoff]:
        """Handoffs not resolved yet, oldest first."""
        ...

    async def set_handoff_status(
        self, handoff_id: str, status: HandoffStatus, at: dt.datetime
    ) -> bool:
        """Move a handoff that is not resolved yet; False when it already was."""
        ...

    async def add_handoff_message(self, message: HandoffMessage) -> None: ...

    async def handoff_messages(self, handoff_id: str) -> list[HandoffMessage]:
        """A handoff's messages in the order they were written."""
        ...

    async def support_answers(self, conversation_id: str) -> list[HandoffMessage]:
        """Support's answers in a conversation, over all its handoffs, in order."""
        ...

    async def unrouted_handoff_messages(self, limit: int = 50) -> list[HandoffMessage]:
        """Messages the Slack side has not passed on yet, oldest first."""
        ...

    async def mark_handoff_message_routed(self, message_id: int, at: dt.datetime) -> None: ...


SupportRoute = Callable[[], bool]
"""Whether any person can receive a handoff now (a support channel, a support page)."""


def owner(record: ConversationRecord) -> str | None:
    """The id of the handoff that owns the conversation, or None when the assistant does."""
    value = record.slots.get(HANDED_OFF)
    return str(value) if value else None


def ends_handoff(choice: str | None, text: str | None) -> bool:
    """Whether the person's input takes them back to the assistant."""
    if choice is not None:
        return choice == END
    folded = intents.fold(text or "")
    return any(intents.fold(words) in folded for words in END_WORDS)
