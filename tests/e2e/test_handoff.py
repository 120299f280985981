"""Handed over to a person: the assistant keeps quiet while support owns the conversation,
support's answers reach it wherever it lives, and "resolved" gives it back.

Without any support route the assistant says so and goes on helping; it never says it
handed over.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from bot.terminal import TerminalChat
from bot.web.support import COOKIE
from i18n import render
from tests.e2e.chat import Chat
from tests.e2e.conftest import ADMIN_TOKEN, OWNER, Renkei, running_renkei
from tests.e2e.test_backend_rules import BIZ, SHOP
from tests.e2e.test_slack import DM, SUPPORT_CHANNEL, Slack, _slack, button
from tests.support.databases import database_url
from tests.support.fake_slack import Call

SUPPORT_USER = "U0SUPPORT"


async def test_without_a_support_route_nobody_is_promised(tmp_path: Path) -> None:
    with database_url("sqlite", tmp_path) as url:
        # No support channel in Slack, and no support administrator to read the page.
        async with running_renkei(url, tmp_path / "data", admin_token=None) as renkei:
            chat = Chat(renkei)
            await chat.start(office_id=(await renkei.office(SHOP))["id"])
            await chat.choose("status")
            await chat.say("担当者と話したい")
            assert chat.said("handoff.no_route")
            assert "担当者に引き継ぎました" not in chat.text()
            assert chat.last["handoff"] is None
            # What it can do instead is on offer, and the next message is answered.
            assert "help" in chat.choices()
            await chat.choose("help")
            assert chat.said("status.help")


async def test_while_support_owns_the_conversation_the_assistant_is_quiet(
    renkei: Renkei,
) -> None:
    chat = Chat(renkei)
    await chat.start(office_id=(await renkei.office(SHOP))["id"])
    await chat.choose("status")
    where = chat.where()
    await chat.choose("handoff")
    assert chat.said("common.handoff_done") and chat.choices() == ["handoff_end"]
    assert chat.last["handoff"]["status"] == "open"
    await chat.say("明細が3日前から届きません")
    assert chat.last["replies"] == []  # no flow reply, no 「その選択肢は今の手順では選べません」
    assert chat.where() == where
    await chat.say("まだですか")
    assert chat.last["replies"] == [] and chat.last["handoff"]["answers"] == []
    # Back to the assistant (the button of the handoff's answer): it resumes where the
    # flow was.
    await chat.say("アシスタントに戻る")
    assert chat.said("handoff.resumed") and chat.where() == where
    assert chat.last["handoff"] is None
    for refusal in ("common.not_understood", "common.choice_stale", "common.file_unexpected"):
        assert render(refusal, "ja") not in chat.text()


# ------------------------------------------------------------------ Slack, both ways
@pytest.fixture
async def staffed_slack(database: str, tmp_path: Path) -> AsyncIterator[Slack]:
    """renkei with Slack and a support channel where handoffs arrive."""
    async for running in _slack(database, tmp_path, slack_support_channel=SUPPORT_CHANNEL):
        running.fake.add_user(SUPPORT_USER, "support-person@example.com")
        yield running


async def support_says(slack: Slack, root: Call, text: str) -> None:
    """A support person replies in the handoff's thread of the support channel."""
    assert root.ts is not None
    reply = {
        "type": "message",
        "channel": SUPPORT_CHANNEL,
        "channel_type": "channel",
        "user": SUPPORT_USER,
        "text": text,
        "ts": f"{time.time():.6f}",
        "thread_ts": root.ts,
    }
    assert (await slack.event(reply)).status_code == 200


async def test_a_slack_dm_handoff_is_answered_from_the_support_thread(
    staffed_slack: Slack,
) -> None:
    slack = staffed_slack
    await slack.dm("担当者と話したい")
    done = await slack.reply("担当者に引き継ぎました")
    root = await slack.reply("担当者への引き継ぎ", channel=SUPPORT_CHANNEL)
    assert root.ts and button(root, label="解決済みにする")
    # The person writes: it goes to the thread, and the assistant says nothing.
    mark = slack.fake.mark()
    await slack.dm("明細が3日前から届きません")
    forwarded = await slack.reply("明細が3日前から届きません", channel=SUPPORT_CHANNEL, after=mark)
    assert forwarded.args.get("thread_ts") == root.ts
    # Support answers in the thread: the person hears it in their DM.
    await support_says(slack, root, "確認します。少しお待ちください。")
    answer = await slack.reply("担当者より: 確認します。少しお待ちください。", after=mark)
    assert [c for c in slack.fake.posts(DM)[1:] if c.ts and "選べません" in c.all_text()] == []
    quiet = [c for c in slack.fake.calls[mark:] if c.args.get("channel") == DM]
    assert quiet == [answer]  # nothing but support's answer reached the DM
    # Support marks it resolved: the assistant is back, and answers again.
    mark = slack.fake.mark()
    await slack.click(root, button(root, label="解決済みにする"))
    await slack.reply("担当者が対応を終えました", after=mark)
    await slack.reply("解決済みになりました", channel=SUPPORT_CHANNEL, after=mark)
    updated = await slack.fake.wait_for("chat.update", after=mark)
    assert updated.buttons() == []  # resolved once
    mark = slack.fake.mark()
    await slack.dm("ヘルプ")
    await slack.reply("メニューから手続きを選んで", after=mark)
    assert done.buttons() and button(done, label="アシスタントに戻る")


async def test_a_web_chat_handoff_is_answered_from_slack(staffed_slack: Slack) -> None:
    slack = staffed_slack
    chat = Chat(slack.renkei)
    await chat.start(office_id=(await slack.renkei.office(SHOP))["id"])
    await chat.choose("status")
    where = chat.where()
    await chat.choose("handoff")
    root = await slack.reply("担当者への引き継ぎ", channel=SUPPORT_CHANNEL)
    await chat.say("口座の同期が止まっています")
    asked = await slack.reply("口座の同期が止まっています", channel=SUPPORT_CHANNEL)
    assert asked.args.get("thread_ts") == root.ts
    await support_says(slack, root, "再認証をお願いします")
    # Shown at the web chat's next read of the conversation.
    answered = await chat.wait_until(
        lambda c: bool(c["handoff"] and c["handoff"]["status"] == "answered")
    )
    assert answered["handoff"]["answers"][0]["text"] == "担当者より: 再認証をお願いします"
    await slack.click(root, button(root, label="解決済みにする"))
    resumed = await chat.wait_until(lambda c: c["handoff"] is None)
    assert chat.said("handoff.resolved") and chat.where() == where, resumed
    # A late reply in the thread reaches nobody, and support is told so.
    await support_says(slack, root, "念のため")
    await slack.reply("すでに解決済み", channel=SUPPORT_CHANNEL)


async def test_a_handoff_slack_refused_still_brings_support_answers_to_the_person(
    staffed_slack: Slack,
) -> None:
    """Slack refused the handoff's first message for good, so it has no thread: what is
    said in it is not held waiting for one, and support answers from the page."""
    slack = staffed_slack
    slack.fake.fail(
        "chat.postMessage",
        "msg_blocks_too_long",
        when=lambda a: a.get("channel") == SUPPORT_CHANNEL,
    )
    await slack.dm("担当者と話したい")
    await slack.reply("担当者に引き継ぎました")
    await slack.dm("明細が3日前から届きません")
    desk = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=slack.renkei.base_url, headers=desk, timeout=30) as page:
        for _ in range(300):  # the DM is handled after Slack's ack
            listed = (await page.get("/support")).text
            if "明細が3日前から届きません" in listed:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the person's words never reached the support page")
        [handoff_id] = set(re.findall(r"/support/handoffs/([^/\"]+)/answer", listed))
        mark = slack.fake.mark()
        answered = await page.post(
            f"/support/handoffs/{handoff_id}/answer", data={"text": "確認します"}
        )
        assert answered.status_code == 303
    await slack.reply("担当者より: 確認します", after=mark)
    refused = [c for c in slack.fake.of("chat.postMessage", ok=False) if c.error]
    assert [c.args.get("channel") for c in refused] == [SUPPORT_CHANNEL]  # tried once
    assert slack.fake.posts(SUPPORT_CHANNEL) == []  # nothing posted out of its thread


# ------------------------------------------------------------------ the support page
async def test_the_support_page_is_for_support_administrators_only(renkei: Renkei) -> None:
    chat = Chat(renkei)
    await chat.start(office_id=(await renkei.office(SHOP))["id"])
    await chat.choose("handoff")
    owner_token = renkei.api.headers["Authorization"].removeprefix("Bearer ")
    async with httpx.AsyncClient(base_url=renkei.base_url, timeout=30) as browser:
        nobody = await browser.get("/support")
        assert nobody.status_code == 401
        assert nobody.json()["error"]["code"] == "unauthenticated"
        member = await browser.get("/support", headers={"Authorization": f"Bearer {owner_token}"})
        assert member.status_code == 403  # an office admin sees no other office's handoffs
        assert member.json()["error"]["code"] == "forbidden"
        signed = await browser.post("/support/sign-in", data={"token": owner_token})
        assert signed.status_code == 403 and COOKIE not in browser.cookies
        stranger = await browser.post("/support/sign-in", data={"token": "not-a-token"})
        assert stranger.status_code == 401
        forged = await browser.post(
            "/support/sign-in",
            data={"token": ADMIN_TOKEN},
            headers={"Origin": "https://elsewhere.example"},
        )
        assert forged.status_code == 403 and COOKIE not in browser.cookies
        answer = await browser.post(
            f"/support/handoffs/{chat.last['handoff']['id']}/answer",
            data={"text": "x"},
            headers={"Authorization": f"Bearer {owner_token}"},
        )
        assert answer.status_code == 403
        admin = await browser.get("/support", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert admin.status_code == 200 and OWNER in admin.text
    await chat.refresh()
    assert chat.last["handoff"]["answers"] == []  # nothing reached the person


async def test_a_handoff_is_answered_and_resolved_on_the_support_page(renkei: Renkei) -> None:
    chat = Chat(renkei)
    await chat.start(office_id=(await renkei.office(SHOP))["id"])
    await chat.choose("status")
    await chat.choose_label(BIZ)
    where = chat.where()
    await chat.say("担当者と話したい")
    await chat.say("同期が止まっているようです")
    handoff_id = chat.last["handoff"]["id"]
    async with httpx.AsyncClient(base_url=renkei.base_url, timeout=30) as browser:
        signed = await browser.post("/support/sign-in", data={"token": ADMIN_TOKEN})
        assert signed.status_code == 303 and COOKIE in browser.cookies
        page = await browser.get("/support")
        assert page.status_code == 200
        # The person, the office, the account's state, the transcript and their words.
        for shown in (OWNER, SHOP, BIZ, "同期が止まっているようです", "担当者と話したい"):
            assert shown in page.text, shown
        answered = await browser.post(
            f"/support/handoffs/{handoff_id}/answer", data={"text": "再認証をお願いします"}
        )
        assert answered.status_code == 303
        await chat.refresh()
        assert [a["text"] for a in chat.last["handoff"]["answers"]] == [
            "担当者より: 再認証をお願いします"
        ]
        assert "再認証をお願いします" in (await browser.get("/support")).text
        resolved = await browser.post(f"/support/handoffs/{handoff_id}/resolve")
        assert resolved.status_code == 303
        assert handoff_id not in (await browser.get("/support")).text
        again = await browser.post(f"/support/handoffs/{handoff_id}/answer", data={"text": "x"})
        assert again.status_code == 404
    await chat.refresh()
    assert chat.last["handoff"] is None and chat.said("handoff.resolved")
    assert chat.where() == where


Step = str | Callable[[TerminalChat], Awaitable[str]]
"""What the person types at the terminal's prompt, or what support does meanwhile (then
what is typed)."""


async def terminal_screen(renkei: Renkei, steps: list[Step]) -> str:
    """The screen of a terminal conversation of the owner's, step by step."""
    shown: list[str] = []
    owner = renkei.api.headers["Authorization"]
    async with httpx.AsyncClient(
        base_url=renkei.base_url, headers={"Authorization": owner}, timeout=30
    ) as api:
        terminal = TerminalChat(api, user=OWNER, locale="ja", show=shown.append)
        script = iter(steps)

        async def ask(prompt: str) -> str | None:
            step = next(script)
            return step if isinstance(step, str) else await step(terminal)

        terminal.ask = ask
        assert await terminal.run() == 0
    return "\n".join(shown)


async def test_a_terminal_handoff_shows_support_answers_at_the_next_read(renkei: Renkei) -> None:
    async def answer_from_the_support_page(terminal: TerminalChat) -> str:
        handoff = terminal.conversation["handoff"]
        async with httpx.AsyncClient(base_url=renkei.base_url, timeout=30) as desk:
            answered = await desk.post(
                f"/support/handoffs/{handoff['id']}/answer",
                data={"text": "いま確認しています"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
        assert answered.status_code == 303
        return ""  # Enter alone: the terminal reads the conversation again

    screen = await terminal_screen(
        renkei, ["担当者と話したい", "急ぎです", answer_from_the_support_page, "q"]
    )
    assert "担当者に引き継ぎました" in screen
    assert screen.count("担当者より: いま確認しています") == 1
    assert "選べません" not in screen and "読み取れませんでした" not in screen


async def answer_and_resolve(renkei: Renkei, handoff_id: str, text: str) -> None:
    """Support answers on the support page and, at once, marks the handoff resolved."""
    desk = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=renkei.base_url, headers=desk, timeout=30) as page:
        answered = await page.post(f"/support/handoffs/{handoff_id}/answer", data={"text": text})
        assert answered.status_code == 303
        resolved = await page.post(f"/support/handoffs/{handoff_id}/resolve")
        assert resolved.status_code == 303


async def test_an_answer_given_just_before_the_end_stays_in_the_conversation(
    renkei: Renkei,
) -> None:
    """The person never read the conversation while support answered and resolved: the
    answer is in its history, before the assistant's return, and still after a reload."""
    chat = Chat(renkei)
    await chat.start(office_id=(await renkei.office(SHOP))["id"])
    await chat.choose("status")
    await chat.say("担当者と話したい")
    await chat.say("同期が止まっています")
    await answer_and_resolve(renkei, chat.last["handoff"]["id"], "再認証をお願いします")
    await chat.refresh()
    assert chat.last["handoff"] is None and chat.said("handoff.resolved")
    answer = await renkei.api.get(f"/conversations/{chat.last['id']}/history")
    assert answer.status_code == 200, answer.text
    lines = answer.json()["lines"]
    spoken = [(line["speaker"], line["text"]) for line in lines if line["speaker"] != "assistant"]
    assert spoken[-2:] == [
        ("person", "同期が止まっています"),
        ("support", "担当者より: 再認証をお願いします"),
    ]
    [support] = [line for line in lines if line["speaker"] == "support"]
    assert support["seq"] < chat.last["turn"]  # before the assistant's return
    assert lines[-1]["seq"] == chat.last["turn"] and lines[-1]["speaker"] == "assistant"


async def test_a_terminal_shows_an_answer_given_just_before_the_end(renkei: Renkei) -> None:
    async def answered_and_resolved(terminal: TerminalChat) -> str:
        await answer_and_resolve(renkei, terminal.conversation["handoff"]["id"], "設定を直しました")
        return ""  # Enter alone: the terminal reads the conversation again

    screen = await terminal_screen(renkei, ["担当者と話したい", answered_and_resolved, "q"])
    said = screen.index("担当者より: 設定を直しました")
    assert screen.count("担当者より: 設定を直しました") == 1
    assert said < screen.index(render("handoff.resolved", "ja").splitlines()[0])
