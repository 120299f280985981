"""The migrations form one line: work merged from several branches leaves one head."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from backend.db.engine import alembic_config


def test_the_migrations_have_one_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"several heads {heads}: set one's down_revision to the other"
