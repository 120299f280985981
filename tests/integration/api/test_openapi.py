"""The OpenAPI document tells the truth: every status declared, every $ref resolves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from renkei.bootstrap import create_app
from renkei.settings import Settings

ERROR_REF = "#/components/schemas/ErrorResponse"
RATE_LIMITED = {
    ("post", "/api/v1/conversations"),
    ("post", "/api/v1/offices/{office_id}/accounts"),
    ("post", "/api/v1/accounts/{account_id}/switch-to-api"),
    ("post", "/api/v1/accounts/{account_id}/reauth"),
    ("post", "/api/v1/accounts/{account_id}/statements/upload"),
}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder: Path = tmp_path_factory.mktemp("openapi")
    app = create_app(
        Settings(data_dir=folder, database_url=f"sqlite+aiosqlite:///{folder / 'db.sqlite3'}")
    )
    return app.openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if path.startswith("/api/v1")
    ]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    refs = _refs(document)
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref[2:].split("/"):
            assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
            node = node[part]


def test_every_operation_declares_its_error_statuses(document: dict[str, Any]) -> None:
    missing: list[str] = []
    for method, path, operation in _operations(document):
        wanted = {"404", "422", "500"}
        if operation.get("security"):
            wanted |= {"401", "403"}
            if method != "get":
                wanted.add("409")
        if "requestBody" in operation:
            wanted.add("413")
        if (method, path) in RATE_LIMITED:
            wanted.add("429")
        responses = operation["responses"]
        for status in sorted(wanted):
            schema = (
                responses.get(status, {})
                .get("content", {})
                .get("application/json", {})
                .get("schema", {})
            )
            if schema.get("$ref") != ERROR_REF:
                missing.append(f"{method.upper()} {path}: {status}")
    assert not missing, "\n".join(missing)


def test_a_rate_limited_answer_is_described_with_retry_after(document: dict[str, Any]) -> None:
    for method, path in RATE_LIMITED:
        declared = document["paths"][path][method]["responses"]["429"]
        assert "Retry-After" in declared["headers"]
        assert "too_many_requests" in declared["description"]


def test_cursor_and_return_url_formats_are_described(document: dict[str, Any]) -> None:
    listing = document["paths"]["/api/v1/accounts/{account_id}/statements"]["get"]
    cursor = next(p for p in listing["parameters"] if p["name"] == "cursor")
    assert "base64" in cursor["description"] and "next_cursor" in cursor["description"]
    schemas = document["components"]["schemas"]
    for name in ("ApiAccountCreate", "AuthorizationOptions"):
        return_url = schemas[name]["properties"]["return_url"]
        assert return_url["format"] == "uri-reference"
        assert "starting with `/`" in return_url["description"]
