"""Databases for tests: a SQLite file, or a fresh PostgreSQL database on 127.0.0.1:5432."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from alembic import command
from sqlalchemy.engine import Connection

from backend.db.engine import alembic_config

PG_ADMIN_URL = os.environ.get(
    "RENKEI_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def ensure_postgres() -> None:
    """Start the local PostgreSQL cluster when it is down (CI machines start it already)."""
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
        return
    except psycopg.OperationalError:
        pass
    clusters = Path("/etc/postgresql")
    if shutil.which("pg_ctlcluster") and clusters.exists():
        version = sorted(p.name for p in clusters.iterdir())[-1]
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False
        )
    psycopg.connect(PG_ADMIN_URL, connect_timeout=10).close()


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new empty database; yields its SQLAlchemy async URL and drops it afterwards."""
    ensure_postgres()
    name = f"renkei_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def database_url(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'renkei.sqlite3'}"
    else:
        with fresh_postgres_database() as url:
            yield url


def downgrade_to(connection: Connection, revision: str) -> None:
    """Take a migrated database back to ``revision`` (to test the revisions after it)."""
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)
