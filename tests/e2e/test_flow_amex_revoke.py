"""amex_revoke through the conversation API: the link stopped on the Amex member site as a
person would, then the account deleted and the card linked again (R10, R16)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.e2e.chat import Chat
from tests.e2e.conftest import Renkei, running_renkei
from tests.e2e.test_backend_rules import BIZ, GREEN, SHOP, switch

FLOW = "amex_revoke"
BIZ_CARD = "amex-biz-1001"
BIZ_MASKED = "XXXX-XXXXXX-11001"


async def open_flow(renkei: Renkei, locale: str = "ja") -> Chat:
    chat = Chat(renkei)
    await chat.start(locale)
    await chat.choose(FLOW)
    assert chat.where() == (None, "choose_office")  # the owner belongs to two offices
    await chat.choose_label(SHOP)
    assert chat.where() == (FLOW, "choose_account")
    return chat


async def linked_biz(renkei: Renkei) -> dict[str, Any]:
    """The 山田商店 business card switched to API (R12) and first synced."""
    account = await renkei.account(SHOP, BIZ)
    await renkei.consent(await switch(renkei, account["id"]), cards=[BIZ_CARD])
    linked = await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    assert linked["sync_method"] == "api" and linked["link"]["status"] == "active"
    return linked


async def download(renkei: Renkei, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=renkei.base_url, timeout=30) as browser:
        return await browser.get(path)  # no bearer token: the signed link is enough


async def card_links_again(renkei: Renkei) -> dict[str, Any]:
    """R16: after the stop, the back end takes a new account and consent for the card."""
    shop = await renkei.office(SHOP)
    created = await renkei.api.post(
        f"/offices/{shop['id']}/accounts",
        json={"sync_method": "api", "issuer": "amex", "name": "ビジネス 新口座"},
    )
    assert created.status_code == 201, created.text
    callback = await renkei.consent(created.json()["authorization_url"], cards=[BIZ_CARD])
    assert callback.status_code == 200
    relinked = await renkei.get_account(created.json()["account_id"])
    assert relinked["link"]["status"] == "active", relinked
    return relinked


async def test_delete_refused_until_stopped_then_the_webhook_moves_on(renkei: Renkei) -> None:
    account = await linked_biz(renkei)
    chat = await open_flow(renkei)
    await chat.choose(f"pick:{account['id']}")
    assert chat.where() == (FLOW, "stop_at_amex")
    text = chat.text()
    assert "二度とAPIで再認証できなくなります" in text and "先に会員サイトで停止" in text
    assert "登録情報の変更" in text and "外部サービスとの連携" in text and "停止する" in text
    assert chat.link().endswith("/sandbox/amex/member/settings/services")
    # Said too early: the back end asks Amex while deleting and refuses (R10).
    await chat.choose("stopped")
    assert chat.where() == (FLOW, "stop_at_amex")
    assert "まだ停止されていません" in chat.text()
    still = await renkei.get_account(account["id"])
    assert still["status"] != "deleted" and still["link"]["status"] == "active"
    # Stopped on the member site: Amex's link.revoked webhook moves the conversation on.
    await renkei.stop_link_on_member_site(BIZ_MASKED)
    await chat.wait_until(lambda c: c["state"] == "ready")
    assert "停止されたことを確認しました" in chat.text()
    await chat.choose("export")
    assert chat.where() == (FLOW, "ready")
    exported = await download(renkei, chat.link())
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = await renkei.statements(account["id"])
    assert len(exported.text.strip().splitlines()) == len(rows) + 1  # header and every line
    await chat.choose("delete")
    assert chat.where() == (None, "menu")
    assert "別の口座で改めてAPI連携できます" in chat.text() and BIZ_MASKED in chat.text()
    deleted = await renkei.get_account(account["id"])
    assert deleted["status"] == "deleted"
    assert [e for e in await renkei.events(account["id"]) if e["type"] == "account.deleted"]
    relinked = await card_links_again(renkei)
    assert relinked["card"]["masked_number"] == BIZ_MASKED


async def test_i_have_stopped_it_is_verified_without_waiting_for_the_webhook(
    renkei: Renkei,
) -> None:
    account = await linked_biz(renkei)
    # Amex's webhook does not get through this time: only the person's word is left.
    await renkei.control(
        "amex",
        "/clients",
        {
            "client_id": "renkei-demo",
            "client_secret": "renkei-demo-secret",
            "redirect_uris": [f"{renkei.base_url}/api/v1/oauth/callback"],
            "name": "renkei",
        },
    )
    chat = await open_flow(renkei, "en")
    await chat.choose(f"pick:{account['id']}")
    assert "never be re-authenticated" in chat.text()
    await chat.choose("export")  # offered before anything is deleted
    assert chat.where() == (FLOW, "stop_at_amex")
    exported = await download(renkei, chat.link())
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    await renkei.stop_link_on_member_site(BIZ_MASKED)
    assert (await chat.refresh())["state"] == "stop_at_amex"  # no webhook came
    await chat.choose_label("I have stopped it")
    # Verified with Amex now (R16); nothing is deleted until the person confirms.
    assert chat.where() == (FLOW, "ready")
    assert (await renkei.get_account(account["id"]))["link"]["status"] == "revoked"
    await chat.choose("delete")
    assert chat.where() == (None, "menu")
    assert "can be API-linked again to another account" in chat.text()
    assert (await renkei.get_account(account["id"]))["status"] == "deleted"
    await card_links_again(renkei)


async def test_legacy_account_is_deleted_at_once_with_help_back_and_cancel(
    renkei: Renkei,
) -> None:
    green = await renkei.account(SHOP, GREEN)
    biz = await renkei.account(SHOP, BIZ)
    chat = await open_flow(renkei)
    await chat.say("ヘルプ")
    assert chat.said("amex_revoke.help") and chat.where() == (FLOW, "choose_account")
    await chat.choose(f"pick:{green['id']}")
    assert chat.where() == (FLOW, "legacy")
    assert "API連携の口座だけ" in chat.text() and "すぐに削除できます" in chat.text()
    await chat.choose("back")
    assert chat.where() == (FLOW, "choose_account")
    await chat.choose(f"pick:{biz['id']}")  # still on legacy sync: nothing held at Amex
    assert chat.where() == (FLOW, "legacy")
    await chat.choose("cancel")
    assert chat.where() == (None, "menu") and "中止" in chat.text()
    assert (await renkei.get_account(biz["id"]))["status"] != "deleted"
    chat = await open_flow(renkei)
    await chat.choose(f"pick:{green['id']}")
    await chat.choose("delete")
    assert chat.where() == (None, "menu")
    deleted = await renkei.get_account(green["id"])
    assert deleted["status"] == "deleted" and deleted["has_legacy_credentials"] is False


async def test_a_conversation_resumes_after_a_restart(database: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with running_renkei(database, data_dir) as renkei:
        green = await renkei.account(SHOP, GREEN)
        chat = await open_flow(renkei)
        await chat.choose(f"pick:{green['id']}")
        assert chat.where() == (FLOW, "legacy")
        conversation_id = chat.id
    async with running_renkei(database, data_dir) as renkei:  # days later, another process
        chat = Chat(renkei)
        chat.id = conversation_id
        await chat.refresh()
        assert chat.where() == (FLOW, "legacy")
        await chat.choose("export")
        exported = await download(renkei, chat.link())
        assert exported.status_code == 200
        await chat.choose("delete")
        assert chat.where() == (None, "menu")
        assert (await renkei.get_account(green["id"]))["status"] == "deleted"
