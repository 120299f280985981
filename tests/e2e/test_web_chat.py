"""The web chat page in a real headless browser (Debian's chromium driven by Playwright).

Everything is found by what a person sees: button names, field labels, texts. The
whole switch_to_api journey runs through the page and the sandbox issuer's consent
pages, and the page moves on by itself when the back end's events arrive.

Set RENKEI_UPDATE_SCREENSHOT=1 to rewrite docs/images/web-chat.png and the journey's
pictures docs/images/journey-*.png (the README's), drawn with the Japanese font the test
setup installs.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import ConsoleMessage, Page, Route, expect

from i18n import render
from renkei.bootstrap import create_app
from renkei.settings import Settings
from tests.e2e.browser_pages import chromium_page, renkei_on_sqlite
from tests.e2e.conftest import Renkei
from tests.e2e.test_backend_rules import BIZ, PLATINUM, SHOP, switch
from tests.e2e.test_handoff import answer_and_resolve
from tests.e2e.test_reauth_notice import sync_refused

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "images" / "web-chat.png"
JOURNEY = REPO / "docs" / "images"
# The journey waits on the issuer's consent and then the first sync: generous, not flaky.
JOURNEY_TIMEOUT_MS = 30_000
BIZ_BUTTON = re.compile(rf"^{re.escape(BIZ)} \(")  # not ビジネス・ゴールド, ・プラチナ

STALE_BUTTON = render("common.choice_stale", "ja")
RESOLVED = render("handoff.resolved", "ja")


@pytest.fixture
async def renkei(tmp_path: Path) -> AsyncIterator[Renkei]:
    async with renkei_on_sqlite(tmp_path) as client:
        yield client


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with chromium_page(viewport={"width": 820, "height": 1000}, device_scale_factor=1) as tab:
        # A script error or a refused resource (CSP) on the chat page fails the test; the
        # issuer's pages are not ours to judge here.
        problems: list[str] = []
        tab.on("pageerror", lambda error: problems.append(str(error)))

        def console(message: ConsoleMessage) -> None:
            if message.type == "error" and "/chat" in tab.url:
                problems.append(f"{tab.url}: {message.text}")

        tab.on("console", console)
        yield tab
        assert not problems, problems


async def picture(page: Page, name: str) -> None:
    """One step of the journey for the README, when asked to redraw the pictures."""
    if os.environ.get("RENKEI_UPDATE_SCREENSHOT") == "1":
        JOURNEY.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(JOURNEY / f"journey-{name}.png"), full_page=True)


async def try_as_demo_user(page: Page, renkei: Renkei) -> None:
    await page.goto(f"{renkei.base_url}/chat")
    await page.get_by_role("button", name="デモ利用者で試す").click()
    await expect(page.get_by_text("renkei のサポートです")).to_be_visible()


async def test_switch_to_api_journey_through_the_page_and_the_issuer(
    renkei: Renkei, page: Page
) -> None:
    account = await renkei.account(SHOP, BIZ)
    await try_as_demo_user(page, renkei)
    await page.get_by_role("button", name="今の口座をAPI連携に切り替える").click()
    await page.get_by_role("button", name=SHOP).click()
    biz = page.get_by_role("button", name=BIZ_BUTTON)
    await expect(biz).to_be_visible()
    if os.environ.get("RENKEI_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT), full_page=True)
    await picture(page, "1-choose")
    await biz.click()
    await expect(page.get_by_role("link", name="カード会社の認証ページを開く")).to_be_visible()
    await picture(page, "2-consent-link")

    # The issuer's pages, in the same tab, as the person sees them.
    await page.get_by_role("link", name="カード会社の認証ページを開く").click()
    await page.get_by_label("ユーザーID").fill("user_good")
    await page.get_by_label("パスワード").fill("pass_good")
    await page.get_by_role("button", name="ログイン").click()
    await page.get_by_role("button", name="同意して次へ").click()
    await page.get_by_label(re.compile("XXXX-XXXXXX-11001")).check()
    await picture(page, "3-issuer")
    await page.get_by_role("button", name="許可する").click()
    await page.get_by_role("link", name="renkei に戻る").click()
    await expect(page.get_by_role("heading", name="連携が完了しました")).to_be_visible()
    await page.get_by_role("link", name="チャットに戻る").click()

    # Back in the same conversation, which finishes by itself once the first sync is done.
    await expect(page).to_have_url(re.compile(r"/chat\?conversation="))
    await expect(page.get_by_text("切り替えが完了")).to_be_visible(timeout=JOURNEY_TIMEOUT_MS)
    await picture(page, "4-done")
    switched = await renkei.get_account(account["id"])
    assert switched["sync_method"] == "api"
    assert switched["id"] == account["id"]


async def test_keyboard_only(renkei: Renkei, page: Page) -> None:
    await page.goto(f"{renkei.base_url}/chat")
    demo = page.get_by_role("button", name="デモ利用者で試す")
    await tab_until(page, "デモ利用者で試す")
    await expect(demo).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("renkei のサポートです")).to_be_visible()
    # Focus moved to the newest reply, so the next Tab reaches its buttons.
    assert await page.evaluate("document.activeElement.closest('#log') !== null")
    await tab_until(page, "今の口座をAPI連携に切り替える")
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("どの事業所の手続きですか？")).to_be_visible()
    await tab_until(page, SHOP)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("button", name=BIZ_BUTTON)).to_be_visible()
    # Free text through the form: typed, sent with Enter.
    await page.get_by_label("メッセージ").fill("ヘルプ")
    await page.get_by_label("メッセージ").press("Enter")
    await expect(page.get_by_role("log").get_by_text("履歴をそのままに")).to_be_visible()


async def test_a_discovered_card_is_shown_above_the_log_with_its_button(
    renkei: Renkei, page: Page
) -> None:
    platinum = await renkei.account(SHOP, PLATINUM)
    for register in (False, True):
        if register:  # a supplementary card registered to the ID after the first sync
            await renkei.control("amex", "/cards/amex-plat-3002/register")
        answer = await renkei.sync_now(platinum["id"])
        assert answer.status_code == 200, answer.text
    await try_as_demo_user(page, renkei)
    notices = page.get_by_role("region", name="お知らせ")
    offered = notices.get_by_role("listitem").filter(has_text=PLATINUM)
    await expect(offered).to_be_visible()
    assert "追加カード" in await offered.inner_text()
    # The button starts the supplementary-card flow on the basic account, for that card.
    await offered.get_by_role("button", name="追加カードの口座を作る").click()
    await expect(page.get_by_text("オンライン・サービスのIDに登録されています")).to_be_visible()
    create = page.get_by_role("button", name="追加カードの口座を作って連携する")
    await expect(create).to_be_visible()


async def tab_until(page: Page, name: str, presses: int = 30) -> None:
    """Press Tab until the focused control is named ``name`` (fails after ``presses``)."""
    for _ in range(presses):
        await page.keyboard.press("Tab")
        focused = await page.evaluate("document.activeElement && document.activeElement.innerText")
        if focused and name in focused:
            return
    raise AssertionError(f"Tab never reached {name!r}")


async def test_english_with_an_api_token(renkei: Renkei, page: Page) -> None:
    token = (renkei.api.headers["Authorization"]).removeprefix("Bearer ")
    await page.goto(f"{renkei.base_url}/chat")
    await page.get_by_role("button", name="English").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_text("Hello, this is renkei support")).to_be_visible()
    await expect(page.get_by_text("Signed in as owner@example.com")).to_be_visible()
    await page.get_by_label("Message").fill("I want to switch my card to API")
    await page.get_by_role("button", name="Send").click()
    await expect(page.get_by_text("Which office is this for?")).to_be_visible()

    # Back to Japanese from the header: the page and the conversation switch together.
    await page.get_by_role("button", name="日本語").click()
    await expect(page.get_by_text("日本語でご案内します。")).to_be_visible()
    await expect(page.get_by_role("button", name="送信")).to_be_visible()
    url = page.url
    conversation_id = url.split("conversation=", 1)[1]
    answer = await renkei.api.get(f"/conversations/{conversation_id}")
    assert answer.json()["locale"] == "ja"

    # A reload resumes the same conversation, signed in.
    await page.reload()
    await expect(page.get_by_role("button", name=SHOP)).to_be_visible()
    assert page.url == url


async def test_demo_user_only_with_demo_data(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/renkei.sqlite3",
        seed_demo=False,
    )
    app = create_app(settings, start_jobs=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://renkei.test") as client:
        page = await client.get("/chat")
        assert page.status_code == 200
        assert "デモ利用者で試す" not in page.text and "API トークン" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert (await client.post("/chat/demo-session")).status_code == 404
        script = await client.get("/chat/static/chat.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert (await client.get("/chat/static/page.py")).status_code == 404
        assert (await client.get("/chat/me")).status_code == 401


async def start_switching(page: Page, renkei: Renkei) -> None:
    """The demo owner starts switching an account of 山田商店 and sees its cards."""
    await try_as_demo_user(page, renkei)
    await page.get_by_role("button", name="今の口座をAPI連携に切り替える").click()
    await page.get_by_role("button", name=SHOP).click()
    await expect(page.get_by_role("button", name=BIZ_BUTTON)).to_be_visible()


async def expect_the_earlier_steps(page: Page) -> None:
    """The greeting, what the person chose and what was asked in between, as read."""
    log = page.get_by_role("log")
    await expect(log.get_by_text("renkei のサポートです")).to_be_visible()
    await expect(log.get_by_text("どの事業所の手続きですか？")).to_be_visible()
    mine = page.locator("#log .mine")
    await expect(mine.filter(has_text="今の口座をAPI連携に切り替える")).to_have_count(1)
    await expect(mine.filter(has_text=SHOP)).to_have_count(1)
    # The greeting's procedures are still shown, but no longer as buttons to press.
    past = log.get_by_role("list", name="選べなくなった選択肢").first
    await expect(past.get_by_text("今の口座をAPI連携に切り替える")).to_be_visible()


async def expect_no_menu_button(page: Page) -> None:
    """Mid-procedure the menu's buttons are not live (a finished one offers them again)."""
    menu = page.get_by_role("log").get_by_role("button", name="今の口座をAPI連携に切り替える")
    await expect(menu).to_have_count(0)


async def test_a_reload_mid_flow_draws_the_whole_conversation(renkei: Renkei, page: Page) -> None:
    await start_switching(page, renkei)
    await page.reload()
    await expect_the_earlier_steps(page)
    await expect_no_menu_button(page)
    # Only the current step's buttons are live, and they still work.
    biz = page.get_by_role("button", name=BIZ_BUTTON)
    await expect(biz).to_have_count(1)
    await biz.click()
    await expect(page.get_by_role("link", name="カード会社の認証ページを開く")).to_be_visible()
    await expect(page.locator("#log .mine").filter(has_text=BIZ)).to_have_count(1)


async def test_back_from_the_issuer_the_whole_conversation_is_drawn(
    renkei: Renkei, page: Page
) -> None:
    await start_switching(page, renkei)
    await page.get_by_role("button", name=BIZ_BUTTON).click()
    await page.get_by_role("link", name="カード会社の認証ページを開く").click()
    await page.get_by_label("ユーザーID").fill("user_good")
    await page.get_by_label("パスワード").fill("pass_good")
    await page.get_by_role("button", name="ログイン").click()
    await page.get_by_role("button", name="同意して次へ").click()
    await page.get_by_label(re.compile("XXXX-XXXXXX-11001")).check()
    await page.get_by_role("button", name="許可する").click()
    await page.get_by_role("link", name="renkei に戻る").click()
    await page.get_by_role("link", name="チャットに戻る").click()

    await expect(page).to_have_url(re.compile(r"/chat\?conversation="))
    await expect_the_earlier_steps(page)
    await expect(page.locator("#log .mine").filter(has_text=BIZ)).to_have_count(1)
    # The consent link of before is words now: it was used, and cannot be opened again.
    await expect(page.locator("#log .link.past")).to_have_text(["カード会社の認証ページを開く"])
    await expect(page.get_by_role("link", name="カード会社の認証ページを開く")).to_have_count(0)


async def test_two_tabs_share_the_history_and_a_stale_button_is_not_carried_out(
    renkei: Renkei, page: Page
) -> None:
    await start_switching(page, renkei)
    other = await page.context.new_page()
    await other.goto(page.url)  # the same conversation, signed in by the same browser
    await expect_the_earlier_steps(other)
    await expect_no_menu_button(other)
    await expect(other.get_by_role("button", name=BIZ_BUTTON)).to_be_visible()

    # The second tab is not told of what the first does (its reads are held back).
    held = asyncio.Event()

    async def hold_reads(route: Route) -> None:
        if route.request.method == "GET":
            await held.wait()
        await route.continue_()

    await other.route(re.compile(r"/conversations/[0-9a-f]+$"), hold_reads)
    await page.get_by_role("button", name=BIZ_BUTTON).click()
    await expect(page.get_by_role("link", name="カード会社の認証ページを開く")).to_be_visible()
    conversation_id = page.url.split("conversation=", 1)[1]
    moved = (await renkei.api.get(f"/conversations/{conversation_id}")).json()

    # "Back" of the card step, pressed in the tab that still shows it: not carried out.
    await other.get_by_role("button", name="戻る", exact=True).click()
    await expect(other.get_by_text(STALE_BUTTON)).to_be_visible(timeout=JOURNEY_TIMEOUT_MS)
    now = (await renkei.api.get(f"/conversations/{conversation_id}")).json()
    assert (now["flow"], now["state"]) == (moved["flow"], moved["state"])
    # That tab now shows the other's choice too, and the step as it stands.
    await expect(other.locator("#log .mine").filter(has_text=BIZ)).to_have_count(
        1, timeout=JOURNEY_TIMEOUT_MS
    )
    await expect(other.get_by_role("link", name="カード会社の認証ページを開く")).to_be_visible(
        timeout=JOURNEY_TIMEOUT_MS
    )
    held.set()
    # The first tab learns of the second's press at its next read (a 2 s poll).
    await expect(page.get_by_text(STALE_BUTTON)).to_be_visible(timeout=JOURNEY_TIMEOUT_MS)


async def test_a_reauth_notice_says_to_stop_the_old_amex_link_first_with_its_page(
    renkei: Renkei, page: Page
) -> None:
    account = await renkei.account(SHOP, BIZ)
    await renkei.consent(await switch(renkei, account["id"]), cards=["amex-biz-1001"])
    await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    grants = (await renkei.control_get("amex", "/grants"))["grants"]
    grant = next(g for g in grants if "amex-biz-1001" in g["card_ids"] and g["status"] == "active")
    # The tokens die; the grant stays registered at Amex and keeps holding the card (R10).
    await renkei.control("amex", f"/grants/{grant['grant_id']}/expire-tokens")
    await sync_refused(renkei, account["id"])
    await try_as_demo_user(page, renkei)
    notices = page.get_by_role("region", name="お知らせ")
    told = notices.get_by_role("listitem").filter(has_text="再認証が必要です")
    await expect(told).to_be_visible()
    assert "「登録情報の変更」→「外部サービスとの連携」" in await told.inner_text()
    site = told.get_by_role("link", name=re.compile("会員サイト"))
    href = await site.get_attribute("href") or ""
    assert href.startswith("http") and href.endswith("/settings/services"), href
    # The page comes before the button that goes on to re-authenticate.
    order = await told.evaluate(
        "item => [...item.querySelectorAll('a, button')].map(e => e.tagName)"
    )
    assert order == ["A", "BUTTON"], order
    # Stopped on the member site: the notice stays, and says nothing of stopping.
    await renkei.stop_link_on_member_site(account["card"]["masked_number"])
    office = await renkei.office(SHOP)
    for _ in range(100):  # the issuer's webhook arrives on its own
        listed = (await renkei.api.get(f"/offices/{office['id']}/notices")).json()
        if not any(n["stop_at_member_site"] for n in listed):
            break
        await asyncio.sleep(0.1)
    await page.reload()
    told = page.get_by_role("listitem").filter(has_text="再認証が必要です")
    await expect(told).to_be_visible()
    assert "外部サービスとの連携" not in await told.inner_text()
    await expect(told.get_by_role("link")).to_have_count(0)


async def test_an_answer_given_just_before_support_ends_the_handoff_is_shown(
    renkei: Renkei, page: Page
) -> None:
    """Support answers and resolves between two of the page's polls: the answer is
    drawn before the assistant's return, and is still there after a reload."""
    await try_as_demo_user(page, renkei)
    box = page.get_by_label("メッセージ")
    await box.fill("担当者と話したい")
    await box.press("Enter")
    await expect(page.get_by_text("担当者に引き継ぎました")).to_be_visible()
    conversation_id = page.url.split("conversation=", 1)[1]
    read = await renkei.api.get(f"/conversations/{conversation_id}")
    assert read.status_code == 200, read.text
    await answer_and_resolve(renkei, read.json()["handoff"]["id"], "カードの設定を直しました")
    answer = page.locator("#log .support").filter(has_text="カードの設定を直しました")
    back = page.locator("#log .theirs").filter(has_text=RESOLVED)
    for _ in range(2):  # as it arrives, and drawn again after a reload
        await expect(answer).to_have_count(1, timeout=JOURNEY_TIMEOUT_MS)
        await expect(back).to_have_count(1)
        kinds = await page.locator("#log > li").evaluate_all(
            "(items, back) => items.map((item) => item.classList.contains('support')"
            " ? 'support' : item.textContent.includes(back) ? 'back' : 'other')",
            RESOLVED,
        )
        assert kinds.index("support") < kinds.index("back"), kinds
        await page.reload()
