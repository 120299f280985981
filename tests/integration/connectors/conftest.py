"""The simulated issuers on a real loopback HTTP server, and connectors pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

import sandbox
from backend.service.ports import TokenSet
from connectors.issuers import AmexGateway, IssuerConfig, JcbGateway
from tests.support.servers import serve_asgi

CLIENT_ID = "renkei-it"
CLIENT_SECRET = "renkei-it-secret"
# Never served: the tests read code and state from the link instead of following it.
REDIRECT_URI = "http://127.0.0.1:9/callback"


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    app = sandbox.create_app(
        clients=[
            sandbox.ClientRegistration(
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                redirect_uris=[REDIRECT_URI],
                name="renkei",
            )
        ]
    )
    with serve_asgi(app) as url:
        yield url


class Control:
    """The sandbox's control API for one issuer."""

    def __init__(self, client: httpx.AsyncClient, issuer: str) -> None:
        self.client = client
        self.prefix = f"/sandbox/{issuer}/control"

    async def __call__(
        self, path: str, body: dict[str, Any] | None = None, method: str = "POST"
    ) -> Any:
        response = await self.client.request(method, f"{self.prefix}{path}", json=body)
        assert response.is_success, (path, response.status_code, response.text)
        return response.json() if response.content else None

    async def grants(self) -> list[dict[str, Any]]:
        answer = await self("/grants", method="GET")
        grants: list[dict[str, Any]] = answer["grants"] if isinstance(answer, dict) else answer
        return grants


@pytest.fixture(params=["strict", "grace"])
def refresh_policy(request: pytest.FixtureRequest) -> str:
    """Every connector test runs against both refresh-token policies an issuer may have:
    strict rotation (a reused token revokes its family) and rotation with FAPI 2.0's
    grace period."""
    policy: str = request.param
    return policy


@pytest.fixture
async def http(sandbox_url: str, refresh_policy: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as client:
        # one shared state: resetting through either issuer resets both (faults too)
        reset = await client.post("/sandbox/amex/control/reset")
        assert reset.is_success, reset.text
        for issuer in ("amex", "jcb"):
            set_policy = await client.post(
                f"/sandbox/{issuer}/control/settings", json={"refresh_policy": refresh_policy}
            )
            assert set_policy.json()["issuers"][issuer]["refresh_policy"] == refresh_policy
        yield client


@pytest.fixture
def amex_control(http: httpx.AsyncClient) -> Control:
    return Control(http, "amex")


@pytest.fixture
def jcb_control(http: httpx.AsyncClient) -> Control:
    return Control(http, "jcb")


def config(sandbox_url: str, issuer: str, **overrides: Any) -> IssuerConfig:
    settings: dict[str, Any] = {"timeout": 2.0, "max_retries": 2, "backoff_base": 0.01} | overrides
    return IssuerConfig(
        base_url=f"{sandbox_url}/sandbox/{issuer}",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        **settings,
    )


@pytest.fixture
async def amex(sandbox_url: str, http: httpx.AsyncClient) -> AsyncIterator[AmexGateway]:
    gateway = AmexGateway(config(sandbox_url, "amex"))
    yield gateway
    await gateway.aclose()


@pytest.fixture
async def jcb(sandbox_url: str, http: httpx.AsyncClient) -> AsyncIterator[JcbGateway]:
    gateway = JcbGateway(config(sandbox_url, "jcb"))
    yield gateway
    await gateway.aclose()


class Saver:
    """The caller's token store: keeps every rotated pair it is given."""

    def __init__(self) -> None:
        self.saved: list[TokenSet] = []

    async def __call__(self, tokens: TokenSet) -> None:
        self.saved.append(tokens)

    @property
    def latest(self) -> TokenSet:
        return self.saved[-1]
