"""Slack, without Slack: signed requests to /slack/events, a fake Web API recording replies.

renkei runs for real on loopback with ``SLACK_API_URL`` pointed at the fake. Every
interaction type is posted as Slack posts it (slash command, block action, view
submission, App Home opened, DM message), signed with the signing secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from backend.service.outbox import sign
from renkei.demo import RENEWAL_ACCOUNT, RENEWAL_LOGIN
from tests.e2e.conftest import OWNER, Renkei, running_renkei
from tests.e2e.test_backend_rules import BIZ, CONSULTING, JCB_UPGRADED, SHOP
from tests.e2e.test_flow_jcb_card_change import old_card_csv
from tests.support.databases import database_url
from tests.support.fake_slack import TEAM_ID, Call, FakeSlack, SharedFile, fake_slack

SECRET = "slack-signing-secret-for-tests"
USER = "U0OWNER"
DM = f"D{USER}"
OFFICE_CHANNEL = "C0OFFICE"
SUPPORT_CHANNEL = "C0SUPPORT"


def signature(secret: str, timestamp: int, body: str) -> str:
    mac = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256)
    return "v0=" + mac.hexdigest()


@dataclass
class Slack:
    """Slack's side: posts signed requests to renkei, reads what renkei sent to the fake."""

    renkei: Renkei
    fake: FakeSlack
    data_dir: Path

    async def post(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        secret: str = SECRET,
        retry: int | None = None,
    ) -> httpx.Response:
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature(secret, ts, body),
        }
        if retry is not None:
            headers["X-Slack-Retry-Num"] = str(retry)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        async with httpx.AsyncClient(base_url=self.renkei.base_url, timeout=30) as client:
            started = time.monotonic()
            response = await client.post("/slack/events", content=body, headers=headers)
        assert time.monotonic() - started < 3, "Slack needs the ack within 3 seconds"
        return response

    async def command(
        self, text: str, *, channel: str = DM, user: str = USER, **signing: Any
    ) -> httpx.Response:
        body = urlencode(
            {
                "token": "unused",
                "team_id": TEAM_ID,
                "team_domain": "renkei-test",
                "channel_id": channel,
                "channel_name": "directmessage" if channel.startswith("D") else "office",
                "user_id": user,
                "user_name": "owner",
                "command": "/renkei",
                "text": text,
                "api_app_id": "A0RENKEI",
                "response_url": f"{self.fake.url}/response",
                "trigger_id": f"trigger-{uuid.uuid4().hex}",
            }
        )
        return await self.post(body, "application/x-www-form-urlencoded", **signing)

    async def interact(self, payload: dict[str, Any], **signing: Any) -> httpx.Response:
        payload = {
            "team": {"id": TEAM_ID, "domain": "renkei-test"},
            "user": {"id": USER, "team_id": TEAM_ID},
            "api_app_id": "A0RENKEI",
            "token": "unused",
            "trigger_id": f"trigger-{uuid.uuid4().hex}",
            **payload,
        }
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded", **signing)

    async def open_account(
        self, command: str, office: str, account_label: str, account_id: str, *, then: str
    ) -> Call:
        """``/renkei {command}``, then the office's and the account's buttons, as a
        person presses them: the flow's next message (the one saying ``then``)."""
        await self.command(command)
        offices = await self.reply("どの事業所")
        mark = self.fake.mark()
        await self.click(offices, button(offices, label=office))
        accounts = await self.reply(account_label, after=mark)
        mark = self.fake.mark()
        await self.click(accounts, button(accounts, value_end=f"pick:{account_id}"))
        return await self.reply(then, after=mark)

    async def click(
        self, message: Call, button: dict[str, Any], user: str = USER
    ) -> httpx.Response:
        """Press a button of a message renkei posted (as recorded by the fake)."""
        channel = str(message.args["channel"])
        return await self.interact(
            {
                "type": "block_actions",
                "user": {"id": user, "team_id": TEAM_ID},
                "channel": {"id": channel},
                "container": {"type": "message", "channel_id": channel},
                "message": {"ts": "1.000001", "text": message.text, "blocks": message.blocks},
                "actions": [
                    {
                        "type": "button",
                        "action_id": button["action_id"],
                        "block_id": "b",
                        "value": button.get("value", ""),
                        "action_ts": f"{time.time():.6f}",
                    }
                ],
            }
        )

    async def event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry: int | None = None
    ) -> httpx.Response:
        if event.get("channel") and event.get("ts"):
            self.fake.person_posted(str(event["channel"]), str(event["ts"]))
        body = json.dumps(
            {
                "token": "unused",
                "team_id": TEAM_ID,
                "api_app_id": "A0RENKEI",
                "type": "event_callback",
                "event_id": event_id or f"Ev{uuid.uuid4().hex[:10]}",
                "event_time": int(time.time()),
                "event": event,
                "authorizations": [{"team_id": TEAM_ID, "user_id": "U0BOT", "is_bot": True}],
            }
        )
        return await self.post(body, "application/json", retry=retry)

    async def dm(self, text: str, **kwargs: Any) -> httpx.Response:
        event = {
            "type": "message",
            "channel_type": "im",
            "channel": DM,
            "user": USER,
            "text": text,
            "ts": f"{time.time():.6f}",
        }
        return await self.event(event, **kwargs)

    async def share(self, shared: SharedFile, *, user: str = USER) -> httpx.Response:
        """A file shared in the DM: Slack's event names the file; files.info tells the rest."""
        event = {
            "type": "message",
            "subtype": "file_share",
            "channel_type": "im",
            "channel": f"D{user}",
            "user": user,
            "text": "",
            "files": [{"id": shared.id, "name": shared.name, "mimetype": shared.mimetype}],
            "upload": False,
            "ts": f"{time.time():.6f}",
        }
        return await self.event(event)

    async def backend_event(self, event: dict[str, Any]) -> httpx.Response:
        """A back-end webhook, signed as the back end signs it."""
        body = json.dumps(event).encode()
        secret = (self.data_dir / "webhook-secret").read_text().strip()
        headers = {"Renkei-Signature": sign(secret, int(time.time()), body)}
        async with httpx.AsyncClient(base_url=self.renkei.base_url, timeout=30) as client:
            return await client.post("/bot/backend-events", content=body, headers=headers)

    # ---------------------------------------------------------------- reading replies
    async def reply(self, words: str, *, channel: str = DM, after: int = 0) -> Call:
        return await self.fake.wait_for(
            "chat.postMessage",
            lambda c: c.args.get("channel") == channel and words in c.all_text(),
            after=after,
        )


def button(
    message: Call, *, label: str | None = None, value_end: str | None = None
) -> dict[str, Any]:
    for element in message.buttons():
        text = str(element["text"]["text"])
        if label is not None and label in text:
            return element
        if value_end is not None and str(element.get("value", "")).endswith(value_end):
            return element
    raise AssertionError(f"no button {label or value_end!r} in {message.buttons()}")


async def _slack(database: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[Slack]:
    data_dir = tmp_path / "data"
    with fake_slack() as fake:
        fake.add_user(USER, OWNER.upper())  # Slack keeps the case people typed
        fake.add_user("U0STRANGER", "stranger@example.com")
        fake.add_user("U0NOEMAIL", None)
        async with running_renkei(
            database,
            data_dir,
            slack_signing_secret=SECRET,
            slack_bot_token="xoxb-test-token",
            slack_api_url=fake.api_url,
            **overrides,
        ) as renkei:
            yield Slack(renkei, fake, data_dir)


@pytest.fixture
async def slack(database: str, tmp_path: Path) -> AsyncIterator[Slack]:
    """Both databases: the protocol checks."""
    async for running in _slack(database, tmp_path):
        yield running


@pytest.fixture
async def slack_sqlite(tmp_path: Path) -> AsyncIterator[Slack]:
    """SQLite only: the long journeys (the protocol checks cover PostgreSQL)."""
    with database_url("sqlite", tmp_path) as url:
        async for running in _slack(url, tmp_path, slack_support_channel=SUPPORT_CHANNEL):
            yield running


# ------------------------------------------------------------------ the protocol
async def test_bad_signature_and_stale_timestamp_are_refused(slack: Slack) -> None:
    forged = await slack.command("status", secret="not-the-secret")
    assert forged.status_code == 401
    stale = await slack.command("status", timestamp=int(time.time()) - 6 * 60)
    assert stale.status_code == 401
    assert slack.fake.of("chat.postMessage") == []  # nothing was done for either


async def test_a_retried_event_is_handled_once(slack: Slack) -> None:
    first = await slack.dm("ヘルプ", event_id="Ev0RETRIED")
    assert first.status_code == 200
    await slack.reply("メニュー")
    again = await slack.dm("ヘルプ", event_id="Ev0RETRIED", retry=1)
    assert again.status_code == 200
    await slack.dm("やめる")  # a later, different event is handled
    await slack.reply("ほかにお手伝いできること")
    helps = [c for c in slack.fake.posts(DM) if "メニューから手続きを選んで" in c.all_text()]
    assert len(helps) == 1


async def test_help_unknown_and_not_a_member(slack: Slack) -> None:
    helped = await slack.command("help")
    assert helped.status_code == 200 and "/renkei switch" in helped.text
    unknown = await slack.command("dance")
    assert "dance" in unknown.text
    # A pasted text is not echoed whole, and Slack markup in it is not read as markup.
    pasted = await slack.command("<!channel>" + "x" * 40_000)
    assert pasted.status_code == 200 and len(pasted.text) < 400, len(pasted.text)
    assert "&lt;!channel&gt;" in pasted.text and "<!channel>" not in pasted.text
    assert "/renkei help" in pasted.text
    await slack.command("switch", user="U0STRANGER")
    told = await slack.reply("stranger@example.com", channel="DU0STRANGER")
    assert "登録されていません" in told.all_text()
    await slack.command("", user="U0NOEMAIL")
    await slack.reply("メールアドレスを読み取れません", channel="DU0NOEMAIL")


async def test_only_an_office_admin_sets_its_notice_channel(slack: Slack) -> None:
    shop = await slack.renkei.office(SHOP)
    clerk = "clerk@example.com"
    await slack.renkei.join(shop["id"], clerk, "member")
    slack.fake.add_user("U0CLERK", clerk)
    assert (
        await slack.command("channel", channel=OFFICE_CHANNEL, user="U0CLERK")
    ).status_code == 200
    told = await slack.reply("管理者だけです", channel="DU0CLERK")
    assert SHOP in told.all_text()
    assert slack.fake.posts(OFFICE_CHANNEL) == []  # the channel was not set, nor told it was


async def test_app_home_shows_each_office_with_its_accounts(slack: Slack) -> None:
    response = await slack.event({"type": "app_home_opened", "user": USER, "tab": "home"})
    assert response.status_code == 200
    published = await slack.fake.wait_for("views.publish")
    assert published.args["user_id"] == USER
    shown = published.all_text()
    assert SHOP in shown and CONSULTING in shown and BIZ in shown
    assert "ID・パスワード" in shown and "最終同期" in shown
    # The last sync in Japan time with how long ago, never the stored UTC text.
    synced = r"最終同期 \d{4}/\d{2}/\d{2} \d{1,2}:\d{2}（\d+(秒|分|時間|日)前）"
    assert re.search(synced, shown), shown


# ------------------------------------------------------------------ a whole journey
async def test_switch_to_api_through_slack(slack_sqlite: Slack) -> None:
    slack = slack_sqlite
    account = await slack.renkei.account(SHOP, BIZ)
    acked = await slack.command("switch", channel="C0GENERAL")
    assert acked.status_code == 200 and "DM" in acked.text
    offices = await slack.reply("どの事業所")
    mark = slack.fake.mark()
    await slack.click(offices, button(offices, label=SHOP))
    accounts = await slack.reply(BIZ, after=mark)
    updated = await slack.fake.wait_for("chat.update", after=mark)
    assert f"選択: {SHOP}" in updated.all_text() and updated.buttons() == []  # no double click
    mark = slack.fake.mark()
    await slack.click(accounts, button(accounts, value_end=f"pick:{account['id']}"))
    consent = await slack.reply("カード会社", after=mark)
    link = next(b["url"] for b in consent.buttons() if "url" in b)
    await slack.click(consent, next(b for b in consent.buttons() if "url" in b))  # acked only
    # The link opens in a browser not signed in to renkei: it asks for the one-time code
    # that only this member's DM shows.
    code = re.search(r"確認コード: ([A-Z0-9]{4}-[A-Z0-9]{4})", consent.all_text())
    assert code, consent.all_text()
    back = await slack.renkei.consent(link, cards=["amex-biz-1001"], code=code.group(1))
    assert back.status_code == 200
    # The back end's webhooks move the conversation on; the DM hears how it ended.
    await slack.reply("切り替えが完了", after=mark)
    switched = await slack.renkei.get_account(account["id"])
    assert switched["sync_method"] == "api"


async def test_a_member_site_button_carries_the_page_it_names_through_the_login(
    slack_sqlite: Slack,
) -> None:
    slack = slack_sqlite
    renkei = slack.renkei
    account = await renkei.account(SHOP, RENEWAL_ACCOUNT)
    stop = await slack.open_account(
        "revoke", SHOP, RENEWAL_ACCOUNT, account["id"], then="外部サービスとの連携"
    )
    # A link button opens the browser at the page itself, not at the member site's door.
    [url] = [b["url"] for b in stop.buttons() if "url" in b]
    assert url == f"{renkei.base_url}/sandbox/amex/member/settings/services"
    browser = renkei.browser()
    try:
        login = await browser.open(url)
        assert "/member/login" in str(login.url)
        landed = await browser.press(
            "ログイン", fill={"user_id": RENEWAL_LOGIN, "password": "pass_good"}
        )
        assert landed.url == url and "外部サービスとの連携" in landed.text
        assert account["card"]["masked_number"] in landed.text
    finally:
        await browser.client.aclose()


async def test_modal_form_for_typed_answers_and_expired_trigger(slack_sqlite: Slack) -> None:
    slack = slack_sqlite
    await slack.command("register")
    offices = await slack.reply("どの事業所")
    mark = slack.fake.mark()
    await slack.click(offices, button(offices, label=SHOP))
    issuers = await slack.fake.wait_for(
        "chat.postMessage",
        lambda c: any("issuer:amex" in b.get("value", "") for b in c.buttons()),
        after=mark,
    )
    mark = slack.fake.mark()
    await slack.click(issuers, button(issuers, value_end="issuer:amex"))
    cards = await slack.fake.wait_for(
        "chat.postMessage",
        lambda c: any("card:" in b.get("value", "") for b in c.buttons()),
        after=mark,
    )
    mark = slack.fake.mark()
    await slack.click(cards, cards.buttons()[0])
    asks = await slack.fake.wait_for(
        "chat.postMessage",
        lambda c: any(b["action_id"] == "renkei_form" for b in c.buttons()),
        after=mark,
    )
    # The form opens at once with a loading view, then the back end's answer fills it.
    mark = slack.fake.mark()
    await slack.click(asks, button(asks, label="入力フォーム"))
    opened = await slack.fake.wait_for("views.open", after=mark)
    assert "読み込み中" in opened.all_text()
    filled = await slack.fake.wait_for("views.update", after=mark)
    view = (
        json.loads(filled.args["view"])
        if isinstance(filled.args["view"], str)
        else filled.args["view"]
    )
    mark = slack.fake.mark()
    submitted = await slack.interact(
        {
            "type": "view_submission",
            "view": {
                "id": filled.args["view_id"],
                "type": "modal",
                "callback_id": view["callback_id"],
                "private_metadata": view["private_metadata"],
                "state": {
                    "values": {
                        "renkei_input": {
                            "text": {"type": "plain_text_input", "value": "Slack から登録"}
                        }
                    }
                },
            },
        }
    )
    assert submitted.status_code == 200
    await slack.reply("カード会社", after=mark)
    # A trigger that died (Slack's 3 s) falls back to the DM.
    slack.fake.fail("views.open", "expired_trigger_id")
    mark = slack.fake.mark()
    await slack.command("offices")
    fallback = await slack.reply(SHOP, after=mark)
    assert CONSULTING in fallback.all_text()
    assert slack.fake.of("views.open", ok=False)[0].error == "expired_trigger_id"


async def _rate_limited_office_channel(slack: Slack) -> dict[str, Any]:
    """The consulting office's Slack channel set; Slack rate-limits its next message."""
    consulting = await slack.renkei.office(CONSULTING)
    await slack.command(f"channel {CONSULTING}", channel=OFFICE_CHANNEL)
    await slack.reply(CONSULTING, channel=OFFICE_CHANNEL)
    slack.fake.fail(
        "chat.postMessage",
        "ratelimited",
        status=429,
        retry_after=1,
        when=lambda args: args.get("channel") == OFFICE_CHANNEL,
    )
    return consulting


async def test_notices_retried_on_rate_limit_delivered_once(slack_sqlite: Slack) -> None:
    slack = slack_sqlite
    consulting = await _rate_limited_office_channel(slack)
    event = {
        "id": "evt-released-1",
        "type": "office.api_released",
        "created": int(time.time()),
        "office_id": consulting["id"],
        "account_id": None,
        "data": {"issuer": "amex", "office_id": consulting["id"]},
    }
    for _ in range(2):  # the back end delivers the same event twice
        assert (await slack.backend_event(event)).status_code == 200
    notice = await slack.reply("API連携が使えるようになりました", channel=OFFICE_CHANNEL)
    refused = [c for c in slack.fake.of("chat.postMessage", ok=False) if c.error == "ratelimited"]
    assert len(refused) == 1
    await asyncio.sleep(1.5)  # a second delivery would have come by now
    delivered = [
        c for c in slack.fake.posts(OFFICE_CHANNEL) if "API連携が使えるように" in c.all_text()
    ]
    assert len(delivered) == 1
    # R4: the notice's button starts switch_to_api in that office, for whoever clicks.
    mark = slack.fake.mark()
    await slack.click(notice, button(notice, label="API連携に切り替える"))
    await slack.reply("どの口座", after=mark)


async def test_a_channels_notices_keep_their_order_when_slack_turns_one_away(
    slack_sqlite: Slack,
) -> None:
    """The first notice is rate-limited: the second waits behind it, not past it."""
    slack = slack_sqlite
    consulting = await _rate_limited_office_channel(slack)
    mark = slack.fake.mark()
    for n, issuer in enumerate(("amex", "jcb")):
        event = {
            "id": f"evt-in-order-{n}",
            "type": "office.api_released",
            "created": int(time.time()),
            "office_id": consulting["id"],
            "account_id": None,
            "data": {"issuer": issuer, "office_id": consulting["id"]},
        }
        assert (await slack.backend_event(event)).status_code == 200
    await slack.reply("JCB", channel=OFFICE_CHANNEL, after=mark)
    posted = [
        c.all_text()
        for c in slack.fake.posts(OFFICE_CHANNEL)
        if "API連携が使えるように" in c.all_text()
    ]
    assert len(posted) == 2, posted
    assert "JCB" not in posted[0] and "JCB" in posted[1]  # as the events came
    refused = [c for c in slack.fake.of("chat.postMessage", ok=False) if c.error == "ratelimited"]
    assert len(refused) == 1


async def test_a_statement_file_shared_in_the_dm(slack_sqlite: Slack) -> None:
    """R7 (a) through Slack: the old card's CSV from MyJCB, attached to the DM."""
    slack = slack_sqlite
    account = await slack.renkei.account(CONSULTING, JCB_UPGRADED)
    early = slack.fake.add_file("meisai.csv", b"not asked for")
    await slack.share(early)  # no step asks for a file: said, nothing downloaded
    await slack.reply("ファイルを受け付けていません")
    ways = await slack.open_account("jcb", CONSULTING, JCB_UPGRADED, account["id"], then="5001")
    mark = slack.fake.mark()
    await slack.click(ways, button(ways, value_end="|upload"))
    await slack.reply("CSVでダウンロード", after=mark)
    shared = slack.fake.add_file("old-card.csv", await old_card_csv(slack.renkei))
    mark = slack.fake.mark()
    await slack.share(shared)
    done = await slack.reply("「old-card.csv」を取り込みました", after=mark)
    assert "新しい明細" in done.all_text()
    downloads = slack.fake.of("files.download")
    assert [d.args["file"] for d in downloads] == [shared.id]
    assert downloads[0].token == "xoxb-test-token"  # url_private wants the bot token
    old_card = slack.fake.of("files.info")[-1]
    assert old_card.args["file"] == shared.id


async def test_socket_mode(tmp_path: Path) -> None:
    """SLACK_APP_TOKEN: renkei opens Slack's WebSocket, acks each envelope, then answers."""
    with database_url("sqlite", tmp_path) as url, fake_slack(socket_mode=True) as fake:
        fake.add_user(USER, OWNER)
        async with running_renkei(
            url,
            tmp_path / "data",
            slack_signing_secret=SECRET,
            slack_bot_token="xoxb-test-token",
            slack_app_token="xapp-1-test",
            slack_api_url=fake.api_url,
        ):
            opened = await fake.wait_for("apps.connections.open")
            assert opened.token == "xapp-1-test"  # the app-level token, not the bot's
            assert fake.socket is not None
            envelope_id = f"env-{uuid.uuid4().hex}"
            await fake.socket.send(
                {
                    "envelope_id": envelope_id,
                    "type": "slash_commands",
                    "accepts_response_payload": True,
                    "payload": {
                        "token": "unused",
                        "team_id": TEAM_ID,
                        "team_domain": "renkei-test",
                        "channel_id": "C0GENERAL",
                        "channel_name": "general",
                        "user_id": USER,
                        "user_name": "owner",
                        "command": "/renkei",
                        "text": "status",
                        "api_app_id": "A0RENKEI",
                        "response_url": f"{fake.url}/response",
                        "trigger_id": f"trigger-{uuid.uuid4().hex}",
                    },
                }
            )
            acked = await fake.socket.ack(envelope_id)
            assert "DM" in json.dumps(acked.get("payload"), ensure_ascii=False)
            asked = await fake.wait_for(
                "chat.postMessage", lambda c: c.args.get("channel") == DM and "どの事業所" in c.text
            )
            assert asked.token == "xoxb-test-token"


async def test_a_handoff_reaches_the_support_channel(slack_sqlite: Slack) -> None:
    slack = slack_sqlite
    await slack.dm("担当者と話したい")
    routed = await slack.reply(OWNER, channel=SUPPORT_CHANNEL)
    assert "担当者への引き継ぎ" in routed.all_text()


# slack_sdk's own call of aiohttp's BasicAuth for oauth.v2.access, not renkei's.
@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
async def test_install_in_another_workspace_through_oauth(tmp_path: Path) -> None:
    """Multi-workspace: bolt's OAuth flow, installation and state kept in renkei's database."""
    with database_url("sqlite", tmp_path) as url, fake_slack() as fake:
        fake.add_user(USER, OWNER)
        async with running_renkei(
            url,
            tmp_path / "data",
            slack_signing_secret=SECRET,
            slack_client_id="111.222",
            slack_client_secret="client-secret",
            slack_api_url=fake.api_url,
        ) as renkei:
            async with httpx.AsyncClient(base_url=renkei.base_url, timeout=30) as browser:
                page = await browser.get("/slack/install")
                assert page.status_code == 200
                state = page.headers["set-cookie"].split("slack-app-oauth-state=")[1].split(";")[0]
                assert f"state={state}" in page.text
                back = await browser.get(
                    "/slack/oauth_redirect",
                    params={"code": "granted", "state": state},
                    headers={"Cookie": f"slack-app-oauth-state={state}"},
                )
                assert back.status_code == 200, back.text
                replayed = await browser.get(
                    "/slack/oauth_redirect",
                    params={"code": "granted", "state": state},
                    headers={"Cookie": f"slack-app-oauth-state={state}"},
                )
                assert replayed.status_code != 200  # a state is consumed once
            assert fake.of("oauth.v2.access")
            slack = Slack(renkei, fake, tmp_path / "data")
            body = urlencode(
                {
                    "team_id": "T0OTHER",
                    "channel_id": DM,
                    "user_id": USER,
                    "command": "/renkei",
                    "text": "status",
                    "trigger_id": "trigger-oauth",
                    "api_app_id": "A0RENKEI",
                }
            )
            response = await slack.post(body, "application/x-www-form-urlencoded")
            assert response.status_code == 200
            answered = await slack.reply("どの事業所")
            assert answered.token == "xoxb-installed"  # the installation's bot token


async def test_someone_invited_joins_from_slack(slack: Slack) -> None:
    shop = await slack.renkei.office(SHOP)
    newcomer = "newcomer@example.com"
    invited = await slack.renkei.api.post(
        f"/offices/{shop['id']}/invitations", json={"email": newcomer, "role": "member"}
    )
    assert invited.status_code == 201, invited.text
    slack.fake.add_user("U0NEWCOMER", newcomer)
    assert (await slack.command("register", user="U0NEWCOMER")).status_code == 200
    offered = await slack.reply("招待されています", channel="DU0NEWCOMER")
    assert SHOP in offered.all_text() and "owner@example.com" in offered.all_text()
    await slack.click(offered, button(offered, label="参加する"), user="U0NEWCOMER")
    await slack.reply("事業所に参加しました", channel="DU0NEWCOMER")
    members = (await slack.renkei.api.get(f"/offices/{shop['id']}/members")).json()
    assert {"office_id": shop["id"], "email": newcomer, "role": "member"} in members
