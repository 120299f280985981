"""A member-site link of the web chat in a real browser: it opens in a new tab, keeps the
page it names through the issuer's login, and the way back to the conversation is one
click (Debian's chromium driven by Playwright, on the simulated Amex)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from renkei.demo import RENEWAL_ACCOUNT, RENEWAL_LOGIN
from tests.e2e.browser_pages import chromium_page, renkei_on_sqlite
from tests.e2e.conftest import Renkei
from tests.e2e.test_accessibility import serious_findings
from tests.e2e.test_backend_rules import SHOP
from tests.e2e.test_web_chat import try_as_demo_user

SERVICES_LINK = re.compile("「外部サービスとの連携」を開く")


@pytest.fixture
async def renkei(tmp_path: Path) -> AsyncIterator[Renkei]:
    async with renkei_on_sqlite(tmp_path) as client:
        yield client


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with chromium_page() as tab:
        yield tab


async def test_a_member_site_link_lands_on_its_page_after_the_login_and_comes_back(
    renkei: Renkei, page: Page
) -> None:
    account = await renkei.account(SHOP, RENEWAL_ACCOUNT)
    assert account["sync_method"] == "api"  # linked at Amex: the flow sends to the site
    await try_as_demo_user(page, renkei)
    await page.get_by_role("button", name="アメックスのAPI連携口座を削除したい").click()
    await page.get_by_role("button", name=SHOP).click()
    await page.get_by_role("button", name=re.compile(f"^{RENEWAL_ACCOUNT} ")).click()
    services = page.get_by_role("link", name=SERVICES_LINK)
    await expect(services).to_be_visible()
    await expect(services).to_have_attribute("target", "_blank")
    assert set((await services.get_attribute("rel") or "").split()) >= {"noopener", "noreferrer"}
    chat_url = page.url
    assert re.search(r"/chat\?conversation=", chat_url)

    # The member site, in a tab of its own: the login first, then the page named.
    async with page.context.expect_page() as opened:
        await services.click()
    site = await opened.value
    await expect(site.get_by_label("ユーザーID")).to_be_visible()
    findings = await serious_findings(site)  # the login, with the way back
    await site.get_by_label("ユーザーID").fill(RENEWAL_LOGIN)
    await site.get_by_label("パスワード").fill("pass_good")
    await site.get_by_role("button", name="ログイン").click()
    await expect(site.get_by_role("heading", name="外部サービスとの連携")).to_be_visible()
    masked = re.escape(account["card"]["masked_number"])
    await expect(site.get_by_role("cell", name=re.compile(masked))).to_be_visible()
    findings += await serious_findings(site)  # the page named, with the way back
    assert not findings, "\n".join(findings)

    # The chat stayed where it was.
    assert page.url == chat_url
    await expect(page.get_by_role("link", name=SERVICES_LINK)).to_be_visible()

    # One click back, to the same conversation at the same step.
    await site.get_by_role("link", name="renkei に戻る").click()
    await expect(site).to_have_url(chat_url)
    await expect(site.get_by_role("link", name=SERVICES_LINK)).to_be_visible()

    # A download of renkei's own stays in the chat's tab: it leaves the page as it is.
    await page.get_by_role("button", name="明細をダウンロードする").click()
    download = page.get_by_role("link", name="明細（CSV）をダウンロード")
    await expect(download).to_be_visible()
    assert await download.get_attribute("target") is None
    await expect(page.get_by_role("link", name=SERVICES_LINK)).to_have_attribute("target", "_blank")
