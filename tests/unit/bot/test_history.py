"""A conversation's history as the conversation API answers it: the words as they were
read, the person's choices by their labels, never a password, old lines still drawn."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot.conversations import history
from i18n import render
from statemachine.handoff import HandoffMessage, MessageKind
from statemachine.store import ConversationRecord

AT = "2026-12-07T09:00:00+00:00"


def _record(lines: list[dict[str, Any]], *, count: int | None = None) -> ConversationRecord:
    return ConversationRecord(
        id="c1",
        user="owner@example.com",
        locale="en",
        transcript=lines,
        lines=len(lines) if count is None else count,
    )


def _said(text: str, *labels: str, link: str | None = None) -> dict[str, Any]:
    choices = [{"value": f"v{n}", "label": label} for n, label in enumerate(labels)]
    shown: dict[str, Any] = {"text": text, "choices": choices}
    if link is not None:
        shown["link"] = link
    return shown


def test_the_lines_are_drawn_as_read_oldest_first() -> None:
    record = _record(
        [
            {
                "at": AT,
                "from": "assistant",
                "replies": ["menu.greeting"],
                "locale": "ja",
                "said": [_said("こんにちは", "切り替える")],
            },
            {"at": AT, "from": "user", "choice": "switch_to_api", "label": "切り替える"},
            {"at": AT, "from": "user", "choice": "lang:en"},
            {
                "at": AT,
                "from": "assistant",
                "replies": ["x.consent"],
                "locale": "en",
                "said": [_said("Open the issuer's page", "Back", link="Open")],
            },
            {"at": AT, "from": "user", "text": "●●●"},
            {"at": AT, "from": "user", "file": "amex.csv"},
        ]
    )
    lines = history(record)["lines"]
    assert [line["seq"] for line in lines] == [1, 2, 4, 5, 6]  # the language switch says nothing
    greeting, chose, consent, typed, sent = lines
    # In the language of the moment: the greeting stays Japanese in an English conversation.
    assert greeting["speaker"] == "assistant" and greeting["replies"][0]["text"] == "こんにちは"
    assert greeting["replies"][0]["choices"] == [{"value": "v0", "label": "切り替える"}]
    assert (chose["speaker"], chose["text"]) == ("person", "切り替える")
    assert consent["replies"][0]["link"] == "Open"
    assert typed["text"] == "●●●" and sent["file"] == "amex.csv"


def test_lines_kept_without_their_words_still_read_sensibly() -> None:
    record = _record(
        [
            {"at": AT, "from": "assistant", "replies": ["menu.prompt", "menu.invitation.admin"]},
            {"at": AT, "from": "user", "choice": "switch_to_api"},
            {"at": AT, "from": "user", "choice": "back"},
            {"at": AT, "from": "user", "choice": "account:a1"},
        ]
    )
    assistant, flow, back, account = history(record)["lines"]
    words = [reply["text"] for reply in assistant["replies"]]
    assert words[0] == render("menu.prompt", "en")  # a message without parameters, as is
    assert words[1] == render("common.earlier_reply", "en")  # its parameters were not kept
    assert assistant["replies"][0]["choices"] == []
    assert flow["text"] == render("menu.flow.switch_to_api", "en")
    assert back["text"] == render("nav.back", "en")
    assert account["text"] == render("common.earlier_choice", "en")


def test_history_pages_back_from_the_newest() -> None:
    lines = [{"at": AT, "from": "user", "text": f"line {n}"} for n in range(1, 8)]
    # Ten lines logged, the three oldest no longer kept.
    record = _record(lines, count=10)
    newest = history(record, limit=3)
    assert [line["seq"] for line in newest["lines"]] == [8, 9, 10] and newest["more"]
    older = history(record, before=8, limit=3)
    assert [line["seq"] for line in older["lines"]] == [5, 6, 7] and older["more"]
    oldest = history(record, before=5, limit=3)
    assert [line["seq"] for line in oldest["lines"]] == [4] and not oldest["more"]
    assert oldest["lines"][0]["text"] == "line 1"


def test_supports_answers_are_drawn_after_the_line_they_followed() -> None:
    def at(minute: int, zone: str = "+00:00") -> str:
        return f"2026-12-07T09:{minute:02d}:00{zone}"

    def answer(minute: int, text: str) -> HandoffMessage:
        return HandoffMessage(
            "h1",
            "c1",
            MessageKind.SUPPORT,
            text,
            "support",
            "page",
            dt.datetime.fromisoformat(at(minute)),
        )

    # Five lines logged, the first no longer kept; one line written without its zone.
    lines = [
        {"at": at(10), "from": "user", "text": "a"},
        {"at": at(20, ""), "from": "user", "text": "b"},
        {"at": at(30), "from": "user", "text": "c"},
        {"at": at(40), "from": "user", "text": "d"},
    ]
    answers = [
        answer(5, "gone with the first line"),
        answer(25, "after b"),
        answer(26, "after b too"),
        answer(45, "after the last"),
    ]
    drawn = history(_record(lines, count=5), answers=answers)["lines"]
    assert [(line["seq"], line["speaker"], line["text"]) for line in drawn] == [
        (2, "person", "a"),
        (3, "person", "b"),
        (3, "support", render("handoff.support_said", "en", {"text": "after b"})),
        (3, "support", render("handoff.support_said", "en", {"text": "after b too"})),
        (4, "person", "c"),
        (5, "person", "d"),
        (5, "support", render("handoff.support_said", "en", {"text": "after the last"})),
    ]
    assert {line["handoff_id"] for line in drawn if line["speaker"] == "support"} == {"h1"}
    # Paging back from the fourth line keeps the answers of the third with it.
    assert [
        line["seq"] for line in history(_record(lines, count=5), before=4, answers=answers)["lines"]
    ] == [2, 3, 3, 3]
