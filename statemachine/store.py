"""Where conversations live: in the database, so any process can take the next turn."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

StepField = Literal["entered", "completed", "abandoned"]

TRANSCRIPT_KEPT = 200
"""Lines of a conversation's transcript a store keeps (and ``load`` answers): the latest."""


@dataclass
class ConversationRecord:
    """One conversation; ``version`` guards against two turns saving over each other.

    The transcript only grows, a line at a time, so a turn never reads it: ``load``
    answers it whole (its latest ``TRANSCRIPT_KEPT`` lines, in order), ``take`` answers
    none of it. Lines are added with ``log``; ``save`` appends those of the turn.
    """

    id: str
    user: str
    locale: str
    office_id: str | None = None
    flow: str | None = None
    state: str = "menu"
    slots: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    waiting_for: str | None = None
    version: int = 0
    lines: int = 0
    """Lines ever logged (the number of the latest): which step a person's button was
    shown at, so a button of an earlier step is told apart from the current one's."""
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    logged: list[dict[str, Any]] = field(default_factory=list)
    """The lines logged since the record was read, which ``save`` (or ``create``) appends."""

    def log(self, line: dict[str, Any]) -> None:
        """Add a line to the transcript (stored by the next ``save``)."""
        self.transcript.append(line)
        self.logged.append(line)


def claimed_version(version: int) -> int:
    """The odd version a turn takes: even (free) + 1, or odd (a dead turn's) + 2."""
    return version + 1 + version % 2


@dataclass(frozen=True)
class StepCount:
    flow: str
    step: str
    entered: int
    completed: int
    abandoned: int


@dataclass(frozen=True)
class Handoff:
    id: str
    conversation_id: str
    user: str
    office_id: str | None
    transcript: list[dict[str, Any]]
    account_state: dict[str, Any] | None
    created_at: dt.datetime
    routed_at: dt.datetime | None = None
    status: str = "open"  # statemachine.handoff.HandoffStatus
    resolved_at: dt.datetime | None = None


class ConversationStore(Protocol):
    async def create(self, record: ConversationRecord) -> None: ...

    async def load(self, conversation_id: str) -> ConversationRecord | None: ...

    async def claim(
        self, conversation_id: str, expected_version: int, now: dt.datetime, stale: dt.datetime
    ) -> bool:
        """Take the turn: the version goes from ``expected_version`` to the next odd number.

        An odd version means a turn is under way; it can only be taken over once its last
        change is older than ``stale`` (the process handling it died).
        """
        ...

    async def take(
        self, conversation_id: str, now: dt.datetime, stale: dt.datetime
    ) -> ConversationRecord | None:
        """Claim the turn (as ``claim``) and answer the record as taken, in one step.

        None when the conversation is unknown or a live turn holds it. A turn is one
        take and one save: two round trips to the store, not three.
        """
        ...

    async def release(self, conversation_id: str, claimed_version: int) -> None:
        """Give a claimed turn back unchanged (it failed): the version is even again."""
        ...

    async def save(
        self,
        record: ConversationRecord,
        expected_version: int,
        steps: list[tuple[str, str, StepField]],
    ) -> bool:
        """Save if nobody saved since ``expected_version``; count the steps in the same go.

        The record's ``logged`` lines are appended to its transcript in the same go, and
        ``logged`` is emptied once they are stored, and ``lines`` counts them.
        """
        ...

    async def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's stored transcript, whole (as ``load`` answers it) and in order."""
        ...

    async def waiting_for(self, key: str) -> list[str]:
        """Ids of the conversations resting in a step that waits for ``key``."""
        ...

    async def step_counts(self, idle_before: dt.datetime) -> list[StepCount]:
        """Counts per flow and step; conversations idle since ``idle_before`` are abandoned."""
        ...

    async def add_handoff(self, handoff: Handoff) -> None: ...

    async def unrouted_handoffs(self, limit: int = 50) -> list[Handoff]: ...

    async def mark_handoff_routed(self, handoff_id: str, at: dt.datetime) -> None: ...
