"""Signed webhooks both ways: issuer events into renkei, renkei's outbox out to subscribers."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backend.service.outbox import sign, verify
from tests.e2e.conftest import Renkei, running_renkei
from tests.e2e.test_backend_rules import BIZ, SHOP, stop_delete_and_link_again, switch
from tests.support.servers import serve_asgi


def issuer_secret(renkei: Renkei, issuer: str = "amex") -> str:
    """The key the mounted sandbox signs this issuer's events with."""
    path = Path(renkei.env["RENKEI_DATA_DIR"]) / f"sandbox-webhook-secret-{issuer}"
    return path.read_text().strip()


async def post_issuer_event(
    renkei: Renkei, body: dict[str, Any], *, secret: str, timestamp: int | None = None
) -> httpx.Response:
    raw = json.dumps(body).encode()
    header = sign(secret, timestamp or int(time.time()), raw)
    async with httpx.AsyncClient(timeout=30, base_url=renkei.base_url) as client:
        return await client.post(
            "/api/v1/issuer-webhooks/amex",
            content=raw,
            headers={"Issuer-Signature": header, "Content-Type": "application/json"},
        )


async def test_member_site_stop_reaches_renkei_as_a_signed_webhook(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, BIZ)
    await renkei.consent(await switch(renkei, account["id"]), cards=["amex-biz-1001"])
    await renkei.stop_link_on_member_site(account["card"]["masked_number"])
    for _ in range(100):
        current = await renkei.get_account(account["id"])
        if current["status"] == "needs_reauth":
            break
        await asyncio.sleep(0.1)
    assert current["status"] == "needs_reauth"
    assert current["link"]["status"] == "revoked"
    types = [e["type"] for e in await renkei.events(account["id"])]
    assert "link.revoked" in types


async def active_amex_grant(renkei: Renkei, card_id: str) -> str:
    grants = (await renkei.control_get("amex", "/grants"))["grants"]
    (grant,) = [g for g in grants if g["status"] == "active" and card_id in g["card_ids"]]
    return str(grant["grant_id"])


def revoked(grant_id: str, event_id: str) -> dict[str, Any]:
    """The issuer's ``link.revoked`` for the demo business card's grant."""
    return {
        "event_id": event_id,
        "type": "link.revoked",
        "created": int(time.time()),
        "issuer": "amex",
        "data": {
            "grant_subject": "user_good",
            "grant_id": grant_id,
            "card_ids": ["amex-biz-1001"],
        },
    }


async def test_a_late_revocation_of_an_earlier_grant_leaves_the_new_link_alone(
    renkei: Renkei,
) -> None:
    # R16: stopped on the member site, deleted, linked again at once; the stop's webhook
    # may still be on its way and names the old grant.
    account = await renkei.account(SHOP, BIZ)
    await renkei.consent(await switch(renkei, account["id"]), cards=["amex-biz-1001"])
    old_grant = await active_amex_grant(renkei, "amex-biz-1001")
    relinked_id = await stop_delete_and_link_again(renkei, account)
    new_grant = await active_amex_grant(renkei, "amex-biz-1001")

    secret = issuer_secret(renkei)
    late = await post_issuer_event(renkei, revoked(old_grant, "evt_late_stop"), secret=secret)
    assert late.status_code == 200 and late.json()["status"] == "processed"
    relinked = await renkei.get_account(relinked_id)
    assert relinked["link"]["status"] == "active"
    assert relinked["status"] != "needs_reauth"
    current = await post_issuer_event(renkei, revoked(new_grant, "evt_new_stop"), secret=secret)
    assert current.status_code == 200
    stopped = await renkei.get_account(relinked_id)
    assert stopped["link"]["status"] == "revoked"
    assert stopped["status"] == "needs_reauth"


async def test_a_link_revoked_while_a_sync_runs_stays_revoked(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, BIZ)
    await renkei.consent(await switch(renkei, account["id"]), cards=["amex-biz-1001"])
    await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    await renkei.jobs_settled(account["id"])  # the link's first sync is over
    grant = await active_amex_grant(renkei, "amex-biz-1001")
    await renkei.control(
        "amex",
        "/faults",
        {"path": "/api/v1/transactions/sync", "kind": "slow", "times": 1, "delay": 2},
    )
    sync = asyncio.create_task(renkei.api.post(f"/accounts/{account['id']}/sync"))
    for _ in range(600):
        if (await renkei.get_account(account["id"]))["status"] == "syncing":
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the sync never started")
    event = await post_issuer_event(
        renkei, revoked(grant, "evt_stop_mid_sync"), secret=issuer_secret(renkei)
    )
    assert event.status_code == 200 and event.json()["status"] == "processed"
    finished = await sync
    assert finished.status_code == 200 and finished.json()["status"] == "succeeded"
    # The page fetched before the stop is kept; the revocation is not undone by the sync.
    after = await renkei.get_account(account["id"])
    assert after["status"] == "needs_reauth"
    assert after["link"]["status"] == "revoked"


async def test_issuer_webhook_signature_staleness_and_replay(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, BIZ)
    await renkei.consent(await switch(renkei, account["id"]), cards=["amex-biz-1001"])
    await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    secret = issuer_secret(renkei)
    event = {
        "event_id": "evt_test_1",
        "type": "statements.available",
        "created": int(time.time()),
        "issuer": "amex",
        "data": {"grant_subject": "user_good", "card_ids": ["amex-biz-1001"]},
    }
    forged = await post_issuer_event(renkei, event, secret="not-the-secret")
    assert forged.status_code == 401
    stale = await post_issuer_event(renkei, event, secret=secret, timestamp=int(time.time()) - 600)
    assert stale.status_code == 401
    first = await post_issuer_event(renkei, event, secret=secret)
    assert first.status_code == 200 and first.json()["status"] == "processed"
    replay = await post_issuer_event(renkei, event, secret=secret)
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"


async def test_new_statements_at_the_issuer_are_synced_by_webhook(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, BIZ)
    await renkei.consent(await switch(renkei, account["id"]), cards=["amex-biz-1001"])
    synced = await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    before = len(await renkei.statements(account["id"]))
    await renkei.control("amex", "/cards/amex-biz-1001/statements", {"count": 45, "pending": 0})
    await renkei.wait_synced(account["id"], since=synced["last_synced_at"])
    after = await renkei.statements(account["id"])
    assert len(after) == before + 5
    assert all(r["status"] == "confirmed" for r in after)  # the pending ones replaced themselves


async def test_outbox_delivers_signed_events_once_each(database: str, tmp_path: Path) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    async def receive(request: Request) -> Response:
        received.append((dict(request.headers), await request.body()))
        return Response(status_code=204)

    receiver = Starlette(routes=[Route("/hook", receive, methods=["POST"])])
    with serve_asgi(receiver) as hook_url:
        async with running_renkei(
            database,
            tmp_path / "data",
            webhook_urls=f"{hook_url}/hook",
            webhook_secret="outbox-secret",
        ) as renkei:
            for _ in range(100):
                types = [json.loads(body)["type"] for _, body in received]
                if types.count("sync.completed") >= 7:
                    break
                await asyncio.sleep(0.1)
    assert types.count("sync.completed") >= 7, types  # one per demo account's first sync
    ids = [headers["renkei-event-id"] for headers, _ in received]
    assert len(ids) == len(set(ids))  # each event delivered once, each with its own id
    now = int(time.time())
    for headers, body in received:
        assert verify("outbox-secret", headers["renkei-signature"], body, now)
    assert renkei.base_url.startswith("http://127.0.0.1")


async def test_an_event_naming_another_issuer_is_refused(renkei: Renkei) -> None:
    event = {"event_id": "evt_x", "type": "link.revoked", "issuer": "jcb", "data": {}}
    refused = await post_issuer_event(renkei, event, secret=issuer_secret(renkei))
    assert refused.status_code == 400  # posted to the Amex path
