"""The channel-independent conversation layer: turns for any front end, rendered replies.

Slack, the web chat and the terminal all call this; none holds logic of its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from i18n import MissingMessage, catalog, has, placeholders, render
from statemachine.engine import FlowEngine, Input
from statemachine.handoff import HandoffMessage, MessageKind
from statemachine.replies import REFUSAL, Choice, Reply
from statemachine.store import TRANSCRIPT_KEPT, ConversationRecord

HISTORY_PAGE = 50
"""History lines answered at once unless a front end asks for more (up to those kept)."""
HISTORY_MOST = TRANSCRIPT_KEPT


def choice_label(choice: Choice, locale: str) -> str:
    if choice.text is not None:
        return choice.text
    return render(choice.label, locale, choice.params)


def reply_text(reply: Reply, locale: str) -> str:
    try:
        return render(reply.key, locale, reply.params)
    except MissingMessage:
        fallback = reply.fallback_key
        if fallback is None:
            raise  # a key of ours missing from the catalogs is a bug
        # The back end may refuse with a code no catalog names yet: said by the fallback.
        return render(fallback, locale, {"code": reply.key.removeprefix(REFUSAL), **reply.params})


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
        "turn": record.lines,
    }


def history(
    record: ConversationRecord,
    *,
    before: int | None = None,
    limit: int = HISTORY_PAGE,
    answers: Sequence[HandoffMessage] = (),
) -> dict[str, Any]:
    """The conversation's kept lines, oldest first, as the person read them.

    Each line has its number (``seq``); ``before`` pages back from a number. A line the
    person sent that says nothing to show (a language switch) is left out. Support's
    ``answers`` are not lines of the conversation (support writes beside it, not in
    it): each is drawn after the line it followed, with that line's number, so what
    support said is still there after the handoff ended.
    """
    first = record.lines - len(record.transcript) + 1
    drawn: list[dict[str, Any]] = []
    waiting = list(answers)
    for index, line in enumerate(record.transcript):
        seq = first + index
        said_at = _when(line)
        while waiting and said_at is not None and waiting[0].at < said_at:
            answer = waiting.pop(0)
            if seq > first:  # an answer older than the kept lines went with them
                drawn.append(_support_line(seq - 1, answer, record.locale))
        past = _past_line(seq, line, record.locale)
        if past is not None:
            drawn.append(past)
    drawn += [_support_line(record.lines, answer, record.locale) for answer in waiting]
    kept = [line for line in drawn if before is None or line["seq"] < before]
    page = kept[-limit:] if limit > 0 else []
    return {"lines": page, "more": len(page) < len(kept)}


def _when(line: dict[str, Any]) -> dt.datetime | None:
    try:
        said_at = dt.datetime.fromisoformat(str(line["at"]))
    except (KeyError, ValueError):
        return None  # a line logged before lines had a time
    # Lines are logged by the engine's clock, in UTC; one without its zone is read so.
    return said_at if said_at.tzinfo is not None else said_at.replace(tzinfo=dt.UTC)


def _support_line(seq: int, answer: HandoffMessage, locale: str) -> dict[str, Any]:
    return {
        "seq": seq,
        "at": answer.at.isoformat(),
        "speaker": "support",
        "text": render("handoff.support_said", locale, {"text": answer.text}),
        "file": None,
        "replies": [],
        "handoff_id": answer.handoff_id,
    }


def _past_line(seq: int, line: dict[str, Any], locale: str) -> dict[str, Any] | None:
    shown: dict[str, Any] = {"seq": seq, "at": line.get("at"), "text": None, "file": None}
    if line.get("from") == "assistant":
        said = line.get("said")
        if said is None:  # logged before the words were kept: the keys alone
            said = [{"text": _earlier_words(str(key), locale)} for key in line.get("replies", [])]
        replies = [
            {
                "text": str(reply.get("text") or ""),
                "choices": list(reply.get("choices") or []),
                "link": reply.get("link"),
            }
            for reply in said
        ]
        return {**shown, "speaker": "assistant", "replies": replies, "handoff_id": None}
    text = line.get("text") or line.get("label")  # a password step's text is kept masked
    choice = line.get("choice")
    if text is None and choice is not None:
        text = _earlier_choice(str(choice), locale)
    if text is None and line.get("file") is None:
        return None
    return {
        **shown,
        "speaker": "person",
        "text": text,
        "file": line.get("file"),
        "replies": [],
        "handoff_id": None,
    }


def _earlier_words(key: str, locale: str) -> str:
    """A reply logged as its key alone: its words when they need no parameter."""
    if has(key) and not placeholders(catalog(locale).get(key, "{missing}")):
        return render(key, locale)
    return render("common.earlier_reply", locale)


def _earlier_choice(value: str, locale: str) -> str | None:
    """A choice logged as its value alone: a procedure's or a command's name if it is one."""
    if value.startswith("lang:"):
        return None  # the reply says the language changed
    for key in (f"menu.flow.{value}", f"nav.{value}"):
        if has(key):
            return render(key, locale)
    return render("common.earlier_choice", locale)


@dataclass
class Conversations:
    engine: FlowEngine

    async def start(self, user: str, locale: str, office_id: str | None) -> ConversationRecord:
        return await self.engine.create(user, locale, office_id)

    async def send(self, conversation_id: str, given: Input) -> ConversationRecord:
        return await self.engine.handle(conversation_id, given)

    async def get(self, conversation_id: str) -> ConversationRecord:
        return await self.engine.get(conversation_id)

    async def support_answers(self, conversation_id: str) -> list[HandoffMessage]:
        return await self.engine.support_answers(conversation_id)

    async def handoff(self, record: ConversationRecord) -> dict[str, Any] | None:
        """The handoff owning the conversation, as the conversation API shows it: its
        state and support's answers so far (a front end shows those it has not yet)."""
        found = await self.engine.handoff_of(record)
        if found is None:
            return None
        handoff, messages = found
        return {
            "id": handoff.id,
            "status": handoff.status,
            "answers": [
                {
                    "text": render("handoff.support_said", record.locale, {"text": m.text}),
                    "at": m.at.isoformat(),
                }
                for m in messages
                if m.kind == MessageKind.SUPPORT
            ],
        }

    def is_secret(self, record: ConversationRecord) -> bool:
        """The conversation waits on a password: typed text there is masked, never shown."""
        return self.engine.accepts(record).secret

    def takes_file(self, record: ConversationRecord) -> bool:
        """The conversation's step takes a file (a statement upload)."""
        return self.engine.accepts(record).file

    def takes_text(self, record: ConversationRecord) -> bool:
        """The conversation's step takes typed text (a front end may offer a form for it)."""
        return self.engine.accepts(record).text
