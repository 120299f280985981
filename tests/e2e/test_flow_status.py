"""status through the conversation API: why statements are missing, and re-sync now."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.chat import Chat
from tests.e2e.conftest import Renkei, running_renkei
from tests.e2e.test_backend_rules import BIZ, JCB_GOLD, SHOP, switch

FLOW = "status"


async def open_status(renkei: Renkei, locale: str = "ja") -> Chat:
    chat = Chat(renkei)
    await chat.start(locale)
    await chat.say("明細が届かないのですが" if locale == "ja" else "my statements are missing")
    await chat.choose_label(SHOP)
    assert chat.where() == (FLOW, "choose_account")
    return chat


async def test_status_then_resync_now(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, BIZ)
    chat = await open_status(renkei)
    await chat.choose(f"pick:{account['id']}")
    assert chat.where() == (FLOW, "show_status")
    assert "legacy" in chat.text() and "ID/パスワード方式" in chat.text()
    before = len(await renkei.statements(account["id"]))
    # 44 confirmed lines at the issuer now (the old site showed confirmed ones only)
    await renkei.control("amex", "/cards/amex-biz-1001/statements", {"count": 44, "pending": 0})
    await chat.choose("resync")
    assert chat.where() == (FLOW, "resynced")
    assert f"新しい明細 {44 - before} 件" in chat.text(), chat.text()  # done by the back end
    rows = await renkei.statements(account["id"])
    assert len(rows) == 44
    await chat.choose("done")
    assert chat.where() == (None, "menu")


async def test_jcb_api_account_explains_the_delay_r9(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, JCB_GOLD)
    await renkei.consent(await switch(renkei, account["id"]), user="user_good")
    await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    chat = await open_status(renkei, "en")
    await chat.choose(f"pick:{account['id']}")
    assert "R9" in chat.text() and "take a while" in chat.text()


async def test_a_link_needing_reauth_is_renewed_in_place(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, BIZ)
    await renkei.consent(await switch(renkei, account["id"]), cards=["amex-biz-1001"])
    await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    grants = (await renkei.control_get("amex", "/grants"))["grants"]
    grant = next(g for g in grants if "amex-biz-1001" in g["card_ids"] and g["status"] == "active")
    await renkei.control("amex", f"/grants/{grant['grant_id']}/stop")  # at Amex's member site
    chat = await open_status(renkei)
    await chat.choose(f"pick:{account['id']}")
    await chat.choose("resync")  # the sync finds the link stopped
    assert "再認証" in chat.text(), chat.text()
    await chat.choose("reauth")
    assert chat.where() == (FLOW, "reauth_consent")
    await renkei.consent(chat.link(), cards=["amex-biz-1001"])
    await chat.wait_until(lambda c: c["flow"] is None)
    renewed = await renkei.get_account(account["id"])
    assert renewed["id"] == account["id"] and renewed["link"]["status"] == "active"


async def test_help_back_other_cancel(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, BIZ)
    chat = await open_status(renkei)
    await chat.choose("help")
    assert "再同期" in chat.text() and chat.where() == (FLOW, "choose_account")
    await chat.choose(f"pick:{account['id']}")
    await chat.choose("back")
    assert chat.where() == (FLOW, "choose_account")
    await chat.choose(f"pick:{account['id']}")
    await chat.choose("other")
    assert chat.where() == (FLOW, "choose_account")
    await chat.say("やめる")
    assert chat.where() == (None, "menu")


async def test_resume_after_a_restart(database: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with running_renkei(database, data_dir) as renkei:
        account = await renkei.account(SHOP, BIZ)
        chat = await open_status(renkei)
        await chat.choose(f"pick:{account['id']}")
        conversation_id = chat.id
    async with running_renkei(database, data_dir) as renkei:
        chat = Chat(renkei)
        chat.id = conversation_id
        await chat.refresh()
        assert chat.where() == (FLOW, "show_status")
        await chat.choose("resync")
        assert chat.where() == (FLOW, "resynced")
