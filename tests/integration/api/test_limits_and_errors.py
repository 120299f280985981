"""The whole app (``create_app``) in process: unexpected errors, request ids, limits in
the OpenAPI, and the limits an operator sets."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy.exc import DBAPIError

from renkei.bootstrap import create_app
from renkei.settings import Settings


def _app(tmp_path: Path, **overrides: object) -> FastAPI:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'r.sqlite3'}",
        seed_demo=False,
        run_jobs=False,
        **overrides,  # type: ignore[arg-type]
    )
    return create_app(settings, start_jobs=False)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = _app(tmp_path, max_json_bytes=2000)

    async def boom() -> None:
        raise RuntimeError("secret detail of the failure")

    async def cut(request: Request) -> None:
        # What SQLAlchemy raises when the database closed the connection under a query.
        raise DBAPIError(
            "SELECT 1",
            None,
            Exception("server closed the connection"),
            connection_invalidated=True,
        )

    async def bad_sql(request: Request) -> None:
        raise DBAPIError("SELEC 1", None, Exception("syntax error"))

    app.add_api_route("/boom", boom, methods=["GET", "POST"])
    app.add_api_route("/cut", cut, methods=["GET"])
    app.add_api_route("/bad-sql", bad_sql, methods=["GET"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_an_unexpected_error_is_a_500_in_the_error_shape_logged_with_its_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="renkei.errors"):
        response = await client.get("/boom")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert "secret detail" not in response.text and "Traceback" not in response.text
    request_id = response.headers["x-request-id"]
    assert error["request_id"] == request_id
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback stays in the log


async def test_a_lost_database_connection_is_a_503_to_retry_other_sql_errors_a_500(
    client: httpx.AsyncClient,
) -> None:
    cut = await client.get("/cut")
    assert cut.status_code == 503
    assert cut.json()["error"]["code"] == "database_unavailable"
    assert cut.headers["retry-after"] == "1"
    bad = await client.get("/bad-sql")
    assert bad.status_code == 500
    assert bad.json()["error"]["code"] == "internal_error"
    assert "SELEC" not in bad.text


async def test_every_answer_has_a_request_id_and_keeps_a_sane_incoming_one(
    client: httpx.AsyncClient,
) -> None:
    kept = await client.get("/api/v1/offices", headers={"X-Request-Id": "proxy-id-12345"})
    assert kept.status_code == 401
    assert kept.headers["x-request-id"] == "proxy-id-12345"
    assert kept.json()["error"]["request_id"] == "proxy-id-12345"
    replaced = await client.get("/api/v1/offices", headers={"X-Request-Id": "bad id\x01" * 20})
    assert replaced.headers["x-request-id"] != "bad id\x01" * 20
    assert len(replaced.headers["x-request-id"]) == 32


async def test_the_operator_sets_the_json_limit(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/offices",
        content=b'{"name": "' + b"x" * 3000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["details"] == {"max_bytes": 2000}


async def test_the_openapi_states_each_operations_limit(tmp_path: Path) -> None:
    document = _app(tmp_path).openapi()
    paths = document["paths"]
    upload = paths["/api/v1/accounts/{account_id}/statements/upload"]["post"]
    assert upload["x-max-body-bytes"] == 10 * 1024 * 1024 + 64 * 1024
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert "413" in upload["responses"] and "bytes" in upload["responses"]["413"]["description"]
    webhook = paths["/api/v1/issuer-webhooks/{issuer}"]["post"]
    assert webhook["x-max-body-bytes"] == 1024 * 1024
    offices = paths["/api/v1/offices"]["post"]
    assert offices["x-max-json-keys"] == 1000 and offices["x-max-json-depth"] == 32
    assert "at most 1048576 bytes" in offices["description"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert "413" in operation["responses"], (method, path)
    error_body = document["components"]["schemas"]["ErrorBody"]["properties"]
    assert "request_id" in error_body
