"""switch_to_api through the conversation API, consent pages clicked as a person would."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.chat import Chat
from tests.e2e.conftest import Renkei, running_renkei
from tests.e2e.test_backend_rules import (
    BIZ,
    CONSULTING,
    GOLD,
    GREEN,
    JCB_GOLD,
    JCB_UPGRADED,
    SHOP,
)

FLOWS = {
    "register",
    "switch_to_api",
    "multi_office",
    "supplementary_card",
    "amex_revoke",
    "jcb_card_change",
}


async def open_flow(renkei: Renkei, office: str, locale: str = "ja") -> Chat:
    chat = Chat(renkei)
    first = await chat.start(locale)
    assert set(chat.choices()) >= FLOWS, first  # the six procedures by their ids
    await chat.choose("switch_to_api")
    assert chat.where() == (None, "choose_office")  # the owner belongs to two offices
    await chat.choose_label(office)
    assert chat.where() == ("switch_to_api", "choose_account")
    return chat


async def test_happy_path_switches_in_place_and_reports_the_first_sync(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, BIZ)
    chat = await open_flow(renkei, SHOP)
    await chat.choose(f"pick:{account['id']}")
    assert chat.where() == ("switch_to_api", "consent")
    back = await renkei.consent(chat.link(), cards=["amex-biz-1001"])
    assert back.status_code == 200
    assert f"/chat?conversation={chat.id}" in back.text  # the page leads back here
    # The back end's events move the conversation on by itself: linked, then synced.
    done = await chat.wait_until(lambda c: c["flow"] is None)
    assert "切り替えが完了" in chat.text(), done
    switched = await renkei.get_account(account["id"])
    assert switched["sync_method"] == "api" and switched["has_legacy_credentials"] is False
    assert switched["id"] == account["id"]


async def test_english_and_free_text(renkei: Renkei) -> None:
    chat = Chat(renkei)
    await chat.start("en")
    assert "Hello" in chat.text()
    await chat.say("I want to switch my card to API")
    assert chat.where() == (None, "choose_office")
    await chat.choose_label(SHOP)
    await chat.say("日本語で")
    assert "日本語でご案内します" in chat.text()
    await chat.say("ビジネス・プラチナ")  # names a button on screen
    assert chat.where() == ("switch_to_api", "consent")


async def test_a_card_in_two_offices_goes_to_multi_office_r14(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, GOLD)
    chat = await open_flow(renkei, SHOP)
    await chat.choose(f"pick:{account['id']}")
    assert chat.where()[0] == "multi_office"
    assert "1つの事業所だけ" in chat.text()  # one office only can API-link the card


async def test_not_released_offers_to_tell_and_tells_when_released(renkei: Renkei) -> None:
    account = await renkei.account(CONSULTING, JCB_UPGRADED)
    chat = await open_flow(renkei, CONSULTING)
    await chat.choose(f"pick:{account['id']}")
    assert chat.where() == ("switch_to_api", "not_released")
    assert "まだ公開されていません" in chat.text()
    await chat.choose("notify")
    assert chat.where() == ("switch_to_api", "waiting_release")
    consulting = await renkei.office(CONSULTING)
    released = await renkei.admin.post(
        f"/offices/{consulting['id']}/rollouts", json={"issuer": "jcb"}
    )
    assert released.status_code == 201
    await chat.wait_until(lambda c: c["state"] == "released")
    await chat.choose(f"pick:{account['id']}")
    assert chat.where() == ("switch_to_api", "consent")


async def test_a_personal_card_is_not_offered_and_the_reason_is_said_at_once(
    renkei: Renkei,
) -> None:
    green = await renkei.account(SHOP, GREEN)  # R1: a personal Amex card
    chat = await open_flow(renkei, SHOP)
    assert f"pick:{green['id']}" not in chat.choices()
    assert chat.said("switch_to_api.not_eligible_left_out", account=GREEN), chat.text()
    english = await open_flow(renkei, SHOP, "en")
    assert f'"{GREEN}" is not in the list' in english.text(), english.text()


async def test_the_jcb_switch_asks_for_no_tick_on_a_page_without_checkboxes(
    renkei: Renkei,
) -> None:
    account = await renkei.account(SHOP, JCB_GOLD)
    chat = await open_flow(renkei, SHOP)
    await chat.choose(f"pick:{account['id']}")
    assert chat.where() == ("switch_to_api", "consent")
    assert "チェック" not in chat.text() and "カードを選ぶ欄はなく" in chat.text(), chat.text()
    english = await open_flow(renkei, SHOP, "en")
    await english.choose(f"pick:{account['id']}")
    assert "tick this account's card" not in english.text()
    assert "no cards to tick" in english.text(), english.text()


async def test_jcb_combined_login_refused_then_right_id(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, JCB_GOLD)
    chat = await open_flow(renkei, SHOP)
    await chat.choose(f"pick:{account['id']}")
    assert chat.said("switch_to_api.jcb_notice")  # said before the issuer's page
    await renkei.consent(chat.link(), user="user_combined")
    await chat.wait_until(lambda c: c["state"] == "failed")
    assert "おまとめログイン" in chat.text()
    await chat.choose("again")
    assert chat.where() == ("switch_to_api", "consent")
    await renkei.consent(chat.link(), user="user_good")
    await chat.wait_until(lambda c: c["flow"] is None)
    assert (await renkei.get_account(account["id"]))["sync_method"] == "api"


async def test_help_back_cancel_and_check_by_hand(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, BIZ)
    chat = await open_flow(renkei, SHOP)
    await chat.say("ヘルプ")
    assert chat.said("switch_to_api.help") and chat.where() == ("switch_to_api", "choose_account")
    await chat.choose(f"pick:{account['id']}")
    await chat.choose("back")
    assert chat.where() == ("switch_to_api", "choose_account")
    await chat.choose(f"pick:{account['id']}")
    await chat.choose("check")  # not consented yet: stays, says so
    assert chat.where() == ("switch_to_api", "consent")
    await chat.choose("cancel")
    assert chat.where() == (None, "menu")
    assert "中止" in chat.text()


async def test_a_conversation_resumes_after_a_restart(database: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with running_renkei(database, data_dir) as renkei:
        account = await renkei.account(SHOP, BIZ)
        chat = await open_flow(renkei, SHOP)
        await chat.choose(f"pick:{account['id']}")
        link = chat.link()
        conversation_id = chat.id
    async with running_renkei(database, data_dir) as renkei:  # days later, another process
        chat = Chat(renkei)
        chat.id = conversation_id
        await chat.refresh()
        assert chat.where() == ("switch_to_api", "consent")
        # The old link is bound to the old server's port: start the consent again.
        await chat.choose("back")
        await chat.choose(f"pick:{account['id']}")
        assert chat.link() != link
        await renkei.consent(chat.link(), cards=["amex-biz-1001"])
        await chat.wait_until(lambda c: c["flow"] is None)
        assert (await renkei.get_account(account["id"]))["sync_method"] == "api"
