"""Key rotation while renkei runs: nothing sealed under a dropped key, nothing lost.

One renkei serves in its own process (``renkei serve``) on PostgreSQL while
``renkei keys rotate`` runs in another; the rotation is also stopped after its first
batch and run again.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet, InvalidToken
from slack_sdk.oauth.installation_store.models.installation import Installation
from sqlalchemy import select

from backend.db import tables as t
from backend.db.engine import make_engine, make_sessions
from backend.db.secret_keys import read_key_state
from backend.db.slack_installations import SqlInstallationStore
from backend.secrets import FernetSecretBox, read_key_file
from renkei.keys import RotationError, drop_old_keys, rotate_keys
from renkei.settings import Settings
from tests.e2e.conftest import ADMIN_TOKEN, Renkei, running_renkei
from tests.e2e.test_backend_rules import BIZ, SHOP, switch
from tests.support.databases import fresh_postgres_database
from tests.support.servers import free_port

CHECK_SECONDS = "0.5"


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "renkei.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@contextmanager
def served(env: dict[str, str], data_dir: Path) -> Iterator[str]:
    """``renkei serve`` in a process of its own; yields its base URL once it is up."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "renkei.cli", "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, "renkei serve stopped"
            assert time.monotonic() < deadline, "renkei serve did not start"
            try:
                up = httpx.get(f"{url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                up = False
            if up and (data_dir / "demo-token").exists():
                break
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _sealed_values(database: str) -> list[tuple[str, bytes]]:
    engine = make_engine(database)
    try:
        values: list[tuple[str, bytes]] = []
        async with engine.connect() as connection:
            for table, column in t.sealed_columns():
                rows = (await connection.execute(select(column).where(column.is_not(None)))).all()
                values.extend((f"{table.name}.{column.name}", row[0]) for row in rows)
        return values
    finally:
        await engine.dispose()


def _opens(key: str, sealed: bytes) -> bool:
    try:
        Fernet(key.encode()).decrypt(sealed)
    except InvalidToken:
        return False
    return True


async def _newest_verifier(database: str) -> bytes:
    engine = make_engine(database)
    try:
        p = t.pending_authorizations
        async with engine.connect() as connection:
            query = select(p.c.code_verifier).order_by(p.c.created_at.desc()).limit(1)
            value: bytes = (await connection.execute(query)).scalar_one()
        return value
    finally:
        await engine.dispose()


async def _sync_now(renkei: Renkei, account_id: str) -> None:
    synced = await renkei.sync_now(account_id)
    assert synced.status_code == 200, synced.text
    assert synced.json()["status"] == "succeeded", synced.text


async def test_a_running_server_follows_the_rotation_and_the_old_key_can_go(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with fresh_postgres_database() as database:
        env = {
            "RENKEI_DATA_DIR": str(data_dir),
            "DATABASE_URL": database,
            "RENKEI_ADMIN_TOKEN": ADMIN_TOKEN,
            "RENKEI_KEY_CHECK_SECONDS": CHECK_SECONDS,
        }
        with served(env, data_dir) as url:
            renkei = Renkei(url, (data_dir / "demo-token").read_text().strip(), env)
            try:
                await renkei.wait_all_synced()
                (old_key,) = read_key_file(data_dir / "secret-keys")

                rotated = await asyncio.to_thread(_cli, env, "keys", "rotate")
                assert rotated.returncode == 0, rotated.stderr
                assert rotated.stdout.startswith("re-encrypted ")
                new_key, kept = read_key_file(data_dir / "secret-keys")
                assert kept == old_key

                # The server, left running, seals what it writes now with the new key.
                account = await renkei.account(SHOP, BIZ)
                authorization_url = await switch(renkei, account["id"])
                verifier = await _newest_verifier(database)
                assert _opens(new_key, verifier) and not _opens(old_key, verifier)

                dropped = await asyncio.to_thread(_cli, env, "keys", "drop")
                assert dropped.returncode == 0, dropped.stderr
                assert read_key_file(data_dir / "secret-keys") == [new_key]

                # The OAuth callback opens the verifier; sync-now opens the tokens.
                callback = await renkei.consent(authorization_url, cards=["amex-biz-1001"])
                assert callback.status_code == 200, callback.text
                await renkei.wait_synced(account["id"], since=account["last_synced_at"])
                await _sync_now(renkei, account["id"])
                for office in (await renkei.api.get("/offices")).json():
                    listed = await renkei.api.get(f"/offices/{office['id']}/accounts")
                    for other in listed.json():
                        if other["sync_method"] == "legacy" and other["status"] == "active":
                            await _sync_now(renkei, other["id"])
                values = await _sealed_values(database)
                assert values and all(_opens(new_key, sealed) for _, sealed in values)

                # A second rotation, the server still running, succeeds too.
                again = await asyncio.to_thread(_cli, env, "keys", "rotate")
                assert again.returncode == 0, again.stderr
                newer_key, _ = read_key_file(data_dir / "secret-keys")
                await _sync_now(renkei, account["id"])
                values = await _sealed_values(database)
                assert all(_opens(newer_key, sealed) for _, sealed in values)
            finally:
                await renkei.aclose()


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_an_interrupted_rotation_finishes_when_run_again(
    database: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    async with running_renkei(database, data_dir):
        pass  # demo accounts with sealed legacy credentials
    (old_key,) = read_key_file(data_dir / "secret-keys")
    engine = make_engine(database)
    store = SqlInstallationStore(make_sessions(engine), "client-1", FernetSecretBox([old_key]))
    await store.async_save(
        Installation(
            app_id="A1",
            team_id="T1",
            user_id="U1",
            bot_token="xoxb-secret-bot-token",
            bot_id="B1",
            bot_user_id="UB1",
            bot_scopes=["chat:write"],
        )
    )
    await engine.dispose()
    settings = Settings(data_dir=data_dir, database_url=database)

    class Interrupted(Exception):
        pass

    def stop_after_first(batch: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        await rotate_keys(settings, batch_size=2, grace=0, on_batch=stop_after_first)
    new_key, _ = read_key_file(data_dir / "secret-keys")
    values = await _sealed_values(database)
    under_new = [name for name, sealed in values if _opens(new_key, sealed)]
    assert 1 <= len(under_new) <= 2 < len(values)  # the first batch was committed
    assert "slack_installations.sealed" in {name for name, _ in values}
    with pytest.raises(RotationError, match="not finished"):
        await drop_old_keys(settings)  # the old key is still needed

    report = await rotate_keys(settings, batch_size=2, grace=0)
    assert report.resumed and report.resealed == len(values) - len(under_new)
    assert read_key_file(data_dir / "secret-keys") == [new_key, old_key]  # no third key
    assert all(_opens(new_key, sealed) for _, sealed in await _sealed_values(database))

    engine = make_engine(database)
    try:
        async with engine.connect() as connection:
            state = await read_key_state(connection)
        assert state is not None and state.status == "done"
        # A process that never got the new key seals one more secret under the old one.
        stale = SqlInstallationStore(make_sessions(engine), "client-1", FernetSecretBox([old_key]))
        await stale.async_save(Installation(app_id="A1", team_id="T2", user_id="U2", bot_token="x"))
        with pytest.raises(RotationError, match="1 secrets are still under an older key"):
            await drop_old_keys(settings)
        assert read_key_file(data_dir / "secret-keys") == [new_key, old_key]

        report = await rotate_keys(settings, grace=0)  # the next rotation takes it along
        assert not report.resumed and report.resealed == len(values) + 1
        newest = read_key_file(data_dir / "secret-keys")[0]
        await drop_old_keys(settings)
        assert read_key_file(data_dir / "secret-keys") == [newest]
        only_new = SqlInstallationStore(
            make_sessions(engine), "client-1", FernetSecretBox([newest])
        )
        bot = await only_new.async_find_bot(enterprise_id=None, team_id="T1")
        assert bot is not None and bot.bot_token == "xoxb-secret-bot-token"
    finally:
        await engine.dispose()

    # Run again once finished: the next rotation, harmless.
    report = await rotate_keys(settings, grace=0)
    assert not report.resumed and report.resealed == len(values) + 1

    # Two rotations at once: the one overtaken stops instead of fighting over values.
    def another_rotation_begins(batch: int) -> None:
        plain_url = database.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain_url, autocommit=True) as connection:
            connection.execute("UPDATE secret_key_state SET version = version + 1")

    with pytest.raises(RotationError, match="named a newer key meanwhile"):
        await rotate_keys(settings, grace=0, batch_size=2, on_batch=another_rotation_begins)
