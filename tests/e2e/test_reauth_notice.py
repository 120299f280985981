"""A re-authentication notice while the old Amex link still holds the card.

The tokens die but the grant stays registered at Amex and keeps the card greyed out
on the consent page until it is stopped on the member site. Every notice of that
re-authentication says so, with the member site's path and page, before the button
that sends the person to the issuer; once nothing holds the card, none says it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Renkei
from tests.e2e.test_backend_rules import BIZ, JCB_GOLD, SHOP, switch
from tests.e2e.test_slack import Slack, _slack
from tests.e2e.test_slack_notices import SHOP_CHANNEL, newest_event, notice, notice_channel
from tests.support.fake_slack import Call

PATH = ("登録情報の変更", "外部サービスとの連携", "停止する")


@pytest.fixture
async def slack(database: str, tmp_path: Path) -> AsyncIterator[Slack]:
    """Both databases: the event is written and read back by each."""
    async for running in _slack(database, tmp_path):
        yield running


async def reauth_notices(slack: Slack, office: str, account_id: str) -> list[dict[str, Any]]:
    found = await slack.renkei.office(office)
    listed = await slack.renkei.api.get(f"/offices/{found['id']}/notices")
    assert listed.status_code == 200, listed.text
    return [
        n for n in listed.json() if n["kind"] == "needs_reauth" and account_id in n["account_ids"]
    ]


def says_stop_first(message: Call) -> bool:
    return all(step in message.all_text() for step in PATH)


async def lose_tokens(slack: Slack, issuer: str, account_id: str, card_or_user: str) -> None:
    """The issuer's tokens die while its grant stays registered; the next sync is refused."""
    renkei = slack.renkei
    grants = (await renkei.control_get(issuer, "/grants"))["grants"]
    grant = next(
        g
        for g in grants
        if g["status"] == "active" and card_or_user in (*g["card_ids"], g["subject"])
    )
    await renkei.control(issuer, f"/grants/{grant['grant_id']}/expire-tokens")
    await sync_refused(renkei, account_id)


async def sync_refused(renkei: Renkei, account_id: str) -> None:
    """A sync asked now is refused for re-authentication (or a sync already running,
    started by the issuer's own webhook, was)."""
    for _ in range(100):
        synced = (await renkei.sync_now(account_id)).json()
        if synced["status"] != "already_running":
            break
        await asyncio.sleep(0.1)
    refused = synced["error_code"] == "reauth_required"
    assert refused or (await renkei.get_account(account_id))["status"] == "needs_reauth", synced


async def test_amex_reauth_notice_says_to_stop_the_old_link_first_until_it_is_stopped(
    slack: Slack,
) -> None:
    renkei = slack.renkei
    await notice_channel(slack, SHOP, SHOP_CHANNEL)
    account = await renkei.account(SHOP, BIZ)
    await renkei.consent(await switch(renkei, account["id"]), cards=["amex-biz-1001"])
    await renkei.wait_synced(account["id"], since=account["last_synced_at"])

    mark = slack.fake.mark()
    await lose_tokens(slack, "amex", account["id"], "amex-biz-1001")
    event = await newest_event(slack, account["id"], "link.needs_reauth")
    assert event["payload"]["stop_at_member_site"] is True, event

    # The channel: the stop on the member site, its path and page, before the button.
    said = await notice(slack, "再認証が必要です", mark)
    assert says_stop_first(said), said.all_text()
    kinds = [b["type"] for b in said.blocks]
    assert kinds.index("section") < kinds.index("actions")
    assert all(step in said.blocks[kinds.index("section")]["text"]["text"] for step in PATH)
    page = re.search(r"<(https?://[^|>]+)\|", said.all_text())
    assert page is not None and page.group(1).endswith("/settings/services"), said.all_text()
    assert "再認証の手続きを始める" in said.buttons()[0]["text"]["text"]

    # The office's notices: the same, with the member site's page.
    [listed] = await reauth_notices(slack, SHOP, account["id"])
    assert listed["stop_at_member_site"] is True
    assert listed["member_site_url"] == page.group(1)

    # Stopped on the member site: nothing holds the card, and nothing says to stop it.
    mark = slack.fake.mark()
    await renkei.stop_link_on_member_site(account["card"]["masked_number"])
    revoked = await notice(slack, "カード会社側で停止されました", mark)
    assert not any(step in revoked.all_text() for step in PATH), revoked.all_text()
    [listed] = await reauth_notices(slack, SHOP, account["id"])
    assert listed["stop_at_member_site"] is False and listed["member_site_url"] is None


async def test_jcb_reauth_notice_says_nothing_of_stopping(slack: Slack) -> None:
    renkei = slack.renkei
    await notice_channel(slack, SHOP, SHOP_CHANNEL)
    account = await renkei.account(SHOP, JCB_GOLD)
    await renkei.consent(await switch(renkei, account["id"]), user="user_good")
    await renkei.wait_synced(account["id"], since=account["last_synced_at"])

    mark = slack.fake.mark()
    await lose_tokens(slack, "jcb", account["id"], "user_good")
    event = await newest_event(slack, account["id"], "link.needs_reauth")
    assert event["payload"]["stop_at_member_site"] is False, event
    said = await notice(slack, "再認証が必要です", mark)
    assert not any(step in said.all_text() for step in PATH), said.all_text()
    [listed] = await reauth_notices(slack, SHOP, account["id"])
    assert listed["stop_at_member_site"] is False and listed["member_site_url"] is None
