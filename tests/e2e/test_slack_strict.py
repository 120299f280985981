"""The fake Slack is as strict as Slack: Block Kit it refuses, users without an email,
``conversations.open`` that fails; and renkei stays within what Slack takes."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.support.fake_slack import FakeSlack, fake_slack


def _section(text: str = "x") -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _button(index: int = 0, **fields: Any) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": f"a-{index}",
        "text": {"type": "plain_text", "text": "押す"},
        "value": "v",
        **fields,
    }


def _actions(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "actions", "elements": list(elements)}


REFUSED: dict[str, list[dict[str, Any]]] = {
    "51 blocks": [_section() for _ in range(51)],
    "26 buttons": [_actions(*(_button(i) for i in range(26)))],
    "section text of 3001": [_section("あ" * 3001)],
    "empty section text": [_section("")],
    "button text of 76": [_actions(_button(text={"type": "plain_text", "text": "x" * 76}))],
    "mrkdwn button text": [_actions(_button(text={"type": "mrkdwn", "text": "x"}))],
    "value of 2001": [_actions(_button(value="v" * 2001))],
    "relative url": [_actions(_button(url="/exports/abc"))],
    "ftp url": [_actions(_button(url="ftp://example.com/x"))],
    "url of 3001": [_actions(_button(url="https://example.com/" + "a" * 2990))],
    "no button text": [_actions({"type": "button", "action_id": "a"})],
    "empty actions": [_actions()],
    "same action id twice": [_actions(_button(0), _button(0))],
    "section without text": [{"type": "section"}],
    "input without element": [{"type": "input", "label": {"type": "plain_text", "text": "l"}}],
    "unknown block": [{"type": "carousel"}],
}


@pytest.fixture
def fake() -> Any:
    with fake_slack() as running:
        yield running


def _client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test-token", base_url=fake.api_url)


@pytest.mark.parametrize("name", sorted(REFUSED))
async def test_block_kit_that_slack_refuses_is_refused(fake: FakeSlack, name: str) -> None:
    with pytest.raises(SlackApiError) as refused:
        await _client(fake).chat_postMessage(channel="C0X", text="t", blocks=REFUSED[name])
    assert refused.value.response["error"] == "invalid_blocks"
    assert refused.value.response["errors"], "Slack says what it refused"
    assert fake.of("chat.postMessage", ok=False)[0].error == "invalid_blocks"
    assert fake.of("chat.postMessage") == []


async def test_block_kit_within_the_limits_is_taken(fake: FakeSlack) -> None:
    blocks = [
        *(_section("あ" * 3000) for _ in range(48)),
        _actions(
            *(_button(i, value="v" * 2000) for i in range(24)),
            _button(99, url="https://x.example/" + "a" * 2900),
        ),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}]},
    ]
    answer = await _client(fake).chat_postMessage(channel="C0X", text="t", blocks=blocks)
    assert answer["ok"]


async def test_a_modal_without_a_title_or_submit_is_refused(fake: FakeSlack) -> None:
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "x" * 25},
        "blocks": [
            {
                "type": "input",
                "label": {"type": "plain_text", "text": "l"},
                "element": {"type": "plain_text_input", "action_id": "t"},
            }
        ],
    }
    with pytest.raises(SlackApiError) as refused:
        await _client(fake).views_open(trigger_id="t", view=view)
    assert refused.value.response["error"] == "invalid_arguments"
    messages = " ".join(refused.value.response["response_metadata"]["messages"])
    assert "/title" in messages and "/submit" in messages


async def test_users_without_email_and_failing_conversations_open(fake: FakeSlack) -> None:
    fake.add_user("U0NOEMAIL", None)
    client = _client(fake)
    user = (await client.users_info(user="U0NOEMAIL"))["user"]
    assert "email" not in user["profile"]
    fake.fail("conversations.open", "cannot_dm_bot")
    with pytest.raises(SlackApiError) as refused:
        await client.conversations_open(users="U0NOEMAIL")
    assert refused.value.response["error"] == "cannot_dm_bot"
    assert (await client.conversations_open(users="U0NOEMAIL"))["channel"]["id"] == "DU0NOEMAIL"
