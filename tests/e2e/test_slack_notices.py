"""Sync status messages in an office's Slack channel, each from a real back-end event.

Nothing here is a hand-made webhook: the sandbox issuers are moved (new statements,
a fault, lost tokens, a link stopped on the member site, a card upgraded) and the
back end's own signed webhooks reach the bot. Each message is then delivered once
more, as the back end does when an answer is lost, and still shows once. SQLite
only: the protocol checks of ``test_slack.py`` cover PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_backend_rules import BIZ, JCB_GOLD, PLATINUM, SHOP, switch
from tests.e2e.test_slack import Slack, _slack, button
from tests.support.databases import database_url
from tests.support.fake_slack import Call

SHOP_CHANNEL = "C0SHOP"
SYNC_PATH = "/api/v1/transactions/sync"


@pytest.fixture
async def slack(tmp_path: Path) -> AsyncIterator[Slack]:
    with database_url("sqlite", tmp_path) as url:
        async for running in _slack(url, tmp_path):
            yield running


async def notice_channel(slack: Slack, office: str, channel: str) -> None:
    """``/renkei channel <office>`` run by the office's administrator in ``channel``."""
    await slack.command(f"channel {office}", channel=channel)
    await slack.reply("同期通知先にしました", channel=channel)


async def notice(slack: Slack, words: str, after: int) -> Call:
    return await slack.reply(words, channel=SHOP_CHANNEL, after=after)


async def event_ids(slack: Slack, account_id: str) -> set[str]:
    return {e["id"] for e in await slack.renkei.events(account_id)}


async def newest_event(
    slack: Slack, account_id: str, kind: str, known: AbstractSet[str] = frozenset()
) -> dict[str, Any]:
    """The account's newest event of ``kind`` that is not among ``known``."""
    for _ in range(100):
        found = [
            e
            for e in await slack.renkei.events(account_id)
            if e["type"] == kind and e["id"] not in known
        ]
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no new {kind} event for {account_id}")


async def deliver_again(slack: Slack, event: dict[str, Any]) -> None:
    """The back end's webhook of ``event``, as its outbox sends it, a second time."""
    created = dt.datetime.fromisoformat(event["created_at"])
    body = {
        "id": event["id"],
        "type": event["type"],
        "created": int(created.timestamp()),
        "office_id": event["office_id"],
        "account_id": event["account_id"],
        "data": event["payload"],
    }
    assert (await slack.backend_event(body)).status_code == 200


async def shown_once(slack: Slack, *words: str) -> None:
    await asyncio.sleep(1.0)  # a doubled message would have been posted by now
    posted = [c.all_text() for c in slack.fake.posts(SHOP_CHANNEL)]
    for said in words:
        assert sum(said in text for text in posted) == 1, (said, posted)


async def consent_by_button(
    slack: Slack, message: Call, label: str, asks: str, card: str, done: str
) -> None:
    """Press ``label`` on ``message``, consent to ``card`` on the page it links, see ``done``."""
    clicked = slack.fake.mark()
    await slack.click(message, button(message, label=label))
    consent = await slack.reply(asks, after=clicked)
    link = next(b["url"] for b in consent.buttons() if "url" in b)
    await slack.renkei.consent(link, cards=[card])
    await slack.reply(done, after=clicked)


async def clear_faults(slack: Slack) -> None:
    async with httpx.AsyncClient(timeout=30, base_url=slack.renkei.base_url) as client:
        assert (
            await client.delete("/sandbox/amex/control/faults", headers=slack.renkei.sandbox_key)
        ).is_success


async def test_amex_sync_completed_failed_reauth_and_revoked(slack: Slack) -> None:
    renkei = slack.renkei
    await notice_channel(slack, SHOP, SHOP_CHANNEL)
    account = await renkei.account(SHOP, BIZ)
    await renkei.consent(await switch(renkei, account["id"]), cards=["amex-biz-1001"])
    linked = await renkei.wait_synced(account["id"], since=account["last_synced_at"])

    # New statements at the issuer: its webhook, a sync, and sync.completed.
    mark, known = slack.fake.mark(), await event_ids(slack, account["id"])
    await renkei.control("amex", "/cards/amex-biz-1001/statements", {"count": 45, "pending": 0})
    completed = await newest_event(slack, account["id"], "sync.completed", known)
    added = completed["payload"]["added"]
    assert added > 0
    said = await notice(slack, f"新しい明細は {added} 件", mark)
    assert BIZ in said.all_text() and SHOP in said.all_text()
    await renkei.wait_synced(account["id"], since=linked["last_synced_at"])

    # The issuer fails: why, what to do, and a button to the account's status.
    mark = slack.fake.mark()
    await renkei.control("amex", "/faults", {"path": SYNC_PATH, "kind": "500", "times": 10})
    assert (await renkei.sync_now(account["id"])).status_code == 503
    await clear_faults(slack)
    failed = await notice(slack, "同期に失敗しました", mark)
    assert "カード会社のサーバーが応答しませんでした" in failed.all_text()
    assert "自動で再試行" in failed.all_text()
    assert button(failed, label="同期の状況を確認する")["value"].endswith(f"pick:{account['id']}")

    # The link stopped on the issuer's member site: its link.revoked webhook.
    mark = slack.fake.mark()
    await renkei.stop_link_on_member_site(account["card"]["masked_number"])
    revoked = await notice(slack, "カード会社側で停止されました", mark)
    # The button starts the status flow on this account, straight to the consent page.
    await consent_by_button(
        slack,
        revoked,
        "再認証の手続きを始める",
        "下のリンクからカード会社のページを開き",
        "amex-biz-1001",
        "再認証が完了しました",
    )
    assert (await renkei.get_account(account["id"]))["link"]["status"] == "active"

    for kind in ("sync.completed", "sync.failed", "link.revoked"):
        await deliver_again(slack, await newest_event(slack, account["id"], kind))
    await shown_once(
        slack, f"新しい明細は {added} 件", "同期に失敗しました", "カード会社側で停止されました"
    )


async def test_jcb_delay_reauth_and_card_change(slack: Slack) -> None:
    renkei = slack.renkei
    await notice_channel(slack, SHOP, SHOP_CHANNEL)
    account = await renkei.account(SHOP, JCB_GOLD)
    await renkei.consent(await switch(renkei, account["id"]), user="user_good")
    linked = await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    assert linked["sync_method"] == "api"

    # R9: the first API sync finds nothing the MyJCB ID/password sync had not brought.
    first = await newest_event(slack, account["id"], "sync.completed")
    assert first["payload"]["added"] == 0, first
    await notice(slack, "JCBのAPIでは", 0)
    # Said once a day per account, not at every sync that finds nothing.
    synced = await renkei.sync_now(account["id"])
    assert synced.json()["added"] == 0, synced.text

    # Tokens lost at the issuer: the next sync asks for re-authentication.
    mark = slack.fake.mark()
    grants = (await renkei.control_get("jcb", "/grants"))["grants"]
    # R9: a JCB grant is the MyJCB ID's, whatever cards it holds.
    grant = next(g for g in grants if g["subject"] == "user_good" and g["status"] == "active")
    await renkei.control("jcb", f"/grants/{grant['grant_id']}/expire-tokens")
    await renkei.sync_now(account["id"])
    reauth = await notice(slack, "再認証が必要です", mark)
    clicked = slack.fake.mark()
    await slack.click(reauth, button(reauth, label="再認証の手続きを始める"))
    consent = await slack.reply("下のリンクからカード会社のページを開き", after=clicked)
    await renkei.consent(next(b["url"] for b in consent.buttons() if "url" in b))
    await slack.reply("再認証が完了しました", after=clicked)

    # R7: the card upgraded at the issuer; the next sync records card.changed.
    mark = slack.fake.mark()
    await renkei.control(
        "jcb",
        "/cards/jcb-gold-4001/upgrade",
        {"new_card_id": "jcb-plat-4003", "product": "jcb_platinum"},
    )
    await renkei.sync_now(account["id"])
    changed = await notice(slack, "カードが切り替わりました", mark)
    assert "4001" in changed.all_text()
    # The button opens jcb_card_change on this account: the three ways of R7 at once.
    clicked = slack.fake.mark()
    await slack.click(changed, button(changed, label="旧カードの明細を取り込む"))
    ways = await slack.reply("4001", after=clicked)
    assert {"upload", "way:resync", "way:new_account"} <= {
        str(b.get("value", "")).rpartition("|")[2] for b in ways.buttons()
    }

    for kind in ("sync.completed", "link.needs_reauth", "sync.failed", "card.changed"):
        await deliver_again(slack, await newest_event(slack, account["id"], kind))
    # The lost tokens' sync.failed is said by the re-auth notice, not a failure notice.
    await shown_once(slack, "JCBのAPIでは", "再認証が必要です", "カードが切り替わりました")
    assert not [c for c in slack.fake.posts(SHOP_CHANNEL) if "同期に失敗" in c.all_text()]


async def test_consent_ending_is_warned_and_renewed_in_place(slack: Slack) -> None:
    renkei = slack.renkei
    await notice_channel(slack, SHOP, SHOP_CHANNEL)
    # An issuer whose consents last 10 days: the first warning (14 days) is due at once.
    await renkei.control(
        "amex", "/settings", {"consent_lifetime_days": 10, "expiring_notice_days": 14}
    )
    account = await renkei.account(SHOP, BIZ)
    mark = slack.fake.mark()
    await renkei.consent(await switch(renkei, account["id"]), cards=["amex-biz-1001"])
    # The token answer names the end; renkei warns in the office channel.
    warned = await notice(slack, "期限が切れます（あと 10 日）", mark)
    # The administrator hears it in her own DM too, with the same button.
    direct = await slack.reply("期限が切れます（あと 10 日）", after=mark)
    assert button(direct, label="再認証して同意を更新する")
    ends = (await renkei.get_account(account["id"]))["link"]["consent_expires_at"]
    day = dt.datetime.fromisoformat(ends).astimezone(dt.timezone(dt.timedelta(hours=9)))
    assert day.strftime("%Y/%m/%d") in warned.all_text()  # the day in Japan, as people write it

    # The button starts the status flow on this account, straight to the consent page.
    await renkei.control("amex", "/settings", {"consent_lifetime_days": 365})
    clicked = slack.fake.mark()
    await slack.click(warned, button(warned, label="再認証して同意を更新する"))
    consent = await slack.reply("下のリンクからカード会社のページを開き", after=clicked)
    link = next(b["url"] for b in consent.buttons() if "url" in b)
    # Near its end, the issuer lets the same card be consented to again: a renewal.
    await renkei.consent(link, cards=["amex-biz-1001"])
    await slack.reply("再認証が完了しました", after=clicked)
    await notice(slack, "再認証で直りました", clicked)
    renewed = await renkei.get_account(account["id"])
    assert renewed["link"]["status"] == "active" and renewed["link"]["consent_expiring"] is False

    await deliver_again(slack, await newest_event(slack, account["id"], "link.consent_expiring"))
    await deliver_again(slack, await newest_event(slack, account["id"], "link.repaired"))
    await shown_once(slack, "期限が切れます", "再認証で直りました")


async def office_notices(slack: Slack, office_id: str, account_id: str) -> list[dict[str, Any]]:
    """The office's notices of cards that appeared under ``account_id``'s ID."""
    answer = await slack.renkei.api.get(f"/offices/{office_id}/notices")
    assert answer.status_code == 200, answer.text
    return [
        n
        for n in answer.json()
        if n["kind"] == "card_discovered" and n["account_ids"] == [account_id]
    ]


async def test_a_discovered_card_is_offered_until_its_account_exists_r15(slack: Slack) -> None:
    renkei = slack.renkei
    await notice_channel(slack, SHOP, SHOP_CHANNEL)
    platinum = await renkei.account(SHOP, PLATINUM)
    office_id = platinum["office_id"]
    assert (await renkei.sync_now(platinum["id"])).status_code == 200
    assert await office_notices(slack, office_id, platinum["id"]) == []

    # A supplementary card registered to the online-service ID after the first link.
    mark = slack.fake.mark()
    await renkei.control("amex", "/cards/amex-plat-3002/register")
    assert (await renkei.sync_now(platinum["id"])).status_code == 200
    offered = await notice(slack, "追加カード", mark)
    [listed] = await office_notices(slack, office_id, platinum["id"])
    card = listed["card"]
    assert listed["account_ids"] == [platinum["id"]] and card["offer"] == "supplementary_card"
    assert card["basic_account_id"] == platinum["id"]
    assert card["masked_number"] in offered.all_text()
    accounts = {a["id"] for a in (await renkei.api.get(f"/offices/{office_id}/accounts")).json()}

    # The button starts the supplementary-card flow on the basic account, for this card.
    clicked = slack.fake.mark()
    await slack.click(offered, button(offered, label="追加カードの口座を作る"))
    ready = await slack.reply("オンライン・サービスのIDに登録されています", after=clicked)
    assert card["masked_number"] in ready.all_text()
    # Nothing was created by the offer or the click: the person creates it now.
    after = {a["id"] for a in (await renkei.api.get(f"/offices/{office_id}/accounts")).json()}
    assert after == accounts
    assert len(await office_notices(slack, office_id, platinum["id"])) == 1

    await consent_by_button(
        slack,
        ready,
        "追加カードの口座を作って連携する",
        "追加カード用の口座を作りました",
        "amex-plat-3002",
        "の連携が完了しました",
    )
    assert (
        await office_notices(slack, office_id, platinum["id"]) == []
    )  # the card has its account now

    await deliver_again(slack, await newest_event(slack, platinum["id"], "card.discovered"))
    await shown_once(slack, card["masked_number"])
