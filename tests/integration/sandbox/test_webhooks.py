"""Webhooks are signed with HMAC-SHA256 over "<t>.<body>", retried, and keep their event id."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox import ClientRegistration, create_app
from tests.integration.sandbox.conftest import Receiver
from tests.integration.sandbox.helpers import (
    CLIENT_ID,
    KEY,
    REDIRECT_URI,
    WEBHOOK_SECRET,
    link_by_control,
)
from tests.support.servers import serve_asgi


def verify(headers: dict[str, str], body: bytes, secret: str = WEBHOOK_SECRET) -> bool:
    """What a receiver does: recompute the HMAC and compare in constant time."""
    parts = dict(item.split("=", 1) for item in headers["issuer-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    fresh = abs(time.time() - int(parts["t"])) < 300
    return fresh and hmac.compare_digest(expected.hexdigest(), parts["v1"])


async def wait_for_calls(found: Receiver, count: int) -> None:
    for _ in range(100):
        if len(found.calls) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} webhook calls, got {len(found.calls)}")


async def test_fired_webhook_is_signed_and_verifiable(
    client: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    found, _ = receiver
    linked = await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
    fired = await client.post(
        "/sandbox/amex/control/webhooks",
        headers=KEY,
        json={"type": "link.expiring", "user_id": "user_good"},
    )
    [result] = fired.json()["events"]
    assert result["delivery"]["delivered"] is True
    headers, body = found.calls[-1]
    assert verify(headers, body)
    assert not verify(headers, body.replace(b"amex", b"jcb_"))  # tampering is detected
    event = json.loads(body)
    assert event["event_id"] == result["event"]["event_id"]
    assert event["type"] == "link.expiring" and event["issuer"] == "amex"
    assert event["data"]["grant_subject"] == "user_good"
    assert event["data"]["card_ids"] == ["amex-biz-1001"]
    assert event["data"]["grant_id"] == linked.grant_id
    assert isinstance(event["data"]["expires_at"], int)


async def test_failed_deliveries_are_retried_with_the_same_event_id(
    client: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    found, _ = receiver
    await link_by_control(client, "jcb")
    found.fail_next = 2
    fired = await client.post(
        "/sandbox/jcb/control/webhooks", headers=KEY, json={"type": "statements.available"}
    )
    delivery = fired.json()["events"][0]["delivery"]
    assert (delivery["attempts"], delivery["delivered"]) == (3, True)
    ids = {json.loads(body)["event_id"] for _, body in found.calls}
    assert len(found.calls) == 3 and len(ids) == 1
    assert all(verify(headers, body) for headers, body in found.calls)


async def test_gives_up_after_three_tries(
    client: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    found, _ = receiver
    await link_by_control(client, "jcb")
    found.fail_next = 5
    fired = await client.post(
        "/sandbox/jcb/control/webhooks", headers=KEY, json={"type": "statements.available"}
    )
    delivery = fired.json()["events"][0]["delivery"]
    assert (delivery["attempts"], delivery["delivered"], delivery["last_status"]) == (3, False, 503)


async def test_stopping_a_link_and_new_statements_send_events_by_themselves(
    client: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    found, _ = receiver
    linked = await link_by_control(client, "amex", card_ids=["amex-gold-2001"])
    await client.post(
        "/sandbox/amex/control/cards/amex-gold-2001/statements",
        headers=KEY,
        json={"count": 45},
    )
    await wait_for_calls(found, 1)
    await client.post(f"/sandbox/amex/control/grants/{linked.grant_id}/stop", headers=KEY)
    await wait_for_calls(found, 2)
    events = [json.loads(body) for _, body in found.calls]
    assert [event["type"] for event in events] == ["statements.available", "link.revoked"]
    assert all(event["data"]["card_ids"] == ["amex-gold-2001"] for event in events)


async def test_jcb_statement_events_wait_for_the_confirmation_delay(
    client: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    found, _ = receiver
    await link_by_control(client, "jcb")
    await client.post("/sandbox/jcb/control/cards/jcb-gold-4002/confirm", headers=KEY)
    await asyncio.sleep(0.3)
    assert found.calls == []
    clock = await client.post(
        "/sandbox/jcb/control/clock", headers=KEY, json={"advance_seconds": 3600}
    )
    assert clock.json()["released"] == 1
    await wait_for_calls(found, 1)
    assert json.loads(found.calls[0][1])["data"]["card_ids"] == ["jcb-gold-4002"]


async def test_in_process_delivery_through_an_injected_transport() -> None:
    got: list[bytes] = []

    async def hook(request: Request) -> Response:
        got.append(await request.body())
        return Response(status_code=204)

    target = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    app = create_app(
        clients=[
            ClientRegistration(
                client_id=CLIENT_ID,
                client_secret="s",
                redirect_uris=[REDIRECT_URI],
                webhook_url="http://renkei.internal/hook",
                webhook_secret=WEBHOOK_SECRET,
            )
        ],
        webhook_transport=httpx.ASGITransport(app=target),
    )
    with serve_asgi(app) as url:
        async with httpx.AsyncClient(timeout=30, base_url=url) as http:
            await link_by_control(http, "amex", card_ids=["amex-biz-1001"], auth=(CLIENT_ID, "s"))
            fired = await http.post(
                "/sandbox/amex/control/webhooks", json={"type": "statements.available"}
            )
    assert fired.json()["events"][0]["delivery"]["delivered"] is True
    assert json.loads(got[0])["type"] == "statements.available"


async def test_each_issuer_signs_with_its_own_key() -> None:
    got: list[tuple[str, dict[str, str], bytes]] = []

    async def hook(request: Request) -> Response:
        got.append((request.path_params["issuer"], dict(request.headers), await request.body()))
        return Response(status_code=204)

    target = Starlette(routes=[Route("/hook/{issuer}", hook, methods=["POST"])])
    keys = {"amex": "amex-only-key", "jcb": "jcb-only-key"}
    app = create_app(
        clients=[
            ClientRegistration(
                client_id=CLIENT_ID,
                client_secret="s",
                redirect_uris=[REDIRECT_URI],
                webhook_url="http://renkei.internal/hook/{issuer}",
                webhook_secrets=keys,
            )
        ],
        webhook_transport=httpx.ASGITransport(app=target),
    )
    with serve_asgi(app) as url:
        async with httpx.AsyncClient(timeout=30, base_url=url) as http:
            for issuer, cards in (("amex", ["amex-biz-1001"]), ("jcb", [])):
                await link_by_control(http, issuer, card_ids=cards, auth=(CLIENT_ID, "s"))
                fired = await http.post(
                    f"/sandbox/{issuer}/control/webhooks", json={"type": "statements.available"}
                )
                assert fired.json()["events"][0]["delivery"]["delivered"] is True
    assert sorted(issuer for issuer, _, _ in got) == ["amex", "jcb"]
    for issuer, headers, body in got:
        other = "jcb" if issuer == "amex" else "amex"
        assert verify(headers, body, keys[issuer])
        assert not verify(headers, body, keys[other])
