"""Conversations of the assistant in the database: the flows' ``ConversationStore`` port.

An adapter depends on the port it implements (``statemachine.store``), as the issuer
connectors depend on the service's ports; the flows never import this module.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Insert, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.db import tables as t
from statemachine.store import (
    ConversationRecord,
    Handoff,
    StepCount,
    StepField,
    claimed_version,
)

C = t.conversations
COUNTS = t.flow_step_counts

# A turn's statements, built once: building SQLAlchemy expressions costs more than
# SQLite takes to run them. Bound names are not column names (those are reserved).
_TAKE = (
    update(C)
    .where(
        C.c.id == bindparam("b_id"),
        # free (even), or held by a turn whose process died
        or_(C.c.version % 2 == 0, C.c.updated_at < bindparam("b_stale")),
    )
    .values(version=C.c.version + 1 + C.c.version % 2, updated_at=bindparam("b_now"))
    .returning(*C.c)
)
# The SET columns come from each execution's parameters (the record's row).
_SAVE = update(C).where(C.c.id == bindparam("b_id"), C.c.version == bindparam("b_expected"))


def _count_statement(dialect: str) -> Insert:
    """The step counts' upsert, run once per counted step (executemany)."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(COUNTS)
    return statement.on_conflict_do_update(
        index_elements=[COUNTS.c.flow, COUNTS.c.step],
        set_={
            name: COUNTS.c[name] + statement.excluded[name]
            for name in ("entered", "completed", "abandoned")
        },
    )


_COUNT = {dialect: _count_statement(dialect) for dialect in ("sqlite", "postgresql")}


def _row(record: ConversationRecord) -> dict[str, Any]:
    return {
        "user_email": record.user,
        "locale": record.locale,
        "office_id": record.office_id,
        "flow": record.flow,
        "state": record.state,
        "slots": record.slots,
        "history": record.history,
        "replies": record.replies,
        "transcript": record.transcript,
        "waiting_for": record.waiting_for,
        "version": record.version,
        "updated_at": record.updated_at,
    }


def _record(row: Any) -> ConversationRecord:
    return ConversationRecord(
        id=row.id,
        user=row.user_email,
        locale=row.locale,
        office_id=row.office_id,
        flow=row.flow,
        state=row.state,
        slots=dict(row.slots),
        history=list(row.history),
        replies=list(row.replies),
        transcript=list(row.transcript),
        waiting_for=row.waiting_for,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlConversationStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._count = _COUNT[engine.dialect.name]

    async def create(self, record: ConversationRecord) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                C.insert().values(id=record.id, created_at=record.created_at, **_row(record))
            )

    async def load(self, conversation_id: str) -> ConversationRecord | None:
        async with self._engine.begin() as connection:
            row = (await connection.execute(select(C).where(C.c.id == conversation_id))).first()
        return None if row is None else _record(row)

    async def take(
        self, conversation_id: str, now: dt.datetime, stale: dt.datetime
    ) -> ConversationRecord | None:
        async with self._engine.begin() as connection:
            row = (
                await connection.execute(
                    _TAKE, {"b_id": conversation_id, "b_stale": stale, "b_now": now}
                )
            ).first()
        return None if row is None else _record(row)

    async def claim(
        self, conversation_id: str, expected_version: int, now: dt.datetime, stale: dt.datetime
    ) -> bool:
        free = expected_version % 2 == 0
        condition = [C.c.id == conversation_id, C.c.version == expected_version]
        if not free:
            condition.append(C.c.updated_at < stale)  # a turn whose process died
        async with self._engine.begin() as connection:
            result = await connection.execute(
                update(C)
                .where(*condition)
                .values(version=claimed_version(expected_version), updated_at=now)
            )
            return bool(getattr(result, "rowcount", 0) == 1)

    async def release(self, conversation_id: str, claimed_version: int) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                update(C)
                .where(C.c.id == conversation_id, C.c.version == claimed_version)
                .values(version=claimed_version + 1)
            )

    async def save(
        self,
        record: ConversationRecord,
        expected_version: int,
        steps: list[tuple[str, str, StepField]],
    ) -> bool:
        async with self._engine.connect() as connection:
            result = await connection.execute(
                _SAVE, {"b_id": record.id, "b_expected": expected_version, **_row(record)}
            )
            if getattr(result, "rowcount", 0) != 1:
                await connection.rollback()
                return False
            if steps:
                await self._count_steps(connection, steps)
            await connection.commit()
            return True

    async def _count_steps(
        self, connection: AsyncConnection, steps: list[tuple[str, str, StepField]]
    ) -> None:
        """A turn's step counts (a turn leaves one step and enters another)."""
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for flow, step, field in steps:
            row = rows.setdefault(
                (flow, step),
                {"flow": flow, "step": step, "entered": 0, "completed": 0, "abandoned": 0},
            )
            row[field] += 1
        await connection.execute(self._count, list(rows.values()))

    async def waiting_for(self, key: str) -> list[str]:
        async with self._engine.begin() as connection:
            rows = await connection.execute(select(C.c.id).where(C.c.waiting_for == key))
            return [row.id for row in rows]

    async def step_counts(self, idle_before: dt.datetime) -> list[StepCount]:
        async with self._engine.begin() as connection:
            counted = (
                await connection.execute(
                    select(t.flow_step_counts).order_by(
                        t.flow_step_counts.c.flow, t.flow_step_counts.c.step
                    )
                )
            ).all()
            # A conversation left mid-flow for long is abandoned where it stopped.
            idle = (
                await connection.execute(
                    select(C.c.flow, C.c.state, func.count())
                    .where(and_(C.c.flow.is_not(None), C.c.updated_at < idle_before))
                    .group_by(C.c.flow, C.c.state)
                )
            ).all()
        idle_by_step = {(row[0], row[1]): int(row[2]) for row in idle}
        result = []
        for row in counted:
            result.append(
                StepCount(
                    flow=row.flow,
                    step=row.step,
                    entered=row.entered,
                    completed=row.completed,
                    abandoned=row.abandoned + idle_by_step.pop((row.flow, row.step), 0),
                )
            )
        for (flow, step), count in idle_by_step.items():
            result.append(StepCount(flow, step, 0, 0, count))
        return result

    async def add_handoff(self, handoff: Handoff) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                t.handoffs.insert().values(
                    id=handoff.id,
                    conversation_id=handoff.conversation_id,
                    user_email=handoff.user,
                    office_id=handoff.office_id,
                    transcript=handoff.transcript,
                    account_state=handoff.account_state,
                    created_at=handoff.created_at,
                )
            )

    async def unrouted_handoffs(self, limit: int = 50) -> list[Handoff]:
        async with self._engine.begin() as connection:
            rows = (
                await connection.execute(
                    select(t.handoffs)
                    .where(t.handoffs.c.routed_at.is_(None))
                    .order_by(t.handoffs.c.created_at)
                    .limit(limit)
                )
            ).all()
        return [
            Handoff(
                id=r.id,
                conversation_id=r.conversation_id,
                user=r.user_email,
                office_id=r.office_id,
                transcript=list(r.transcript),
                account_state=dict(r.account_state) if r.account_state else None,
                created_at=r.created_at,
                routed_at=r.routed_at,
            )
            for r in rows
        ]

    async def mark_handoff_routed(self, handoff_id: str, at: dt.datetime) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                update(t.handoffs).where(t.handoffs.c.id == handoff_id).values(routed_at=at)
            )
