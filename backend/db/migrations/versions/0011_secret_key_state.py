"""the newest secret key named in the database; Slack installations sealed in a column

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-01 23:00:00
"""

from __future__ import annotations

import base64
import json

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "secret_key_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("newest_key_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secret_key_state")),
    )
    # A Slack installation was kept as {"sealed": base64} in a JSON column, where the
    # key rotation could not see it: the same ciphertext now has a column of its own.
    with op.batch_alter_table("slack_installations") as batch:
        batch.add_column(sa.Column("sealed", sa.LargeBinary(), nullable=True))
    installations = sa.table(
        "slack_installations",
        sa.column("id", sa.Integer()),
        sa.column("data", sa.JSON()),
        sa.column("sealed", sa.LargeBinary()),
    )
    connection = op.get_bind()
    for row in connection.execute(sa.select(installations.c.id, installations.c.data)).all():
        data = row.data if isinstance(row.data, dict) else json.loads(row.data)
        connection.execute(
            installations.update()
            .where(installations.c.id == row.id)
            .values(sealed=base64.b64decode(data["sealed"]))
        )
    with op.batch_alter_table("slack_installations") as batch:
        batch.alter_column("sealed", existing_type=sa.LargeBinary(), nullable=False)
        batch.drop_column("data")


def downgrade() -> None:
    with op.batch_alter_table("slack_installations") as batch:
        batch.add_column(sa.Column("data", sa.JSON(), nullable=True))
    installations = sa.table(
        "slack_installations",
        sa.column("id", sa.Integer()),
        sa.column("data", sa.JSON()),
        sa.column("sealed", sa.LargeBinary()),
    )
    connection = op.get_bind()
    for row in connection.execute(sa.select(installations.c.id, installations.c.sealed)).all():
        connection.execute(
            installations.update()
            .where(installations.c.id == row.id)
            .values(data={"sealed": base64.b64encode(row.sealed).decode()})
        )
    with op.batch_alter_table("slack_installations") as batch:
        batch.alter_column("data", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("sealed")
    op.drop_table("secret_key_state")
