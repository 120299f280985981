"""Every rule of domain.md shown over HTTP against the simulated issuers (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx

from tests.e2e.conftest import Renkei

SHOP = "山田商店"
CONSULTING = "山田コンサルティング"
BIZ = "アメックス ビジネス"
GOLD = "アメックス ビジネス・ゴールド"
PLATINUM = "アメックス ビジネス・プラチナ"
GREEN = "アメックス グリーン (個人)"
JCB_GOLD = "JCBゴールド"
JCB_UPGRADED = "JCB一般カード"


def error_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


async def switch(renkei: Renkei, account_id: str) -> str:
    response = await renkei.api.post(f"/accounts/{account_id}/switch-to-api")
    assert response.status_code == 200, response.text
    url: str = response.json()["authorization_url"]
    return url


def natural_keys(rows: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    return Counter((r["card_id"], r["use_date"], r["amount_jpy"], r["merchant"]) for r in rows)


async def test_health_and_fixed_contracts(renkei: Renkei) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await client.get(f"{renkei.base_url}/healthz")).status_code == 200
    offices = (await renkei.api.get("/offices")).json()
    assert {o["name"] for o in offices} == {SHOP, CONSULTING}
    assert all({"id", "name"} <= o.keys() for o in offices)
    shop = await renkei.office(SHOP)
    accounts = (await renkei.api.get(f"/offices/{shop['id']}/accounts")).json()
    assert accounts and all(
        {"id", "name", "issuer", "sync_method", "status"} <= a.keys() for a in accounts
    )
    text = str(accounts)
    assert "pass_good" not in text and "legacy_password" not in text  # no secret in answers


async def test_every_call_needs_a_token_and_stays_in_the_callers_offices(renkei: Renkei) -> None:
    async with httpx.AsyncClient(timeout=30, base_url=f"{renkei.base_url}/api/v1") as anonymous:
        response = await anonymous.get("/offices")
        assert response.status_code == 401
        assert error_of(response)["code"] == "unauthenticated"
    token = renkei.cli("token", "create", "stranger@example.com")
    async with httpx.AsyncClient(
        timeout=30,
        base_url=f"{renkei.base_url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
    ) as stranger:
        assert (await stranger.get("/offices")).json() == []
        shop = await renkei.office(SHOP)
        assert (await stranger.get(f"/offices/{shop['id']}/accounts")).status_code == 404
        account = await renkei.account(SHOP, BIZ)
        assert (await stranger.post(f"/accounts/{account['id']}/switch-to-api")).status_code == 404


async def test_read_only_member_cannot_switch(renkei: Renkei) -> None:
    shop = await renkei.office(SHOP)
    token = await renkei.join(shop["id"], "clerk@example.com", "read_only")
    account = await renkei.account(SHOP, BIZ)
    async with httpx.AsyncClient(
        timeout=30,
        base_url=f"{renkei.base_url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
    ) as clerk:
        assert (await clerk.get(f"/accounts/{account['id']}")).status_code == 200
        refused = await clerk.post(f"/accounts/{account['id']}/switch-to-api")
        assert refused.status_code == 403
        assert error_of(refused)["code"] == "forbidden"


async def test_r12_r2_switch_in_place_keeps_history_without_duplicates(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, BIZ)
    before = await renkei.statements(account["id"])
    assert before and all(r["source"] == "legacy" for r in before)
    callback = await renkei.consent(await switch(renkei, account["id"]), cards=["amex-biz-1001"])
    assert callback.status_code == 200, callback.text
    after_switch = await renkei.get_account(account["id"])
    assert after_switch["sync_method"] == "api"
    assert after_switch["has_legacy_credentials"] is False  # R2
    synced = await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    assert synced["status"] == "active" and synced["id"] == account["id"]  # in place
    rows = await renkei.statements(account["id"])
    assert len(rows) >= len(before)
    assert max(natural_keys(rows).values()) == 1  # nothing doubled
    assert all(r["issuer_txn_id"] for r in rows)  # every legacy line matched to the API's
    assert {r["id"] for r in before} <= {r["id"] for r in rows}  # history kept
    offices = (await renkei.api.get("/offices")).json()
    all_accounts = [
        a for o in offices for a in (await renkei.api.get(f"/offices/{o['id']}/accounts")).json()
    ]
    assert (
        sum(a["card"]["masked_number"] == account["card"]["masked_number"] for a in all_accounts)
        == 1
    )


async def test_r3_r4_switch_refused_until_released_then_notice_shows(renkei: Renkei) -> None:
    account = await renkei.account(CONSULTING, GOLD)
    refused = await renkei.api.post(f"/accounts/{account['id']}/switch-to-api")
    assert refused.status_code == 409
    assert error_of(refused)["code"] == "api_not_released"
    consulting = await renkei.office(CONSULTING)
    assert (await renkei.api.get(f"/offices/{consulting['id']}/notices")).json() == []
    # only the operator releases API linking (R3)
    denied = await renkei.api.post(f"/offices/{consulting['id']}/rollouts", json={"issuer": "amex"})
    assert denied.status_code == 403
    released = await renkei.admin.post(
        f"/offices/{consulting['id']}/rollouts", json={"issuer": "amex"}
    )
    assert released.status_code == 201, released.text
    notices = (await renkei.api.get(f"/offices/{consulting['id']}/notices")).json()
    assert [n["issuer"] for n in notices] == ["amex"]
    assert account["id"] in notices[0]["account_ids"]
    assert (await renkei.api.post(f"/accounts/{account['id']}/switch-to-api")).status_code == 200


async def test_r1_personal_card_cannot_be_api_linked(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, GREEN)
    refused = await renkei.api.post(f"/accounts/{account['id']}/switch-to-api")
    assert refused.status_code == 409
    assert error_of(refused)["code"] == "card_not_eligible"
    assert error_of(refused)["rule"] == "R1"


async def test_r5_r14_one_amex_card_one_link_across_offices(renkei: Renkei) -> None:
    shop_gold = await renkei.account(SHOP, GOLD)
    consulting_gold = await renkei.account(CONSULTING, GOLD)
    consulting = await renkei.office(CONSULTING)
    await renkei.admin.post(f"/offices/{consulting['id']}/rollouts", json={"issuer": "amex"})
    uses = await renkei.api.get(
        f"/offices/{consulting['id']}/cards/{consulting_gold['card']['id']}/uses"
    )
    assert uses.status_code == 200, uses.text
    assert len(uses.json()["uses"]) == 2  # R14: the card is synced in two offices
    callback = await renkei.consent(await switch(renkei, shop_gold["id"]), cards=["amex-gold-2001"])
    assert callback.status_code == 200
    assert (await renkei.get_account(shop_gold["id"]))["sync_method"] == "api"
    refused = await renkei.api.post(f"/accounts/{consulting_gold['id']}/switch-to-api")
    assert refused.status_code == 409
    error = error_of(refused)
    assert error["code"] == "card_already_linked" and error["rule"] == "R5"
    assert error["details"]["office_name"] == SHOP  # the owner belongs to both offices
    uses = (
        await renkei.api.get(
            f"/offices/{consulting['id']}/cards/{consulting_gold['card']['id']}/uses"
        )
    ).json()["uses"]
    assert sorted(u["api_linked"] for u in uses) == [False, True]


async def stop_delete_and_link_again(renkei: Renkei, account: dict[str, Any]) -> str:
    """R16: the business card's link stopped on the member site, its account deleted, and
    the card linked at once to a new API account of the shop; answers the new account's id."""
    await renkei.stop_link_on_member_site(account["card"]["masked_number"])
    deleted = await renkei.api.delete(f"/accounts/{account['id']}")
    assert deleted.status_code == 200, deleted.text
    shop = await renkei.office(SHOP)
    created = await renkei.api.post(
        f"/offices/{shop['id']}/accounts",
        json={"sync_method": "api", "issuer": "amex", "name": "ビジネス API"},
    )
    assert created.status_code == 201, created.text
    callback = await renkei.consent(created.json()["authorization_url"], cards=["amex-biz-1001"])
    assert callback.status_code == 200
    return str(created.json()["account_id"])


async def test_r10_r16_amex_api_account_deleted_only_after_stop_on_member_site(
    renkei: Renkei,
) -> None:
    account = await renkei.account(SHOP, BIZ)
    await renkei.consent(await switch(renkei, account["id"]), cards=["amex-biz-1001"])
    refused = await renkei.api.delete(f"/accounts/{account['id']}")
    assert refused.status_code == 409
    assert error_of(refused)["code"] == "revoke_at_issuer_first"
    assert (await renkei.get_account(account["id"]))["status"] != "deleted"
    # R16: after the stop the card can be API-linked again, to another account.
    relinked = await renkei.get_account(await stop_delete_and_link_again(renkei, account))
    assert relinked["status"] in ("active", "syncing")
    assert relinked["card"]["masked_number"] == account["card"]["masked_number"]


async def test_r10_tokens_that_died_do_not_free_the_card(renkei: Renkei) -> None:
    """A link whose tokens stopped working may still hold the card at Amex: no delete yet."""
    account = await renkei.account(SHOP, BIZ)
    await renkei.consent(await switch(renkei, account["id"]), cards=["amex-biz-1001"])
    await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    grants = (await renkei.control_get("amex", "/grants"))["grants"]
    grant = next(g for g in grants if "amex-biz-1001" in g["card_ids"] and g["status"] == "active")
    await renkei.control("amex", f"/grants/{grant['grant_id']}/expire-tokens")
    synced = await renkei.sync_now(account["id"])
    assert synced.json()["error_code"] == "reauth_required", synced.text
    assert (await renkei.get_account(account["id"]))["status"] == "needs_reauth"
    refused = await renkei.api.delete(f"/accounts/{account['id']}")
    assert refused.status_code == 409
    assert error_of(refused)["code"] == "revoke_at_issuer_first"
    archived = await renkei.api.post(f"/accounts/{account['id']}/archive")
    assert archived.status_code == 409
    await renkei.stop_link_on_member_site(account["card"]["masked_number"])
    assert (await renkei.api.delete(f"/accounts/{account['id']}")).status_code == 200


async def test_r13_amex_card_page_takes_exactly_one_card(renkei: Renkei) -> None:
    shop = await renkei.office(SHOP)
    created = await renkei.api.post(
        f"/offices/{shop['id']}/accounts",
        json={"sync_method": "api", "issuer": "amex", "name": "two cards"},
    )
    browser = renkei.browser()
    try:
        await renkei.open_start(browser, created.json()["authorization_url"])
        await browser.press("ログイン", fill={"user_id": "user_good", "password": "pass_good"})
        await browser.press("同意して次へ")
        page = await browser.press("許可する", tick=["amex-biz-1001", "amex-plat-3001"])
        assert page.status_code == 400
    finally:
        await browser.client.aclose()
    account = await renkei.get_account(created.json()["account_id"])
    assert account["status"] == "needs_reauth" and account["link"] is None


async def test_r15_supplementary_card_needs_registration_and_its_own_account(
    renkei: Renkei,
) -> None:
    shop = await renkei.office(SHOP)
    basic = await renkei.account(SHOP, PLATINUM)
    basic_rows = await renkei.statements(basic["id"])
    assert basic_rows and {r["card_id"] for r in basic_rows} == {basic["card"]["id"]}  # R15
    cards = (await renkei.api.get(f"/offices/{shop['id']}/cards")).json()
    supplementary = next(c for c in cards if c["basic_card_id"] == basic["card"]["id"])
    assert supplementary["role"] == "supplementary"
    created = await renkei.api.post(
        f"/offices/{shop['id']}/accounts",
        json={
            "sync_method": "api",
            "issuer": "amex",
            "name": "プラチナ 追加カード",
            "card_id": supplementary["id"],
        },
    )
    assert created.status_code == 201, created.text
    account_id = created.json()["account_id"]
    # Not registered to the online-service ID: the consent page does not list it, so the
    # person can only allow the basic card, which is not this account's card.
    outcome = await renkei.consent(created.json()["authorization_url"], cards=["amex-plat-3001"])
    assert outcome.status_code == 200
    failures = [e for e in await renkei.events(account_id) if e["type"] == "authorization.failed"]
    assert failures[0]["payload"]["error_code"] == "supplementary_not_registered"
    # Amex keeps the refused permission, holding the basic card: the page says to stop it.
    assert failures[0]["payload"]["stop_at_member_site"] is True
    assert "停止する" in outcome.text
    assert (await renkei.get_account(account_id))["link"] is None
    # Registered on the Amex side (カードの追加登録), it can be linked to its own account.
    await renkei.control("amex", "/cards/amex-plat-3002/register")
    renewed = await renkei.api.post(f"/accounts/{account_id}/reauth")
    assert renewed.status_code == 200, renewed.text
    await renkei.consent(renewed.json()["authorization_url"], cards=["amex-plat-3002"])
    synced = await renkei.wait_synced(account_id)
    assert synced["link"]["status"] == "active", synced
    rows = await renkei.statements(account_id)
    assert rows and {r["card_id"] for r in rows} == {supplementary["id"]}
    # and the basic card's account still holds only the basic card's lines
    assert {r["card_id"] for r in await renkei.statements(basic["id"])} == {basic["card"]["id"]}
    # Once the leftover permission is stopped (R16), the basic card switches as usual.
    await renkei.stop_link_on_member_site(basic["card"]["masked_number"])
    await renkei.consent(await switch(renkei, basic["id"]), cards=["amex-plat-3001"])
    assert (await renkei.get_account(basic["id"]))["sync_method"] == "api"


async def test_r12_a_second_account_for_a_synced_card_is_refused(renkei: Renkei) -> None:
    shop = await renkei.office(SHOP)
    existing = await renkei.account(SHOP, BIZ)
    refused = await renkei.api.post(
        f"/offices/{shop['id']}/accounts",
        json={
            "sync_method": "api",
            "issuer": "amex",
            "name": "dup",
            "card_id": existing["card"]["id"],
        },
    )
    assert refused.status_code == 409
    assert error_of(refused)["code"] == "account_exists_for_card"
    # the same refusal when the card is only chosen on the issuer's page
    created = await renkei.api.post(
        f"/offices/{shop['id']}/accounts",
        json={"sync_method": "api", "issuer": "amex", "name": "dup"},
    )
    await renkei.consent(created.json()["authorization_url"], cards=["amex-biz-1001"])
    failures = [
        e
        for e in await renkei.events(created.json()["account_id"])
        if e["type"] == "authorization.failed"
    ]
    assert failures[0]["payload"]["error_code"] == "account_exists_for_card"


async def test_r6_combined_login_and_wrong_myjcb_id_refused_then_r9_family_cards(
    renkei: Renkei,
) -> None:
    account = await renkei.account(SHOP, JCB_GOLD)
    combined = await renkei.consent(await switch(renkei, account["id"]), user="user_combined")
    assert combined.status_code == 200
    assert "combined_login_not_supported" in combined.text or "おまとめ" in combined.text
    assert (await renkei.get_account(account["id"]))["sync_method"] == "legacy"
    wrong = await renkei.consent(await switch(renkei, account["id"]), user="user_upgrade")
    assert "wrong_myjcb_id" in wrong.text or "MyJCB" in wrong.text
    assert (await renkei.get_account(account["id"]))["sync_method"] == "legacy"
    await renkei.consent(await switch(renkei, account["id"]), user="user_good")
    synced = await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    assert synced["sync_method"] == "api", synced
    rows = await renkei.statements(account["id"])
    assert len({r["card_id"] for r in rows}) == 2  # R9: both users' cards under one MyJCB ID
    assert max(natural_keys(rows).values()) == 1
    events = [e["type"] for e in await renkei.events(account["id"])]
    assert events.count("authorization.failed") == 2


async def test_r6_one_account_per_myjcb_id_across_offices(renkei: Renkei) -> None:
    shop_jcb = await renkei.account(SHOP, JCB_GOLD)
    await renkei.consent(await switch(renkei, shop_jcb["id"]), user="user_good")
    assert (await renkei.get_account(shop_jcb["id"]))["sync_method"] == "api"
    consulting = await renkei.office(CONSULTING)
    await renkei.admin.post(f"/offices/{consulting['id']}/rollouts", json={"issuer": "jcb"})
    # The family card of the same MyJCB ID, synced the old way in the other office.
    created = await renkei.api.post(
        f"/offices/{consulting['id']}/accounts",
        json={
            "sync_method": "legacy",
            "issuer": "jcb",
            "name": "JCB 家族カード",
            "login_id": "user_good",
            "password": "pass_good",
            "card_ref": "jcb-gold-4002",
        },
    )
    assert created.status_code == 201, created.text
    family = created.json()
    outcome = await renkei.consent(await switch(renkei, family["id"]), user="user_good")
    assert outcome.status_code == 200
    failures = [e for e in await renkei.events(family["id"]) if e["type"] == "authorization.failed"]
    assert failures and failures[0]["payload"]["error_code"] == "myjcb_id_already_linked"
    assert (await renkei.get_account(family["id"]))["sync_method"] == "legacy"


async def test_r7_card_upgrade_detected_and_old_card_recovered_three_ways(renkei: Renkei) -> None:
    account = await renkei.account(CONSULTING, JCB_UPGRADED)
    events = await renkei.events(account["id"])
    changed = [e for e in events if e["type"] == "card.changed"]
    assert changed, events
    assert changed[0]["payload"]["recovery"] == [
        "statement_upload",
        "old_credentials_resync",
        "new_account_for_old_card",
    ]
    assert account["card"]["masked_number"].endswith("5002")
    old_card_id = changed[0]["payload"]["old_card_id"]
    # (b) the old card's credentials, and a resync into this account
    resync = await renkei.api.post(
        f"/accounts/{account['id']}/card-change/resync-old-card",
        json={"login_id": "user_upgrade", "password": "pass_good"},
    )
    assert resync.status_code == 200, resync.text
    rows = await renkei.statements(account["id"])
    assert any(r["card_id"] == old_card_id for r in rows)
    again = await renkei.api.post(
        f"/accounts/{account['id']}/card-change/resync-old-card",
        json={"login_id": "user_upgrade", "password": "pass_good"},
    )
    assert again.json()["added"] == 0  # nothing doubled
    # (c) a new account for the old card
    new = await renkei.api.post(
        f"/accounts/{account['id']}/card-change/new-account",
        json={"login_id": "user_upgrade", "password": "pass_good", "name": "旧JCB一般カード"},
    )
    assert new.status_code == 201, new.text
    assert new.json()["card"]["masked_number"].endswith("5001")
    # (a) statement upload of the old card's file
    async with httpx.AsyncClient(timeout=30, base_url=renkei.base_url) as site:
        login = await site.post(
            "/sandbox/jcb/legacy/login", data={"user_id": "user_upgrade", "password": "pass_good"}
        )
        csv = await site.get(
            "/sandbox/jcb/legacy/statements.csv",
            params={"card_id": "jcb-general-5001"},
            headers={"X-Legacy-Session": login.json()["session"]},
        )
    assert csv.status_code == 200
    upload = await renkei.api.post(
        f"/accounts/{account['id']}/statements/upload",
        files={"file": ("old.csv", csv.content, "text/csv")},
        data={"card_id": old_card_id},
    )
    assert upload.status_code == 200, upload.text
    assert upload.json()["added"] == 0  # the resync brought them already: matched, not doubled


async def test_oauth_callback_refuses_unknown_and_replayed_state(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, BIZ)
    url = await switch(renkei, account["id"])
    async with httpx.AsyncClient(timeout=30, base_url=renkei.base_url) as client:
        unknown = await client.get(
            "/api/v1/oauth/callback", params={"state": "forged", "code": "x"}
        )
        assert unknown.status_code == 400
    browser = renkei.browser()
    try:
        await renkei.open_start(browser, url)
        await browser.press("ログイン", fill={"user_id": "user_good", "password": "pass_good"})
        await browser.press("同意して次へ")
        await browser.press("許可する", tick=["amex-biz-1001"])
        back = browser.link("に戻る")
        first = await browser.open(back)
        assert first.status_code == 200
        replay = await browser.open(back)
        assert replay.status_code == 400
    finally:
        await browser.client.aclose()
