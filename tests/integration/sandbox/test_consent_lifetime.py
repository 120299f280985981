"""Consents end, as real issuers' do: warned ahead, stopped at the end, renewed in place.

Time is the sandbox clock, advanced by the control API: nothing here sleeps for a day.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from sandbox import ClientRegistration, create_app
from sandbox.state import DEFAULT_CONSENT_LIFETIME_DAYS
from tests.integration.sandbox.conftest import Receiver
from tests.integration.sandbox.helpers import (
    AUTH,
    CLIENT_ID,
    CLIENT_SECRET,
    CONTROL_KEY,
    KEY,
    REDIRECT_URI,
    link_by_control,
)
from tests.integration.sandbox.test_webhooks import wait_for_calls

DAY = 86_400
SHORT = {"consent_lifetime_days": 1, "expiring_notice_days": 0}


def events(found: Receiver) -> list[dict[str, Any]]:
    return [json.loads(body) for _, body in found.calls]


async def advance(client: httpx.AsyncClient, issuer: str, seconds: float) -> dict[str, Any]:
    moved = await client.post(
        f"/sandbox/{issuer}/control/clock", headers=KEY, json={"advance_seconds": seconds}
    )
    assert moved.status_code == 200, moved.text
    body: dict[str, Any] = moved.json()
    return body


async def refresh(client: httpx.AsyncClient, issuer: str, token: str) -> httpx.Response:
    return await client.post(
        f"/sandbox/{issuer}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": token},
        auth=AUTH,
    )


async def grant(client: httpx.AsyncClient, issuer: str, grant_id: str) -> dict[str, Any]:
    listed = (await client.get(f"/sandbox/{issuer}/control/grants", headers=KEY)).json()
    found: dict[str, Any] = next(g for g in listed["grants"] if g["grant_id"] == grant_id)
    return found


@pytest.mark.parametrize("issuer", ["amex", "jcb"])
async def test_default_lifetimes_are_announced_with_the_tokens(
    client: httpx.AsyncClient, issuer: str
) -> None:
    cards = ["amex-biz-1001"] if issuer == "amex" else None
    link = await link_by_control(client, issuer, card_ids=cards)
    made = await grant(client, issuer, link.grant_id)
    lifetime = DEFAULT_CONSENT_LIFETIME_DAYS[issuer] * DAY
    assert made["expires_at"] == pytest.approx(made["created_at"] + lifetime)
    answer = await refresh(client, issuer, link.refresh_token)
    assert answer.json()["consent_expires_at"] == int(made["expires_at"])
    settings = (await client.get(f"/sandbox/{issuer}/control/settings", headers=KEY)).json()
    assert settings["issuers"]["amex"]["consent_lifetime_days"] == 365
    assert settings["issuers"]["jcb"]["consent_lifetime_days"] == 90


async def test_expiring_is_sent_once_ahead_and_the_grant_stops_at_the_end(
    client: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    found, _ = receiver
    settings = {"consent_lifetime_days": 20, "expiring_notice_days": 14}
    await client.post("/sandbox/jcb/control/settings", headers=KEY, json=settings)
    link = await link_by_control(client, "jcb")
    expires_at = (await grant(client, "jcb", link.grant_id))["expires_at"]

    assert (await advance(client, "jcb", 5 * DAY))["expiring"] == 0
    assert (await advance(client, "jcb", 1 * DAY + 1))["expiring"] == 1
    await wait_for_calls(found, 1)
    [warning] = events(found)
    assert warning["type"] == "link.expiring"
    assert warning["data"]["grant_id"] == link.grant_id
    assert warning["data"]["expires_at"] == int(expires_at)
    # Once only, however often the clock moves or requests arrive.
    assert (await advance(client, "jcb", 7 * DAY))["expiring"] == 0
    rotated = await refresh(client, "jcb", link.refresh_token)
    assert rotated.status_code == 200, rotated.text

    assert (await advance(client, "jcb", 7 * DAY))["expired"] == 1
    await wait_for_calls(found, 2)
    ended = events(found)[1]
    assert ended["type"] == "link.revoked"
    assert ended["data"] == {**ended["data"], "grant_id": link.grant_id, "reason": "expired"}
    stopped = await grant(client, "jcb", link.grant_id)
    assert stopped["status"] == "stopped" and stopped["stopped_by"] == "expired"
    dead = await refresh(client, "jcb", rotated.json()["refresh_token"])
    assert dead.json()["error"] == "invalid_grant"


async def test_the_end_is_noticed_by_the_next_request_as_time_passes() -> None:
    app = create_app(
        clients=[ClientRegistration(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])],
        control_key=CONTROL_KEY,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as http:
        await http.post("/sandbox/amex/control/settings", headers=KEY, json=SHORT)
        link = await link_by_control(http, "amex", card_ids=["amex-gold-2001"])
        # Time passes with nobody calling the control API (here: the clock moves
        # under the issuer's feet); the next request of any kind finds the end.
        app.state.sandbox.clock.advance(DAY + 60)
        me = await http.get("/sandbox/amex/api/v1/me", headers=link.bearer)
        assert me.status_code == 401
        assert me.json()["error_description"] == "link stopped"
        stopped = await grant(http, "amex", link.grant_id)
        assert stopped["stopped_by"] == "expired"


async def test_a_consent_near_its_end_is_renewed_in_place(
    client: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    found, _ = receiver
    await client.post(
        "/sandbox/amex/control/settings",
        headers=KEY,
        json={"consent_lifetime_days": 30, "expiring_notice_days": 14},
    )
    old = await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
    # R5: far from its end, the card is taken; the existing link must be stopped first.
    refused = await client.post(
        "/sandbox/amex/control/authorize",
        headers=KEY,
        json={
            "client_id": "renkei-test",
            "redirect_uri": "http://127.0.0.1:8000/api/v1/oauth/callback",
            "user_id": "user_good",
            "card_ids": ["amex-biz-1001"],
            "state": "s",
            "code_challenge": "a" * 43,
        },
    )
    assert refused.json()["rule"] == "R5"

    await advance(client, "amex", 20 * DAY)
    await wait_for_calls(found, 1)
    new = await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
    renewed = await grant(client, "amex", new.grant_id)
    assert renewed["status"] == "active"
    assert renewed["expires_at"] == pytest.approx(renewed["created_at"] + 30 * DAY)
    replaced = await grant(client, "amex", old.grant_id)
    assert replaced["status"] == "stopped" and replaced["stopped_by"] == "renewed"
    # The client asked for the renewal itself: no `link.revoked` for the old grant.
    assert [e["type"] for e in events(found)] == ["link.expiring"]
    me = await client.get("/sandbox/amex/api/v1/me", headers=new.bearer)
    assert me.json()["cards"][0]["card_id"] == "amex-biz-1001"


class TestRefreshPolicy:
    """Strict rotation (reuse revokes the family) or rotation with a grace period."""

    async def test_strict_reuse_revokes_the_family(self, client: httpx.AsyncClient) -> None:
        link = await link_by_control(client, "jcb")
        first = await refresh(client, "jcb", link.refresh_token)
        reuse = await refresh(client, "jcb", link.refresh_token)
        assert reuse.json()["error"] == "invalid_grant"
        later = await refresh(client, "jcb", first.json()["refresh_token"])
        assert later.json()["error"] == "invalid_grant"  # the whole chain is gone

    async def test_grace_lets_a_lost_answer_be_retried_once(
        self, client: httpx.AsyncClient
    ) -> None:
        await client.post(
            "/sandbox/jcb/control/settings",
            headers=KEY,
            json={"refresh_policy": "grace", "refresh_grace_seconds": 30},
        )
        link = await link_by_control(client, "jcb")
        lost = (await refresh(client, "jcb", link.refresh_token)).json()
        retried = await refresh(client, "jcb", link.refresh_token)
        assert retried.status_code == 200, retried.text
        # The answer that was lost is retired: one chain stays alive.
        assert (await refresh(client, "jcb", lost["refresh_token"])).json()["error"] == (
            "invalid_grant"
        )
        gone = await client.get(
            "/sandbox/jcb/api/v1/me", headers={"Authorization": f"Bearer {lost['access_token']}"}
        )
        assert gone.status_code == 401
        onward = await refresh(client, "jcb", retried.json()["refresh_token"])
        assert onward.status_code == 200, onward.text

    async def test_grace_ends_and_an_old_token_after_progress_is_a_thiefs(
        self, client: httpx.AsyncClient
    ) -> None:
        await client.post(
            "/sandbox/amex/control/settings",
            headers=KEY,
            json={"refresh_policy": "grace", "refresh_grace_seconds": 30},
        )
        link = await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
        await refresh(client, "amex", link.refresh_token)
        await advance(client, "amex", 31)
        late = await refresh(client, "amex", link.refresh_token)
        assert late.json()["error"] == "invalid_grant"

        other = await link_by_control(client, "amex", card_ids=["amex-gold-2001"])
        step = (await refresh(client, "amex", other.refresh_token)).json()
        onward = (await refresh(client, "amex", step["refresh_token"])).json()
        stolen = await refresh(client, "amex", other.refresh_token)
        assert stolen.json()["error"] == "invalid_grant"
        # Reuse after the chain moved on revokes it all (RFC 9700 §4.14.2).
        assert (await refresh(client, "amex", onward["refresh_token"])).json()["error"] == (
            "invalid_grant"
        )
