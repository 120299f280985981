"""supplementary_card through the conversation API: Amex asked, member site and consent pages
clicked as a person would (R15, R13, R16)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.chat import Chat
from tests.e2e.conftest import Renkei, running_renkei
from tests.e2e.test_backend_rules import BIZ, PLATINUM, SHOP, switch

FLOW = "supplementary_card"
SUPPLEMENTARY = "amex-plat-3002"
BASIC_MASKED = "XXXX-XXXXXX-31001"
SUPPLEMENTARY_MASKED = "XXXX-XXXXXX-31002"


async def open_flow(renkei: Renkei, locale: str = "ja") -> Chat:
    chat = Chat(renkei)
    await chat.start(locale)
    await chat.choose(FLOW)
    assert chat.where() == (None, "choose_office")  # the owner belongs to two offices
    await chat.choose_label(SHOP)
    assert chat.where() == (FLOW, "choose_basic")
    return chat


async def supplementary_card(renkei: Renkei, basic: dict[str, Any]) -> dict[str, Any]:
    shop = await renkei.office(SHOP)
    cards = (await renkei.api.get(f"/offices/{shop['id']}/cards")).json()
    card: dict[str, Any] = next(c for c in cards if c["basic_card_id"] == basic["card"]["id"])
    return card


async def account_of_card(renkei: Renkei, card_id: str) -> dict[str, Any]:
    shop = await renkei.office(SHOP)
    accounts = (await renkei.api.get(f"/offices/{shop['id']}/accounts")).json()
    found: dict[str, Any] = next(
        a for a in accounts if a["card"] and a["card"]["id"] == card_id and a["status"] != "deleted"
    )
    return found


async def register_on_member_site(renkei: Renkei, registration_url: str, card: str) -> None:
    """R15: member site → ログイン → カードの追加登録 → the card → 登録する."""
    browser = renkei.browser()
    try:
        page = await browser.open(registration_url)
        if "ログイン" in page.text and "user_id" in page.text:
            await browser.press("ログイン", fill={"user_id": "user_good", "password": "pass_good"})
            page = await browser.open(registration_url)
        assert "カードの追加登録" in page.text, page.text
        page = await browser.press("登録する", tick=[card])
        assert page.status_code == 200 and "カードを登録しました" in page.text, page.text
    finally:
        await browser.client.aclose()


async def test_unregistered_card_registered_on_the_member_site_then_linked_alone(
    renkei: Renkei,
) -> None:
    basic = await renkei.account(SHOP, PLATINUM)
    supplementary = await supplementary_card(renkei, basic)
    chat = await open_flow(renkei)
    assert chat.said("supplementary_card.one_account_per_card")  # said before anything is chosen
    await chat.choose(f"pick:{basic['id']}")
    assert chat.where() == (FLOW, "choose_card")
    await chat.choose(f"card:{supplementary['id']}")
    # Asked at Amex with the basic account's login: not registered to the ID.
    assert chat.where() == (FLOW, "not_registered")
    assert "許可画面にこのカードが表示されません" in chat.text()
    assert SUPPLEMENTARY_MASKED in chat.text()
    registration_url = chat.link()
    assert registration_url.endswith("/sandbox/amex/member/settings/cards")
    await chat.choose("recheck")  # said too early: Amex is asked again, not believed
    assert chat.where() == (FLOW, "not_registered")
    assert "まだIDに登録されていません" in chat.text()
    await register_on_member_site(renkei, registration_url, SUPPLEMENTARY)
    await chat.choose_label("追加登録しました")
    assert chat.where() == (FLOW, "registered")
    await chat.choose("create")
    assert chat.where() == (FLOW, "consent")
    assert f"{SUPPLEMENTARY_MASKED} だけにチェック" in chat.text()
    created = await account_of_card(renkei, supplementary["id"])
    assert created["id"] != basic["id"] and created["sync_method"] == "api"
    back = await renkei.consent(chat.link(), cards=[SUPPLEMENTARY])
    assert f"/chat?conversation={chat.id}" in back.text
    await chat.wait_until(lambda c: c["flow"] is None)
    assert "連携が完了" in chat.text() and SUPPLEMENTARY_MASKED in chat.text()
    linked = await renkei.wait_synced(created["id"])
    assert linked["link"]["status"] == "active"
    # R15: the new account holds the supplementary card's lines only, the basic its own.
    rows = await renkei.statements(created["id"])
    assert rows and {r["card_id"] for r in rows} == {supplementary["id"]}
    basic_rows = await renkei.statements(basic["id"])
    assert {r["card_id"] for r in basic_rows} == {basic["card"]["id"]}
    assert (await renkei.get_account(basic["id"]))["sync_method"] == "legacy"


async def test_consent_for_the_basic_card_is_refused_and_its_leftover_stopped(
    renkei: Renkei,
) -> None:
    basic = await renkei.account(SHOP, PLATINUM)
    supplementary = await supplementary_card(renkei, basic)
    await renkei.control("amex", f"/cards/{SUPPLEMENTARY}/register")
    chat = await open_flow(renkei)
    await chat.choose(f"pick:{basic['id']}")
    await chat.choose(f"card:{supplementary['id']}")
    assert chat.where() == (FLOW, "registered")  # Amex says it is registered now
    await chat.choose("create")
    created = await account_of_card(renkei, supplementary["id"])
    outcome = await renkei.consent(chat.link(), cards=["amex-plat-3001"])  # the wrong card
    assert outcome.status_code == 200
    await chat.wait_until(lambda c: c["state"] == "failed")
    text = chat.text()
    assert "ほかのカードの許可では連携できません" in text and SUPPLEMENTARY_MASKED in text
    # Amex keeps the refused permission: the member-site path to stop it (R16).
    assert "外部サービスとの連携" in text and "停止する" in text
    assert chat.link().endswith("/sandbox/amex/member/settings/services")
    failures = [
        e for e in await renkei.events(created["id"]) if e["type"] == "authorization.failed"
    ]
    assert failures and failures[0]["payload"]["stop_at_member_site"] is True
    assert (await renkei.get_account(created["id"]))["link"] is None
    await renkei.stop_link_on_member_site(BASIC_MASKED)
    grants = (await renkei.control_get("amex", "/grants"))["grants"]
    assert not [g for g in grants if "amex-plat-3001" in g["card_ids"] and g["status"] == "active"]
    await chat.choose("again")  # the same account, authorized again
    assert chat.where() == (FLOW, "consent")
    await renkei.consent(chat.link(), cards=[SUPPLEMENTARY])
    await chat.wait_until(lambda c: c["flow"] is None)
    assert (await renkei.get_account(created["id"]))["link"]["status"] == "active"
    shop = await renkei.office(SHOP)
    accounts = (await renkei.api.get(f"/offices/{shop['id']}/accounts")).json()
    assert sum(bool(a["card"]) and a["card"]["id"] == supplementary["id"] for a in accounts) == 1
    # With the leftover stopped, the basic card is free to switch as usual (R5).
    await renkei.consent(await switch(renkei, basic["id"]), cards=["amex-plat-3001"])
    assert (await renkei.get_account(basic["id"]))["sync_method"] == "api"


async def test_basic_account_on_api_cannot_be_asked_and_says_so(renkei: Renkei) -> None:
    basic = await renkei.account(SHOP, PLATINUM)
    supplementary = await supplementary_card(renkei, basic)
    await renkei.consent(await switch(renkei, basic["id"]), cards=["amex-plat-3001"])
    assert (await renkei.get_account(basic["id"]))["has_legacy_credentials"] is False  # R2
    chat = await open_flow(renkei, "en")
    await chat.choose(f"pick:{basic['id']}")
    await chat.choose(f"card:{supplementary['id']}")
    assert chat.where() == (FLOW, "cannot_check")
    text = chat.text()
    assert "cannot check from here" in text and "lists only the cards registered" in text
    assert chat.link().endswith("/member/settings/cards")
    await chat.choose("create")
    assert chat.where() == (FLOW, "consent")
    created = await account_of_card(renkei, supplementary["id"])
    assert created["sync_method"] == "api" and created["status"] == "needs_reauth"
    # Going back and creating again authorizes the same account: one account per card.
    await chat.choose("back")
    await chat.choose("create")
    assert chat.where() == (FLOW, "consent")
    shop = await renkei.office(SHOP)
    accounts = (await renkei.api.get(f"/offices/{shop['id']}/accounts")).json()
    assert sum(bool(a["card"]) and a["card"]["id"] == supplementary["id"] for a in accounts) == 1


async def test_none_known_help_back_and_cancel(renkei: Renkei) -> None:
    basic = await renkei.account(SHOP, PLATINUM)
    biz = await renkei.account(SHOP, BIZ)
    chat = await open_flow(renkei)
    await chat.say("ヘルプ")
    assert "カードの追加登録" in chat.text() and chat.where() == (FLOW, "choose_basic")
    await chat.choose(f"pick:{biz['id']}")
    assert chat.where() == (FLOW, "none_known")  # no supplementary card on the business card
    await chat.choose("look_again")  # Amex asked with the account's login: still none
    assert chat.where() == (FLOW, "none_known")
    assert "見つかりませんでした" in chat.text()
    await chat.choose("other")
    assert chat.where() == (FLOW, "choose_basic")
    await chat.say("プラチナ")  # names the platinum account's button
    assert chat.where() == (FLOW, "choose_card")
    await chat.choose("back")
    assert chat.where() == (FLOW, "choose_basic")
    await chat.choose(f"pick:{basic['id']}")
    await chat.choose("cancel")
    assert chat.where() == (None, "menu") and "中止" in chat.text()
    shop = await renkei.office(SHOP)
    accounts = (await renkei.api.get(f"/offices/{shop['id']}/accounts")).json()
    assert not [a for a in accounts if a["card"] and a["card"]["role"] == "supplementary"]


async def test_a_conversation_resumes_after_a_restart(database: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with running_renkei(database, data_dir) as renkei:
        basic = await renkei.account(SHOP, PLATINUM)
        supplementary = await supplementary_card(renkei, basic)
        chat = await open_flow(renkei)
        await chat.choose(f"pick:{basic['id']}")
        await chat.choose(f"card:{supplementary['id']}")
        assert chat.where() == (FLOW, "not_registered")
        conversation_id = chat.id
    async with running_renkei(database, data_dir) as renkei:  # days later, another process
        chat = Chat(renkei)
        chat.id = conversation_id
        await chat.refresh()
        assert chat.where() == (FLOW, "not_registered")
        await renkei.control("amex", f"/cards/{SUPPLEMENTARY}/register")
        await chat.choose("recheck")
        assert chat.where() == (FLOW, "registered")
        await chat.choose("create")
        await renkei.consent(chat.link(), cards=[SUPPLEMENTARY])
        await chat.wait_until(lambda c: c["flow"] is None)
        created = await account_of_card(renkei, supplementary["id"])
        assert (await renkei.get_account(created["id"]))["link"]["status"] == "active"
