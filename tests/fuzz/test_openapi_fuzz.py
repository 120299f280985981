"""The app's own OpenAPI, fuzzed by schemathesis against a real server, as admin and member.

Every operation gets derandomised examples (valid and invalid requests); each answer
must be no server error, carry a status its operation declares, and match the schema
declared for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from renkei.bootstrap import create_app
from renkei.settings import Settings
from tests.support.databases import database_url
from tests.support.servers import free_port, serve_asgi

ADMIN_TOKEN = "fuzz-support-admin-token"
MEMBER = "clerk@example.com"
EXAMPLES = int(os.environ.get("RENKEI_FUZZ_EXAMPLES", "30"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@dataclass(frozen=True)
class Served:
    url: str
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("fuzz")
    data_dir = folder / "data"
    with database_url("sqlite", folder) as database:
        port = free_port()
        app = create_app(
            Settings(
                data_dir=data_dir,
                database_url=database,
                admin_token=ADMIN_TOKEN,
                public_url=f"http://127.0.0.1:{port}",
                # The fuzzer floods on purpose: the limits are tested on their own.
                rate_limit_conversations="off",
                rate_limit_consents="off",
                rate_limit_uploads="off",
                rate_limit_demo_sessions="off",
                rate_limit_sandbox_pages="off",
                # A fuzzed sync-now must not wait on the issuer for long.
                issuer_timeout=2.0,
                issuer_max_retries=0,
            ),
            start_jobs=False,
        )
        with serve_asgi(app, port) as url:
            owner = (data_dir / "demo-token").read_text().strip()
            yield Served(
                url, {"admin": ADMIN_TOKEN, "member": _member_token(url, owner, data_dir, database)}
            )


def _member_token(url: str, owner: str, data_dir: Path, database: str) -> str:
    """A member (not admin) of the demo offices, with a token of their own: invited, then
    accepting each invitation as themselves."""
    result = subprocess.run(
        [sys.executable, "-m", "renkei.cli", "token", "create", MEMBER],
        env={**os.environ, "RENKEI_DATA_DIR": str(data_dir), "DATABASE_URL": database},
        capture_output=True,
        text=True,
        check=True,
    )
    token = result.stdout.strip()
    with httpx.Client(
        base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {owner}"}
    ) as api:
        for office in api.get("/offices").json():
            invited = api.post(
                f"/offices/{office['id']}/invitations", json={"email": MEMBER, "role": "member"}
            )
            assert invited.status_code == 201, invited.text
            accepted = api.post(
                f"/invitations/{invited.json()['id']}/accept",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert accepted.status_code == 200, accepted.text
    return token


@pytest.fixture(scope="module")
def api_schema(served: Served) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{served.url}/openapi.json")


def _fuzz(api_schema: schemathesis.BaseSchema, served: Served, role: str) -> list[str]:
    """Every operation, valid then invalid requests; the failures found, one line each."""
    headers = {"Authorization": f"Bearer {served.tokens[role]}"}
    failures: list[str] = []
    operations = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), f"the OpenAPI does not load: {result}"
        operations.append(result.ok())
    assert len(operations) > 30, "the OpenAPI lost operations"
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
                print_blob=False,
            )
            def run(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
                case.call_and_validate(
                    base_url=served.url, headers=headers, checks=CHECKS, timeout=30
                )

            try:
                run()
            except Unsatisfiable:
                continue  # no invalid request exists for it (e.g. no parameters at all)
            except Exception as exc:
                first = str(exc).strip().splitlines()
                failures.append(f"{operation.label} ({mode}): {' | '.join(first[:6])}")
    return failures


@pytest.mark.parametrize("role", ["admin", "member"])
def test_every_operation_answers_as_declared(
    api_schema: schemathesis.BaseSchema, served: Served, role: str
) -> None:
    failures = _fuzz(api_schema, served, role)
    assert not failures, "\n".join(failures)
