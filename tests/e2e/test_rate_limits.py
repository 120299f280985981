"""Rate limits per token and per client address, in memory and shared through Redis."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Renkei, running_renkei
from tests.e2e.test_backend_rules import BIZ, SHOP
from tests.support.databases import database_url

REDIS = ("127.0.0.1", 6379)


def _redis_answers() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The machine's Redis, started when it is installed but down."""
    if not _redis_answers():
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(["redis-server", "--daemonize", "yes"], check=False, timeout=10)
    for _ in range(50):
        if _redis_answers():
            return f"redis://{REDIS[0]}:{REDIS[1]}"
        subprocess.run(["sleep", "0.1"], check=False)
    # A missing Redis fails loudly rather than skipping the shared-storage proof.
    pytest.fail("no Redis on 127.0.0.1:6379 and none could be started: scripts/test installs it")


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[str]:
    with database_url("sqlite", tmp_path) as url:
        yield url


LIMITS = {
    "rate_limit_conversations": "3/minute",
    "rate_limit_consents": "2/minute",
    "rate_limit_uploads": "2/minute",
    "rate_limit_demo_sessions": "2/minute",
    "rate_limit_sandbox_pages": "4/minute",
}


@pytest.fixture
async def limited(sqlite: str, storage: str, tmp_path: Path) -> AsyncIterator[Renkei]:
    async with running_renkei(
        sqlite,
        tmp_path / "data",
        rate_limit_storage_url=storage,
        rate_limit_namespace=f"test-{uuid.uuid4().hex}",
        **LIMITS,
    ) as renkei:
        yield renkei


def _client(renkei: Renkei, token: str | None, address: str) -> httpx.AsyncClient:
    # As a browser on renkei's own page: its requests carry renkei's Origin.
    headers = {"Origin": renkei.base_url}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(
        base_url=renkei.base_url,
        headers=headers,
        transport=httpx.AsyncHTTPTransport(local_address=address),
        timeout=30,
    )


def _too_many(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "too_many_requests"
    assert error["details"]["retry_after"] == int(response.headers["retry-after"])
    return error


async def test_conversations_are_limited_per_token_and_per_address(limited: Renkei) -> None:
    renkei = limited
    token = renkei.api.headers["Authorization"].removeprefix("Bearer ")
    body = {"user": "owner@example.com"}
    async with _client(renkei, token, "127.0.0.2") as first:
        for _ in range(3):
            assert (await first.post("/api/v1/conversations", json=body)).status_code == 201
        assert (
            _too_many(await first.post("/api/v1/conversations", json=body))["details"]["limit"]
            == "conversations"
        )
    # The same token from another address: the token's count is used up.
    async with _client(renkei, token, "127.0.0.3") as moved:
        _too_many(await moved.post("/api/v1/conversations", json=body))
    # Another member from the first address: the address's count is used up.
    stranger = renkei.cli("token", "create", "stranger@example.com")
    async with _client(renkei, stranger, "127.0.0.2") as same_address:
        _too_many(
            await same_address.post("/api/v1/conversations", json={"user": "stranger@example.com"})
        )
    # Another member from another address is not held back by either.
    async with _client(renkei, stranger, "127.0.0.4") as elsewhere:
        started = await elsewhere.post(
            "/api/v1/conversations", json={"user": "stranger@example.com"}
        )
        assert started.status_code == 201, started.text


async def test_consents_uploads_demo_sign_in_and_sandbox_pages_are_limited(
    limited: Renkei,
) -> None:
    renkei = limited
    account = await renkei.account(SHOP, BIZ)
    for _ in range(2):
        started = await renkei.api.post(f"/accounts/{account['id']}/switch-to-api")
        assert started.status_code == 200, started.text
    _too_many(await renkei.api.post(f"/accounts/{account['id']}/reauth"))
    office = await renkei.office(SHOP)
    _too_many(
        await renkei.api.post(
            f"/offices/{office['id']}/accounts", json={"sync_method": "api", "issuer": "amex"}
        )
    )
    for _ in range(2):
        uploaded = await renkei.api.post(
            f"/accounts/{account['id']}/statements/upload",
            files={"file": ("s.csv", b"not a statement", "text/csv")},
        )
        assert uploaded.status_code == 422, uploaded.text
    _too_many(
        await renkei.api.post(
            f"/accounts/{account['id']}/statements/upload",
            files={"file": ("s.csv", b"not a statement", "text/csv")},
        )
    )
    async with _client(renkei, None, "127.0.0.1") as browser:
        for _ in range(2):
            assert (await browser.post("/chat/demo-session")).status_code == 200
        _too_many(await browser.post("/chat/demo-session"))
        for _ in range(4):
            assert (await browser.get("/sandbox/amex/member/login")).status_code == 200
        page = await browser.get("/sandbox/jcb/member/login")
        assert page.status_code == 429 and int(page.headers["retry-after"]) >= 1
        assert page.json()["error"] == "rate_limited"
        # Renkei's own calls to the issuer's APIs are no pages: syncing goes on.
        assert (await browser.get("/healthz")).status_code == 200


async def test_processes_sharing_redis_share_one_count(
    sqlite: str, redis_url: str, tmp_path: Path
) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    settings: dict[str, Any] = {
        "rate_limit_storage_url": redis_url,
        "rate_limit_namespace": namespace,
        "rate_limit_demo_sessions": "3/minute",
    }
    async with (
        running_renkei(sqlite, tmp_path / "a", **settings) as first,
        running_renkei(
            f"sqlite+aiosqlite:///{tmp_path / 'b.sqlite3'}", tmp_path / "b", **settings
        ) as second,
        _client(first, None, "127.0.0.1") as one,
        _client(second, None, "127.0.0.1") as other,
    ):
        assert (await one.post("/chat/demo-session")).status_code == 200
        assert (await other.post("/chat/demo-session")).status_code == 200
        assert (await one.post("/chat/demo-session")).status_code == 200
        _too_many(await other.post("/chat/demo-session"))
