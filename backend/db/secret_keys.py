"""Which key seals new secrets, shared by every process through the database.

The key itself never enters the database: only its id (``backend.secrets.key_id``).
``KeyWatcher`` reads the one row every few seconds and switches its process's box to
the key named there. ``reseal`` re-encrypts the sealed columns (``tables.sealed_columns``)
in committed batches, each value changed only if nobody rewrote it meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.db import tables as t
from backend.secrets import FernetSecretBox, SecretError

log = logging.getLogger(__name__)

ROTATING = "rotating"
DONE = "done"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class KeyState:
    version: int
    newest_key_id: str
    status: str
    changed_at: dt.datetime
    finished_at: dt.datetime | None


async def read_key_state(connection: AsyncConnection) -> KeyState | None:
    s = t.secret_key_state
    row = (await connection.execute(select(s).where(s.c.id == 1))).first()
    if row is None:
        return None
    return KeyState(row.version, row.newest_key_id, row.status, row.changed_at, row.finished_at)


async def name_newest_key(engine: AsyncEngine, newest_key_id: str) -> KeyState:
    """Name the key new secrets are sealed with, from this commit on; a new version."""
    s = t.secret_key_state
    now = _utcnow()
    async with engine.begin() as connection:
        insert = postgresql_insert if engine.dialect.name == "postgresql" else sqlite_insert
        await connection.execute(
            insert(s)
            .values(id=1, version=1, newest_key_id=newest_key_id, status=ROTATING, changed_at=now)
            .on_conflict_do_update(
                index_elements=[s.c.id],
                set_={
                    "version": s.c.version + 1,
                    "newest_key_id": newest_key_id,
                    "status": ROTATING,
                    "changed_at": now,
                    "finished_at": None,
                },
            )
        )
        state = await read_key_state(connection)
    assert state is not None
    return state


async def mark_done(engine: AsyncEngine, version: int) -> bool:
    """The rotation of ``version`` is finished; False if another rotation began since."""
    s = t.secret_key_state
    async with engine.begin() as connection:
        result = await connection.execute(
            update(s)
            .where(s.c.id == 1, s.c.version == version)
            .values(status=DONE, finished_at=_utcnow())
        )
    return bool(result.rowcount)


class KeyStateChanged(Exception):
    """Another rotation named a newer key while this one was re-encrypting."""


@dataclass
class Unreadable:
    table: str
    column: str
    row_id: str


@dataclass
class ResealPass:
    """One pass over every sealed column."""

    resealed: int = 0
    old: dict[str, int] = field(default_factory=dict)  # "table.column" -> values not current
    unreadable: list[Unreadable] = field(default_factory=list)

    @property
    def old_total(self) -> int:
        return sum(self.old.values())


async def reseal(
    engine: AsyncEngine,
    box: FernetSecretBox,
    *,
    batch_size: int = 500,
    write: bool = True,
    on_batch: Callable[[int], None] | None = None,
    version: int | None = None,
) -> ResealPass:
    """Re-encrypt under ``box``'s key every sealed value still under another key.

    Each batch is its own transaction, so an interrupted pass keeps what it did and a
    new pass goes on from there (values already current are only read). A value is
    replaced only if it is still the one that was read: a token refreshed meanwhile
    by a running renkei is never overwritten by its older self. With ``write`` off,
    the pass only counts (``old``). With ``version``, each batch first checks that no
    later rotation began (``KeyStateChanged``): two rotations never fight over a value.
    """
    result = ResealPass()
    batches = 0
    for table, column in t.sealed_columns():
        (key,) = table.primary_key.columns
        name = f"{table.name}.{column.name}"
        last: object = None
        while True:
            query = select(key, column).where(column.is_not(None)).order_by(key).limit(batch_size)
            if last is not None:
                query = query.where(key > last)
            async with engine.begin() as connection:
                if version is not None:
                    state = await read_key_state(connection)
                    if state is None or state.version != version:
                        raise KeyStateChanged
                rows = (await connection.execute(query)).all()
                if not rows:
                    break
                last = rows[-1][0]
                for row_id, sealed in rows:
                    if box.is_current(sealed):
                        continue
                    try:
                        fresh = box.rotate(sealed)
                    except SecretError:
                        result.unreadable.append(Unreadable(table.name, column.name, str(row_id)))
                        continue
                    if not write:
                        result.old[name] = result.old.get(name, 0) + 1
                        continue
                    changed = await connection.execute(
                        update(table)
                        .where(key == row_id, column == sealed)
                        .values({column.name: fresh})
                    )
                    if changed.rowcount:
                        result.resealed += 1
                    else:  # rewritten meanwhile, by a process that chose its key: recount
                        result.old[name] = result.old.get(name, 0) + 1
            batches += 1
            if on_batch is not None:
                on_batch(batches)
    return result


class KeyWatcher:
    """Keeps this process sealing with the key the database names, checked every few seconds."""

    def __init__(self, engine: AsyncEngine, box: FernetSecretBox, interval: float = 2.0) -> None:
        self._engine = engine
        self._box = box
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._version: int | None = None

    async def check(self) -> None:
        async with self._engine.connect() as connection:
            state = await read_key_state(connection)
        if state is None:
            return  # never rotated: the first key of the key set seals
        changed = state.version != self._version
        # Until this process holds the named key, it asks again at every check.
        if (changed or self._box.current_key_id != state.newest_key_id) and self._box.use_newest(
            state.newest_key_id
        ):
            self._version = state.version

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:  # a database hiccup: the next check tries again
                log.warning("could not read the secret key state", exc_info=True)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="secret-key-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
