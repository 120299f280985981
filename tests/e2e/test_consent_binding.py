"""A consent completes only for the member who started it, in that member's browser.

The phishing scenario over real HTTP with the simulated issuers: a member of another
office starts a registration and sends its link to the demo owner, who consents on the
genuine issuer pages with her own card. Nothing may land in the sender's office, and the
owner's own office must still be able to link the card afterwards.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from renkei.demo import RENEWAL_LOGIN
from tests.e2e.conftest import Renkei
from tests.support.browser import Browser

SHOP = "山田商店"
BIZ = "アメックス ビジネス"
JCB_GOLD = "JCBゴールド"
MALLORY = "mallory@example.com"
# (issuer, the owner's card as the issuer's card page lists it, her account of it)
CARDS = {"amex": ("amex-biz-1001", BIZ), "jcb": ("", JCB_GOLD)}


class Member:
    """Someone with a renkei token of their own, and an office of their own."""

    def __init__(self, renkei: Renkei, email: str) -> None:
        self.token = renkei.cli("token", "create", email)
        self.api = httpx.AsyncClient(
            base_url=f"{renkei.base_url}/api/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        self.office_id = ""

    async def own_office(self, renkei: Renkei, name: str) -> str:
        created = await self.api.post("/offices", json={"name": name})
        assert created.status_code == 201, created.text
        self.office_id = created.json()["id"]
        for issuer in ("amex", "jcb"):
            released = await renkei.admin.post(
                f"/offices/{self.office_id}/rollouts", json={"issuer": issuer}
            )
            assert released.status_code == 201, released.text
        return self.office_id

    async def register(self, issuer: str) -> dict[str, Any]:
        started = await self.api.post(
            f"/offices/{self.office_id}/accounts",
            json={"sync_method": "api", "issuer": issuer, "name": f"{issuer} API"},
        )
        assert started.status_code == 201, started.text
        body: dict[str, Any] = started.json()
        return body


@pytest.fixture
async def mallory(renkei: Renkei) -> Any:
    member = Member(renkei, MALLORY)
    await member.own_office(renkei, "Mallory Trading")
    try:
        yield member
    finally:
        await member.api.aclose()


async def issuer_pages(
    browser: Browser, page: httpx.Response, issuer: str, *, user: str = "user_good"
) -> str:
    """Log in, agree, allow at the issuer; the URL of its "back to renkei" link."""
    assert page.status_code == 200, page.text
    await browser.press("ログイン", fill={"user_id": user, "password": "pass_good"})
    await browser.press("同意して次へ")
    card = CARDS[issuer][0]
    done = await browser.press("許可する", tick=[card] if card else [])
    assert done.status_code == 200, done.text
    return browser.link("に戻る")


def without(url: str, name: str, **replace: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != name] + list(replace.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


async def active_grants(renkei: Renkei, issuer: str) -> list[dict[str, Any]]:
    grants = (await renkei.control_get(issuer, "/grants"))["grants"]
    return [g for g in grants if g["status"] == "active"]


@pytest.mark.parametrize("issuer", ["amex", "jcb"])
async def test_a_forwarded_consent_link_lands_nowhere_and_locks_nobody_out(
    renkei: Renkei, mallory: Member, issuer: str
) -> None:
    start = await mallory.register(issuer)
    grants_before = await active_grants(renkei, issuer)

    # 1. The start link alone, forwarded: the owner's browser is asked for a code it
    #    was never shown, and a guess does not open it.
    victim = renkei.browser()
    try:
        page = await victim.open(start["authorization_url"])
        assert page.status_code == 200
        assert "確認コード" in page.text and "Confirmation code" in page.text
        assert "m•••@example.com" in page.text  # whose procedure this is, for the victim
        wrong = await victim.press("確認してカード会社へ進む", fill={"code": "AAAA-AAAA"})
        assert wrong.status_code == 400 and "確認コードが違います" in wrong.text
        assert "/oauth/authorize" not in str(wrong.url)
    finally:
        await victim.client.aclose()

    # 2. Mallory opens it in her own browser and forwards the issuer's URL instead.
    own = renkei.browser()
    try:
        bound = await own.client.post(
            f"{start['authorization_url']}/signed-in",
            headers={"Authorization": f"Bearer {mallory.token}"},
        )
        assert bound.status_code == 200, bound.text
        issuer_url = bound.json()["issuer_url"]
    finally:
        await own.client.aclose()

    # The owner consents in her own browser with her own card, on the genuine pages.
    victim = renkei.browser()
    try:
        back = await issuer_pages(victim, await victim.open(issuer_url), issuer)
        landed = await victim.open(back)
    finally:
        await victim.client.aclose()
    assert landed.status_code == 403
    assert "このブラウザで始められたものではありません" in landed.text
    assert "start the procedure from your own conversation" in landed.text

    # Nothing landed in Mallory's office, and the issuer holds no new grant.
    account = (await mallory.api.get(f"/accounts/{start['account_id']}")).json()
    assert account["card"] is None and account["link"] is None
    assert account["status"] == "needs_reauth"
    statements = (await mallory.api.get(f"/accounts/{start['account_id']}/statements")).json()
    assert statements["items"] == []
    assert await active_grants(renkei, issuer) == grants_before
    events = (await mallory.api.get("/events", params={"account_id": start["account_id"]})).json()
    failed = [e for e in events if e["type"] == "authorization.failed"]
    assert failed and failed[0]["payload"]["error_code"] == "not_started_here"

    # The owner's own office is not locked out: her account links the same card.
    own_account = await renkei.account(SHOP, CARDS[issuer][1])
    switched = await renkei.api.post(f"/accounts/{own_account['id']}/switch-to-api")
    assert switched.status_code == 200, switched.text
    card = CARDS[issuer][0]
    done = await renkei.consent(switched.json()["authorization_url"], cards=[card] if card else [])
    assert done.status_code == 200 and "連携が完了しました" in done.text, done.text
    assert (await renkei.get_account(own_account["id"]))["sync_method"] == "api"


async def test_the_one_time_code_opens_the_link_once_in_the_members_browser(
    renkei: Renkei, mallory: Member
) -> None:
    start = await mallory.register("amex")
    # Typed by the member herself (a link opened from Slack or the terminal).
    browser = renkei.browser()
    try:
        page = await browser.open(start["authorization_url"])
        login = await browser.press(
            "確認してカード会社へ進む", fill={"code": start["sign_in_code"].lower()}
        )
        assert login.status_code == 200 and "/oauth/authorize" in str(login.url)
    finally:
        await browser.client.aclose()
    # The code works once: the same link, forwarded afterwards, opens nothing.
    other = renkei.browser()
    try:
        page = await other.open(start["authorization_url"])
        assert page.status_code == 400 and "すでに使われています" in page.text
        assert "already used" in page.text
    finally:
        await other.client.aclose()


async def test_too_many_wrong_codes_end_the_link(renkei: Renkei, mallory: Member) -> None:
    start = await mallory.register("amex")
    browser = renkei.browser()
    try:
        await browser.open(start["authorization_url"])
        for _ in range(5):
            page = await browser.press("確認してカード会社へ進む", fill={"code": "ZZZZ-ZZZZ"})
        assert page.status_code == 400 and "何度も間違えた" in page.text
        # Not even the right code opens it now.
        page = await browser.open(start["authorization_url"])
        assert "確認してカード会社へ進む" not in page.text
    finally:
        await browser.client.aclose()


async def test_another_member_cannot_open_the_link_with_their_own_token(
    renkei: Renkei, mallory: Member
) -> None:
    start = await mallory.register("amex")
    async with httpx.AsyncClient(timeout=30) as client:
        refused = await client.post(
            f"{start['authorization_url']}/signed-in",
            headers=renkei.api.headers,  # the owner's own token, not Mallory's
        )
    assert refused.status_code == 404
    assert "set-cookie" not in refused.headers


async def test_a_used_callback_replayed_changes_nothing(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, BIZ)
    switched = await renkei.api.post(f"/accounts/{account['id']}/switch-to-api")
    start_url = switched.json()["authorization_url"]
    browser = renkei.browser()
    try:
        back = await issuer_pages(browser, await renkei.open_start(browser, start_url), "amex")
        first = await browser.open(back)
        assert first.status_code == 200 and "連携が完了しました" in first.text
        again = await browser.open(back)  # the same browser
    finally:
        await browser.client.aclose()
    assert again.status_code == 400 and "すでに完了しています" in again.text
    async with httpx.AsyncClient(timeout=30) as stranger:  # a copy of the URL elsewhere
        copied = await stranger.get(back, headers={"Accept": "application/json"})
    assert copied.status_code == 400
    assert copied.json()["error"]["details"]["reason"] == "replayed"
    events = await renkei.events(account["id"])
    assert [e["type"] for e in events].count("link.created") == 1


@pytest.mark.parametrize(
    "iss", [None, "jcb", "http://evil.example/sandbox/amex"], ids=["missing", "mix-up", "other"]
)
async def test_a_callback_without_the_issuer_it_started_with_is_refused(
    renkei: Renkei, iss: str | None
) -> None:
    """RFC 9207 / RFC 9700 §4.4: state from an Amex start, the response of someone else."""
    account = await renkei.account(SHOP, BIZ)
    switched = await renkei.api.post(f"/accounts/{account['id']}/switch-to-api")
    browser = renkei.browser()
    try:
        start_url = switched.json()["authorization_url"]
        back = await issuer_pages(browser, await renkei.open_start(browser, start_url), "amex")
        assert dict(parse_qsl(urlsplit(back).query))["iss"] == f"{renkei.base_url}/sandbox/amex"
        if iss is None:
            forged = without(back, "iss")
        elif iss == "jcb":
            forged = without(back, "iss", iss=f"{renkei.base_url}/sandbox/jcb")
        else:
            forged = without(back, "iss", iss=iss)
        refused = await browser.open(forged)
    finally:
        await browser.client.aclose()
    assert refused.status_code == 400
    assert "手続きを始めたカード会社のもの" in refused.text and "issuer" in refused.text
    after = await renkei.get_account(account["id"])
    assert after["sync_method"] == "legacy" and after["link"] is None
    # No grant but the one the demo starts with (its own account's).
    assert [g["subject"] for g in await active_grants(renkei, "amex")] == [RENEWAL_LOGIN]


async def test_a_refusal_never_names_another_offices_account(
    renkei: Renkei, mallory: Member
) -> None:
    """R6 refuses a MyJCB ID linked elsewhere, without saying where."""
    shop_jcb = await renkei.account(SHOP, JCB_GOLD)
    switched = await renkei.api.post(f"/accounts/{shop_jcb['id']}/switch-to-api")
    done = await renkei.consent(switched.json()["authorization_url"])
    assert "連携が完了しました" in done.text
    # Mallory, in her own office and her own browser, consents with the same MyJCB ID.
    start = await mallory.register("jcb")
    browser = renkei.browser()
    try:
        page = await renkei.open_start(browser, start["authorization_url"], token=mallory.token)
        back = await issuer_pages(browser, page, "jcb")
        refused = await browser.client.get(back, headers={"Accept": "application/json"})
    finally:
        await browser.client.aclose()
    body = refused.json()
    assert body["error_code"] == "myjcb_id_already_linked", body
    shop = await renkei.office(SHOP)
    assert shop["id"] not in refused.text and shop_jcb["id"] not in refused.text
    events = (await mallory.api.get("/events", params={"account_id": start["account_id"]})).json()
    assert events and shop["id"] not in str(events) and shop_jcb["id"] not in str(events)
