"""The channel-independent conversation layer: turns for any front end, rendered replies.

Slack, the web chat and the terminal all call this; none holds logic of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.catalog import MissingMessage, render
from statemachine.engine import FlowEngine, Input
from statemachine.replies import Choice, Reply
from statemachine.store import ConversationRecord


def choice_label(choice: Choice, locale: str) -> str:
    if choice.text is not None:
        return choice.text
    return render(choice.label, locale, choice.params)


def reply_text(reply: Reply, locale: str) -> str:
    try:
        return render(reply.key, locale, reply.params)
    except MissingMessage:
        if not reply.key.startswith("refusal."):
            raise  # a key of ours missing from the catalogs is a bug
        # The back end may refuse with a code no catalog names yet: say it plainly.
        return render("refusal.other", locale, {"code": reply.key.removeprefix("refusal.")})


def rendered_reply(reply: Reply, locale: str) -> dict[str, Any]:
    return {
        "text": reply_text(reply, locale),
        "choices": [{"value": c.value, "label": choice_label(c, locale)} for c in reply.choices],
        "link": (
            {
                "url": reply.link.url,
                "label": render(reply.link.label, locale),
                "code": reply.link.code,
                "note": (
                    render("common_flow.sign_in_code", locale, {"code": reply.link.code})
                    if reply.link.code
                    else None
                ),
            }
            if reply.link
            else None
        ),
    }


def rendered(record: ConversationRecord) -> dict[str, Any]:
    """A conversation as the conversation API answers it."""
    return {
        "id": record.id,
        "flow": record.flow,
        "state": record.state,
        "locale": record.locale,
        "office_id": record.office_id,
        "replies": [rendered_reply(Reply.from_json(r), record.locale) for r in record.replies],
    }


@dataclass
class Conversations:
    engine: FlowEngine

    async def start(self, user: str, locale: str, office_id: str | None) -> ConversationRecord:
        return await self.engine.create(user, locale, office_id)

    async def send(self, conversation_id: str, given: Input) -> ConversationRecord:
        return await self.engine.handle(conversation_id, given)

    async def get(self, conversation_id: str) -> ConversationRecord:
        return await self.engine.get(conversation_id)

    def is_secret(self, record: ConversationRecord) -> bool:
        """The conversation waits on a password: typed text there is masked, never shown."""
        if record.flow is None or record.flow not in self.engine.flows:
            return False
        return self.engine.flows[record.flow].state(record.state).secret
