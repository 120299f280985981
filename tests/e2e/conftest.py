"""renkei served for real on loopback (uvicorn), with its mounted sandbox issuers.

Each test gets a fresh server and a fresh database: SQLite, and PostgreSQL on
127.0.0.1:5432. Issuer pages are clicked through over HTTP as a person would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.db.job_store import JobRow
from backend.service.jobs import sync_lock
from renkei.bootstrap import SANDBOX_CONTROL_KEY_FILE, create_app, job_admin
from renkei.settings import Settings
from tests.support.browser import Browser
from tests.support.databases import database_url
from tests.support.servers import free_port, serve_asgi

ADMIN_TOKEN = "e2e-support-admin-token"
OWNER = "owner@example.com"


class Renkei:
    """A running renkei and the owner's API client."""

    def __init__(self, base_url: str, owner_token: str, env: dict[str, str]) -> None:
        self.base_url = base_url
        self.env = env
        headers = {"Authorization": f"Bearer {owner_token}"}
        self.api = httpx.AsyncClient(base_url=f"{base_url}/api/v1", headers=headers, timeout=30)
        self.admin = httpx.AsyncClient(
            base_url=f"{base_url}/api/v1",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )

    async def aclose(self) -> None:
        await self.api.aclose()
        await self.admin.aclose()

    # ------------------------------------------------------------ reading
    async def office(self, name: str) -> dict[str, Any]:
        offices = (await self.api.get("/offices")).json()
        return next(o for o in offices if o["name"] == name)

    async def account(self, office_name: str, account_name: str) -> dict[str, Any]:
        office = await self.office(office_name)
        accounts = (await self.api.get(f"/offices/{office['id']}/accounts")).json()
        return next(a for a in accounts if a["name"] == account_name)

    async def get_account(self, account_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/accounts/{account_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def statements(self, account_id: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = (await self.api.get(f"/accounts/{account_id}/statements", params=params)).json()
            rows.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return rows

    async def events(self, account_id: str) -> list[dict[str, Any]]:
        response = await self.api.get("/events", params={"account_id": account_id, "limit": 200})
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()
        return events

    async def wait_synced(self, account_id: str, *, since: str | None = None) -> dict[str, Any]:
        """Wait until the job runner finished a sync of the account after ``since``."""
        for _ in range(300):
            account = await self.get_account(account_id)
            synced = account["last_synced_at"]
            if account["status"] != "syncing" and synced and (since is None or synced > since):
                return account
            if account["status"] == "needs_reauth" or account["last_error"]:
                return account
            await asyncio.sleep(0.1)
        raise AssertionError(f"account {account_id} never synced")

    async def sync_now(self, account_id: str) -> httpx.Response:
        """ "Sync now", as a person asks it: asked again while a background sync holds the
        account (the schedule's own, queued at start for every account not synced
        lately), which answers ``already_running``."""
        for _ in range(150):
            answer = await self.api.post(f"/accounts/{account_id}/sync")
            if answer.status_code != 200 or answer.json().get("status") != "already_running":
                return answer
            await asyncio.sleep(0.2)
        return answer

    async def jobs_settled(self, account_id: str) -> list[str]:
        """Wait until no sync of the account is queued or running, whichever runner holds
        the jobs; the statuses of its jobs, in the operator's words."""
        settings = Settings(
            data_dir=Path(self.env["RENKEI_DATA_DIR"]), database_url=self.env["DATABASE_URL"]
        )
        async with job_admin(settings) as jobs:
            for _ in range(300):
                statuses = [
                    job.status
                    for job in await jobs.list_jobs(None, 1000)
                    if job.lock == sync_lock(account_id)
                ]
                if statuses and not {"queued", "running"} & set(statuses):
                    return statuses
                await asyncio.sleep(0.1)
        raise AssertionError(f"the syncs of {account_id} never settled")

    async def wait_all_synced(self) -> None:
        for office in (await self.api.get("/offices")).json():
            for account in (await self.api.get(f"/offices/{office['id']}/accounts")).json():
                await self.wait_synced(account["id"])

    async def wait_quiet(self) -> None:
        """Wait until no job runs and none waits that is due: what the first syncs set off
        (their events' deliveries, the assistant's notices) is over before a test begins,
        so none of it lands in what the test counts."""
        settings = Settings(
            data_dir=Path(self.env["RENKEI_DATA_DIR"]), database_url=self.env["DATABASE_URL"]
        )
        busy: list[str] = []
        async with job_admin(settings) as jobs:
            for _ in range(600):
                busy = _busy(await jobs.list_jobs(None, 1000))
                if not busy:
                    return
                await asyncio.sleep(0.1)
        raise AssertionError(f"background work never settled: {busy}")

    # ------------------------------------------------------------ the issuer side
    @property
    def sandbox_key(self) -> dict[str, str]:
        """The header the mounted sandbox's control API asks for."""
        key = Path(self.env["RENKEI_DATA_DIR"]) / SANDBOX_CONTROL_KEY_FILE
        return {"X-Sandbox-Key": key.read_text().strip()}

    def browser(self) -> Browser:
        return Browser(httpx.AsyncClient(timeout=30, follow_redirects=True))

    async def open_start(
        self,
        browser: Browser,
        start_url: str,
        *,
        code: str | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        """Open renkei's start link as the member's browser does: signed in with the
        member's token (what the web chat does), or typing the one-time code of the
        member's conversation (a link opened from Slack or the terminal)."""
        if code is not None:
            page = await browser.open(start_url)
            assert page.status_code == 200, page.text
            return await browser.press("確認してカード会社へ進む", fill={"code": code})
        bearer = token or self.api.headers["Authorization"].removeprefix("Bearer ")
        answer = await browser.client.post(
            f"{start_url}/signed-in", headers={"Authorization": f"Bearer {bearer}"}
        )
        assert answer.status_code == 200, answer.text
        return await browser.open(answer.json()["issuer_url"])

    async def consent(
        self,
        authorization_url: str,
        *,
        user: str = "user_good",
        cards: list[str] | None = None,
        password: str = "pass_good",
        code: str | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        """Open renkei's start link in the member's browser, log in at the issuer, agree
        (同意して次へ), tick cards, allow (許可する), go back to renkei."""
        browser = self.browser()
        try:
            page = await self.open_start(browser, authorization_url, code=code, token=token)
            assert page.status_code == 200, page.text
            page = await browser.press("ログイン", fill={"user_id": user, "password": password})
            assert page.status_code == 200, page.text
            page = await browser.press("同意して次へ")
            assert page.status_code == 200, page.text
            page = await browser.press("許可する", tick=cards or [])
            assert page.status_code == 200, page.text
            return await browser.open(browser.link("に戻る"))
        finally:
            await browser.client.aclose()

    async def control(self, issuer: str, path: str, body: dict[str, Any] | None = None) -> Any:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as client:
            response = await client.post(
                f"/sandbox/{issuer}/control{path}", json=body or {}, headers=self.sandbox_key
            )
            assert response.is_success, response.text
            return response.json() if response.content else None

    async def control_get(self, issuer: str, path: str) -> Any:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as client:
            response = await client.get(
                f"/sandbox/{issuer}/control{path}", headers=self.sandbox_key
            )
            assert response.is_success, response.text
            return response.json()

    async def stop_link_on_member_site(self, card_label: str, user: str = "user_good") -> None:
        """R16: Amex member site → 登録情報の変更 → 外部サービスとの連携 → 停止する."""
        browser = self.browser()
        try:
            await browser.open(f"{self.base_url}/sandbox/amex/member/login")
            await browser.press("ログイン", fill={"user_id": user, "password": "pass_good"})
            await browser.open(browser.link("登録情報の変更"))
            await browser.open(browser.link("外部サービスとの連携"))
            page = await browser.press_in_row(card_label, "停止する")
            assert page.status_code == 200, page.text
        finally:
            await browser.client.aclose()

    async def join(self, office_id: str, email: str, role: str) -> str:
        """The owner invites ``email``, who accepts with a token of their own (answered)."""
        invited = await self.api.post(
            f"/offices/{office_id}/invitations", json={"email": email, "role": role}
        )
        assert invited.status_code == 201, invited.text
        token = self.cli("token", "create", email)
        accepted = await self.api.post(
            f"/invitations/{invited.json()['id']}/accept",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert accepted.status_code == 200, accepted.text
        return token

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "renkei.cli", *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip()


def _busy(listed: list[JobRow]) -> list[str]:
    """The jobs running, or due to run: a lock key's jobs run in order, so one waiting
    behind a job that retries later is not due before it."""
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    busy: list[str] = []
    seen_locks: set[str] = set()
    for job in sorted(listed, key=lambda row: row.id):
        if job.status not in {"queued", "running"}:
            continue
        first_of_lock = job.lock is None or job.lock not in seen_locks
        if job.lock is not None:
            seen_locks.add(job.lock)
        due = job.run_at is None or job.run_at <= soon
        if job.status == "running" or (first_of_lock and due):
            busy.append(f"{job.kind} {job.status} {job.lock}")
    return busy


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        yield url


@asynccontextmanager
async def running_renkei(database: str, data_dir: Path, **overrides: Any) -> AsyncIterator[Renkei]:
    """renkei on a free loopback port, demo data seeded and first synced."""
    port = free_port()
    settings = Settings(
        data_dir=data_dir,
        database_url=database,
        public_url=f"http://127.0.0.1:{port}",
        **{"admin_token": ADMIN_TOKEN, **overrides},
    )
    app = create_app(settings)
    with serve_asgi(app, port) as url:
        env = {"RENKEI_DATA_DIR": str(data_dir), "DATABASE_URL": database}
        client = Renkei(url, (data_dir / "demo-token").read_text().strip(), env)
        try:
            await client.wait_all_synced()
            await client.wait_quiet()
            yield client
        finally:
            await client.aclose()


@pytest.fixture
async def renkei(database: str, tmp_path: Path) -> AsyncIterator[Renkei]:
    async with running_renkei(database, tmp_path / "data") as client:
        yield client
