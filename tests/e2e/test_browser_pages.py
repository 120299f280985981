"""renkei's pages as a browser meets them: never framed, every HTML page with a policy,
/docs with nothing from a CDN, password steps masked in the web chat and the terminal."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from playwright.async_api import Page, Request, expect
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import HTMLResponse
from starlette.routing import Route

from bot.terminal import TerminalChat
from tests.e2e.chat import Chat
from tests.e2e.conftest import Renkei, running_renkei
from tests.e2e.test_backend_rules import BIZ, SHOP, switch
from tests.e2e.test_flow_jcb_card_change import FLOW, LOGIN, open_change
from tests.e2e.test_web_chat import page
from tests.support.servers import serve_asgi

__all__ = ["page"]  # the Playwright tab fixture, shared with the web chat's tests

TYPED_PASSWORD = "typed-secret-4242"


@pytest.fixture
async def renkei(tmp_path: Path) -> AsyncIterator[Renkei]:
    """SQLite only: headers and pages do not depend on the database."""
    url = f"sqlite+aiosqlite:///{tmp_path}/renkei.sqlite3"
    async with running_renkei(url, tmp_path / "data") as client:
        yield client


def assert_unframeable_page(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html"), response.url
    assert response.headers["x-frame-options"] == "DENY", response.url
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy, (response.url, policy)
    assert "default-src" in policy, (response.url, policy)


async def test_every_page_refuses_framing_and_every_answer_refuses_sniffing(
    renkei: Renkei,
) -> None:
    account = await renkei.account(SHOP, BIZ)
    authorization_url = await switch(renkei, account["id"])
    async with httpx.AsyncClient(
        timeout=30, base_url=renkei.base_url, follow_redirects=True
    ) as client:
        pages = [
            await client.get("/chat"),
            await client.get("/docs"),
            await client.get("/api/v1/oauth/callback", params={"state": "x", "code": "y"}),
            await client.get(authorization_url),  # the issuer's login page
            await client.get("/sandbox/amex/member/login"),
            await client.get("/sandbox/jcb/"),
        ]
        for answer in pages:
            assert_unframeable_page(answer)
        answers = [
            await client.get("/healthz"),
            await client.get("/openapi.json"),
            await client.get("/api/v1/offices"),  # 401 in the error shape
            await renkei.api.get("/offices"),
            await renkei.api.get(f"/accounts/{account['id']}/statements.csv"),
        ]
        for answer in answers:
            assert answer.headers["x-content-type-options"] == "nosniff", answer.url


async def test_docs_load_nothing_from_another_site(renkei: Renkei, page: Page) -> None:
    asked: list[str] = []

    def record(request: Request) -> None:
        asked.append(request.url)

    page.on("request", record)
    await page.goto(f"{renkei.base_url}/docs")
    # Swagger UI drew the API from the local script: an operation of the API is listed.
    await expect(page.get_by_text("/api/v1/offices").first).to_be_visible(timeout=15_000)
    own = urlparse(renkei.base_url).netloc
    assert asked and all(urlparse(url).netloc == own for url in asked), asked


async def test_a_page_elsewhere_cannot_frame_renkei_or_the_issuer(
    renkei: Renkei, page: Page
) -> None:
    targets = [f"{renkei.base_url}/chat", f"{renkei.base_url}/sandbox/amex/member/login"]
    frames = "".join(f'<iframe src="{url}" width="400" height="300"></iframe>' for url in targets)

    async def framing_page(request: StarletteRequest) -> HTMLResponse:
        return HTMLResponse(f"<!doctype html><title>elsewhere</title>{frames}")

    attacker = Starlette(routes=[Route("/", framing_page)])
    with serve_asgi(attacker) as elsewhere:
        await page.goto(elsewhere)
        await page.wait_for_timeout(1500)
        framed = [frame for frame in page.frames if frame != page.main_frame]
        assert len(framed) == len(targets)
        for frame in framed:
            # Refused by the browser: nothing of the page was drawn in the frame.
            assert await frame.locator("form, button, input").count() == 0, frame.url


async def reach_password_step(renkei: Renkei) -> Chat:
    chat, _ = await open_change(renkei)
    await chat.choose("way:resync")
    await chat.say(LOGIN)
    assert chat.where() == (FLOW, "ask_password")
    return chat


async def test_the_conversation_says_when_a_step_asks_for_a_password(renkei: Renkei) -> None:
    chat, _ = await open_change(renkei)
    await chat.choose("way:resync")
    at_login = (await renkei.api.get(f"/conversations/{chat.id}")).json()
    assert at_login["secret"] is False
    await chat.say(LOGIN)
    at_password = (await renkei.api.get(f"/conversations/{chat.id}")).json()
    assert at_password["secret"] is True


async def test_the_web_chat_masks_a_password_and_never_shows_it(renkei: Renkei, page: Page) -> None:
    chat = await reach_password_step(renkei)
    await page.goto(f"{renkei.base_url}/chat?conversation={chat.id}")
    await page.get_by_role("button", name="デモ利用者で試す").click()
    box = page.locator("#message")
    await expect(box).to_have_attribute("type", "password")
    await box.fill(TYPED_PASSWORD)
    await box.press("Enter")
    await expect(page.locator("#log .mine").last).to_have_text(re.compile("●●●"))
    await expect(page.get_by_text("ログインできませんでした")).to_be_visible(timeout=15_000)
    assert TYPED_PASSWORD not in await page.content()
    await expect(box).to_have_attribute("type", "text")  # the next step is not a password


async def test_the_terminal_reads_a_password_without_echo(renkei: Renkei) -> None:
    chat = await reach_password_step(renkei)
    shown: list[str] = []
    asked_openly: list[str] = []
    asked_hidden: list[str] = []
    answers = iter([TYPED_PASSWORD, None])

    async def ask(prompt: str) -> str | None:
        asked_openly.append(prompt)
        return None  # quit at the first open prompt after the password

    async def ask_secret(prompt: str) -> str | None:
        asked_hidden.append(prompt)
        return next(answers)

    async with httpx.AsyncClient(
        timeout=30, base_url=renkei.base_url, headers=renkei.api.headers
    ) as api:
        terminal = TerminalChat(
            api, user="owner@example.com", locale="ja", ask=ask, ask_secret=ask_secret,
            show=shown.append,
        )  # fmt: skip
        terminal.conversation = (await renkei.api.get(f"/conversations/{chat.id}")).json()
        await terminal.loop()
    assert len(asked_hidden) == 1 and len(asked_openly) == 1
    assert all(TYPED_PASSWORD not in line for line in shown)
    await chat.refresh()
    assert chat.where() == (FLOW, "login_refused")
