"""status through the conversation API: why statements are missing, and re-sync now."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

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
    assert "ID・パスワード" in chat.text() and "ID/パスワード方式" in chat.text()
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


async def test_the_status_is_said_in_words_with_the_time_in_japan_time(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, BIZ)
    synced = datetime.fromisoformat(account["last_synced_at"])
    tokyo = synced.astimezone(ZoneInfo("Asia/Tokyo"))
    chat = await open_status(renkei)
    await chat.choose(f"pick:{account['id']}")
    text = chat.text()
    # No raw value of the back end: words for the method and status, no ISO time.
    assert "legacy" not in text and "active" not in text, text
    assert account["last_synced_at"] not in text and "+00:00" not in text, text
    assert "同期方式 ID・パスワード、状態 正常" in text, text
    # The clock of Japan, then how long ago: 「2026/12/02 4:47（3時間前）」.
    assert f"{tokyo:%Y/%m/%d} {tokyo.hour}:{tokyo:%M}（" in text, text
    assert re.search(r"（\d+(秒|分|時間|日)前）", text), text
    chat = await open_status(renkei, "en")
    await chat.choose(f"pick:{account['id']}")
    english = chat.text()
    assert "sync method ID and password, status OK" in english, english
    assert "Japan time (" in english and " ago)" in english, english


async def test_jcb_api_account_explains_the_delay_r9(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, JCB_GOLD)
    await renkei.consent(await switch(renkei, account["id"]), user="user_good")
    await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    chat = await open_status(renkei, "en")
    await chat.choose(f"pick:{account['id']}")
    assert chat.said("status.jcb_delay")


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


async def test_the_consents_end_is_said_and_renewal_offered_once_warned(
    renkei: Renkei,
) -> None:
    # A year-long consent: its end is said, nothing to renew yet.
    account = await renkei.account(SHOP, BIZ)
    await renkei.consent(await switch(renkei, account["id"]), cards=["amex-biz-1001"])
    linked = await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    ends_on = linked["link"]["consent_expires_at"][:4]  # the year, whichever the zone
    chat = await open_status(renkei)
    await chat.choose(f"pick:{account['id']}")
    assert "まで有効です" in chat.text() and ends_on in chat.text(), chat.text()
    assert "reauth" not in chat.choices()

    # A 10-day consent is warned of at once: the status offers to renew it in place.
    await renkei.control("jcb", "/settings", {"consent_lifetime_days": 10})
    jcb = await renkei.account(SHOP, JCB_GOLD)
    await renkei.consent(await switch(renkei, jcb["id"]), user="user_good")
    await renkei.wait_synced(jcb["id"], since=jcb["last_synced_at"])
    chat = await open_status(renkei, "en")
    await chat.choose(f"pick:{jcb['id']}")
    assert "valid until" in chat.text(), chat.text()
    assert "reauth" in chat.choices()
    await chat.choose("reauth")
    assert chat.where() == (FLOW, "reauth_consent")
