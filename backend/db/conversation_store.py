"""Conversations of the assistant in the database: the flows' ``ConversationStore`` port.

An adapter depends on the port it implements (``statemachine.store``), as the issuer
connectors depend on the service's ports; the flows never import this module.

A turn is two units of work: take (one ``UPDATE … RETURNING``) and save (the row's
compare-and-set, the turn's transcript lines appended, its steps logged). Each unit is
a plain function of a blocking ``Connection``: on SQLite it runs whole in a worker
thread (one hop instead of one per driver call), on PostgreSQL through the async
driver (``run_sync``). The transcript is never rewritten and a turn never reads it;
the step log is folded into the shared counts in batches, so no turn updates a row
that every other turn updates too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, Protocol, TypeVar

from sqlalchemy import Insert, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.expression import Executable

from backend.db import tables as t
from backend.db.engine import sqlite_thread_engine
from statemachine.handoff import HandoffMessage, HandoffStatus, MessageKind
from statemachine.store import (
    TRANSCRIPT_KEPT,
    ConversationRecord,
    Handoff,
    StepCount,
    StepField,
    claimed_version,
)

log = logging.getLogger(__name__)

C = t.conversations
LINES = t.conversation_transcript
LOG = t.flow_step_log
COUNTS = t.flow_step_counts
FIELDS: tuple[StepField, ...] = ("entered", "completed", "abandoned")
# Old lines are deleted each time a conversation's count passes a multiple of this: a
# conversation holds at most TRANSCRIPT_KEPT + PRUNE_EVERY lines, one delete per 100.
PRUNE_EVERY = 100
# Turns of this process between two folds of the step log into the counts.
FOLD_EVERY = 500
T = TypeVar("T")

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
# The other SET columns come from each execution's parameters (the record's row).
_SAVE = (
    update(C)
    .where(C.c.id == bindparam("b_id"), C.c.version == bindparam("b_expected"))
    .values(transcript_lines=C.c.transcript_lines + bindparam("b_added"))
    .returning(C.c.transcript_lines)
)
_APPEND = LINES.insert()
_LOG_STEPS = LOG.insert()
_PRUNE = delete(LINES).where(
    LINES.c.conversation_id == bindparam("b_id"), LINES.c.seq <= bindparam("b_upto")
)
_LINES_OF = (
    select(LINES.c.line)
    .where(
        LINES.c.conversation_id == bindparam("b_id"),
        LINES.c.seq > bindparam("b_after"),
        LINES.c.seq <= bindparam("b_upto"),  # a save after the row was read: not yet
    )
    .order_by(LINES.c.seq)
)
_ROW = select(C).where(C.c.id == bindparam("b_id"))


def _count_statement(dialect: str) -> Insert:
    """The step counts' upsert, run once per counted step (executemany)."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(COUNTS)
    return statement.on_conflict_do_update(
        index_elements=[COUNTS.c.flow, COUNTS.c.step],
        set_={name: COUNTS.c[name] + statement.excluded[name] for name in FIELDS},
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
        "waiting_for": record.waiting_for,
        "version": record.version,
        "updated_at": record.updated_at,
    }


def _record(row: Any, transcript: list[dict[str, Any]]) -> ConversationRecord:
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
        transcript=transcript,
        waiting_for=row.waiting_for,
        version=row.version,
        lines=row.transcript_lines,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _append(statements: _Statements, conversation_id: str, last: int, lines: list[Any]) -> None:
    """Append ``lines`` as the conversation's lines up to ``last``; prune in passing."""
    first = last - len(lines) + 1
    statements.run(
        _APPEND,
        [
            {"conversation_id": conversation_id, "seq": first + index, "line": line}
            for index, line in enumerate(lines)
        ],
    )
    if last // PRUNE_EVERY != (first - 1) // PRUNE_EVERY and last > TRANSCRIPT_KEPT:
        statements.run(_PRUNE, [{"b_id": conversation_id, "b_upto": last - TRANSCRIPT_KEPT}])


def _lines_of(connection: Connection, conversation_id: str, count: int) -> list[dict[str, Any]]:
    """The latest ``TRANSCRIPT_KEPT`` of a conversation's first ``count`` lines, in order."""
    found = connection.execute(
        _LINES_OF,
        {"b_id": conversation_id, "b_after": count - TRANSCRIPT_KEPT, "b_upto": count},
    )
    return [dict(line) for line in found.scalars()]


Tally = dict[tuple[str, str], dict[str, Any]]


def _tally(rows: Tally, flow: str, step: str) -> dict[str, Any]:
    """The counting row of a step, added at zero when new."""
    return rows.setdefault((flow, step), {"flow": flow, "step": step, **dict.fromkeys(FIELDS, 0)})


def _step_rows(steps: list[tuple[str, str, StepField]]) -> list[dict[str, Any]]:
    """A turn's steps, one log row per step (a turn leaves one step and enters another)."""
    rows: Tally = {}
    for flow, step, field in steps:
        _tally(rows, flow, step)[field] += 1
    return list(rows.values())


class _Statements(Protocol):
    """What a turn's units of work need of a connection."""

    def first(self, statement: Executable, parameters: dict[str, Any]) -> Any: ...

    def run(self, statement: Executable, parameters: list[dict[str, Any]]) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class _Core:
    """Statements through SQLAlchemy (PostgreSQL, and every unit but a turn's two)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def first(self, statement: Executable, parameters: dict[str, Any]) -> Any:
        return self._connection.execute(statement, parameters).first()

    def run(self, statement: Executable, parameters: list[dict[str, Any]]) -> None:
        self._connection.execute(statement, parameters)

    def commit(self) -> None:
        self._connection.commit()

    def rollback(self) -> None:
        self._connection.rollback()


class _Prepared:
    """A statement compiled once into SQLite's SQL, with its parameters' processors."""

    def __init__(self, statement: Executable, keys: list[str], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=keys)  # type: ignore[attr-defined]
        self.sql = str(compiled)
        self._compiled = compiled
        self._order = list(compiled.positiontup or [])
        self._processors = [
            compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect)
            for n in self._order
        ]
        self._results = {
            column.name: column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in C.c
        }

    def parameters(self, given: dict[str, Any]) -> tuple[Any, ...]:
        values = self._compiled.construct_params(given)
        return tuple(
            value if process is None else process(value)
            for value, process in zip(
                (values[n] for n in self._order), self._processors, strict=True
            )
        )

    def row(self, values: tuple[Any, ...], description: Any) -> SimpleNamespace:
        named = {}
        for value, column in zip(values, description, strict=True):
            process = self._results.get(column[0])
            named[column[0]] = value if process is None else process(value)
        return SimpleNamespace(**named)


class _Driver:
    """A turn's statements straight through SQLite's driver, compiled by SQLAlchemy.

    On SQLite a statement takes microseconds and SQLAlchemy's execution around it
    (context, parameter and result processing, pooling) several times as long; a turn
    is two units of a few statements, so this is most of a turn's time. The statements
    and their type processing stay SQLAlchemy's; only the execution is the driver's.
    """

    def __init__(self, connection: Any, prepared: Callable[[Executable, list[str]], _Prepared]):
        self._connection = connection
        self._prepared = prepared

    def first(self, statement: Executable, parameters: dict[str, Any]) -> Any:
        prepared = self._prepared(statement, list(parameters))
        cursor = self._connection.execute(prepared.sql, prepared.parameters(parameters))
        values = cursor.fetchone()
        description = cursor.description
        cursor.close()
        return None if values is None else prepared.row(values, description)

    def run(self, statement: Executable, parameters: list[dict[str, Any]]) -> None:
        prepared = self._prepared(statement, list(parameters[0]))
        self._connection.executemany(prepared.sql, [prepared.parameters(p) for p in parameters])

    def commit(self) -> None:
        self._connection.commit()

    def rollback(self) -> None:
        self._connection.rollback()


class SqlConversationStore:
    def __init__(self, engine: AsyncEngine, *, fold_every: int = FOLD_EVERY) -> None:
        self._engine = engine
        self._count = _COUNT[engine.dialect.name]
        self._threaded: Engine | None = None
        if engine.dialect.name == "sqlite":
            self._threaded = sqlite_thread_engine(engine)
        self._fold_every = fold_every
        # Told after a handoff or one of its messages is written (Slack's routing job).
        self.on_handoff: Callable[[], Awaitable[None]] | None = None
        # Keyed by the statement's identity: only the module's statements, built once.
        self._prepared: dict[tuple[int, tuple[str, ...]], _Prepared] = {}
        self._unfolded = 0

    async def _turn_unit(self, work: Callable[[_Statements], T]) -> T:
        """Run one of a turn's two units (take, save); on SQLite at the driver."""
        threaded = self._threaded
        if threaded is None:
            return await self._run(lambda connection: work(_Core(connection)))

        def in_thread() -> T:
            connection = threaded.raw_connection()
            try:
                return work(_Driver(connection.driver_connection, self._prepare))
            except BaseException:
                connection.rollback()  # nothing half done goes back to the pool
                raise
            finally:
                connection.close()

        return await asyncio.to_thread(in_thread)

    def _prepare(self, statement: Executable, keys: list[str]) -> _Prepared:
        key = (id(statement), tuple(keys))
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = self._prepared[key] = _Prepared(statement, keys, self._engine.dialect)
        return prepared

    async def _run(self, work: Callable[[Connection], T]) -> T:
        """Run one unit of work (it commits what it keeps; the rest is rolled back)."""
        threaded = self._threaded
        if threaded is not None:

            def in_thread() -> T:
                with threaded.connect() as connection:
                    return work(connection)

            return await asyncio.to_thread(in_thread)
        async with self._engine.connect() as connection:
            return await connection.run_sync(work)

    async def create(self, record: ConversationRecord) -> None:
        logged = list(record.logged)

        def work(connection: Connection) -> None:
            connection.execute(
                C.insert().values(
                    id=record.id,
                    created_at=record.created_at,
                    transcript_lines=len(logged),
                    **_row(record),
                )
            )
            if logged:
                _append(_Core(connection), record.id, len(logged), logged)
            connection.commit()

        await self._run(work)
        record.logged = []
        record.lines = len(logged)

    async def load(self, conversation_id: str) -> ConversationRecord | None:
        def work(connection: Connection) -> ConversationRecord | None:
            row = connection.execute(_ROW, {"b_id": conversation_id}).first()
            if row is None:
                return None
            return _record(row, _lines_of(connection, conversation_id, row.transcript_lines))

        return await self._run(work)

    async def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        record = await self.load(conversation_id)
        return [] if record is None else record.transcript

    async def take(
        self, conversation_id: str, now: dt.datetime, stale: dt.datetime
    ) -> ConversationRecord | None:
        def work(statements: _Statements) -> ConversationRecord | None:
            row = statements.first(_TAKE, {"b_id": conversation_id, "b_stale": stale, "b_now": now})
            statements.commit()
            return None if row is None else _record(row, [])  # a turn only appends lines

        return await self._turn_unit(work)

    async def claim(
        self, conversation_id: str, expected_version: int, now: dt.datetime, stale: dt.datetime
    ) -> bool:
        free = expected_version % 2 == 0
        condition = [C.c.id == conversation_id, C.c.version == expected_version]
        if not free:
            condition.append(C.c.updated_at < stale)  # a turn whose process died
        statement = (
            update(C)
            .where(*condition)
            .values(version=claimed_version(expected_version), updated_at=now)
        )

        def work(connection: Connection) -> bool:
            result = connection.execute(statement)
            connection.commit()
            return bool(result.rowcount == 1)

        return await self._run(work)

    async def release(self, conversation_id: str, claimed_version: int) -> None:
        statement = (
            update(C)
            .where(C.c.id == conversation_id, C.c.version == claimed_version)
            .values(version=claimed_version + 1)
        )

        def work(connection: Connection) -> None:
            connection.execute(statement)
            connection.commit()

        await self._run(work)

    async def save(
        self,
        record: ConversationRecord,
        expected_version: int,
        steps: list[tuple[str, str, StepField]],
    ) -> bool:
        logged = list(record.logged)
        parameters = {
            "b_id": record.id,
            "b_expected": expected_version,
            "b_added": len(logged),
            **_row(record),
        }
        step_rows = _step_rows(steps)

        def work(statements: _Statements) -> int | None:
            saved = statements.first(_SAVE, parameters)
            if saved is None:  # another turn saved first: nothing of this one is kept
                statements.rollback()
                return None
            if logged:
                _append(statements, record.id, saved.transcript_lines, logged)
            if step_rows:
                statements.run(_LOG_STEPS, step_rows)
            statements.commit()
            return int(saved.transcript_lines)

        lines = await self._turn_unit(work)
        if lines is None:
            return False
        record.logged = []
        record.lines = lines
        if step_rows:
            self._unfolded += 1
            if self._unfolded >= self._fold_every:
                self._unfolded = 0
                await self.fold_steps()
        return True

    async def fold_steps(self) -> None:
        """Move the step log into the counts: one batch instead of an upsert every turn.

        Concurrent folds (other processes) never count a step twice: the log's rows are
        deleted as they are read, and a row deleted by another fold is not returned.
        """
        statement = delete(LOG).returning(LOG.c.flow, LOG.c.step, *(LOG.c[f] for f in FIELDS))
        count = self._count

        def work(connection: Connection) -> None:
            rows: Tally = {}
            for flow, step, *added in connection.execute(statement):
                row = _tally(rows, flow, step)
                for field, number in zip(FIELDS, added, strict=True):
                    row[field] += number
            if rows:
                # Always in the same order, so two folds never wait on each other in a ring.
                connection.execute(count, [rows[key] for key in sorted(rows)])
            connection.commit()

        await self._run(work)

    async def waiting_for(self, key: str) -> list[str]:
        async with self._engine.begin() as connection:
            rows = await connection.execute(select(C.c.id).where(C.c.waiting_for == key))
            return [row.id for row in rows]

    async def step_counts(self, idle_before: dt.datetime) -> list[StepCount]:
        async with self._engine.begin() as connection:
            counted = (await connection.execute(select(COUNTS))).all()
            # Steps logged by turns since the last fold count as much as folded ones.
            logged = (
                await connection.execute(
                    select(LOG.c.flow, LOG.c.step, *(func.sum(LOG.c[f]) for f in FIELDS)).group_by(
                        LOG.c.flow, LOG.c.step
                    )
                )
            ).all()
            # A conversation left mid-flow for long is abandoned where it stopped.
            idle = (
                await connection.execute(
                    select(C.c.flow, C.c.state, func.count())
                    .where(C.c.flow.is_not(None), C.c.updated_at < idle_before)
                    .group_by(C.c.flow, C.c.state)
                )
            ).all()
        totals: dict[tuple[str, str], list[int]] = {}
        for flow, step, *numbers in [*counted, *logged]:
            total = totals.setdefault((flow, step), [0, 0, 0])
            for index, number in enumerate(numbers):
                total[index] += int(number)
        for flow, state, count in idle:
            totals.setdefault((flow, state), [0, 0, 0])[2] += int(count)
        return [StepCount(flow, step, *totals[flow, step]) for flow, step in sorted(totals)]

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
        await self._handed_off()

    async def _handed_off(self) -> None:
        # After the commit, not in it: the handoff tables are the routing's own outbox
        # (``routed_at``), so a process that dies here leaves it to the minute's upkeep.
        if self.on_handoff is None:
            return
        try:
            await self.on_handoff()
        except Exception:
            # The handoff is saved: the person's turn must not fail for its routing.
            log.exception("the routing of a handoff was not queued: the upkeep will")

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
        return [_handoff(r) for r in rows]

    async def mark_handoff_routed(self, handoff_id: str, at: dt.datetime) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                update(t.handoffs).where(t.handoffs.c.id == handoff_id).values(routed_at=at)
            )

    # ------------------------------------------------------------------ handoffs, two-way
    async def handoff(self, handoff_id: str) -> Handoff | None:
        async with self._engine.begin() as connection:
            row = (
                await connection.execute(select(t.handoffs).where(t.handoffs.c.id == handoff_id))
            ).first()
        return _handoff(row) if row is not None else None

    async def open_handoffs(self, limit: int = 100) -> list[Handoff]:
        h = t.handoffs
        async with self._engine.begin() as connection:
            rows = (
                await connection.execute(
                    select(h)
                    .where(h.c.status != HandoffStatus.RESOLVED.value)
                    .order_by(h.c.created_at)
                    .limit(limit)
                )
            ).all()
        return [_handoff(r) for r in rows]

    async def set_handoff_status(
        self, handoff_id: str, status: HandoffStatus, at: dt.datetime
    ) -> bool:
        h = t.handoffs
        values: dict[str, Any] = {"status": status.value}
        if status == HandoffStatus.RESOLVED:
            values["resolved_at"] = at
        async with self._engine.begin() as connection:
            moved = await connection.execute(
                update(h)
                .where(h.c.id == handoff_id, h.c.status != HandoffStatus.RESOLVED.value)
                .values(**values)
            )
        return bool(moved.rowcount)

    async def add_handoff_message(self, message: HandoffMessage) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                t.handoff_messages.insert().values(
                    handoff_id=message.handoff_id,
                    conversation_id=message.conversation_id,
                    kind=message.kind.value,
                    text=message.text,
                    author=message.author,
                    via=message.via,
                    at=message.at,
                )
            )
        await self._handed_off()

    async def handoff_messages(self, handoff_id: str) -> list[HandoffMessage]:
        m = t.handoff_messages
        async with self._engine.begin() as connection:
            rows = (
                await connection.execute(
                    select(m).where(m.c.handoff_id == handoff_id).order_by(m.c.id)
                )
            ).all()
        return [_message(r) for r in rows]

    async def support_answers(self, conversation_id: str) -> list[HandoffMessage]:
        m = t.handoff_messages
        async with self._engine.begin() as connection:
            rows = (
                await connection.execute(
                    select(m)
                    .where(
                        m.c.conversation_id == conversation_id,
                        m.c.kind == MessageKind.SUPPORT.value,
                    )
                    .order_by(m.c.id)
                )
            ).all()
        return [_message(r) for r in rows]

    async def unrouted_handoff_messages(self, limit: int = 50) -> list[HandoffMessage]:
        m = t.handoff_messages
        async with self._engine.begin() as connection:
            rows = (
                await connection.execute(
                    select(m).where(m.c.routed_at.is_(None)).order_by(m.c.id).limit(limit)
                )
            ).all()
        return [_message(r) for r in rows]

    async def mark_handoff_message_routed(self, message_id: int, at: dt.datetime) -> None:
        m = t.handoff_messages
        async with self._engine.begin() as connection:
            await connection.execute(update(m).where(m.c.id == message_id).values(routed_at=at))


def _handoff(r: Any) -> Handoff:
    return Handoff(
        id=r.id,
        conversation_id=r.conversation_id,
        user=r.user_email,
        office_id=r.office_id,
        transcript=list(r.transcript),
        account_state=dict(r.account_state) if r.account_state else None,
        created_at=r.created_at,
        routed_at=r.routed_at,
        status=r.status,
        resolved_at=r.resolved_at,
    )


def _message(r: Any) -> HandoffMessage:
    return HandoffMessage(
        handoff_id=r.handoff_id,
        conversation_id=r.conversation_id,
        kind=MessageKind(r.kind),
        text=r.text,
        author=r.author,
        via=r.via,
        at=r.at,
        id=r.id,
        routed_at=r.routed_at,
    )
