"""Revision 0011 on a database from before it: a Slack installation kept in JSON moves to
its sealed column (where the key rotation sees it), and opens as before."""

from __future__ import annotations

import base64
import datetime as dt
import json

import sqlalchemy as sa
from cryptography.fernet import Fernet

from backend.db.engine import make_engine, make_sessions, migrate
from backend.db.slack_installations import SqlInstallationStore
from backend.secrets import FernetSecretBox
from tests.support.databases import downgrade_to

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


async def test_a_json_sealed_installation_moves_to_its_column(url: str) -> None:
    key = Fernet.generate_key().decode()
    box = FernetSecretBox([key])
    installation = {"app_id": "A1", "team_id": "T1", "user_id": "U1", "bot_token": "xoxb-kept"}
    sealed = base64.b64encode(box.encrypt(json.dumps(installation))).decode()
    engine = make_engine(url)
    try:
        await migrate(engine)
        async with engine.begin() as connection:
            await connection.run_sync(downgrade_to, "0008")
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
