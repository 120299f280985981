"""Engines, sessions and migrations for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from backend.db.job_queue import QUEUE_KEY, QueueOnSession
from backend.db.tables import map_domain

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> AsyncEngine:
    map_domain()
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Writers wait for each other instead of failing at once.
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # With WAL, NORMAL syncs at checkpoints rather than at every commit: a power
    # cut may lose the last commits, never corrupt the file. Every write of renkei
    # can be redone (a sync re-fetches from its committed cursor, a turn is sent
    # again), so the last moment is worth less than the commit latency.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def sqlite_thread_engine(engine: AsyncEngine) -> Engine:
    """A blocking engine on the same SQLite file, for work run whole in a worker thread.

    aiosqlite hands every driver call (cursor, execute, fetch, close, commit) to its
    thread and back, each hop costing more than SQLite takes to run the statement; a
    unit of work run whole in one thread hops once. Disposed with ``engine``.
    """
    threaded = create_engine(
        engine.url.set(drivername="sqlite"),
        # A pooled connection serves whichever worker thread runs the next unit.
        connect_args={"timeout": 30, "check_same_thread": False},
        # Each unit commits or rolls back what it did (see SqlConversationStore); a
        # rollback more on every return to the pool costs a tenth of a turn.
        pool_reset_on_return=None,
    )
    event.listen(threaded, "connect", _sqlite_pragmas)
    event.listen(engine.sync_engine, "engine_disposed", lambda _engine: threaded.dispose())
    return threaded


def make_sessions(
    engine: AsyncEngine, queue: QueueOnSession | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions of one process; ``queue`` (a distributed job queue) goes into every
    session's ``info``, so each unit of work queues its jobs there."""
    info = {QUEUE_KEY: queue} if queue is not None else None
    return async_sessionmaker(engine, expire_on_commit=False, info=info)


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to the newest revision (or to ``revision``).

    SQLite changes a table's constraints by rebuilding it: with foreign keys enforced,
    dropping the old copy of a table other rows point at would fail. So, as SQLite's own
    procedure for schema changes says, they are off while the schema changes and every
    reference is checked before it commits.
    """
    sqlite = engine.dialect.name == "sqlite"

    def upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RuntimeError(f"the schema change broke references: {broken[:5]}")

    async with engine.connect() as connection:
        if sqlite:
            # Outside any transaction: inside one this pragma does nothing.
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await connection.commit()
        try:
            async with connection.begin():
                await connection.run_sync(upgrade)
        finally:
            if sqlite:
                await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                await connection.commit()


async def ping(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
