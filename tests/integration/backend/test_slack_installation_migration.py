"""Revision 0011 on a database from before it: a Slack installation kept in JSON moves to
its sealed column (where the key rotation sees it), and opens as before."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from cryptography.fernet import Fernet
from sqlalchemy.engine import Connection

from backend.db.engine import alembic_config, make_engine, make_sessions, migrate
from backend.secrets import FernetSecretBox
from bot.slack.oauth_stores import SqlInstallationStore
from tests.support.databases import database_url

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as found:
        yield found


def _down(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "0008")


async def test_a_json_sealed_installation_moves_to_its_column(url: str) -> None:
    key = Fernet.generate_key().decode()
    box = FernetSecretBox([key])
    installation = {"app_id": "A1", "team_id": "T1", "user_id": "U1", "bot_token": "xoxb-kept"}
    sealed = base64.b64encode(box.encrypt(json.dumps(installation))).decode()
    engine = make_engine(url)
    try:
        await migrate(engine)
        async with engine.begin() as connection:
            await connection.run_sync(_down)
            await connection.execute(
                sa.text(
                    "INSERT INTO slack_installations (client_id, team_id, user_id,"
                    " is_enterprise_install, has_bot, data, installed_at)"
                    " VALUES ('c', 'T1', 'U1', 0, 1, :d, :t)"
                ),
                {"d": json.dumps({"sealed": sealed}), "t": NOW},
            )
        await migrate(engine)
        store = SqlInstallationStore(make_sessions(engine), "c", box)
        bot = await store.async_find_bot(enterprise_id=None, team_id="T1")
        assert bot is not None and bot.bot_token == "xoxb-kept"
    finally:
        await engine.dispose()
