"""register (R11) through the conversation API, the issuer's pages clicked as a person would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.chat import Chat
from tests.e2e.conftest import Renkei, running_renkei
from tests.e2e.test_backend_rules import BIZ, CONSULTING, GREEN, PLATINUM, SHOP

SUPPLEMENTARY = "amex-plat-3002"


async def open_flow(renkei: Renkei, office: str, locale: str = "ja") -> Chat:
    chat = Chat(renkei)
    await chat.start(locale)
    await chat.choose("register")
    assert chat.where() == (None, "choose_office")  # the owner belongs to two offices
    await chat.choose_label(office)
    return chat


async def supplementary_card(renkei: Renkei) -> dict[str, Any]:
    shop = await renkei.office(SHOP)
    cards = (await renkei.api.get(f"/offices/{shop['id']}/cards")).json()
    card: dict[str, Any] = next(c for c in cards if c["card_ref"] == SUPPLEMENTARY)
    return card


async def new_account(renkei: Renkei, office: str, name: str) -> dict[str, Any]:
    account: dict[str, Any] = await renkei.account(office, name)
    return account


async def test_happy_path_registers_a_listed_card_and_reports_the_first_sync(
    renkei: Renkei,
) -> None:
    await renkei.control("amex", f"/cards/{SUPPLEMENTARY}/register")  # R15, on the Amex side
    card = await supplementary_card(renkei)
    chat = await open_flow(renkei, SHOP)
    assert chat.where() == ("register", "choose_issuer")
    await chat.choose("issuer:amex")
    assert chat.where() == ("register", "choose_card")
    # Only the office's cards no account syncs yet (R12), eligible ones (R1), and "other"
    # (the demo's other ID may have brought its own new supplementary card by now).
    shop = await renkei.office(SHOP)
    cards = (await renkei.api.get(f"/offices/{shop['id']}/cards")).json()
    unsynced = {f"card:{c['id']}" for c in cards if c["role"] == "supplementary"}
    listed = [c for c in chat.choices() if c.startswith("card:")]
    assert f"card:{card['id']}" in listed and listed[-1] == "card:other"
    assert set(listed[:-1]) <= unsynced
    await chat.choose(f"card:{card['id']}")
    assert chat.where() == ("register", "name")
    await chat.say("プラチナ追加カード API")  # free text is the name here
    assert chat.where() == ("register", "consent")
    assert "1回に1枚" in chat.text() and card["masked_number"] in chat.text()  # R13
    back = await renkei.consent(chat.link(), cards=[SUPPLEMENTARY])
    assert f"/chat?conversation={chat.id}" in back.text
    await chat.wait_until(lambda c: c["flow"] is None)  # linked, then synced, by itself
    account = await new_account(renkei, SHOP, "プラチナ追加カード API")
    assert account["sync_method"] == "api" and account["link"]["status"] == "active"
    assert account["card"]["id"] == card["id"] and account["has_legacy_credentials"] is False
    rows = await renkei.statements(account["id"])
    assert rows and {r["card_id"] for r in rows} == {card["id"]}  # R15: its own card only
    assert f"最初の同期で {len(rows)} 件" in chat.text()


async def test_jcb_with_the_default_name_in_english(renkei: Renkei) -> None:
    # A MyJCB ID whose card no account of the office syncs yet.
    await renkei.control("jcb", "/users", {"user_id": "user_new", "password": "pass_good"})
    await renkei.control(
        "jcb",
        "/cards",
        {
            "user_id": "user_new",
            "card_id": "jcb-corp-6001",
            "product": "jcb_corporate",
            "holder_name": "YAMADA TARO",
        },
    )
    chat = await open_flow(renkei, SHOP, locale="en")
    await chat.choose("issuer:jcb")
    assert chat.where() == ("register", "name")  # the MyJCB ID decides the cards (R6)
    await chat.choose_label("JCB API")
    assert chat.where() == ("register", "consent")
    assert chat.said("register.jcb_notice")
    await renkei.consent(chat.link(), user="user_new")
    await chat.wait_until(lambda c: c["flow"] is None)
    assert "is registered" in chat.text()
    account = await new_account(renkei, SHOP, "JCB API")
    assert account["sync_method"] == "api" and account["card"]["card_ref"] == "jcb-corp-6001"


async def test_r3_r4_not_released_then_told_when_released(renkei: Renkei) -> None:
    chat = await open_flow(renkei, CONSULTING)
    assert chat.where() == ("register", "not_released")
    assert "まだ公開されていません" in chat.text() and "オレンジ色" in chat.text()
    await chat.choose("notify")
    assert chat.where() == ("register", "waiting_release")
    consulting = await renkei.office(CONSULTING)
    released = await renkei.admin.post(
        f"/offices/{consulting['id']}/rollouts", json={"issuer": "amex"}
    )
    assert released.status_code == 201, released.text
    await chat.wait_until(lambda c: c["state"] == "choose_issuer")
    assert chat.said("register.released")
    assert "issuer:amex" in chat.choices() and "issuer:jcb" not in chat.choices()
    assert "JCB" in chat.text()  # JCB is explained as not released yet (R3)


async def test_r15_refused_consent_is_tried_again_on_the_same_account(renkei: Renkei) -> None:
    card = await supplementary_card(renkei)
    chat = await open_flow(renkei, SHOP)
    await chat.choose("issuer:amex")
    await chat.choose(f"card:{card['id']}")
    await chat.choose("named:")  # the back end names it
    assert chat.where() == ("register", "consent")
    # Not registered to the online-service ID: the page lists only the basic card (R15).
    await renkei.consent(chat.link(), cards=["amex-plat-3001"])
    await chat.wait_until(lambda c: c["state"] == "failed")
    assert chat.said("refusal.supplementary_not_registered")
    assert "停止する" in chat.text()  # the leftover at Amex (R16)
    account = await new_account(renkei, SHOP, "American Express API")
    assert account["link"] is None and account["status"] == "needs_reauth"
    await renkei.control("amex", f"/cards/{SUPPLEMENTARY}/register")
    await chat.choose("again")
    assert chat.where() == ("register", "consent")
    await renkei.consent(chat.link(), cards=[SUPPLEMENTARY])
    await chat.wait_until(lambda c: c["flow"] is None)
    linked = await renkei.get_account(account["id"])  # the same account, not a second one
    assert linked["link"]["status"] == "active" and linked["card"]["id"] == card["id"]


async def test_r12_a_card_the_office_syncs_is_switched_instead(renkei: Renkei) -> None:
    existing = await renkei.account(SHOP, BIZ)
    chat = await open_flow(renkei, SHOP)
    await chat.choose("issuer:amex")
    await chat.choose("card:other")
    await chat.choose("named:")
    await renkei.consent(chat.link(), cards=["amex-biz-1001"])  # chosen on Amex's page
    await chat.wait_until(lambda c: c["state"] == "failed")
    assert chat.said("refusal.account_exists_for_card")
    await chat.choose("switch")
    # The unused new account is removed, and switch_to_api takes over.
    assert chat.where() == ("switch_to_api", "choose_account")
    assert "削除しました" in chat.text()
    shop = await renkei.office(SHOP)
    names = [a["name"] for a in (await renkei.api.get(f"/offices/{shop['id']}/accounts")).json()]
    assert "American Express API" not in names
    assert (await renkei.get_account(existing["id"]))["sync_method"] == "legacy"
    await chat.choose(f"pick:{existing['id']}")
    assert chat.where() == ("switch_to_api", "consent")


async def test_r1_a_personal_card_is_never_offered_nor_taken(renkei: Renkei) -> None:
    green = await renkei.account(SHOP, GREEN)
    chat = await open_flow(renkei, SHOP)
    await chat.choose("issuer:amex")
    assert green["card"]["masked_number"] not in " ".join(chat.labels())  # R1
    # A front end sending it anyway gets nothing registered.
    await chat._send({"choice": f"card:{green['card']['id']}"})
    assert chat.where() == ("register", "choose_card")
    # Asked directly, the back end refuses it too, before anyone goes to Amex.
    shop = await renkei.office(SHOP)
    refused = await renkei.api.post(
        f"/offices/{shop['id']}/accounts",
        json={"sync_method": "api", "issuer": "amex", "name": "x", "card_id": green["card"]["id"]},
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "card_not_eligible"


async def test_r5_r14_a_card_linked_in_another_office_goes_to_multi_office(
    renkei: Renkei,
) -> None:
    consulting = await renkei.office(CONSULTING)
    await renkei.admin.post(f"/offices/{consulting['id']}/rollouts", json={"issuer": "amex"})
    await renkei.control("amex", f"/cards/{SUPPLEMENTARY}/register")
    created = await renkei.api.post(
        f"/offices/{consulting['id']}/accounts",
        json={"sync_method": "api", "issuer": "amex", "name": "追加カード API"},
    )
    await renkei.consent(created.json()["authorization_url"], cards=[SUPPLEMENTARY])
    assert (await renkei.get_account(created.json()["account_id"]))["link"]["status"] == "active"
    card = await supplementary_card(renkei)
    chat = await open_flow(renkei, SHOP)
    await chat.choose("issuer:amex")
    await chat.choose(f"card:{card['id']}")
    await chat.choose("named:")  # the back end checks the card's links first (R5/R14)
    assert chat.where() == ("multi_office", "choose_office")
    assert chat.said("multi_office.choose_office")
    assert CONSULTING in chat.text() and card["masked_number"] in chat.text()
    shop = await renkei.office(SHOP)
    names = [a["name"] for a in (await renkei.api.get(f"/offices/{shop['id']}/accounts")).json()]
    assert "American Express API" not in names  # nothing was created


async def test_help_back_cancel_and_check_by_hand(renkei: Renkei) -> None:
    chat = await open_flow(renkei, SHOP)
    await chat.say("ヘルプ")
    assert chat.said("register.help") and chat.where() == ("register", "choose_issuer")
    await chat.choose("issuer:amex")
    await chat.choose("card:other")
    await chat.choose("help")  # typed text would be the name here: the button helps
    assert chat.where() == ("register", "name")
    await chat.choose("back")
    assert chat.where() == ("register", "choose_card")
    await chat.choose("card:other")
    await chat.choose("named:")
    await chat.choose("check")  # not consented yet: stays
    assert chat.where() == ("register", "consent")
    await chat.choose("cancel")
    assert chat.where() == (None, "menu") and "中止" in chat.text()


async def test_a_conversation_resumes_after_a_restart(database: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with running_renkei(database, data_dir) as renkei:
        await renkei.control("amex", f"/cards/{SUPPLEMENTARY}/register")
        card = await supplementary_card(renkei)
        chat = await open_flow(renkei, SHOP)
        await chat.choose("issuer:amex")
        await chat.choose(f"card:{card['id']}")
        conversation_id = chat.id
    async with running_renkei(database, data_dir) as renkei:  # days later, another process
        await renkei.control("amex", f"/cards/{SUPPLEMENTARY}/register")  # a fresh sandbox
        chat = Chat(renkei)
        chat.id = conversation_id
        await chat.refresh()
        assert chat.where() == ("register", "name")
        await chat.say("追加カード API")
        await renkei.consent(chat.link(), cards=[SUPPLEMENTARY])
        await chat.wait_until(lambda c: c["flow"] is None)
        account = await new_account(renkei, SHOP, "追加カード API")
        assert account["sync_method"] == "api" and account["card"]["id"] == card["id"]
        assert (await renkei.account(SHOP, PLATINUM))["sync_method"] == "legacy"
