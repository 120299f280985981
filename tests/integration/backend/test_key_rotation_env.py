"""Keys given in RENKEI_SECRET_KEYS: the first one is named newest, no file is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from slack_sdk.oauth.installation_store.models.installation import Installation

from backend.db.engine import make_engine, make_sessions, migrate
from backend.db.slack_installations import SqlInstallationStore
from backend.secrets import FernetSecretBox, key_id
from renkei.keys import RotationError, drop_old_keys, key_status, rotate_keys
from renkei.settings import Settings


async def test_rotation_with_keys_from_the_environment(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    database = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    engine = make_engine(database)
    await migrate(engine)
    store = SqlInstallationStore(make_sessions(engine), "c", FernetSecretBox([old]))
    await store.async_save(Installation(app_id="A", team_id="T", user_id="U", bot_token="xoxb-1"))
    settings = Settings(data_dir=tmp_path / "data", database_url=database)

    with pytest.raises(RotationError, match="no rotation was made yet"):
        await drop_old_keys(settings.model_copy(update={"secret_keys": SecretStr(old)}))

    both = settings.model_copy(update={"secret_keys": SecretStr(f"{new},{old}")})
    report = await rotate_keys(both, grace=0)
    assert report.newest_key_id == key_id(new) and report.resealed == 1
    status = await key_status(both)
    assert status.found.old_total == 0 and status.state is not None
    assert status.state.newest_key_id == key_id(new)
    assert await drop_old_keys(both) == [key_id(old)]
    assert not (tmp_path / "data" / "secret-keys").exists()  # nothing written: env keys

    only_new = SqlInstallationStore(make_sessions(engine), "c", FernetSecretBox([new]))
    bot = await only_new.async_find_bot(enterprise_id=None, team_id="T")
    assert bot is not None and bot.bot_token == "xoxb-1"
    await engine.dispose()
