"""An in-memory conversation store and a scripted back end, for the engine's unit tests."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as dt
from collections import defaultdict
from typing import Any

from backend.domain.vocabulary import AccountStatus, Issuer, Role, SyncMethod
from statemachine.handoff import HandoffMessage, HandoffStatus, MessageKind
from statemachine.port import AccountInfo, BackendRefusal, BackendUnavailable
from statemachine.store import (
    TRANSCRIPT_KEPT,
    ConversationRecord,
    Handoff,
    StepCount,
    StepField,
    claimed_version,
)


class MemoryStore:
    """Implements ``ConversationStore`` in memory, with the same version check."""

    def __init__(self) -> None:
        self.rows: dict[str, ConversationRecord] = {}
        self.lines: dict[str, list[dict[str, Any]]] = {}
        self.counts: dict[tuple[str, str], dict[str, int]] = defaultdict(
            lambda: {"entered": 0, "completed": 0, "abandoned": 0}
        )
        self.handoffs: list[Handoff] = []
        self.messages: list[HandoffMessage] = []

    def _keep(self, record: ConversationRecord) -> None:
        """The row without its transcript; the logged lines appended (as the SQL store)."""
        self.lines.setdefault(record.id, []).extend(copy.deepcopy(record.logged))
        record.lines += len(record.logged)
        self.lines[record.id] = self.lines[record.id][-TRANSCRIPT_KEPT:]
        record.logged = []
        self.rows[record.id] = copy.deepcopy(record)
        self.rows[record.id].transcript = []

    async def create(self, record: ConversationRecord) -> None:
        self._keep(record)

    async def load(self, conversation_id: str) -> ConversationRecord | None:
        row = self.rows.get(conversation_id)
        if row is None:
            return None
        loaded = copy.deepcopy(row)
        loaded.transcript = copy.deepcopy(self.lines[conversation_id])
        return loaded

    async def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.lines.get(conversation_id, []))

    async def claim(
        self, conversation_id: str, expected_version: int, now: dt.datetime, stale: dt.datetime
    ) -> bool:
        await asyncio.sleep(0)
        row = self.rows[conversation_id]
        if row.version != expected_version:
            return False
        if expected_version % 2 and (row.updated_at is None or row.updated_at >= stale):
            return False  # a turn is under way
        row.version = claimed_version(expected_version)
        row.updated_at = now
        return True

    async def take(
        self, conversation_id: str, now: dt.datetime, stale: dt.datetime
    ) -> ConversationRecord | None:
        row = self.rows.get(conversation_id)
        if row is None or not await self.claim(conversation_id, row.version, now, stale):
            return None
        return copy.deepcopy(row)

    async def release(self, conversation_id: str, claimed_version: int) -> None:
        row = self.rows[conversation_id]
        if row.version == claimed_version:
            row.version += 1

    async def save(
        self,
        record: ConversationRecord,
        expected_version: int,
        steps: list[tuple[str, str, StepField]],
    ) -> bool:
        await asyncio.sleep(0)
        if self.rows[record.id].version != expected_version:
            return False
        self._keep(record)
        for flow, step, field in steps:
            self.counts[(flow, step)][field] += 1
        return True

    async def waiting_for(self, key: str) -> list[str]:
        return [r.id for r in self.rows.values() if r.waiting_for == key]

    async def step_counts(self, idle_before: dt.datetime) -> list[StepCount]:
        return [
            StepCount(f, s, c["entered"], c["completed"], c["abandoned"])
            for (f, s), c in sorted(self.counts.items())
        ]

    async def add_handoff(self, handoff: Handoff) -> None:
        self.handoffs.append(handoff)

    async def unrouted_handoffs(self, limit: int = 50) -> list[Handoff]:
        return [h for h in self.handoffs if h.routed_at is None][:limit]

    async def mark_handoff_routed(self, handoff_id: str, at: dt.datetime) -> None:
        return None

    async def handoff(self, handoff_id: str) -> Handoff | None:
        return next((h for h in self.handoffs if h.id == handoff_id), None)

    async def open_handoffs(self, limit: int = 100) -> list[Handoff]:
        return [h for h in self.handoffs if h.status != HandoffStatus.RESOLVED][:limit]

    async def set_handoff_status(
        self, handoff_id: str, status: HandoffStatus, at: dt.datetime
    ) -> bool:
        for index, found in enumerate(self.handoffs):
            if found.id == handoff_id and found.status != HandoffStatus.RESOLVED:
                self.handoffs[index] = dataclasses.replace(found, status=status.value)
                return True
        return False

    async def add_handoff_message(self, message: HandoffMessage) -> None:
        self.messages.append(dataclasses.replace(message, id=len(self.messages) + 1))

    async def handoff_messages(self, handoff_id: str) -> list[HandoffMessage]:
        return [m for m in self.messages if m.handoff_id == handoff_id]

    async def support_answers(self, conversation_id: str) -> list[HandoffMessage]:
        return [
            m
            for m in self.messages
            if m.conversation_id == conversation_id and m.kind == MessageKind.SUPPORT
        ]

    async def unrouted_handoff_messages(self, limit: int = 50) -> list[HandoffMessage]:
        return [m for m in self.messages if m.routed_at is None][:limit]

    async def mark_handoff_message_routed(self, message_id: int, at: dt.datetime) -> None:
        return None


class ScriptedBackend:
    """The few port calls the test flow makes, answering what a test scripts."""

    def __init__(self) -> None:
        self.down = False
        self.refuse: str | None = None
        self.gate: asyncio.Event | None = None
        self.calls: list[tuple[str, Any]] = []

    async def account(self, account_id: str) -> AccountInfo:
        self.calls.append(("account", account_id))
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise BackendUnavailable("down")
        if self.refuse:
            raise BackendRefusal(self.refuse, rule="R5")
        return AccountInfo(
            id=account_id,
            office_id="o1",
            name="Biz",
            issuer=Issuer.AMEX,
            sync_method=SyncMethod.LEGACY,
            status=AccountStatus.ACTIVE,
            card=None,
        )

    async def offices(self) -> list[Any]:
        from statemachine.port import OfficeInfo

        return [OfficeInfo(id="o1", name="山田商店", role=Role.ADMIN)]

    async def office(self, office_id: str) -> Any:
        from statemachine.port import OfficeInfo

        return OfficeInfo(id=office_id, name="山田商店", role=Role.ADMIN)

    async def invitations(self) -> list[Any]:
        return []

    async def answer_invitation(self, invitation_id: str, accept: bool) -> None:
        raise AssertionError("no invitation in memory")
