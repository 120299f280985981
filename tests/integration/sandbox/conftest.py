"""A sandbox and a webhook receiver on loopback, shared by the sandbox tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox import ClientRegistration, create_app
from tests.integration.sandbox.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    CONTROL_KEY,
    KEY,
    OTHER_CLIENT_ID,
    OTHER_SECRET,
    REDIRECT_URI,
    WEBHOOK_SECRET,
)
from tests.support.servers import serve_asgi


@dataclass
class Receiver:
    """What the webhook receiver got; ``fail_next`` answers 503 that many times."""

    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_next: int = 0

    def app(self) -> Starlette:
        async def hook(request: Request) -> JSONResponse:
            self.calls.append((dict(request.headers), await request.body()))
            if self.fail_next > 0:
                self.fail_next -= 1
                return JSONResponse({"error": "busy"}, status_code=503)
            return JSONResponse({"ok": True})

        return Starlette(routes=[Route("/hooks/issuer", hook, methods=["POST"])])


@pytest.fixture(scope="session")
def receiver() -> Iterator[tuple[Receiver, str]]:
    found = Receiver()
    with serve_asgi(found.app()) as url:
        yield found, url


@pytest.fixture(scope="session")
def sandbox_url(receiver: tuple[Receiver, str]) -> Iterator[str]:
    _, receiver_url = receiver
    app = create_app(
        clients=[
            ClientRegistration(
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                redirect_uris=[REDIRECT_URI],
                webhook_url=f"{receiver_url}/hooks/issuer",
                webhook_secret=WEBHOOK_SECRET,
            ),
            ClientRegistration(
                client_id=OTHER_CLIENT_ID,
                client_secret=OTHER_SECRET,
                redirect_uris=[REDIRECT_URI],
                name="other books",
            ),
        ],
        control_key=CONTROL_KEY,
    )
    with serve_asgi(app) as url:
        yield url


@pytest.fixture
async def client(
    sandbox_url: str, receiver: tuple[Receiver, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh demo state, and an HTTP client that behaves like a browser (cookies)."""
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as http:
        # One reset serves both issuers: they share the state.
        reset = await http.post("/sandbox/amex/control/reset", headers=KEY)
        assert reset.status_code == 200
        await http.post(
            "/sandbox/amex/control/settings", headers=KEY, json={"webhook_retry_delay": 0.05}
        )
        receiver[0].calls.clear()
        receiver[0].fail_next = 0
        yield http
