"""Procrastinate's schema (jobs, locks, periodic defers, workers), on PostgreSQL only

On PostgreSQL renkei's background work runs on Procrastinate, whose tables live in the
same database so that a job is written in the transaction of its cause. SQLite keeps
renkei's own ``jobs`` table and in-process runner: nothing to add there.

A later Procrastinate release that changes its schema ships migration files
(``procrastinate.schema.SchemaManager.get_migrations_path()``): apply them in a new
revision like this one.

Revision ID: 0017_procrastinate
Revises: 0014_consent_expiry
Create Date: 2026-12-06 21:50:00
"""

from __future__ import annotations

from alembic import op

revision = "0017_procrastinate"
down_revision = "0014_consent_expiry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager

    # The schema is many statements with dollar-quoted function bodies: sent as one
    # simple query, without parameters, exactly as Procrastinate's own `schema --apply`.
    cursor = bind.connection.cursor()
    try:
        cursor.execute(SchemaManager.get_schema())
    finally:
        cursor.close()


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # Every object of Procrastinate's schema is named procrastinate_*: drop them all.
    cursor = bind.connection.cursor()
    try:
        cursor.execute(
            """
            DO $$
            DECLARE r record;
            BEGIN
              FOR r IN SELECT tablename FROM pg_tables
                       WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate%'
              LOOP EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', r.tablename); END LOOP;
              FOR r IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
                       JOIN pg_namespace n ON n.oid = p.pronamespace
                       WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate%'
              LOOP EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.sig); END LOOP;
              FOR r IN SELECT t.typname FROM pg_type t
                       JOIN pg_namespace n ON n.oid = t.typnamespace
                       WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate%'
                         AND t.typtype IN ('e', 'c')
              LOOP EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', r.typname); END LOOP;
            END $$;
            """
        )
    finally:
        cursor.close()
