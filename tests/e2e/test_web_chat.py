"""The web chat page in a real headless browser (Debian's chromium driven by Playwright).

Everything is found by what a person sees: button names, field labels, texts. The
whole switch_to_api journey runs through the page and the sandbox issuer's consent
pages, and the page moves on by itself when the back end's events arrive.

Set RENKEI_UPDATE_SCREENSHOT=1 to rewrite docs/images/web-chat.png (the README's).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import ConsoleMessage, Page, async_playwright, expect

from renkei.bootstrap import create_app
from renkei.settings import Settings
from tests.e2e.conftest import Renkei, running_renkei
from tests.e2e.test_backend_rules import BIZ, SHOP

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "images" / "web-chat.png"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
# The journey waits on the issuer's consent and then the first sync: generous, not flaky.
JOURNEY_TIMEOUT_MS = 30_000
BIZ_BUTTON = re.compile(rf"^{re.escape(BIZ)} \(")  # not ビジネス・ゴールド, ・プラチナ


def chromium_path() -> str:
    """Debian's chromium; a missing browser fails loudly rather than skipping the journey."""
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is not installed: scripts/test installs it (apt-get)")
    return found


@pytest.fixture
async def renkei(tmp_path: Path) -> AsyncIterator[Renkei]:
    """SQLite only: the page is the same whatever database sits behind the API."""
    url = f"sqlite+aiosqlite:///{tmp_path}/renkei.sqlite3"
    async with running_renkei(url, tmp_path / "data") as client:
        yield client


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS
        )
        context = await browser.new_context(
            locale="ja-JP", viewport={"width": 820, "height": 1000}, device_scale_factor=1
        )
        tab = await context.new_page()
        # A script error or a refused resource (CSP) on the chat page fails the test; the
        # issuer's pages are not ours to judge here.
        problems: list[str] = []
        tab.on("pageerror", lambda error: problems.append(str(error)))

        def console(message: ConsoleMessage) -> None:
            if message.type == "error" and "/chat" in tab.url:
                problems.append(f"{tab.url}: {message.text}")

        tab.on("console", console)
        try:
            yield tab
        finally:
            await browser.close()
        assert not problems, problems


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
    await biz.click()

    # The issuer's pages, in the same tab, as the person sees them.
    await page.get_by_role("link", name="カード会社の認証ページを開く").click()
    await page.get_by_label("ユーザーID").fill("user_good")
    await page.get_by_label("パスワード").fill("pass_good")
    await page.get_by_role("button", name="ログイン").click()
    await page.get_by_role("button", name="同意して次へ").click()
    await page.get_by_label(re.compile("XXXX-XXXXXX-11001")).check()
    await page.get_by_role("button", name="許可する").click()
    await page.get_by_role("link", name="renkei に戻る").click()
    await expect(page.get_by_role("heading", name="連携が完了しました")).to_be_visible()
    await page.get_by_role("link", name="チャットに戻る").click()

    # Back in the same conversation, which finishes by itself once the first sync is done.
    await expect(page).to_have_url(re.compile(r"/chat\?conversation="))
    await expect(page.get_by_text("切り替えが完了")).to_be_visible(timeout=JOURNEY_TIMEOUT_MS)
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
    await expect(page.get_by_text("履歴をそのままに")).to_be_visible()


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
