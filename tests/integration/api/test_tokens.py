"""API tokens expire and can be revoked: by their member over the API, by the operator
with ``renkei token revoke``."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from backend.db.engine import make_engine, make_sessions, migrate
from backend.db.token_store import SqlTokenStore, hash_of
from renkei.cli import app as cli_app

from .conftest import Harness

ANNA = "anna@example.com"


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {
        "code",
        "rule",
        "message",
        "details",
        "request_id",
    }
    error: dict[str, Any] = body["error"]
    return error


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def store(api: Harness, tmp_path: Path) -> AsyncIterator[SqlTokenStore]:
    """The real token store behind the API (its own database: it needs only its table)."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'tokens.db'}")
    await migrate(engine)
    tokens = SqlTokenStore(make_sessions(engine))
    api.app.state.token_resolver = tokens
    yield tokens
    await engine.dispose()


async def test_an_expired_token_is_refused(api: Harness, store: SqlTokenStore) -> None:
    token = await store.create(ANNA, "laptop", expires_in=dt.timedelta(hours=1))
    assert (await api.client.get("/api/v1/offices", headers=bearer(token))).status_code == 200
    services = api.app.state.services
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1, seconds=1)
    services.clock = lambda: later
    r = await api.client.get("/api/v1/offices", headers=bearer(token))
    assert r.status_code == 401
    assert error_of(r)["code"] == "unauthenticated"
    assert "expired" in error_of(r)["message"]
    assert r.headers["www-authenticate"] == "Bearer"


async def test_a_member_lists_and_revokes_their_own_tokens(
    api: Harness, store: SqlTokenStore
) -> None:
    laptop = await store.create(ANNA, "laptop")
    phone = await store.create(ANNA, "phone", expires_in=dt.timedelta(days=30))
    other = await store.create("bob@example.com", "bob's")
    r = await api.client.get("/api/v1/tokens", headers=bearer(laptop))
    assert r.status_code == 200, r.text
    listed = r.json()
    assert [t["name"] for t in listed] == ["laptop", "phone"]
    assert listed[0]["expires_at"] is None and listed[1]["expires_at"] is not None
    assert laptop not in r.text and phone not in r.text and hash_of(laptop) not in r.text
    # Another member's token does not exist for her.
    [bobs] = await store.list_for("bob@example.com")
    r = await api.client.delete(f"/api/v1/tokens/{bobs.id}", headers=bearer(laptop))
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    assert (await api.client.get("/api/v1/offices", headers=bearer(other))).status_code == 200
    r = await api.client.delete(f"/api/v1/tokens/{listed[1]['id']}", headers=bearer(laptop))
    assert r.status_code == 204, r.text
    r = await api.client.get("/api/v1/offices", headers=bearer(phone))
    assert r.status_code == 401
    assert error_of(r)["code"] == "unauthenticated" and "revoked" in error_of(r)["message"]
    r = await api.client.get("/api/v1/tokens", headers=bearer(laptop))
    assert r.json()[1]["revoked_at"] is not None
    # Revoking the token in use ends this session too.
    r = await api.client.delete(f"/api/v1/tokens/{listed[0]['id']}", headers=bearer(laptop))
    assert r.status_code == 204
    assert (await api.client.get("/api/v1/tokens", headers=bearer(laptop))).status_code == 401


async def test_the_support_administrator_has_no_member_tokens(
    api: Harness, store: SqlTokenStore
) -> None:
    r = await api.client.get("/api/v1/tokens", headers=api.auth())
    assert r.status_code == 403 and error_of(r)["code"] == "forbidden"


def test_renkei_token_revoke(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env = {"RENKEI_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": database}
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(cli_app, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output.strip()

    first = cli("token", "create", ANNA, "--name", "ci", "--expires-in", "90d")
    second = cli("token", "create", ANNA, "--name", "leaked")
    listing = cli("token", "list", ANNA).splitlines()
    assert len(listing) == 2 and first not in listing[0] and "expires never" in listing[1]
    assert "revoked -" in listing[0]
    first_id = listing[0].split()[0]
    assert f"revoked {first_id}" in cli("token", "revoke", first_id)
    # A leaked token is revoked by the token itself.
    assert "leaked" in cli("token", "revoke", second)
    missing = runner.invoke(cli_app, ["token", "revoke", "nope"], env=env)
    assert missing.exit_code == 1
    refused = runner.invoke(cli_app, ["token", "create", ANNA, "--expires-in", "soon"], env=env)
    assert refused.exit_code != 0

    async def check() -> None:
        engine = make_engine(database)
        store = SqlTokenStore(make_sessions(engine))
        records = {r.name: r for r in await store.list_for(ANNA)}
        assert records["ci"].revoked_at is not None and records["ci"].expires_at is not None
        assert records["leaked"].revoked_at is not None
        for token in (first, second):
            record = await store.lookup(hash_of(token))
            assert record is not None and not record.usable(dt.datetime.now(dt.UTC))
        await engine.dispose()

    asyncio.run(check())
