"""A consent that ends: stored, shown, warned 14, 7 and 1 days ahead (once each), and
renewed in place, which records "repaired" and clears the warnings.

renkei is served for real with its sandbox issuers (SQLite and PostgreSQL). Time is a
controllable clock on both sides, never a sleep: the sandbox's control API moves the
issuer's clock, and the consent check (`check_consent_expiry`, run every minute by the
job runner) is called here with the moment it should believe it is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from backend.db.engine import make_engine, make_sessions
from backend.db.repository import SqlUnitOfWork
from backend.service.consent_expiry import run_consent_expiry_check
from backend.service.context import ServiceContext
from bot.backend_events import EVENTS_PATH
from renkei.demo import RENEWAL_ACCOUNT, RENEWAL_CONSENT_DAYS
from tests.e2e.conftest import Renkei
from tests.e2e.test_backend_rules import BIZ, JCB_GOLD, SHOP, switch

DAY = dt.timedelta(days=1)


class NoSecrets:
    """The check writes events only: it never opens a sealed value."""

    def encrypt(self, plaintext: str) -> bytes:
        raise AssertionError("the consent check seals nothing")

    def decrypt(self, ciphertext: bytes) -> str:
        raise AssertionError("the consent check opens nothing")


@pytest.fixture
async def check(renkei: Renkei) -> AsyncIterator[Any]:
    """Run the server's consent check as of a given moment, against its own database."""
    engine = make_engine(renkei.env["DATABASE_URL"])
    sessions = make_sessions(engine)

    async def at(when: dt.datetime) -> int:
        ctx = ServiceContext(
            uow=lambda: SqlUnitOfWork(sessions),
            gateways={},
            secrets=NoSecrets(),
            oauth_redirect_uri="",
            # The server's subscriber: its assistant hears the warnings as it hears the rest.
            webhook_urls=[renkei.base_url + EVENTS_PATH],
            clock=lambda: when,
        )
        return await run_consent_expiry_check(ctx, when)

    yield at
    await engine.dispose()


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


async def consent_events(
    renkei: Renkei, account_id: str, kind: str = "link.consent_expiring"
) -> list[dict[str, Any]]:
    """The account's events of one kind, oldest first."""
    return [e for e in reversed(await renkei.events(account_id)) if e["type"] == kind]


async def notices(renkei: Renkei, office_id: str, account_id: str) -> list[dict[str, Any]]:
    """The office's consent notices that name the account (the demo has one of its own)."""
    listed = await renkei.api.get(f"/offices/{office_id}/notices")
    assert listed.status_code == 200, listed.text
    return [
        n
        for n in listed.json()
        if n["kind"] == "consent_expiring" and account_id in n["account_ids"]
    ]


async def test_the_demo_has_a_consent_that_ends_within_days(renkei: Renkei) -> None:
    """A person trying renkei sees a consent end, warned of at once, without waiting."""
    office = await renkei.office(SHOP)
    account = await renkei.account(SHOP, RENEWAL_ACCOUNT)
    assert account["sync_method"] == "api" and account["status"] == "active", account
    ends = parse(account["link"]["consent_expires_at"])
    left = ends - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=RENEWAL_CONSENT_DAYS - 1) < left <= RENEWAL_CONSENT_DAYS * DAY
    assert account["link"]["consent_expiring"] is True
    [warned] = await consent_events(renkei, account["id"])
    assert warned["payload"]["warning_days"] == 7, warned
    [notice] = await notices(renkei, office["id"], account["id"])
    assert parse(notice["expires_at"]) == ends
    assert len(await renkei.statements(account["id"])) > 0  # linked for real: it synced


async def test_the_warning_timeline_and_a_renewal_in_place(renkei: Renkei, check: Any) -> None:
    await renkei.control(
        "amex", "/settings", {"consent_lifetime_days": 20, "expiring_notice_days": 14}
    )
    office = await renkei.office(SHOP)
    account = await renkei.account(SHOP, BIZ)
    await renkei.consent(await switch(renkei, account["id"]), cards=["amex-biz-1001"])
    linked = await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    # Stored from the issuer's token answer, and shown with the account.
    ends = parse(linked["link"]["consent_expires_at"])
    assert dt.timedelta(days=19) < ends - dt.datetime.now(dt.UTC) <= dt.timedelta(days=20)

    assert await check(ends - 15 * DAY) == 0
    assert await check(ends - 14 * DAY) == 1
    assert await check(ends - 13 * DAY) == 0  # each warning once
    assert await check(ends - 7 * DAY) == 1
    assert await check(ends - 7 * DAY) == 0
    assert await check(ends - DAY / 2) == 1
    assert await check(ends - DAY / 4) == 0
    warned = await consent_events(renkei, account["id"])
    assert [e["payload"]["warning_days"] for e in warned] == [14, 7, 1]
    assert [e["payload"]["days_left"] for e in warned] == [14, 7, 1]
    assert {e["payload"]["action"] for e in warned} == {"reauth"}
    assert parse(warned[0]["payload"]["expires_at"]) == ends
    [notice] = await notices(renkei, office["id"], account["id"])
    assert notice["account_ids"] == [account["id"]] and parse(notice["expires_at"]) == ends

    # The person renews in place, inside the issuer's window before the end.
    await renkei.control("amex", "/clock", {"advance_seconds": 7 * 86_400})
    renewal = await renkei.api.post(f"/accounts/{account['id']}/reauth")
    assert renewal.status_code == 200, renewal.text
    back = await renkei.consent(renewal.json()["authorization_url"], cards=["amex-biz-1001"])
    assert back.status_code == 200, back.text
    renewed = await renkei.wait_synced(account["id"], since=linked["last_synced_at"])
    assert renewed["status"] == "active", renewed
    new_end = parse(renewed["link"]["consent_expires_at"])
    assert new_end - ends == pytest.approx(7 * DAY, abs=dt.timedelta(minutes=5))
    [repaired] = await consent_events(renkei, account["id"], "link.repaired")
    assert repaired["payload"]["renewed"] is True
    assert repaired["payload"]["cleared_warning_days"] == 1
    assert await notices(renkei, office["id"], account["id"]) == []
    # The new consent starts with no warning sent: its own 14-day warning comes later.
    assert await check(new_end - 15 * DAY) == 0
    assert await check(new_end - 14 * DAY) == 1
    grants = [
        g
        for g in (await renkei.control_get("amex", "/grants"))["grants"]
        if "amex-biz-1001" in g["card_ids"]
    ]
    assert sorted(g["stopped_by"] or g["status"] for g in grants) == ["active", "renewed"]


async def test_a_consent_that_ended_is_repaired_by_reauthenticating(renkei: Renkei) -> None:
    await renkei.control("jcb", "/settings", {"consent_lifetime_days": 3})
    # A consent this short is warned of as soon as it is given.
    office = await renkei.office(SHOP)
    account = await renkei.account(SHOP, JCB_GOLD)
    await renkei.consent(await switch(renkei, account["id"]), user="user_good")
    linked = await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    assert linked["link"]["consent_expires_at"] is not None
    assert linked["link"]["consent_expiring"] is True
    [warned] = await consent_events(renkei, account["id"])
    assert warned["payload"]["warning_days"] == 7 and warned["payload"]["days_left"] == 3
    assert len(await notices(renkei, office["id"], account["id"])) == 1

    # The issuer's clock passes the end: it stops the grant and says why.
    await renkei.control("jcb", "/clock", {"advance_seconds": 3 * 86_400 + 60})
    for _ in range(100):  # the issuer's webhook arrives on its own
        ended = await renkei.get_account(account["id"])
        if ended["status"] == "needs_reauth":
            break
        await asyncio.sleep(0.1)
    assert ended["status"] == "needs_reauth", ended
    revoked = [e for e in await renkei.events(account["id"]) if e["type"] == "link.revoked"]
    assert revoked[0]["payload"]["reason"] == "expired"

    # The consent given now lasts the issuer's usual 90 days: nothing to warn of yet.
    await renkei.control("jcb", "/settings", {"consent_lifetime_days": 90})
    again = await renkei.api.post(f"/accounts/{account['id']}/reauth")
    assert again.status_code == 200, again.text
    await renkei.consent(again.json()["authorization_url"], user="user_good")
    fixed = await renkei.wait_synced(account["id"], since=linked["last_synced_at"])
    assert fixed["status"] == "active", fixed
    [repaired] = await consent_events(renkei, account["id"], "link.repaired")
    assert repaired["payload"]["renewed"] is False
    assert await notices(renkei, office["id"], account["id"]) == []
