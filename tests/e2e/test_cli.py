"""The operator's commands: key rotation re-encrypts every stored secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.conftest import running_renkei
from tests.e2e.test_backend_rules import BIZ, SHOP


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "renkei.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


async def test_key_rotation_then_the_old_key_can_go(database: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"RENKEI_DATA_DIR": str(data_dir), "DATABASE_URL": database}
    async with running_renkei(database, data_dir):
        pass  # first start: demo accounts with encrypted legacy credentials
    key_file = data_dir / "secret-keys"
    old_keys = key_file.read_text().split()
    assert len(old_keys) == 1
    output = cli(env, "keys", "rotate")
    assert output.startswith("re-encrypted ") and int(output.split()[1]) >= 14
    new_keys = key_file.read_text().split()
    assert len(new_keys) == 2 and new_keys[1] == old_keys[0]
    key_file.write_text(new_keys[0] + "\n")  # retire the old key
    async with running_renkei(database, data_dir) as renkei:
        account = await renkei.account(SHOP, BIZ)
        synced = await renkei.sync_now(account["id"])
        assert synced.status_code == 200 and synced.json()["status"] == "succeeded", synced.text


async def test_token_create_prints_a_working_token(database: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with running_renkei(database, data_dir) as renkei:
        token = renkei.cli("token", "create", "owner@example.com", "--name", "automation")
        assert token.startswith("rk_")
        async with httpx.AsyncClient(
            timeout=30,
            base_url=f"{renkei.base_url}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            offices = (await client.get("/offices")).json()
        assert len(offices) == 2
