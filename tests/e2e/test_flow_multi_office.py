"""multi_office (R14, R5, R16) through the conversation API, issuer pages clicked by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.chat import Chat
from tests.e2e.conftest import Renkei, running_renkei
from tests.e2e.test_backend_rules import CONSULTING, GOLD, SHOP, switch

GOLD_CARD = "amex-gold-2001"


async def release_amex(renkei: Renkei, office: str) -> None:
    found = await renkei.office(office)
    released = await renkei.admin.post(f"/offices/{found['id']}/rollouts", json={"issuer": "amex"})
    assert released.status_code == 201, released.text


async def open_flow(renkei: Renkei, office: str) -> tuple[Chat, dict[str, Any]]:
    """The flow in ``office`` up to the offices using the gold card."""
    gold: dict[str, Any] = await renkei.account(office, GOLD)
    chat = Chat(renkei)
    await chat.start()
    await chat.choose("multi_office")
    assert chat.where() == (None, "choose_office")
    await chat.choose_label(office)
    assert chat.where() == ("multi_office", "choose_card")
    assert chat.choices()[0] == f"pick:{gold['card']['id']}"  # the card used in two offices
    await chat.choose(f"pick:{gold['card']['id']}")
    assert chat.where() == ("multi_office", "choose_office")
    return chat, gold


async def test_happy_path_keeps_the_link_in_one_office_and_archives_the_other(
    renkei: Renkei,
) -> None:
    chat, shop_gold = await open_flow(renkei, SHOP)
    consulting_gold = await renkei.account(CONSULTING, GOLD)
    assert SHOP in chat.text() and CONSULTING in chat.text()  # from the back end's card uses
    assert chat.text().count("ID/パスワード方式") == 2
    await chat.choose(f"keep:{shop_gold['id']}")
    assert chat.where() == ("multi_office", "consent")
    assert "だけにチェック" in chat.text()  # one card at a time
    await renkei.consent(chat.link(), cards=[GOLD_CARD])
    await chat.wait_until(lambda c: c["state"] == "others")  # linked, synced, by itself
    assert CONSULTING in chat.text()
    await chat.choose("archive")
    assert chat.where() == (None, "menu")
    assert "アーカイブしました" in chat.text() and "件の明細" in chat.text()
    linked = await renkei.get_account(shop_gold["id"])
    assert linked["sync_method"] == "api" and linked["link"]["status"] == "active"
    archived = await renkei.get_account(consulting_gold["id"])
    assert archived["status"] == "disabled" and archived["link"] is None


async def test_r14_r16_moving_the_link_means_stopping_it_at_amex_first(renkei: Renkei) -> None:
    shop_gold = await renkei.account(SHOP, GOLD)
    await renkei.consent(await switch(renkei, shop_gold["id"]), cards=[GOLD_CARD])
    await release_amex(renkei, CONSULTING)
    chat, consulting_gold = await open_flow(renkei, CONSULTING)
    assert "API連携中" in chat.text()  # 山田商店 holds the link
    await chat.choose(f"keep:{consulting_gold['id']}")
    assert chat.where() == ("multi_office", "stop_at_amex")
    assert "今の連携を停止する必要があります" in chat.text()
    assert "外部サービスとの連携" in chat.text()
    assert "/sandbox/amex/member" in chat.link()  # the member site's page
    await chat.choose("stopped")  # not stopped yet: the back end still refuses (R5)
    assert chat.where() == ("multi_office", "stop_at_amex")
    assert chat.said("multi_office.still_linked")
    await renkei.stop_link_on_member_site(shop_gold["card"]["masked_number"])
    # The member site's stop reaches the back end (link.revoked): the conversation moves.
    await chat.wait_until(lambda c: c["state"] == "consent")
    await renkei.consent(chat.link(), cards=[GOLD_CARD])
    await chat.wait_until(lambda c: c["state"] == "others")
    assert SHOP in chat.text() and "停止" in chat.text()
    await chat.choose("leave")
    assert chat.where() == (None, "menu") and "そのまま残しました" in chat.text()
    moved = await renkei.get_account(consulting_gold["id"])
    assert moved["sync_method"] == "api" and moved["link"]["status"] == "active"
    former = await renkei.get_account(shop_gold["id"])
    assert former["link"]["status"] == "revoked" and former["status"] != "disabled"


async def test_a_switch_refused_for_a_card_linked_elsewhere_lands_here(renkei: Renkei) -> None:
    shop_gold = await renkei.account(SHOP, GOLD)
    await renkei.consent(await switch(renkei, shop_gold["id"]), cards=[GOLD_CARD])
    await release_amex(renkei, CONSULTING)
    consulting_gold = await renkei.account(CONSULTING, GOLD)
    chat = Chat(renkei)
    await chat.start()
    await chat.choose("switch_to_api")
    await chat.choose_label(CONSULTING)
    await chat.choose(f"pick:{consulting_gold['id']}")
    # switch_to_api hands over with the card pre-selected: no card question.
    assert chat.where() == ("multi_office", "choose_office")
    assert chat.said("multi_office.choose_office")
    assert consulting_gold["card"]["masked_number"] in chat.text()
    assert set(chat.choices()) >= {f"keep:{shop_gold['id']}", f"keep:{consulting_gold['id']}"}
    await chat.choose(f"keep:{shop_gold['id']}")  # the holder keeps it: nothing to move
    assert chat.where() == ("multi_office", "already_kept")
    await chat.choose("next")
    await chat.choose("leave")
    assert chat.where() == (None, "menu") and "ID/パスワード方式のまま" in chat.text()
    assert (await renkei.get_account(consulting_gold["id"]))["sync_method"] == "legacy"


async def test_help_back_cancel_and_not_released(renkei: Renkei) -> None:
    chat, _ = await open_flow(renkei, SHOP)
    consulting_gold = await renkei.account(CONSULTING, GOLD)
    await chat.say("ヘルプ")
    assert chat.said("multi_office.help") and chat.where() == ("multi_office", "choose_office")
    await chat.choose("back")
    assert chat.where() == ("multi_office", "choose_card")
    await chat.choose(f"pick:{consulting_gold['card']['id']}")
    await chat.choose(f"keep:{consulting_gold['id']}")  # not released there (R3)
    assert chat.where() == ("multi_office", "not_released")
    assert "まだ公開されていません" in chat.text()
    await chat.choose("other_office")
    assert chat.where() == ("multi_office", "choose_office")
    await chat.choose("cancel")
    assert chat.where() == (None, "menu") and "中止" in chat.text()
    assert (await renkei.get_account(consulting_gold["id"]))["sync_method"] == "legacy"


async def test_a_conversation_resumes_after_a_restart(database: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with running_renkei(database, data_dir) as renkei:
        chat, shop_gold = await open_flow(renkei, SHOP)
        conversation_id = chat.id
    async with running_renkei(database, data_dir) as renkei:  # days later, another process
        chat = Chat(renkei)
        chat.id = conversation_id
        await chat.refresh()
        assert chat.where() == ("multi_office", "choose_office")
        await chat.choose(f"keep:{shop_gold['id']}")
        await renkei.consent(chat.link(), cards=[GOLD_CARD])
        await chat.wait_until(lambda c: c["state"] == "others")
        await chat.choose("leave")
        assert chat.where() == (None, "menu")
        assert (await renkei.get_account(shop_gold["id"]))["sync_method"] == "api"
