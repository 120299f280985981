"""An issuer that fails for everyone: renkei says it is down, stops asking it for every
account, tells people there is nothing to do on their side, and asks no one to
re-authenticate; once it answers again it is healthy. Driven by the sandbox's faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Renkei, running_renkei
from tests.e2e.test_backend_rules import BIZ, GOLD, PLATINUM, SHOP, error_of, switch
from tests.e2e.test_flow_status import open_status

# Every path a sync asks of an issuer: API links (the token endpoint's refresh too) and
# legacy logins.
OUTAGE_PATHS = (
    "/oauth/token",
    "/api/v1/me",
    "/api/v1/transactions/sync",
    "/legacy/login",
    "/legacy/statements",
)
REAUTH_EVENTS = {"link.needs_reauth", "link.revoked"}


@pytest.fixture
async def outage_renkei(database: str, tmp_path: Path) -> AsyncIterator[Renkei]:
    """Each request to the issuer is tried twice, quickly: an outage plays out in seconds."""
    async with running_renkei(
        database, tmp_path / "data", issuer_max_retries=1, issuer_backoff=0.01
    ) as renkei:
        yield renkei


async def health(renkei: Renkei) -> dict[str, dict[str, Any]]:
    answer = await renkei.api.get("/issuers/health")
    assert answer.status_code == 200, answer.text
    return {h["issuer"]: h for h in answer.json()}


async def fail_for_everyone(renkei: Renkei) -> None:
    for path in OUTAGE_PATHS:
        await renkei.control("amex", "/faults", {"path": path, "kind": "500", "times": 1000})


async def issuer_requests_left(renkei: Renkei) -> int:
    """The faults count down with every request the issuer gets."""
    faults = (await renkei.control_get("amex", "/faults"))["faults"]
    return sum(int(f["times"]) for f in faults)


async def test_an_issuer_down_for_everyone_backs_off_and_sends_no_one_to_reauth(
    outage_renkei: Renkei,
) -> None:
    renkei = outage_renkei
    # Short-lived access tokens: every call refreshes, so the token endpoint fails too.
    await renkei.control("amex", "/settings", {"access_token_ttl": 30})
    linked = await renkei.account(SHOP, BIZ)
    await renkei.consent(await switch(renkei, linked["id"]), cards=["amex-biz-1001"])
    await renkei.wait_synced(linked["id"], since=linked["last_synced_at"])
    accounts = [linked, await renkei.account(SHOP, GOLD), await renkei.account(SHOP, PLATINUM)]
    assert (await health(renkei))["amex"]["state"] == "healthy"

    await fail_for_everyone(renkei)
    for account in accounts:
        answer = await renkei.sync_now(account["id"])
        assert answer.status_code == 503, answer.text
        assert error_of(answer)["code"] == "issuer_unavailable"
    states = await health(renkei)
    assert states["amex"]["state"] == "down", states
    assert states["amex"]["failure_streak"] == 3 and states["amex"]["next_probe_at"]
    assert states["jcb"]["state"] == "healthy"  # an Amex outage says nothing of JCB

    # Nobody is sent to re-authenticate for an outage: still linked, no re-auth notice.
    for account in accounts:
        current = await renkei.get_account(account["id"])
        assert current["status"] == "active", current
        assert current["last_error"] == "issuer_unavailable"
        events = await renkei.events(account["id"])
        types = {e["type"] for e in events}
        assert "sync.failed" in types and not REAUTH_EVENTS & types, types
    failed = [e for e in await renkei.events(accounts[-1]["id"]) if e["type"] == "sync.failed"]
    assert failed[0]["payload"]["issuer_state"] == "down"  # the third failure made it down
    assert (await renkei.get_account(linked["id"]))["link"]["status"] == "active"

    # Syncs nobody asked for back off: the issuer's webhook queues a sync of the linked
    # account, and it is skipped without one request to the down issuer.
    left = await issuer_requests_left(renkei)
    await renkei.control(
        "amex", "/webhooks", {"type": "statements.available", "card_ids": ["amex-biz-1001"]}
    )
    assert "done" in await renkei.jobs_settled(linked["id"])
    assert await issuer_requests_left(renkei) == left
    assert (await renkei.get_account(linked["id"]))["status"] == "active"

    # The status flow tells the person it is the issuer's outage, not theirs.
    chat = await open_status(renkei, "en")
    await chat.choose(f"pick:{linked['id']}")
    assert "Amex is failing for everyone right now" in chat.text(), chat.text()
    assert "nothing to do on your side" in chat.text()
    assert "reauth" not in chat.choices()
    await chat.choose("resync")  # a person's own re-sync still asks, and fails the same
    assert "Amex is failing for everyone right now" in chat.text(), chat.text()
    japanese = await open_status(renkei, "ja")
    await japanese.choose(f"pick:{accounts[1]['id']}")
    assert "アメックス側で障害" in japanese.text() and "再認証も不要" in japanese.text()

    # The issuer answers again: the next syncs go through and it is healthy.
    async with httpx.AsyncClient(timeout=30, base_url=renkei.base_url) as client:
        cleared = await client.delete("/sandbox/amex/control/faults", headers=renkei.sandbox_key)
        assert cleared.is_success
    for account in accounts:
        answer = await renkei.sync_now(account["id"])
        assert answer.status_code == 200 and answer.json()["status"] == "succeeded", answer.text
    recovered = (await health(renkei))["amex"]
    assert recovered["state"] == "healthy" and recovered["failure_streak"] == 0
    calm = await open_status(renkei, "en")
    await calm.choose(f"pick:{linked['id']}")
    assert "failing for everyone" not in calm.text()
