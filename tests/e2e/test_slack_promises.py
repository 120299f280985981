"""What Slack promises a person, kept: every request acked, every link absolute, a
channel checked before it is saved, uninstalls forgotten, acks that wait on nothing.

Signed requests to renkei running for real, against the strict fake Slack.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy

from bot.slack.manifest import BOT_EVENTS, BOT_SCOPES
from tests.e2e.conftest import running_renkei
from tests.e2e.test_backend_rules import BIZ, CONSULTING, SHOP
from tests.e2e.test_slack import DM, SECRET, USER, Slack, _slack, button
from tests.support.databases import database_url
from tests.support.fake_slack import fake_slack


@pytest.fixture
async def slack(tmp_path: Path) -> AsyncIterator[Slack]:
    with database_url("sqlite", tmp_path) as url:
        async for running in _slack(url, tmp_path):
            yield running


async def test_the_export_link_is_absolute_and_slack_takes_it(slack: Slack) -> None:
    account = await slack.renkei.account(SHOP, BIZ)
    legacy = await slack.open_account("revoke", SHOP, BIZ, account["id"], then="すぐに削除できます")
    mark = slack.fake.mark()
    await slack.click(legacy, button(legacy, value_end="|export"))
    ready = await slack.reply("ダウンロード用リンク", after=mark)
    refused = [c for c in slack.fake.of("chat.postMessage", ok=False) if c.args["channel"] == DM]
    assert refused == []  # Slack took every message of the journey
    url = next(b["url"] for b in ready.buttons() if "url" in b)
    assert url.startswith(slack.renkei.base_url + "/"), url
    async with httpx.AsyncClient(timeout=30) as browser:
        exported = await browser.get(url)  # opened from Slack: no renkei session, no token
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")


# ------------------------------------------------------------------ every command acked
async def test_a_person_without_an_email_is_acked_and_told(slack: Slack) -> None:
    acked = await slack.command("switch", channel="C0GENERAL", user="U0NOEMAIL")
    assert acked.status_code == 200 and "DM" in acked.text
    told = await slack.reply("メールアドレスを読み取れません", channel="DU0NOEMAIL")
    assert "プロフィール" in told.all_text()


async def test_a_profile_slack_cannot_show_is_said_plainly(slack: Slack) -> None:
    slack.fake.add_user("U0HIDDEN", "hidden@example.com")
    slack.fake.fail("users.info", "user_not_found", when=lambda a: a.get("user") == "U0HIDDEN")
    acked = await slack.command("status", user="U0HIDDEN", channel="DU0HIDDEN")
    assert acked.status_code == 200
    told = await slack.reply("プロフィールを読み取れません", channel="DU0HIDDEN")
    assert "もう一度" in told.all_text()


async def test_no_dm_to_be_had_answers_through_the_command(slack: Slack) -> None:
    slack.fake.fail("conversations.open", "cannot_dm_bot", times=10)
    acked = await slack.command("", channel="C0GENERAL", user="U0NOEMAIL")
    assert acked.status_code == 200
    answered = await slack.fake.wait_for("response", lambda c: "メールアドレス" in c.text)
    assert answered.args.get("response_type") == "ephemeral"
    assert answered.args.get("replace_original") is False


# ------------------------------------------------------------------ the notice channel
def _released(office_id: str) -> dict[str, Any]:
    return {
        "id": f"evt-released-{time.time_ns()}",
        "type": "office.api_released",
        "created": int(time.time()),
        "office_id": office_id,
        "account_id": None,
        "data": {"issuer": "amex", "office_id": office_id},
    }


def _attempts(slack: Slack, channel: str) -> list[Any]:
    return [
        c for c in slack.fake.of("chat.postMessage", ok=None) if c.args.get("channel") == channel
    ]


async def test_a_channel_renkei_cannot_post_to_is_not_saved(slack: Slack) -> None:
    consulting = await slack.renkei.office(CONSULTING)
    slack.fake.fail(
        "chat.postMessage", "not_in_channel", times=100, when=lambda a: a.get("channel") == "C0PRIV"
    )
    await slack.command(f"channel {CONSULTING}", channel="C0PRIV")
    told = await slack.reply("投稿できないため")
    assert "renkei をチャンネルに追加" in told.all_text()
    assert (await slack.backend_event(_released(consulting["id"]))).status_code == 200
    await asyncio.sleep(3)  # the sender polls every 2 s: a saved channel would be tried by now
    assert len(_attempts(slack, "C0PRIV")) == 1  # the check alone, no notice


async def test_a_notice_channel_that_breaks_stops_and_tells_its_admin(slack: Slack) -> None:
    consulting = await slack.renkei.office(CONSULTING)
    await slack.command(f"channel {CONSULTING}", channel="C0ARCHIVED")
    await slack.reply("同期通知先にしました", channel="C0ARCHIVED")
    slack.fake.fail(
        "chat.postMessage",
        "is_archived",
        times=100,
        when=lambda a: a.get("channel") == "C0ARCHIVED",
    )
    assert (await slack.backend_event(_released(consulting["id"]))).status_code == 200
    told = await slack.reply("送れなくなりました")
    assert "アーカイブされています" in told.all_text() and "<#C0ARCHIVED>" in told.all_text()
    await asyncio.sleep(3)  # a retry (1 s, then 2 s) would have come by now
    # Only the release notice is counted: the office's first sync may finish meanwhile,
    # and its own notice meets the archived channel once too.
    refused = [
        c
        for c in _attempts(slack, "C0ARCHIVED")
        if c.error == "is_archived" and "使えるようになりました" in str(c.args.get("text"))
    ]
    assert len(refused) == 1
    # The next notice meets the same channel: refused too, and the admin is not told again.
    mark = slack.fake.mark()
    assert (await slack.backend_event(_released(consulting["id"]))).status_code == 200
    for _ in range(300):
        if any(
            c.error == "is_archived" and c.args.get("channel") == "C0ARCHIVED"
            for c in slack.fake.calls[mark:]
        ):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the second notice was never tried")
    await asyncio.sleep(1)  # the admin's DM, were it queued, would be posted by now
    told_again = [c for c in slack.fake.posts(DM) if "送れなくなりました" in c.all_text()]
    assert len(told_again) == 1


# ------------------------------------------------------------------ events and installs
async def test_every_request_renkei_does_nothing_with_is_acked(slack: Slack) -> None:
    mark = slack.fake.mark()
    mention = {
        "type": "app_mention",
        "channel": "C0GENERAL",
        "user": USER,
        "text": "<@U0BOT> 明細",
        "ts": "1700000000.000100",
    }
    assert (await slack.event(mention)).status_code == 200
    pointed = await slack.reply("DMを開いて", channel="C0GENERAL", after=mark)
    assert pointed.args.get("thread_ts") == "1700000000.000100"  # in the mention's thread
    shared = {"type": "file_shared", "file_id": "F0X", "user_id": USER, "channel_id": "C0GENERAL"}
    assert (await slack.event(shared)).status_code == 200
    closed = {
        "type": "view_closed",
        "view": {"id": "V0X", "type": "modal", "callback_id": "renkei_form"},
        "is_cleared": False,
    }
    assert (await slack.interact(closed)).status_code == 200
    stale = {
        "type": "block_actions",
        "channel": {"id": DM},
        "actions": [
            {"type": "button", "action_id": "retired_action", "value": "x", "action_ts": "1.2"}
        ],
    }
    assert (await slack.interact(stale)).status_code == 200
    old_view = {
        "type": "view_submission",
        "view": {"id": "V0Y", "type": "modal", "callback_id": "retired", "state": {"values": {}}},
    }
    assert (await slack.interact(old_view)).status_code == 200


def test_the_manifest_subscribes_what_it_asks_scope_for() -> None:
    assert "app_mentions:read" in BOT_SCOPES and "app_mention" in BOT_EVENTS
    assert {"app_uninstalled", "tokens_revoked"} <= set(BOT_EVENTS)
    # Support answers a handoff in its thread of the support channel, public or private.
    assert {"channels:history", "groups:history"} <= set(BOT_SCOPES)
    assert {"message.channels", "message.groups"} <= set(BOT_EVENTS)


async def _install(renkei_url: str) -> None:
    async with httpx.AsyncClient(base_url=renkei_url, timeout=30) as browser:
        page = await browser.get("/slack/install")
        state = page.headers["set-cookie"].split("slack-app-oauth-state=")[1].split(";")[0]
        back = await browser.get(
            "/slack/oauth_redirect",
            params={"code": "granted", "state": state},
            headers={"Cookie": f"slack-app-oauth-state={state}"},
        )
        assert back.status_code == 200, back.text


def _installations(url: str, team_id: str) -> int:
    engine = sqlalchemy.create_engine(url.replace("+aiosqlite", ""))
    try:
        with engine.connect() as db:
            query = sqlalchemy.text("select count(*) from slack_installations where team_id = :t")
            return int(db.execute(query, {"t": team_id}).scalar_one())
    finally:
        engine.dispose()


def _event_of(team_id: str, event: dict[str, Any]) -> str:
    return json.dumps(
        {
            "token": "unused",
            "team_id": team_id,
            "api_app_id": "A0RENKEI",
            "type": "event_callback",
            "event_id": f"Ev{time.time_ns()}",
            "event_time": int(time.time()),
            "event": event,
        }
    )


# slack_sdk's own call of aiohttp's BasicAuth for oauth.v2.access, not renkei's.
@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
@pytest.mark.parametrize("gone", ["app_uninstalled", "tokens_revoked"])
async def test_an_uninstall_deletes_the_workspace_tokens(tmp_path: Path, gone: str) -> None:
    with database_url("sqlite", tmp_path) as url, fake_slack() as fake:
        async with running_renkei(
            url,
            tmp_path / "data",
            slack_signing_secret=SECRET,
            slack_client_id="111.222",
            slack_client_secret="client-secret",
            slack_api_url=fake.api_url,
        ) as renkei:
            await _install(renkei.base_url)
            assert _installations(url, "T0OTHER") == 1
            slack = Slack(renkei, fake, tmp_path / "data")
            event: dict[str, Any] = {"type": gone}
            if gone == "tokens_revoked":
                event["tokens"] = {"oauth": [], "bot": ["U0BOT"]}
            answered = await slack.post(_event_of("T0OTHER", event), "application/json")
            assert answered.status_code == 200
            for _ in range(100):  # deleted after the ack, as every event's work
                if _installations(url, "T0OTHER") == 0:
                    break
                await asyncio.sleep(0.1)
            assert _installations(url, "T0OTHER") == 0


def _command_of(team_id: str, text: str) -> str:
    return urlencode(
        {
            "team_id": team_id,
            "channel_id": DM,
            "user_id": USER,
            "command": "/renkei",
            "text": text,
            "trigger_id": f"trigger-{time.time_ns()}",
            "api_app_id": "A0RENKEI",
        }
    )


async def _ack_seconds(slack: Slack, team_id: str) -> float:
    started = time.monotonic()
    acked = await slack.post(_command_of(team_id, "help"), "application/x-www-form-urlencoded")
    assert acked.status_code == 200 and "/renkei switch" in acked.text
    return time.monotonic() - started


# slack_sdk's own call of aiohttp's BasicAuth for oauth.v2.access, not renkei's.
@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
async def test_acks_wait_on_no_auth_test_in_many_workspaces(tmp_path: Path) -> None:
    with database_url("sqlite", tmp_path) as url, fake_slack() as fake:
        async with running_renkei(
            url,
            tmp_path / "data",
            slack_signing_secret=SECRET,
            slack_client_id="111.222",
            slack_client_secret="client-secret",
            slack_api_url=fake.api_url,
        ) as renkei:
            await _install(renkei.base_url)
            slack = Slack(renkei, fake, tmp_path / "data")
            await _ack_seconds(slack, "T0OTHER")  # the workspace's first request
            baseline = max([await _ack_seconds(slack, "T0OTHER") for _ in range(3)])
            fake.delays["auth.test"] = 2.0  # Slack's auth.test turns slow
            mark = fake.mark()
            slow = max([await _ack_seconds(slack, "T0OTHER") for _ in range(3)])
            assert slow < baseline + 1.0, (baseline, slow)
            assert [c for c in fake.calls[mark:] if c.method == "auth.test"] == []
            # An uninstall is not answered from the cache: the workspace is unknown at once.
            gone = _event_of("T0OTHER", {"type": "app_uninstalled"})
            assert (await slack.post(gone, "application/json")).status_code == 200
            fake.delays.clear()
            mark = fake.mark()
            await slack.post(_command_of("T0OTHER", "status"), "application/x-www-form-urlencoded")
            await asyncio.sleep(2)
            assert [c for c in fake.calls[mark:] if c.token == "xoxb-installed"] == []


# ------------------------------------------------------------------ consent, then elsewhere
async def test_a_consent_given_after_starting_something_else_is_still_heard(
    slack: Slack,
) -> None:
    account = await slack.renkei.account(SHOP, BIZ)
    consent = await slack.open_account("switch", SHOP, BIZ, account["id"], then="カード会社")
    link = next(b["url"] for b in consent.buttons() if "url" in b)
    code = re.search(r"確認コード: ([A-Z0-9]{4}-[A-Z0-9]{4})", consent.all_text())
    assert code, consent.all_text()
    # Before consenting, the person starts something else.
    mark = slack.fake.mark()
    await slack.command("status")
    await slack.reply("どの事業所", after=mark)
    mark = slack.fake.mark()
    back = await slack.renkei.consent(link, cards=["amex-biz-1001"], code=code.group(1))
    assert back.status_code == 200
    await slack.reply("切り替えが完了", after=mark)  # the switch is heard in the DM
    # A button of the consent message, clicked now: said to be from an earlier step.
    old = next(b for b in consent.buttons() if b["action_id"].startswith("renkei_choice"))
    mark = slack.fake.mark()
    await slack.click(consent, old)
    await slack.reply("前の段階のもの", after=mark)
    said = " ".join(c.all_text() for c in slack.fake.posts(DM)[-3:])
    assert "うまく読み取れませんでした" not in said and "その選択肢は" not in said
