"""Demo sign-in over real HTTP: only this server's own page gets a token, and it expires.

A page of another site whose name was rebound to 127.0.0.1 (DNS rebinding) reaches the
server from loopback too, with its own Host and Origin: those are refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from renkei.bootstrap import create_app
from renkei.settings import Settings
from tests.support.databases import database_url
from tests.support.servers import free_port, serve_asgi

OWNER = "owner@example.com"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    with database_url("sqlite", tmp_path) as database:
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=database,
            public_url=f"http://127.0.0.1:{port}",
            run_jobs=False,
        )
        with serve_asgi(create_app(settings, start_jobs=False), port) as url:
            yield url, port


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


async def _demo(url: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return await client.post("/chat/demo-session", headers=headers)


@pytest.mark.parametrize(
    "host, origin",
    [
        ("evil.example:{port}", "http://evil.example:{port}"),  # a rebound name
        ("127.0.0.1:{port}", "http://evil.example:{port}"),  # another site's page
        ("127.0.0.1:{port}", "http://127.0.0.1:3000"),  # another port of this host
        ("evil.example:{port}", "http://127.0.0.1:{port}"),
        ("127.0.0.1:{port}", ""),  # no Origin: not a browser's sign-in
    ],
)
async def test_demo_sign_in_refuses_a_foreign_host_or_origin(
    server: tuple[str, int], host: str, origin: str
) -> None:
    url, port = server
    headers = {"Host": host.format(port=port)}
    if origin:
        headers["Origin"] = origin.format(port=port)
    refused = await _demo(url, **headers)
    assert refused.status_code == 403, refused.text
    assert error_of(refused)["code"] == "forbidden"
    assert "token" not in refused.json()


async def test_demo_sign_in_from_its_own_page_gets_a_token_that_expires(
    server: tuple[str, int],
) -> None:
    url, port = server
    for own in (f"127.0.0.1:{port}", f"localhost:{port}"):
        answered = await _demo(url, Host=own, Origin=f"http://{own}")
        assert answered.status_code == 200, answered.text
        assert answered.json()["user"] == OWNER
    token = answered.json()["token"]
    async with httpx.AsyncClient(
        timeout=30, base_url=url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        assert (await client.get("/api/v1/offices")).status_code == 200
        [*_, demo] = (await client.get("/api/v1/tokens")).json()
    assert demo["name"] == "web chat demo" and demo["expires_at"] is not None
    expires = dt.datetime.fromisoformat(demo["expires_at"])
    created = dt.datetime.fromisoformat(demo["created_at"])
    assert dt.timedelta(hours=1) <= expires - created <= dt.timedelta(days=1)
