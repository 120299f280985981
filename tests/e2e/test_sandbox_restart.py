"""A restart of ``renkei serve`` keeps the simulated issuers' grants: links keep working.

renkei keeps its links in its own database (SQLite or PostgreSQL); the sandbox keeps
its grants and tokens in a file of its own in the data directory. Both must survive
the restart for a link made before it to sync after it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from renkei.bootstrap import SANDBOX_STATE_FILE
from tests.e2e.conftest import ADMIN_TOKEN, Renkei
from tests.e2e.test_backend_rules import BIZ, SHOP, switch
from tests.support.servers import free_port


@contextmanager
def served(env: dict[str, str], data_dir: Path, port: int) -> Iterator[Renkei]:
    """``renkei serve`` in a process of its own, stopped as an operator stops it."""
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
        yield Renkei(url, (data_dir / "demo-token").read_text().strip(), env)
    finally:
        process.terminate()  # SIGTERM: what a service manager sends
        process.wait(timeout=30)


async def test_a_link_made_by_consent_syncs_after_a_restart(database: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {
        "RENKEI_DATA_DIR": str(data_dir),
        "DATABASE_URL": database,
        "RENKEI_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    port = free_port()
    with served(env, data_dir, port) as renkei:
        try:
            await renkei.wait_all_synced()
            account = await renkei.account(SHOP, BIZ)
            start = await switch(renkei, account["id"])
            back = await renkei.consent(start, cards=["amex-biz-1001"])
            assert back.status_code == 200, back.text
            linked = await renkei.wait_synced(account["id"], since=account["last_synced_at"])
            assert linked["sync_method"] == "api" and linked["status"] == "active", linked
            before = len(await renkei.statements(account["id"]))
        finally:
            await renkei.aclose()
    assert (data_dir / SANDBOX_STATE_FILE).exists()

    with served(env, data_dir, port) as renkei:
        try:
            # New uses at the issuer, and the access token of before the restart expired:
            # the sync must refresh with the refresh token the sandbox issued before it.
            # The new uses' webhook starts that sync.
            await renkei.control("amex", "/clock", {"advance_seconds": 1000})
            await renkei.control("amex", "/cards/amex-biz-1001/statements", {"count": 45})
            after = await renkei.wait_synced(account["id"], since=linked["last_synced_at"])
            assert after["status"] == "active" and after["sync_method"] == "api", after
            assert len(await renkei.statements(account["id"])) == before + 5
            grants = (await renkei.control_get("amex", "/grants"))["grants"]
            assert [g["status"] for g in grants if "amex-biz-1001" in g["card_ids"]] == ["active"]
        finally:
            await renkei.aclose()
