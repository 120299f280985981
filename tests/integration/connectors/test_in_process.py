"""The embedded setup: connectors reach a sandbox mounted in the same process."""

from __future__ import annotations

import httpx

import sandbox
from backend.service.ports import LinkStatus
from connectors.issuers import IssuerConfig, build_gateways

from .conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Saver

BASE = "http://renkei.internal"


async def test_gateways_over_asgi_transport() -> None:
    app = sandbox.create_app(
        clients=[sandbox.ClientRegistration(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI], "renkei")]
    )
    transport = httpx.ASGITransport(app=app)
    configs = {
        name: IssuerConfig(f"{BASE}/sandbox/{name}", CLIENT_ID, CLIENT_SECRET, backoff_base=0.01)
        for name in ("amex", "jcb")
    }
    gateways = build_gateways(configs, transport)
    jcb = gateways["jcb"]
    request = jcb.authorization_request(redirect_uri=REDIRECT_URI)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as control:
        answer = await control.post(
            "/sandbox/jcb/control/authorize",
            json={
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "user_id": "user_good",
                "card_ids": [],
                "state": request.state,
                "code_challenge": httpx.URL(request.url).params["code_challenge"],
            },
        )
    tokens = await jcb.exchange_code(
        code=answer.json()["code"], redirect_uri=REDIRECT_URI, code_verifier=request.code_verifier
    )
    assert await jcb.link_status(tokens, Saver()) == LinkStatus("active")
    page = await jcb.sync_statements(tokens, Saver(), None, count=10)
    assert page.has_more
    legacy = await gateways["amex"].legacy_fetch("user_good", "pass_good")
    assert legacy.cards
