"""Every page a person sees passes axe-core with no serious or critical finding.

axe-core (shipped by axe-playwright-python) runs in Debian's chromium on renkei's web
chat (signed out, mid-procedure, on a phone), on the consent result page, and on the
simulated issuers' login, consent and member-site pages.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, Route, ViewportSize, expect

from tests.e2e.browser_pages import chromium_page, renkei_on_sqlite
from tests.e2e.conftest import ADMIN_TOKEN, Renkei
from tests.e2e.test_backend_rules import SHOP
from tests.e2e.test_web_chat import BIZ_BUTTON, try_as_demo_user

SERIOUS = {"serious", "critical"}
PHONE: ViewportSize = {"width": 375, "height": 740}
TAP_TARGET_PX = 44


@pytest.fixture
async def renkei(tmp_path: Path) -> AsyncIterator[Renkei]:
    async with renkei_on_sqlite(tmp_path) as client:
        yield client


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with chromium_page(viewport=PHONE) as tab:
        yield tab


async def serious_findings(page: Page) -> list[str]:
    results = await Axe().run(page)
    violations: list[dict[str, Any]] = results.response["violations"]
    return [
        f"{page.url} {v['id']} ({v['impact']}): "
        + "; ".join(node["html"][:120] for node in v["nodes"][:3])
        for v in violations
        if v["impact"] in SERIOUS
    ]


async def test_every_page_of_a_journey_has_no_serious_accessibility_finding(
    renkei: Renkei, page: Page
) -> None:
    findings: list[str] = []
    await page.goto(f"{renkei.base_url}/chat")
    await expect(page.get_by_role("button", name="デモ利用者で試す")).to_be_visible()
    findings += await serious_findings(page)

    await try_as_demo_user(page, renkei)
    await page.get_by_role("button", name="今の口座をAPI連携に切り替える").click()
    await page.get_by_role("button", name=SHOP).click()
    await expect(page.get_by_role("button", name=BIZ_BUTTON)).to_be_visible()
    findings += await serious_findings(page)
    await page.get_by_role("button", name=BIZ_BUTTON).click()

    await page.get_by_role("link", name="カード会社の認証ページを開く").click()
    await expect(page.get_by_label("ユーザーID")).to_be_visible()
    findings += await serious_findings(page)  # the issuer's login
    await page.get_by_label("ユーザーID").fill("user_good")
    await page.get_by_label("パスワード").fill("pass_good")
    await page.get_by_role("button", name="ログイン").click()
    findings += await serious_findings(page)  # what renkei asks for
    await page.get_by_role("button", name="同意して次へ").click()
    findings += await serious_findings(page)  # the card to allow
    await page.get_by_label(re.compile("XXXX-XXXXXX-11001")).check()
    await page.get_by_role("button", name="許可する").click()
    await page.get_by_role("link", name="renkei に戻る").click()
    await expect(page.get_by_role("heading", name="連携が完了しました")).to_be_visible()
    findings += await serious_findings(page)  # renkei's consent result
    assert await page.get_by_role("main").count() == 1

    await page.goto(f"{renkei.base_url}/sandbox/amex/member/login")
    findings += await serious_findings(page)
    await page.get_by_label("ユーザーID").fill("user_good")
    await page.get_by_label("パスワード").fill("pass_good")
    await page.get_by_role("button", name="ログイン").click()
    findings += await serious_findings(page)
    assert not findings, "\n".join(findings)


async def test_the_chat_on_a_phone_answers_like_a_chat(renkei: Renkei, page: Page) -> None:
    """Tap targets of 44 px, a typing indicator while a turn runs, a time on each turn."""
    await try_as_demo_user(page, renkei)
    log = page.get_by_role("log")
    await expect(log.get_by_role("listitem")).to_have_count(1)  # a list inside the log

    # Hold the assistant's answer back, as a slow server would.
    release = asyncio.Event()

    async def slow(route: Route) -> None:
        await release.wait()
        await route.continue_()

    await page.route(re.compile(r"/messages$"), slow)
    await page.get_by_role("button", name="今の口座をAPI連携に切り替える").click()
    typing = page.get_by_text("回答を作成しています")
    await expect(typing).to_be_visible()
    release.set()
    await expect(page.get_by_role("button", name=SHOP)).to_be_visible()
    await expect(typing).to_be_hidden()

    times = page.locator("#log time")
    await expect(times).to_have_count(3)  # the greeting, the person's choice, the answer
    assert re.fullmatch(r"\d{2}:\d{2}", (await times.first.inner_text()).strip())

    small: list[str] = []
    for control in await page.locator("button:visible, a:visible, label.button-like").all():
        box = await control.bounding_box()
        if box is not None and box["height"] < TAP_TARGET_PX:
            small.append(f"{(await control.inner_text()).strip()!r}: {box['height']:.0f} px")
    assert not small, small


async def test_a_conversation_drawn_again_has_no_serious_accessibility_finding(
    renkei: Renkei, page: Page
) -> None:
    """After a reload the earlier steps are drawn, their buttons as words: axe finds nothing."""
    await try_as_demo_user(page, renkei)
    await page.get_by_role("button", name="今の口座をAPI連携に切り替える").click()
    await page.get_by_role("button", name=SHOP).click()
    await page.get_by_role("button", name=BIZ_BUTTON).click()
    await expect(page.get_by_role("link", name="カード会社の認証ページを開く")).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("list", name="選べなくなった選択肢").first).to_be_visible()
    findings = await serious_findings(page)
    assert not findings, "\n".join(findings)


async def test_support_answers_a_web_chat_handoff_from_the_support_page(
    renkei: Renkei, page: Page
) -> None:
    """The support page passes axe too, and what support answers there shows in the chat."""
    await try_as_demo_user(page, renkei)
    await page.get_by_role("button", name="担当者と話す").click()
    await expect(page.get_by_text("担当者に引き継ぎました")).to_be_visible()
    await page.get_by_label("メッセージ").fill("明細が届きません")
    await page.get_by_label("メッセージ").press("Enter")
    await expect(page.get_by_text("担当者の返信を待っています")).to_be_visible()
    assert page.context.browser is not None
    desk = await (await page.context.browser.new_context(locale="ja-JP")).new_page()
    await desk.goto(f"{renkei.base_url}/support/sign-in")
    findings = await serious_findings(desk)
    await desk.get_by_label("サポート管理者のトークン").fill(ADMIN_TOKEN)
    await desk.get_by_role("button", name="サインイン").click()
    await expect(desk.get_by_role("heading", name="担当者への引き継ぎ", exact=True)).to_be_visible()
    await expect(desk.get_by_text("明細が届きません")).to_be_visible()
    findings += await serious_findings(desk)
    assert not findings, "\n".join(findings)
    await desk.get_by_label(re.compile("回答")).fill("カード会社の障害で遅れています")
    await desk.get_by_role("button", name="回答を送る").click()
    await expect(page.get_by_text("担当者より: カード会社の障害で遅れています")).to_be_visible()
    await desk.get_by_role("button", name="解決済みにする").click()
    await expect(desk.get_by_text("対応待ちの引き継ぎはありません")).to_be_visible()
    await expect(page.get_by_text("担当者が対応を終えました")).to_be_visible()
