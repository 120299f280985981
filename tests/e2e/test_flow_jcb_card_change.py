"""jcb_card_change through the conversation API: the three ways of R7 for the old card.

The demo account JCB一般カード of 山田コンサルティング had jcb-general-5001 upgraded to
jcb-plat-5002 (MyJCB ID user_upgrade); the first sync already recorded the change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.chat import Chat
from tests.e2e.conftest import Renkei, running_renkei
from tests.e2e.test_backend_rules import CONSULTING, JCB_GOLD, JCB_UPGRADED, SHOP

FLOW = "jcb_card_change"
OLD_CARD = "jcb-general-5001"
LOGIN = "user_upgrade"
PASSWORD = "pass_good"
WRONG_PASSWORD = "not-the-pass-7731"


async def open_flow(renkei: Renkei, office: str) -> Chat:
    chat = Chat(renkei)
    await chat.start("ja")
    await chat.choose(FLOW)
    assert chat.where() == (None, "choose_office")  # the owner belongs to two offices
    await chat.choose_label(office)
    assert chat.where() == (FLOW, "choose_account")
    return chat


async def open_change(renkei: Renkei) -> tuple[Chat, dict[str, Any]]:
    """Pick the upgraded account: the change recorded by the first sync is explained."""
    account = await renkei.account(CONSULTING, JCB_UPGRADED)
    chat = await open_flow(renkei, CONSULTING)
    assert f"pick:{account['id']}" in chat.choices()
    assert all("アメックス" not in label for label in chat.labels())  # JCB accounts only
    await chat.choose(f"pick:{account['id']}")
    assert chat.where() == (FLOW, "changed")
    said = chat.text()
    assert "5001" in said and "5002" in said, said
    assert chat.said("jcb_card_change.only_new_card") and chat.said("jcb_card_change.api_delay")
    assert {"upload", "way:resync", "way:new_account"} <= set(chat.choices())
    return chat, account


async def old_card_id(renkei: Renkei, account_id: str) -> str:
    changed = [e for e in await renkei.events(account_id) if e["type"] == "card.changed"]
    assert changed, "the first sync records the card change (R7)"
    card_id: str = changed[0]["payload"]["old_card_id"]
    return card_id


# docs/issuer-api.md: every demo card starts with 40 statements at the issuer.
OLD_CARD_AT_ISSUER = 40


async def old_card_lines_held(renkei: Renkei, account_id: str, old_id: str) -> int:
    """The old card's statements already in the account: none.

    Once the change is known a sync fetches the new card's statements only (R7): the
    old card's come in by the three ways alone.
    """
    held = [r for r in await renkei.statements(account_id) if r["card_id"] == old_id]
    assert held == []
    return len(held)


async def old_card_csv(renkei: Renkei) -> bytes:
    """The old card's CSV, downloaded from the issuer's legacy site as a person would."""
    async with httpx.AsyncClient(timeout=30, base_url=renkei.base_url) as site:
        login = await site.post(
            "/sandbox/jcb/legacy/login", data={"user_id": LOGIN, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        csv = await site.get(
            "/sandbox/jcb/legacy/statements.csv",
            params={"card_id": OLD_CARD},
            headers={"X-Legacy-Session": login.json()["session"]},
        )
    assert csv.status_code == 200, csv.text
    return csv.content


async def stored_conversation(renkei: Renkei, conversation_id: str) -> str:
    """What the database keeps of the conversation (transcript, slots, history, replies)."""
    engine = create_async_engine(renkei.env["DATABASE_URL"])
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT slots, history, replies FROM conversations WHERE id = :id"),
                    {"id": conversation_id},
                )
            ).one()
            lines = (
                await conn.execute(
                    text(
                        "SELECT line FROM conversation_transcript "
                        "WHERE conversation_id = :id ORDER BY seq"
                    ),
                    {"id": conversation_id},
                )
            ).scalars()
            transcript = list(lines)
    finally:
        await engine.dispose()
    # SQLite answers the JSON text, PostgreSQL the parsed value: compare them alike.
    decoded = [json.loads(c) if isinstance(c, str) else c for c in transcript]
    values = [decoded, *(json.loads(c) if isinstance(c, str) else c for c in row)]
    stored = [json.dumps(v, ensure_ascii=False) for v in values]
    assert "●●●" in stored[0]  # the password step is in the transcript, masked
    return "\n".join(stored)


async def test_resync_with_old_credentials_adds_once_and_never_keeps_the_password(
    renkei: Renkei,
) -> None:
    chat, account = await open_change(renkei)
    old_id = await old_card_id(renkei, account["id"])
    held = await old_card_lines_held(renkei, account["id"], old_id)
    before = await renkei.statements(account["id"])
    await chat.choose("way:resync")
    assert chat.where() == (FLOW, "ask_login_id")
    await chat.say(LOGIN)
    assert chat.where() == (FLOW, "ask_password") and LOGIN in chat.text()
    # A wrong password: refused by the issuer's site, asked again, the ID dropped.
    await chat.say(WRONG_PASSWORD)
    assert chat.where() == (FLOW, "login_refused")
    assert "ログインできませんでした" in chat.text()
    await chat.say(LOGIN)
    await chat.say(PASSWORD)
    assert chat.where() == (FLOW, "recovered"), chat.text()
    rows = await renkei.statements(account["id"])
    assert len([r for r in rows if r["card_id"] == old_id]) == held + OLD_CARD_AT_ISSUER
    assert len(rows) == len(before) + OLD_CARD_AT_ISSUER
    reported = f"新しい明細 {OLD_CARD_AT_ISSUER} 件、すでにあった明細 {held} 件"
    assert reported in chat.text(), chat.text()
    # A second time brings nothing twice.
    await chat.choose("more")
    await chat.choose("way:resync")
    await chat.say(LOGIN)
    await chat.say(PASSWORD)
    assert f"新しい明細 0 件、すでにあった明細 {held + OLD_CARD_AT_ISSUER} 件" in chat.text(), (
        chat.text()
    )
    assert len(await renkei.statements(account["id"])) == len(rows)
    await chat.choose("finish")
    assert chat.where() == (None, "menu")
    # The password is in no answer, no analytics, and nowhere in the stored conversation.
    answer = (await renkei.api.get(f"/conversations/{chat.id}")).text
    analytics = await renkei.admin.get("/analytics/flows")
    assert analytics.status_code == 200
    assert any(s["flow"] == FLOW and s["step"] == "recovered" for s in analytics.json())
    stored = await stored_conversation(renkei, chat.id)
    for seen in (answer, analytics.text, stored):
        assert PASSWORD not in seen and WRONG_PASSWORD not in seen
    assert LOGIN in stored  # the ID as typed is kept in the transcript; only the password is not


async def test_new_account_for_the_old_card(renkei: Renkei) -> None:
    chat, account = await open_change(renkei)
    # Another MyJCB ID shows no card that this account's card replaced (R7).
    await chat.choose("way:resync")
    await chat.say("user_good")
    await chat.say(PASSWORD)
    assert chat.where() == (FLOW, "recovery_refused")
    assert chat.said("jcb_card_change.credentials_not_old_card")
    await chat.choose("more")
    await chat.choose("way:new_account")
    assert chat.where() == (FLOW, "ask_login_id")
    await chat.say(LOGIN)
    await chat.say(PASSWORD)
    assert chat.where() == (FLOW, "recovered"), chat.text()
    assert "口座" in chat.text() and "5001" in chat.text()
    consulting = await renkei.office(CONSULTING)
    accounts = (await renkei.api.get(f"/offices/{consulting['id']}/accounts")).json()
    new = [a for a in accounts if a["id"] != account["id"] and a["issuer"] == "jcb"]
    assert len(new) == 1, accounts
    assert new[0]["card"]["masked_number"].endswith("5001")
    assert new[0]["sync_method"] == "legacy"
    assert new[0]["name"] in chat.text()
    # The account it came from still follows the new card.
    assert (await renkei.get_account(account["id"]))["card"]["masked_number"].endswith("5002")
    # A second account for the same old card is refused (R12: one account per card).
    await chat.choose("more")
    await chat.choose("way:new_account")
    await chat.say(LOGIN)
    await chat.say(PASSWORD)
    assert chat.where() == (FLOW, "recovery_refused")
    assert "すでにあります" in chat.text()
    accounts = (await renkei.api.get(f"/offices/{consulting['id']}/accounts")).json()
    assert len([a for a in accounts if a["issuer"] == "jcb"]) == 2
    stored = await stored_conversation(renkei, chat.id)
    assert PASSWORD not in stored


async def test_statement_upload_refuses_a_broken_file_then_imports_once(renkei: Renkei) -> None:
    chat, account = await open_change(renkei)
    old_id = await old_card_id(renkei, account["id"])
    held = await old_card_lines_held(renkei, account["id"], old_id)
    before = await renkei.statements(account["id"])
    csv = await old_card_csv(renkei)
    # Line 7 (the third statement row) with a use date no calendar has.
    lines = csv.split(b"\r\n")
    cells = lines[6].split(b",", 3)
    lines[6] = b",".join([*cells[:2], b"2026/13/45", cells[3]])
    broken = b"\r\n".join(lines)
    await chat.choose("upload")
    assert chat.where() == (FLOW, "ask_file") and "CSV" in chat.text()
    await chat.upload("old-broken.csv", broken)
    assert chat.where() == (FLOW, "file_refused")
    assert "7 行目" in chat.text() and "何も取り込んでいません" in chat.text(), chat.text()
    assert len(await renkei.statements(account["id"])) == len(before)  # nothing imported
    await chat.upload("old.csv", csv)
    assert chat.where() == (FLOW, "recovered"), chat.text()
    rows = await renkei.statements(account["id"])
    assert len([r for r in rows if r["card_id"] == old_id]) == held + OLD_CARD_AT_ISSUER
    reported = f"新しい明細 {OLD_CARD_AT_ISSUER} 件、すでにあった明細 {held} 件"
    assert reported in chat.text(), chat.text()
    # The same file again: every line matched, nothing doubled.
    await chat.choose("more")
    await chat.choose("upload")
    await chat.upload("old.csv", csv)
    assert f"新しい明細 0 件、すでにあった明細 {held + OLD_CARD_AT_ISSUER} 件" in chat.text(), (
        chat.text()
    )
    assert len(await renkei.statements(account["id"])) == len(rows)


async def test_no_change_yet_sync_now_then_the_change_is_found(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, JCB_GOLD)
    chat = await open_flow(renkei, SHOP)
    await chat.choose(f"pick:{account['id']}")
    assert chat.where() == (FLOW, "no_change")
    await chat.choose("sync")  # synced for real: still no change
    assert chat.where() == (FLOW, "no_change")
    assert "見つかりません" in chat.text()
    # The card is upgraded at the issuer (R7); the next sync sees it.
    await renkei.control(
        "jcb",
        "/cards/jcb-gold-4001/upgrade",
        {"new_card_id": "jcb-plat-4009", "product": "jcb_platinum"},
    )
    await chat.choose("sync")
    assert chat.where() == (FLOW, "changed"), chat.text()
    events = [e for e in await renkei.events(account["id"]) if e["type"] == "card.changed"]
    assert events and events[0]["payload"]["old_card_id"]
    assert (await renkei.get_account(account["id"]))["card"]["masked_number"] in chat.text()


async def test_help_back_cancel_and_an_unexpected_file(renkei: Renkei) -> None:
    chat, account = await open_change(renkei)
    before = await renkei.statements(account["id"])
    await chat.say("ヘルプ")
    assert chat.said("jcb_card_change.help") and chat.where() == (FLOW, "changed")
    await chat.upload("old.csv", b"x")  # no file is asked for here
    assert chat.where() == (FLOW, "changed") and chat.said("common.file_unexpected")
    await chat.choose("way:resync")
    await chat.say(LOGIN)
    await chat.choose("back")  # from the password step back to the ID
    assert chat.where() == (FLOW, "ask_login_id")
    await chat.choose("back")
    assert chat.where() == (FLOW, "changed")
    await chat.choose("cancel")
    assert chat.where() == (None, "menu") and "中止" in chat.text()
    assert len(await renkei.statements(account["id"])) == len(before)  # nothing was done


async def test_a_conversation_resumes_after_a_restart(database: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with running_renkei(database, data_dir) as renkei:
        chat, account = await open_change(renkei)
        await chat.choose("upload")
        conversation_id = chat.id
    async with running_renkei(database, data_dir) as renkei:  # days later, another process
        chat = Chat(renkei)
        chat.id = conversation_id
        await chat.refresh()
        assert chat.where() == (FLOW, "ask_file")
        await chat.upload("old.csv", await old_card_csv(renkei))
        assert chat.where() == (FLOW, "recovered"), chat.text()
        old_id = await old_card_id(renkei, account["id"])
        assert any(r["card_id"] == old_id for r in await renkei.statements(account["id"]))


async def test_a_change_seen_by_another_sync_moves_the_waiting_conversation(
    renkei: Renkei,
) -> None:
    account = await renkei.account(SHOP, JCB_GOLD)
    chat = await open_flow(renkei, SHOP)
    await chat.choose(f"pick:{account['id']}")
    assert chat.where() == (FLOW, "no_change")
    await renkei.control(
        "jcb",
        "/cards/jcb-gold-4001/upgrade",
        {"new_card_id": "jcb-plat-4010", "product": "jcb_platinum"},
    )
    synced = await renkei.sync_now(account["id"])  # as a scheduled sync
    assert synced.status_code == 200, synced.text
    await chat.wait_until(lambda c: c["state"] == "changed")
    assert chat.said("jcb_card_change.only_new_card")
    assert "4001" in chat.text() and "4010" in chat.text()
    assert {"upload", "way:resync", "way:new_account"} <= set(chat.choices())


async def new_card_csv(renkei: Renkei) -> bytes:
    """The NEW card's CSV: what a person downloads when MyJCB shows the new card first."""
    async with httpx.AsyncClient(timeout=30, base_url=renkei.base_url) as site:
        login = await site.post(
            "/sandbox/jcb/legacy/login", data={"user_id": LOGIN, "password": PASSWORD}
        )
        csv = await site.get(
            "/sandbox/jcb/legacy/statements.csv",
            params={"card_id": "jcb-plat-5002"},
            headers={"X-Legacy-Session": login.json()["session"]},
        )
    assert csv.status_code == 200, csv.text
    return csv.content


async def test_the_new_cards_file_is_refused_plainly_and_nothing_is_doubled(
    renkei: Renkei,
) -> None:
    chat, account = await open_change(renkei)
    old_id = await old_card_id(renkei, account["id"])
    before = await renkei.statements(account["id"])
    confirmed = len([r for r in before if r["status"] == "confirmed"])
    await chat.choose("upload")
    await chat.upload("meisai.csv", await new_card_csv(renkei))
    assert chat.where() == (FLOW, "file_refused"), chat.text()
    said = chat.text()
    # Which card's file it is, how many of its rows are already here, and that nothing
    # was taken; never that it was imported "without doubles".
    assert "5002" in said and f"すでに {confirmed} 件" in said, said
    assert "何も取り込んでいません" in said and "重複して取り込んでいません" not in said
    assert len(await renkei.statements(account["id"])) == len(before)
    # The old card's file, sent next, is taken once.
    await chat.upload("old.csv", await old_card_csv(renkei))
    assert chat.where() == (FLOW, "recovered"), chat.text()
    rows = await renkei.statements(account["id"])
    assert len([r for r in rows if r["card_id"] == old_id]) == OLD_CARD_AT_ISSUER
    assert len(rows) == len(before) + OLD_CARD_AT_ISSUER
