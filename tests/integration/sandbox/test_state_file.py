"""The sandbox keeps its issuers' state in a file of its own: a restart forgets nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from sandbox import ClientRegistration, create_app
from sandbox.store import SandboxStoreError
from tests.integration.sandbox.helpers import (
    AUTH,
    CLIENT_ID,
    CLIENT_SECRET,
    CONTROL_KEY,
    KEY,
    REDIRECT_URI,
    link_by_control,
    sync_all,
)


@asynccontextmanager
async def sandbox_at(state_file: Path | None) -> AsyncIterator[httpx.AsyncClient]:
    """A sandbox process's life: made from the file (or fresh), served in process."""
    app = create_app(
        clients=[ClientRegistration(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])],
        control_key=CONTROL_KEY,
        state_file=state_file,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as http:
        yield http
    if app.state.sandbox.store is not None:
        app.state.sandbox.store.close()


async def refresh(http: httpx.AsyncClient, issuer: str, token: str) -> httpx.Response:
    return await http.post(
        f"/sandbox/{issuer}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": token},
        auth=AUTH,
    )


async def test_links_tokens_cursors_cards_and_clock_survive_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox.sqlite3"
    async with sandbox_at(state_file) as http:
        amex = await link_by_control(http, "amex", card_ids=["amex-biz-1001"])
        jcb = await link_by_control(http, "jcb")
        first, cursor = await sync_all(http, jcb)
        rotated = (await refresh(http, "amex", amex.refresh_token)).json()
        await http.post("/sandbox/amex/control/cards/amex-plat-3002/register", headers=KEY)
        await http.post("/sandbox/jcb/control/clock", headers=KEY, json={"advance_seconds": 60})
        await http.post("/sandbox/jcb/control/settings", headers=KEY, json={"access_token_ttl": 77})
        grants_before = (await http.get("/sandbox/amex/control/grants", headers=KEY)).json()

    async with sandbox_at(state_file) as http:
        # The rotated refresh token still works; the one it replaced is still spent.
        again = await refresh(http, "amex", rotated["refresh_token"])
        assert again.status_code == 200, again.text
        assert again.json()["expires_in"] == 77  # the settings are kept
        reused = await refresh(http, "amex", amex.refresh_token)
        assert reused.json()["error"] == "invalid_grant"
        # The JCB access token of before the restart is still good, and its cursor
        # goes on where it stopped: nothing comes twice.
        assert first["added"]
        second, _ = await sync_all(http, jcb, cursor)
        assert second == {"added": [], "modified": [], "removed": []}
        me = await http.get("/sandbox/jcb/api/v1/me", headers=jcb.bearer)
        assert me.json()["grant_id"] == jcb.grant_id
        # Member-site changes, the clock and the settings are kept.
        cards = (await http.get("/sandbox/amex/control/grants", headers=KEY)).json()
        assert cards["grants"][0]["grant_id"] == grants_before["grants"][0]["grant_id"]
        clock = (await http.get("/sandbox/jcb/control/clock", headers=KEY)).json()
        assert clock["offset"] == 60
        supplementary = await http.post(
            "/sandbox/amex/control/authorize",
            headers=KEY,
            json={
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "user_id": "user_good",
                "card_ids": ["amex-plat-3002"],
                "state": "s",
                "code_challenge": "a" * 43,
            },
        )
        # R15: registered before the restart, so the consent may name it now.
        assert supplementary.status_code == 200, supplementary.text


async def test_without_a_state_file_a_restart_starts_from_the_demo_data() -> None:
    async with sandbox_at(None) as http:
        link = await link_by_control(http, "amex", card_ids=["amex-biz-1001"])
    async with sandbox_at(None) as http:
        forgotten = await refresh(http, "amex", link.refresh_token)
        assert forgotten.json()["error"] == "invalid_grant"


async def test_a_reset_is_kept_too(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox.sqlite3"
    async with sandbox_at(state_file) as http:
        link = await link_by_control(http, "amex", card_ids=["amex-biz-1001"])
        await http.post("/sandbox/amex/control/reset", headers=KEY)
    async with sandbox_at(state_file) as http:
        assert (await http.get("/sandbox/amex/control/grants", headers=KEY)).json() == {
            "grants": []
        }
        gone = await http.get("/sandbox/amex/api/v1/me", headers=link.bearer)
        assert gone.status_code == 401


async def test_the_file_is_the_owners_alone_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox.sqlite3"
    async with sandbox_at(state_file):
        pass
    assert state_file.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(state_file) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(SandboxStoreError, match="newer sandbox"):
        async with sandbox_at(state_file):
            pass


async def test_a_fault_half_spent_and_a_logout_are_kept(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox.sqlite3"
    async with sandbox_at(state_file) as http:
        link = await link_by_control(http, "jcb")
        armed = await http.post(
            "/sandbox/jcb/control/faults",
            headers=KEY,
            json={"path": "/api/v1/me", "kind": "500", "times": 2},
        )
        assert armed.status_code == 201
        assert (await http.get("/sandbox/jcb/api/v1/me", headers=link.bearer)).status_code == 500
        login = await http.post(
            "/sandbox/jcb/legacy/login", data={"user_id": "user_good", "password": "pass_good"}
        )
        session = {"X-Legacy-Session": login.json()["session"]}
        assert (await http.get("/sandbox/jcb/legacy/statements", headers=session)).is_success
    async with sandbox_at(state_file) as http:
        # One failure of the two is left, then the path answers again.
        assert (await http.get("/sandbox/jcb/api/v1/me", headers=link.bearer)).status_code == 500
        assert (await http.get("/sandbox/jcb/api/v1/me", headers=link.bearer)).status_code == 200
        assert (await http.get("/sandbox/jcb/legacy/statements", headers=session)).is_success


async def test_spent_credentials_are_forgotten_so_the_file_holds_what_is_alive(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "sandbox.sqlite3"
    async with sandbox_at(state_file) as http:
        link = await link_by_control(http, "jcb")
        token = link.refresh_token
        for _ in range(30):
            # A refresh every 16 minutes for 8 hours, as a client syncing often does.
            quarter = {"advance_seconds": 960}
            await http.post("/sandbox/jcb/control/clock", headers=KEY, json=quarter)
            token = (await refresh(http, "jcb", token)).json()["refresh_token"]
        with sqlite3.connect(state_file) as db:
            (grown,) = db.execute("SELECT count(*) FROM access_tokens").fetchone()
        assert grown >= 30
        # Eight days on: every access token but the newest expired over a day ago, every
        # used refresh token was used over a week ago.
        await http.post(
            "/sandbox/jcb/control/clock", headers=KEY, json={"advance_seconds": 8 * 86_400}
        )
        fresh = await refresh(http, "jcb", token)
        assert fresh.status_code == 200, fresh.text
        with sqlite3.connect(state_file) as db:
            (access,) = db.execute("SELECT count(*) FROM access_tokens").fetchone()
            (refresh_rows,) = db.execute("SELECT count(*) FROM refresh_tokens").fetchone()
        assert access == 1  # the one just issued
        assert refresh_rows == 2  # the one just used (reuse detection) and its successor
        onward = await refresh(http, "jcb", fresh.json()["refresh_token"])
        assert onward.status_code == 200, onward.text
