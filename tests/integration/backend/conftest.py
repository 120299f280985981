"""Storage fixtures: every test here runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db.engine import make_engine, make_sessions, migrate
from tests.support.databases import database_url


@pytest.fixture(params=["sqlite", "postgresql"])
async def sessions(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    with database_url(request.param, tmp_path) as url:
        engine = make_engine(url)
        await migrate(engine)
        try:
            yield make_sessions(engine)
        finally:
            await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind, by its URL (for tests that migrate it themselves)."""
    with database_url(request.param, tmp_path) as found:
        yield found
